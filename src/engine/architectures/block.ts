import type { Value } from '../graph/builder';
import { type Ops, raw } from '../graph/ops';
import type { GraphWeights } from '../graph/weights';
import type { ModelSpec } from '../model/config';
import { attentionCore, headContributions, positionIds } from './common';
import type { Architecture, AttentionHooks, CircuitHooks, Hook, SharedPrefix } from './types';

/** q [batch, seq, heads, dHead]; k and v [batch, seq, kvHeads, dHead] (or, as inputs, each head's own [.., dModel]). */
export interface Qkv {
  readonly q: Value;
  readonly k: Value;
  readonly v: Value;
}

/** What the blocks of one forward pass share: each layer's additive mask, and RoPE's tables where the family has them. */
export interface PassContext {
  mask(layer: number): Value;
  /** RoPE's cos and sin of each position's angles, [seq, dHead/2] (rotary.ts). */
  readonly rotary?: { readonly cos: Value; readonly sin: Value };
}

/**
 * What a family contributes to the one decoder (its strategy): embeddings, norm, q/k/v projections with their
 * position encoding, mask and scale, output projection, MLP and weight names. The block's order of operations,
 * its hook points and the residual stream are the decoder's, the same for every family. Each method creates its
 * nodes when called, so the decoder's call order is the graph's node order.
 */
export interface DecoderFamily {
  readonly spec: ModelSpec;
  /** Key/value heads (fewer than spec.nHeads with grouped-query attention; query head h reads floor(h / group)). */
  readonly nKvHeads: number;
  /** Attention and MLP outputs are multiplied by this before they join the residual stream (Granite's; 1 elsewhere). */
  readonly residualMultiplier: number;
  /** Weight-name prefixes of the final norm and of layer l's two norms. */
  readonly finalNormName: string;
  normNames(layer: number): { attention: string; mlp: string };
  /** LayerNorm or RMSNorm on [..., dModel], with the weights under `name`. */
  norm(ops: Ops, w: GraphWeights, x: Value, name: string): Value;
  /** Token ids [batch, seq] → the residual stream entering block 0. */
  embed(ops: Ops, w: GraphWeights, ids: Value, positions: Value): Value;
  /**
   * One forward pass's masks (and rotary tables); length is the sequence length as an int64 scalar. With `start`,
   * ids are the positions from start on and the masks also cover the keys before them (causalMask).
   */
  startPass(ops: Ops, ids: Value, length: Value, positions: Value, start?: Value): PassContext;
  /** The normalised residual stream [batch, seq, dModel] → q, k, v as they enter the scores (after RoPE). */
  qkv(ops: Ops, w: GraphWeights, layer: number, x: Value, pass: PassContext): Qkv;
  /**
   * The circuit graph's q, k, v: each head's own input ([batch, seq, heads, dModel] for q, [.., kvHeads, dModel]
   * for k and v), normalised by `norm` and projected for that head only; otherwise as qkv.
   */
  qkvEachHead(ops: Ops, w: GraphWeights, layer: number, inputs: Qkv, norm: (x: Value) => Value, pass: PassContext): Qkv;
  /** The factor on q·kᵀ. */
  scale(layer: number): number;
  /** z flattened to [batch, seq, heads·dHead] → the attention output, bias included (before residualMultiplier). */
  outProjection(ops: Ops, w: GraphWeights, layer: number, z: Value): Value;
  /** The output projection's rows by head [heads, dHead, dModel] (the circuit graph's per-head outputs). */
  outRowsByHead(ops: Ops, w: GraphWeights, layer: number): Value;
  /** The output projection's bias [dModel], or undefined where it has none. */
  outBias(ops: Ops, w: GraphWeights, layer: number): Value | undefined;
  /** The normalised residual stream → the MLP's output (before residualMultiplier). */
  mlp(ops: Ops, w: GraphWeights, layer: number, x: Value): Value;
  /** Rows of the unembedding for token ids [batch] → [batch, dModel], with any logit scaling folded in. */
  unembeddingRows(ops: Ops, w: GraphWeights, ids: Value): Value;
}

const scaled = (ops: Ops, x: Value, factor: number) => (factor === 1 ? x : ops.scale(x, factor));

