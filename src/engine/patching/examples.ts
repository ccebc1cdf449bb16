// A run's examples: tokenized and checked, the positions where the clean and corrupted prompts differ, and the
// prefix that every prompt shares.
import { InputError } from '../../shared/errors';
import type { LoadedModel } from '../model/load';
import type { Dataset, Example } from '../../lib/dataset/jsonl';
import type { TokenInfo } from '../../shared/result';
import { promptTooLong } from '../../lib/dataset/promptLength';

/** An example tokenized and checked, ready to batch. */
export interface PreparedExample {
  readonly example: Example;
  readonly tokens: TokenInfo[];
  readonly corruptedTokens: TokenInfo[];
  readonly correctId: number;
  readonly incorrectId: number;
}

/**
 * Tokenizes and validates every example; errors name the file, line and field. Answers use their first token
 * without special tokens (as the seed notebook does); longer answers produce a warning, never silence.
 */
export function prepareExamples(model: LoadedModel, dataset: Dataset, warnings: string[]): PreparedExample[] {
  if (dataset.examples.length === 0) throw new InputError(`${dataset.file}: the dataset has no examples`);
  return dataset.examples.map((example) => {
    const where = `${dataset.file}:${example.line}`;
    for (const field of ['clean', 'corrupted'] as const) {
      const tooLong = promptTooLong(example[field], model.tokenizer, model.spec.maxPositions);
      if (tooLong !== undefined) throw new InputError(`${where}: "${field}" ${tooLong}`);
    }
    const tokens = model.tokenizer.encode(example.clean);
    const corruptedTokens = model.tokenizer.encode(example.corrupted);
    if (tokens.length !== corruptedTokens.length) {
      throw new InputError(
        `${where}: "clean" has ${tokens.length} tokens but "corrupted" has ${corruptedTokens.length}; attribution patching needs prompts of equal token length`,
      );
    }
    if (tokens.length > model.spec.maxPositions) {
      throw new InputError(`${where}: "clean" has ${tokens.length} tokens, more than the model's ${model.spec.maxPositions} positions`);
    }
    const answerId = (field: 'correct' | 'incorrect') => {
      const ids = model.tokenizer.ids(example[field], { addSpecialTokens: false });
      if (ids.length === 0) throw new InputError(`${where}: "${field}" (${JSON.stringify(example[field])}) tokenizes to nothing`);
      if (ids.length > 1) {
        const first = JSON.stringify(model.tokenizer.tokenText(ids[0]));
        warnings.push(`${where}: "${field}" (${JSON.stringify(example[field])}) is ${ids.length} tokens; using its first token ${first}`);
      }
      return ids[0];
    };
    const correctId = answerId('correct');
    const incorrectId = answerId('incorrect');
    if (correctId === incorrectId) {
      throw new InputError(
        `${where}: "correct" and "incorrect" both start with the token ${JSON.stringify(model.tokenizer.tokenText(correctId))}: their logit difference is always 0`,
      );
    }
    return { example, tokens, corruptedTokens, correctId, incorrectId };
  });
}

/** Positions where the clean and corrupted token ids differ: the only places where layer 0's inputs differ. */
export function differingPositions(example: PreparedExample): number[] {
  const positions: number[] = [];
  example.tokens.forEach((token, pos) => {
    if (token.id !== example.corruptedTokens[pos].id) positions.push(pos);
  });
  return positions;
}

/**
 * Leading tokens that every example's clean and corrupted prompts share, at most up to each one's answer position:
 * at least where the attribution graph's corrupted pass starts in any batch of them (graphs.ts sharedPrefixLength).
 */
export function sharedPrefixTokens(prepared: readonly PreparedExample[]): number {
  let shared = Infinity;
  for (const example of prepared) {
    const answer = example.tokens.length - 1;
    shared = Math.min(shared, answer, differingPositions(example)[0] ?? answer);
  }
  return Number.isFinite(shared) ? Math.max(0, shared) : 0;
}
