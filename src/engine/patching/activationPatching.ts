// The exact sweep: activation patching of every component (or of the heads at the answer, or of resid_pre), one
// patched suffix pass per component (suffixPatching.ts), in the units and shapes of the attributions.
import type { LoadedModel } from '../model/load';
import type { Dataset } from '../../lib/dataset/jsonl';
import type { ExampleAttributions } from '../../shared/result';
import type { RunOptions } from './options';
import { activationPatchingBySuffix } from './suffixPatching';

/** Exact activation patching of every component, in the same units and shapes as the attributions. */
export interface ActivationPatchingResult {
  cleanLogitDiff: number;
  corruptedLogitDiff: number;
  examples: ExampleAttributions[];
}

/**
 * Exact activation patching: for every example and every component (each head's z at each position, and
 * resid_pre / attn_out / mlp_out at each position, in every layer), one corrupted run with that component
 * patched to its clean value. Reports (LD_patched − LD_corrupted) / (n·(LD_clean − LD_corrupted)) per example,
 * which summed over examples is the normalised metric of patching that component in every example.
 * Cost grows with layers × positions × heads per example: meant for validation and small models.
 */
export async function runActivationPatching(
  model: LoadedModel,
  dataset: Dataset,
  options: RunOptions & {
    /**
     * 'heads-at-answer': only each head's z at the answer position (the head heatmap); 'resid-pre': only resid_pre at
     * every layer and position (the position heatmap); the others stay 0. Default 'all'.
     */
    components?: 'all' | 'heads-at-answer' | 'resid-pre';
  },
): Promise<ActivationPatchingResult> {
  // Each patch recomputes only the positions from it on and the layers from it up (suffixPatching.ts).
  return activationPatchingBySuffix(model, dataset, options);
}
