import type { Value } from '../graph/builder';
import type { Ops } from '../graph/ops';
import type { GraphWeights } from '../graph/weights';
import type { ModelSpec } from '../model/config';

import type { HookKind } from '../../shared/hooks';

/** Hook points in TransformerLens vocabulary (src/shared/hooks.ts); every architecture exposes the same four. */
export { HOOK_KINDS, type HookKind } from '../../shared/hooks';

/**
 * Called at every hook point with the activation there; returns the value the rest of the forward pass uses
 * (the same value to observe, a tapped value to differentiate, a patched value to intervene).
 * Shapes: resid_pre, attn_out, mlp_out [batch, seq, dModel]; z [batch, seq, heads, dHead].
 */
export type Hook = (kind: HookKind, layer: number, value: Value) => Value;

/**
 * One attention layer's inputs as they enter the scores, scores = scale·q·kᵀ + mask: q [batch, seq, heads, dHead]
 * and k [batch, seq, kvHeads, dHead] after RoPE where the family has it, v [batch, seq, kvHeads, dHead]; with
 * grouped-query attention k and v are per key/value head, before their repetition (query head h reads kv head
 * floor(h / (heads / kvHeads))). mask is the additive [seq, seq] mask of this layer (causal, local window).
 */
export interface AttentionSite {
  readonly q: Value;
  readonly k: Value;
  readonly v: Value;
  readonly mask: Value;
  readonly scale: number;
}

/**
 * Optional hooks inside attention (AtP*'s query/key/value nodes and the pattern's gradient): each returns the
 * value the forward pass goes on with, as Hook does.
 */
export interface AttentionHooks {
  qkv(layer: number, site: AttentionSite): { q: Value; k: Value; v: Value };
  /** The attention pattern softmax(scores) [batch, heads, seq_q, seq_k]. */
  pattern(layer: number, pattern: Value): Value;
}

/**
 * The circuit graph's hooks (src/engine/circuits/): each head's output as its own sender, and, where given, a
 * separate input for every receiver (EAP-IG's q, k, v and MLP inputs), so that each can be differentiated or
 * patched alone. Absent hooks leave that part of the forward pass as it is.
 */
export interface CircuitHooks {
  /**
   * The residual stream [batch, seq, dModel] that a layer's attention reads → the input of each query head's q
   * projection [batch, seq, heads, dModel] and of each key/value head's k and v projections [batch, seq, kvHeads,
   * dModel]; each is normalised and projected for its own head only.
   */
  attentionInputs?(layer: number, residual: Value): { q: Value; k: Value; v: Value };
  /**
   * Each query head's contribution to the residual stream [batch, seq, heads, dModel]: its z times its rows of the
   * output projection, after Granite's residual multiplier, WITHOUT the output bias (the bias is no node's: it is
   * the same in every run, so no edge carries it). Returns the value the forward pass sums into attn_out.
   */
  headOutputs?(layer: number, perHead: Value): Value;
  /** The residual stream [batch, seq, dModel] that a layer's MLP reads → the MLP's input. */
  mlpInput?(layer: number, residual: Value): Value;
}

/** Each layer's keys and values as they enter the scores: [batch, seq, kvHeads, dHead], after RoPE, before GQA's repetition. */
export interface KeyValues {
  readonly keys: Value[];
  readonly values: Value[];
}

/**
 * Two forward passes over prompts that agree on their first `start` positions (attribution patching's clean and
 * corrupted runs): with causal attention every activation there is the same in both passes, and nothing there
 * depends on a later position, so the second pass runs only the positions from `start` on, its attention reading
 * the first pass's keys and values before `start`. `record` collects the first pass's keys and values; `reuse`
 * runs the second pass on ids [batch, suffix] (the prompt's positions start…) with them, and with `record` too
 * collects its keys and values over every position (the prefix's joined to its own).
 */
export type SharedPrefix = { readonly record: KeyValues } | { readonly reuse: KeyValues; readonly start: Value; readonly record?: KeyValues };

/** What an architecture contributes to a graph. Family differences live behind this interface. */
export interface Architecture {
  readonly spec: ModelSpec;
  /** Token ids [batch, seq] (int64) → the residual stream after the last block [batch, seq, dModel]. */
  forward(ops: Ops, weights: GraphWeights, ids: Value, hook: Hook, attention?: AttentionHooks, circuit?: CircuitHooks, shared?: SharedPrefix): Value;
  /** The final normalisation applied before the unembedding, on [..., dModel]. */
  finalNorm(ops: Ops, weights: GraphWeights, residual: Value): Value;
  /** Rows of the unembedding for the given token ids [batch] → [batch, dModel] (logit = row · normalised residual). */
  unembeddingRows(ops: Ops, weights: GraphWeights, ids: Value): Value;
}
