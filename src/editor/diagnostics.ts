// Problems the engine found in the user's dataset (token-count mismatches, invalid JSON, multi-token answers)
// become diagnostics at the offending place: the engine's parsers and tokenizer checks give exact columns; an error
// known only by its line covers that line's text.
import * as vscode from 'vscode';
import type { FileDiagnostic } from '../engine/workerProtocol';

export function toDiagnostic(document: vscode.TextDocument, problem: FileDiagnostic): vscode.Diagnostic {
  const lineIndex = Math.min(Math.max(problem.line - 1, 0), Math.max(document.lineCount - 1, 0));
  const line = document.lineAt(lineIndex);
  const start = problem.startColumn ?? line.firstNonWhitespaceCharacterIndex;
  // A zero-width range (an example without location) would be invisible: widen it to the line.
  const end = problem.endColumn !== undefined && problem.endColumn > start ? problem.endColumn : line.text.length;
  const diagnostic = new vscode.Diagnostic(
    new vscode.Range(lineIndex, start, lineIndex, Math.max(end, start)),
    problem.message,
    problem.severity === 'error' ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Warning,
  );
  diagnostic.source = 'attribution patching';
  return diagnostic;
}

export class DatasetDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('attributionPatching');

  set(document: vscode.TextDocument, problems: readonly FileDiagnostic[]): void {
    this.collection.set(document.uri, problems.map((problem) => toDiagnostic(document, problem)));
  }

  clear(uri: vscode.Uri): void {
    this.collection.delete(uri);
  }

  dispose(): void {
    this.collection.dispose();
  }
}