/**
 * The decoder every family runs: embeddings, then per layer resid_pre → attention (q, k, v; AtP*'s hooks; scores,
 * pattern) → z → output projection → attn_out → MLP → mlp_out, each hook applied here and only here. attn_out
 * and mlp_out are what is added to the residual stream (after Granite's residual multiplier), so resid_post =
 * resid_pre + attn_out + mlp_out in every family; z is per QUERY head, the output projection's input.
 */
export function decoder(family: DecoderFamily): Architecture {
  const { spec, nKvHeads, residualMultiplier } = family;
  const { nLayers, nHeads, dHead } = spec;
  const groupSize = nHeads / nKvHeads;

  return {
    spec,
    forward(ops, w, ids, hook: Hook, attention?: AttentionHooks, circuit?: CircuitHooks, shared?: SharedPrefix) {
      if (shared && (attention || circuit)) throw new Error('decoder: a shared prefix is for plain passes (no attention or circuit hooks)');
      const reuse = shared && 'reuse' in shared ? shared : undefined;
      const { length, positions } = positionIds(ops, ids, reuse?.start);
      let residual = family.embed(ops, w, ids, positions);
      const pass = family.startPass(ops, ids, length, positions, reuse?.start);
      // The keys' length in a pass over a suffix: the prefix's and the suffix's together.
      const keyDim = reuse && ops.b.globalDim(`${ids.shape[1]}+start`);
      const withPrefix = (cached: Value, own: Value) => ops.afterPrefix(raw.sliceTo(ops.b, cached, reuse!.start, 1, 'start'), own, reuse!.start, 1, keyDim!);

      for (let l = 0; l < nLayers; l++) {
        const norms = family.normNames(l);
        residual = hook('resid_pre', l, residual);
        const receivers = circuit?.attentionInputs?.(l, residual);
        const projected = receivers
          ? family.qkvEachHead(ops, w, l, receivers, (x) => family.norm(ops, w, x, norms.attention), pass)
          : family.qkv(ops, w, l, family.norm(ops, w, residual, norms.attention), pass);
        const mask = pass.mask(l);
        const scale = family.scale(l);
        let { q, k, v } = attention ? attention.qkv(l, { ...projected, mask, scale }) : projected;
        if (reuse) [k, v] = [withPrefix(reuse.reuse.keys[l], k), withPrefix(reuse.reuse.values[l], v)];
        // After the prefix is joined: a pass over a suffix records every position's keys and values.
        if (shared?.record) {
          shared.record.keys.push(k);
          shared.record.values.push(v);
        }
        const patternHook = attention && ((pattern: Value) => attention.pattern(l, pattern));
        const z = hook('z', l, attentionCore(ops, q, ops.repeatHeads(k, groupSize), ops.repeatHeads(v, groupSize), mask, scale, patternHook));

        let attnOut: Value;
        if (circuit?.headOutputs) {
          // Each head's contribution as its own sender; the bias is no head's (the same in every run).
          const perHead = circuit.headOutputs(l, scaled(ops, headContributions(ops, z, family.outRowsByHead(ops, w, l)), residualMultiplier));
          const summed = ops.reduceSum(perHead, [2], false);
          const bias = family.outBias(ops, w, l);
          attnOut = bias ? ops.add(summed, scaled(ops, bias, residualMultiplier)) : summed;
        } else {
          attnOut = scaled(ops, family.outProjection(ops, w, l, ops.reshape(z, [0, 0, nHeads * dHead])), residualMultiplier);
        }
        attnOut = hook('attn_out', l, attnOut);
        residual = ops.add(residual, attnOut);

        const mlpIn = circuit?.mlpInput ? circuit.mlpInput(l, residual) : residual;
        const mlpOut = hook('mlp_out', l, scaled(ops, family.mlp(ops, w, l, family.norm(ops, w, mlpIn, norms.mlp)), residualMultiplier));
        residual = ops.add(residual, mlpOut);
      }
      return residual;
    },
    finalNorm(ops, w, residual) {
      return family.norm(ops, w, residual, family.finalNormName);
    },
    unembeddingRows(ops, w, ids) {
      return family.unembeddingRows(ops, w, ids);
    },
  };
}
