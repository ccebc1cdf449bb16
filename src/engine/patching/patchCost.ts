// What exact maps cost against plain AtP, counted in position-layer evaluations: one position through one layer's
// block (attention and MLP), forward. A backward counts as two (about twice a forward's matrix work). Plain AtP as
// the engine runs it (graphs.ts) is a clean forward over the prompt, and a corrupted forward and its backward from
// the first difference (before it the runs are the same); issue 25 counted it over the whole prompt, 4 · T · L.
// Exact patching through the suffix pass (suffixPatching.ts) is one record pass per example (a clean forward, and a
// corrupted one from the first difference) and, per patch at layer l and position p, positions p…T−1 through layers
// l…L−1. Attention's reads of earlier keys are not counted (linear in the prompt, against the blocks' dModel² per
// position). Each example is counted from its own first difference; a batch's passes start at its earliest one.
// Measured (bench/suffixPatching.ts, GPT-2-small, 15-token IOI prompts): time follows these counts within ~15%.
import { differingPositions, type PreparedExample } from './examples';

/** An exact map's cost: the record passes, the patched suffix passes, and both. */
export interface MapCost {
  record: number;
  patches: number;
  total: number;
}

export interface PatchingCosts {
  /** Plain AtP as the engine runs it: a clean forward, and a corrupted forward and backward (≈ 2) from the first difference. */
  atp: number;
  /** Plain AtP without the shared prefix: two forwards and a backward over every position (issue 25's count). */
  atpWholePrompt: number;
  /** Each head's z at the answer position, exactly: per layer l, heads × (L − l) evaluations of one position. */
  heads: MapCost;
  /**
   * The position maps exactly — resid_pre, attn_out and mlp_out at every layer and every position from the first
   * difference on (before it a patch changes nothing: exactly 0, no pass): per patch (L − l) · (T − p).
   */
  positions: MapCost;
}

/** One example as the cost model sees it: its length and first differing position (undefined: the prompts are the same). */
export interface CostExample {
  length: number;
  firstDifference: number | undefined;
}

export const costExamples = (prepared: readonly PreparedExample[]): CostExample[] =>
  prepared.map((p) => ({ length: p.tokens.length, firstDifference: differingPositions(p)[0] }));

/** The position maps' hooks: resid_pre, attn_out, mlp_out. */
const POSITION_MAP_KINDS = 3;

export function patchingCosts(spec: { nLayers: number; nHeads: number }, examples: readonly CostExample[]): PatchingCosts {
  const L = spec.nLayers;
  // Σ_l (L − l): one position through every layer a patch at l recomputes, over the layers it can be at.
  const layerSum = (L * (L + 1)) / 2;
  let atp = 0;
  let atpWholePrompt = 0;
  let record = 0;
  let heads = 0;
  let positions = 0;
  for (const { length: T, firstDifference: f } of examples) {
    // Prompts that do not differ still run their answer position (the shared prefix ends there at the latest).
    const corrupted = T - (f ?? T - 1);
    atp += T * L + 3 * corrupted * L;
    atpWholePrompt += 4 * T * L;
    record += T * L + corrupted * L;
    if (f === undefined) continue;
    heads += spec.nHeads * layerSum;
    // Σ_{p=f}^{T−1} (T − p) positions from each patched one on.
    positions += POSITION_MAP_KINDS * layerSum * (((T - f) * (T - f + 1)) / 2);
  }
  return {
    atp,
    atpWholePrompt,
    heads: { record, patches: heads, total: record + heads },
    positions: { record, patches: positions, total: record + positions },
  };
}
