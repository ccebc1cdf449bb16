// Where each token of a Result lies in the dataset document, as editor ranges (one or more per token). The
// engine's own parsers give every prompt character's document offset (Example.source), so the editor maps exactly
// what the engine tokenized, through JSON escapes and .atp spans. Computed once per (document version, result) and
// shared by the decorations and the hover provider.
import * as vscode from 'vscode';
import { parseJsonl } from '../lib/dataset/jsonl';
import { parsePromptFormat } from '../lib/dataset/promptFormat';
import type { Example } from '../lib/dataset/types';
import type { Result } from '../shared/result';
import { type DatasetFormat, tokenSegments } from './ranges';

export interface ExampleLayout {
  /** Index into result.examples. */
  example: number;
  /** Per token position, the ranges of its text (several where an .atp token straddles a span). */
  clean: vscode.Range[][];
  corrupted: vscode.Range[][];
}

export function formatOf(document: vscode.TextDocument): DatasetFormat | undefined {
  const name = document.uri.path.toLowerCase();
  return name.endsWith('.jsonl') ? 'jsonl' : name.endsWith('.atp') ? 'atp' : undefined;
}

function parsedExamples(document: vscode.TextDocument, format: DatasetFormat): Map<number, Example> {
  const text = document.getText();
  const parsed = format === 'atp' ? parsePromptFormat(text, document.uri.fsPath) : parseJsonl(text, document.uri.fsPath);
  return new Map(parsed.dataset.examples.map((example) => [example.line, example]));
}

function computeLayout(document: vscode.TextDocument, result: Result): ExampleLayout[] {
  const format = formatOf(document);
  if (!format) return [];
  const text = document.getText();
  const byLine = parsedExamples(document, format);
  const toRanges = (segments: Array<Array<{ start: number; end: number }>>) =>
    segments.map((token) => token.map((segment) => new vscode.Range(document.positionAt(segment.start), document.positionAt(segment.end))));
  const layouts: ExampleLayout[] = [];
  result.examples.forEach((example, index) => {
    const parsed = byLine.get(example.line);
    // An example whose prompts are no longer on its line is left uncoloured rather than coloured in the wrong place.
    if (!parsed?.source || parsed.clean !== example.clean || parsed.corrupted !== example.corrupted) return;
    layouts.push({
      example: index,
      clean: toRanges(tokenSegments(text, example.tokens, parsed.source.clean, format)),
      corrupted: toRanges(tokenSegments(text, example.corruptedTokens, parsed.source.corrupted, format)),
    });
  });
  return layouts;
}

const cache = new WeakMap<Result, { uri: string; version: number; layouts: ExampleLayout[] }>();

export function tokenLayout(document: vscode.TextDocument, result: Result): ExampleLayout[] {
  const cached = cache.get(result);
  if (cached && cached.uri === document.uri.toString() && cached.version === document.version) return cached.layouts;
  const layouts = computeLayout(document, result);
  cache.set(result, { uri: document.uri.toString(), version: document.version, layouts });
  return layouts;
}

/** The example and token position under a document position, in the clean or the corrupted prompt. */
export function tokenAt(
  layouts: readonly ExampleLayout[],
  position: vscode.Position,
): { example: number; pos: number; prompt: 'clean' | 'corrupted'; range: vscode.Range } | undefined {
  for (const layout of layouts) {
    for (const prompt of ['clean', 'corrupted'] as const) {
      for (const [pos, ranges] of layout[prompt].entries()) {
        // Half-open [start, end): the character under the pointer belongs to exactly one token.
        const range = ranges.find((r) => position.isAfterOrEqual(r.start) && position.isBefore(r.end));
        if (range) return { example: layout.example, pos, prompt, range };
      }
    }
  }
  return undefined;
}
