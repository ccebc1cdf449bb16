// Problems a dataset has with a given tokenizer, at exact places in its document, for an editor to show live:
// answers that are not one token, and clean/corrupted prompts of different token counts.
import type { ModelTokenizer } from '../../engine/model/tokenizer';
import { type LengthTokenizer, promptTooLong } from './promptLength';
import type { Dataset, Diagnostic, Example, SourceRange } from './types';

/** The part of ModelTokenizer the diagnostics use. */
export type DiagnosticTokenizer = Pick<ModelTokenizer, 'encode' | 'ids' | 'tokenText'>;

/**
 * Checks every example against the tokenizer as attribution patching will use it (prepareExamples): prompts
 * with the tokenizer's special tokens, answers without. Pure: the same dataset and tokenizer give the same
 * diagnostics. Examples without a location (generated ones) are reported on their line, at column 0.
 */
export function diagnoseWithTokenizer(dataset: Dataset, tokenizer: DiagnosticTokenizer & Partial<LengthTokenizer>, maxPositions?: number): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const example of dataset.examples) {
    const at = (range: SourceRange | undefined, severity: Diagnostic['severity'], message: string) => {
      const lineStart = example.location?.lineStart;
      const start = range === undefined || lineStart === undefined ? 0 : range.start - lineStart;
      const end = range === undefined || lineStart === undefined ? 0 : range.end - lineStart;
      diagnostics.push({ line: example.line, startColumn: start, endColumn: end, severity, message });
    };
    const location = example.location;

    const answerIds: number[] = [];
    for (const field of ['correct', 'incorrect'] as const) {
      const ids = tokenizer.ids(example[field], { addSpecialTokens: false });
      const text = JSON.stringify(example[field]);
      if (ids.length === 0) {
        at(location?.[field], 'error', `the ${field} answer ${text} tokenizes to nothing`);
      } else if (ids.length > 1) {
        const pieces = ids.map((id) => JSON.stringify(tokenizer.tokenText(id))).join(', ');
        at(
          location?.[field],
          'warning',
          `the ${field} answer ${text} is ${ids.length} tokens (${pieces}); only its first token ${JSON.stringify(tokenizer.tokenText(ids[0]))} is used`,
        );
      }
      answerIds.push(ids[0] ?? -1);
    }
    if (answerIds[0] >= 0 && answerIds[0] === answerIds[1]) {
      const range = location === undefined ? undefined : { start: location.correct.start, end: location.incorrect.end };
      // An error, as in prepareExamples: the metric would be 0 for this example and undefined for the dataset.
      at(range, 'error', `both answers start with the token ${JSON.stringify(tokenizer.tokenText(answerIds[0]))}: their logit difference is always 0`);
    }

    // Too long to fit: said without tokenizing, which for a prompt of megabytes would stall or crash the worker.
    if (maxPositions !== undefined && tokenizer.minimumTokenCount !== undefined) {
      const tooLong = (['clean', 'corrupted'] as const)
        .map((field) => [field, promptTooLong(example[field], tokenizer as LengthTokenizer, maxPositions)] as const)
        .filter(([, problem]) => problem !== undefined);
      for (const [field, problem] of tooLong) at(location?.[field], 'error', `the ${field} prompt ${problem}`);
      if (tooLong.length > 0) continue;
    }
    const cleanCount = tokenizer.encode(example.clean).length;
    const corruptedCount = tokenizer.encode(example.corrupted).length;
    if (cleanCount !== corruptedCount) {
      at(
        mismatchRange(example),
        'error',
        `the clean prompt is ${cleanCount} tokens and the corrupted prompt ${corruptedCount}: attribution patching needs prompts of equal token counts`,
      );
    }
    if (maxPositions !== undefined && cleanCount > maxPositions) {
      at(location?.clean, 'error', `the clean prompt is ${cleanCount} tokens, more than the model's ${maxPositions} positions`);
    }
  }
  return diagnostics;
}

/** Where a token-count mismatch is shown: an .atp line's spans (first to last), else the corrupted prompt. */
function mismatchRange(example: Example): SourceRange | undefined {
  const location = example.location;
  if (location === undefined) return undefined;
  const spans = location.spans;
  if (spans.length > 0) return { start: spans[0].start, end: spans[spans.length - 1].end };
  return location.corrupted;
}
