// Problems the engine found in the user's dataset (token-count mismatches, invalid JSON, multi-token answers)
// become diagnostics at the offending place: the engine's parsers and tokenizer checks give exact columns; an error
// known only by its line covers that line's text.
import * as vscode from 'vscode';
import type { FileDiagnostic } from '../shared/workerProtocol';

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
  if (problem.useModel) diagnostic.code = `${USE_MODEL_CODE}${problem.useModel}`;
  return diagnostic;
}

/** A diagnostic whose quick fix selects a built-in model has the code "useModel:<name>". */
export const USE_MODEL_CODE = 'useModel:';

/** The built-in model a diagnostic's quick fix selects, if it has one. */
export function modelToUse(diagnostic: vscode.Diagnostic): string | undefined {
  return typeof diagnostic.code === 'string' && diagnostic.code.startsWith(USE_MODEL_CODE) ? diagnostic.code.slice(USE_MODEL_CODE.length) : undefined;
}

/**
 * Two sources write a dataset's problems: the checks while typing ('live') and the last run ('run'). Each replaces
 * only its own, and the editor shows both (the same problem once), so a failed run never wipes the live diagnostics
 * that explain it.
 */
export type DiagnosticSource = 'live' | 'run';

const sameProblem = (a: FileDiagnostic, b: FileDiagnostic) =>
  a.line === b.line &&
  a.startColumn === b.startColumn &&
  a.endColumn === b.endColumn &&
  a.message === b.message &&
  a.severity === b.severity &&
  a.useModel === b.useModel;

export function mergeProblems(live: readonly FileDiagnostic[], run: readonly FileDiagnostic[]): FileDiagnostic[] {
  return [...live, ...run.filter((problem) => !live.some((other) => sameProblem(problem, other)))];
}

export class DatasetDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('attributionPatching');
  private readonly problems = new Map<string, Record<DiagnosticSource, readonly FileDiagnostic[]>>();

  set(document: vscode.TextDocument, problems: readonly FileDiagnostic[], source: DiagnosticSource = 'live'): void {
    const key = document.uri.toString();
    const current = { live: [], run: [], ...this.problems.get(key), [source]: problems };
    this.problems.set(key, current);
    this.collection.set(
      document.uri,
      mergeProblems(current.live, current.run).map((problem) => toDiagnostic(document, problem)),
    );
  }

  /** Forgets one source's problems (e.g. the last run's, when a new run starts); the other source's stay. */
  clearSource(document: vscode.TextDocument, source: DiagnosticSource): void {
    if ((this.problems.get(document.uri.toString())?.[source].length ?? 0) === 0) return;
    this.set(document, [], source);
  }

  clear(uri: vscode.Uri): void {
    this.problems.delete(uri.toString());
    this.collection.delete(uri);
  }

  dispose(): void {
    this.collection.dispose();
  }
}
