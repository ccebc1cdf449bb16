// The reference for suffix patching: each patch set as one full clean + patched forward pass per row through the
// activation-patching graph (graphs.ts buildActivationPatchingGraph), which is what exact patching ran before.
import * as ort from 'onnxruntime-node';
import type { LoadedModel } from '../../src/engine/model/load';
import { HOOK_KINDS } from '../../src/engine/architectures/types';
import { HOOKS } from '../../src/shared/hooks';
import { ATTRIBUTION_OUTPUTS, PATCHED_LOGIT_DIFF, PATCHING_INPUT } from '../../src/engine/patching/graphs';
import type { PreparedExample } from '../../src/engine/patching/examples';
import { asNumbers, batchFeeds, feedType, type RowPatch } from '../../src/engine/patching/feeds';
import type { RunOptions } from '../../src/engine/patching/options';
import { sessionFor } from '../../src/engine/patching/sessions';

/**
 * patched[example][set]: the logit difference of the corrupted run with that set's patches (each takes the clean
 * value); clean and corrupted: each example's two logit differences. One row per set (and one unpatched row).
 */
export async function fullForwardPatchedLds(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  sets: (example: number) => ReadonlyArray<readonly RowPatch[]>,
  options: RunOptions,
): Promise<{ cleanLds: number[]; corruptedLds: number[]; patched: number[][] }> {
  const precision = options.precision ?? 'float32';
  const handle = await sessionFor(model, 'activation-patching', options);
  const { nLayers, nHeads } = model.spec;
  const cleanLds: number[] = [];
  const corruptedLds: number[] = [];
  const patched: number[][] = [];
  for (const [e, example] of prepared.entries()) {
    const rows: Array<readonly RowPatch[]> = [[], ...sets(e)];
    const lds: number[] = [];
    for (let start = 0; start < rows.length; start += options.batchSize) {
      const chunk = rows.slice(start, start + options.batchSize);
      const { feeds, seq } = batchFeeds(
        chunk.map(() => example),
        precision,
      );
      for (const kind of HOOK_KINDS) {
        const width = HOOKS[kind].perHead ? nHeads : 1;
        const mask = precision === 'float64' ? new Float64Array(chunk.length * nLayers * seq * width) : new Float32Array(chunk.length * nLayers * seq * width);
        chunk.forEach((set, r) => {
          for (const p of set) if (p.hook === kind) mask[((r * nLayers + p.layer) * seq + p.pos) * width + (width > 1 ? p.head : 0)] = 1;
        });
        feeds[PATCHING_INPUT(kind)] = new ort.Tensor(
          feedType(precision),
          mask,
          width > 1 ? [chunk.length, nLayers, seq, nHeads] : [chunk.length, nLayers, seq],
        );
      }
      const out = await handle.session.run(feeds);
      lds.push(...asNumbers(out[PATCHED_LOGIT_DIFF]));
      if (start === 0) cleanLds.push(asNumbers(out[ATTRIBUTION_OUTPUTS.cleanLogitDiff])[0]);
    }
    corruptedLds.push(lds[0]);
    patched.push(lds.slice(1));
  }
  return { cleanLds, corruptedLds, patched };
}
