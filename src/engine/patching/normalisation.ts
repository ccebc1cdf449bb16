// The normalised metric: per-example values times 1 / (n·(LD_clean − LD_corrupted)) sum to (LD − LD_corrupted) /
// (LD_clean − LD_corrupted) over the dataset.
import { InputError } from '../../shared/errors';
import type { Dataset } from '../../lib/dataset/jsonl';
import type { RunOptions } from './options';

/**
 * 1 / (n·(LD_clean − LD_corrupted)): per-example values times this, summed over examples, are in units of the
 * normalised metric (LD − LD_corrupted) / (LD_clean − LD_corrupted).
 */
export function normalisation(dataset: Dataset, cleanLogitDiff: number, corruptedLogitDiff: number, n: number): number {
  const gap = cleanLogitDiff - corruptedLogitDiff;
  if (!Number.isFinite(gap) || gap === 0) {
    throw new InputError(
      `${dataset.file}: the clean and corrupted prompts give the same logit difference (${cleanLogitDiff}), so there is no effect to attribute ` +
        `(the normalised metric divides by their difference). Check that the corrupted prompts change which answer the model prefers, ` +
        `and that the correct and incorrect answers start with different tokens.`,
    );
  }
  return 1 / (n * gap);
}

/** normalisation(), or 1 for a raw run (see RunOptions.raw). */
export function runScale(options: RunOptions, dataset: Dataset, cleanLogitDiff: number, corruptedLogitDiff: number, n: number): number {
  return options.raw ? 1 : normalisation(dataset, cleanLogitDiff, corruptedLogitDiff, n);
}

export const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;
