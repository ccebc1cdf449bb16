// The exact sweep: activation patching of every component (or of the heads at the answer, or of resid_pre), one
// corrupted run per component through the activation-patching graph, in the units and shapes of the attributions.
import { HOOK_KINDS, type HookKind } from '../architectures/types';
import { HOOKS } from '../../shared/hooks';
import type { LoadedModel } from '../model/load';
import type { Dataset } from '../../lib/dataset/jsonl';
import { ATTRIBUTION_OUTPUTS, PATCHED_LOGIT_DIFF } from './graphs';
import { progressTracker } from '../../shared/progress';
import type { ExampleAttributions } from '../../shared/result';
import { checkCancelled, type RunOptions } from './options';
import { prepareExamples } from './examples';
import { asNumbers, batchFeeds, patchMaskFeeds, type RowPatch } from './feeds';
import { sessionFor } from './sessions';
import { mean, runScale } from './normalisation';

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
  const prepared = prepareExamples(model, dataset, []);
  const precision = options.precision ?? 'float32';
  const handle = await sessionFor(model, 'activation-patching', options);
  const { nLayers, nHeads } = model.spec;

  const cleanLds: number[] = [];
  const corruptedLds: number[] = [];
  const deltas: ExampleAttributions[] = [];
  const step = progressTracker('activation patching', 'example', prepared.length, options.onStep);
  for (const [index, example] of prepared.entries()) {
    checkCancelled(options.signal);
    step(index);
    const seq = example.tokens.length;
    // Row 0 patches nothing (the corrupted baseline); each further row patches one component.
    const components: Array<RowPatch | null> = [null];
    const headsOnly = options.components === 'heads-at-answer';
    const kinds: readonly HookKind[] = headsOnly ? ['z'] : options.components === 'resid-pre' ? ['resid_pre'] : HOOK_KINDS;
    for (const kind of kinds) {
      for (let layer = 0; layer < nLayers; layer++) {
        for (let pos = headsOnly ? seq - 1 : 0; pos < seq; pos++) {
          if (kind === 'z') for (let head = 0; head < nHeads; head++) components.push({ hook: kind, layer, pos, head });
          else components.push({ hook: kind, layer, pos, head: 0 });
        }
      }
    }
    const patched = new Array<number>(components.length);
    let clean = 0;
    for (let start = 0; start < components.length; start += options.batchSize) {
      checkCancelled(options.signal);
      const chunk = components.slice(start, start + options.batchSize);
      const rows = chunk.map(() => example);
      const { feeds } = batchFeeds(rows, precision);
      const out = await handle.session.run({ ...feeds, ...patchMaskFeeds(chunk, seq, model.spec, precision) });
      const lds = asNumbers(out[PATCHED_LOGIT_DIFF]);
      clean = asNumbers(out[ATTRIBUTION_OUTPUTS.cleanLogitDiff])[0];
      lds.forEach((ld, r) => (patched[start + r] = ld));
    }
    cleanLds.push(clean);
    corruptedLds.push(patched[0]);
    const delta: ExampleAttributions = {
      z: Array.from({ length: nLayers }, () => Array.from({ length: seq }, () => new Array<number>(nHeads).fill(0))),
      residPre: Array.from({ length: nLayers }, () => new Array<number>(seq).fill(0)),
      attnOut: Array.from({ length: nLayers }, () => new Array<number>(seq).fill(0)),
      mlpOut: Array.from({ length: nLayers }, () => new Array<number>(seq).fill(0)),
    };
    components.forEach((c, i) => {
      if (!c) return;
      const d = patched[i] - patched[0];
      const field = HOOKS[c.hook].field;
      if (field === 'z') delta.z[c.layer][c.pos][c.head] = d;
      else delta[field][c.layer][c.pos] = d;
    });
    deltas.push(delta);
  }
  step(prepared.length);
  const cleanLogitDiff = mean(cleanLds);
  const corruptedLogitDiff = mean(corruptedLds);
  const scale = runScale(options, dataset, cleanLogitDiff, corruptedLogitDiff, prepared.length);
  return { cleanLogitDiff, corruptedLogitDiff, examples: deltas.map((d) => scaleAttributions(d, scale)) };
}

function scaleAttributions(a: ExampleAttributions, scale: number): ExampleAttributions {
  const s2 = (m: number[][]) => m.map((row) => row.map((v) => v * scale));
  return { z: a.z.map(s2), residPre: s2(a.residPre), attnOut: s2(a.attnOut), mlpOut: s2(a.mlpOut) };
}
