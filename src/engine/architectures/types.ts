import type { Value } from '../graph/builder';
import type { Ops } from '../graph/ops';
import type { GraphWeights } from '../graph/weights';
import type { ModelSpec } from '../model/config';

/** Hook points in TransformerLens vocabulary; every architecture exposes the same four. */
export const HOOK_KINDS = ['resid_pre', 'z', 'attn_out', 'mlp_out'] as const;
export type HookKind = (typeof HOOK_KINDS)[number];

/**
 * Called at every hook point with the activation there; returns the value the rest of the forward pass uses
 * (the same value to observe, a tapped value to differentiate, a patched value to intervene).
 * Shapes: resid_pre, attn_out, mlp_out [batch, seq, dModel]; z [batch, seq, heads, dHead].
 */
export type Hook = (kind: HookKind, layer: number, value: Value) => Value;

/** What an architecture contributes to a graph. Family differences live behind this interface. */
export interface Architecture {
  readonly spec: ModelSpec;
  /** Token ids [batch, seq] (int64) → the residual stream after the last block [batch, seq, dModel]. */
  forward(ops: Ops, weights: GraphWeights, ids: Value, hook: Hook): Value;
  /** The final normalisation applied before the unembedding, on [..., dModel]. */
  finalNorm(ops: Ops, weights: GraphWeights, residual: Value): Value;
  /** Rows of the unembedding for the given token ids [batch] → [batch, dModel] (logit = row · normalised residual). */
  unembeddingRows(ops: Ops, weights: GraphWeights, ids: Value): Value;
}
