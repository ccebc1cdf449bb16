import type { Value } from '../graph/builder';
import { type Ops, raw } from '../graph/ops';
import type { GraphWeights } from '../graph/weights';
import type { ModelSpec, RopeScaling } from '../model/config';
import { attentionCore, causalMask, gatherRows, headContributions, inputWeightByHead, linearRows, positionIds, projectEachHead, rowsByHead } from './common';
import { rotaryTables } from './rotary';
import type { Architecture, AttentionHooks, CircuitHooks, Hook } from './types';

/**
 * The Llama family (Hugging Face LlamaForCausalLM, Qwen2ForCausalLM, GraniteForCausalLM,
 * GraniteMoeForCausalLM; SmolLM is a Llama): pre-RMSNorm blocks, rotary position embeddings (rotate-half,
 * rope_theta, "llama3"/"linear" scaling), grouped-query attention, SwiGLU MLP down(silu(gate(x)) ⊙ up(x)),
 * tied or untied unembedding. The model_types differ only in what config.ts records in LlamaDetails:
 *   qwen2       q/k/v biases;
 *   granite     embeddings × embedding_multiplier, attention scores × attention_multiplier (instead of
 *               1/sqrt(dHead)), each attention/MLP output × residual_multiplier before it is added to the
 *               residual stream, logits ÷ logits_scaling;
 *   granitemoe  Granite with every MLP a mixture of experts (see moeMlp).
 * Hook points: z is per QUERY head ([batch, seq, nHeads, dHead], the input of o_proj; with grouped-query
 * attention several query heads share one key/value head); attn_out and mlp_out are what is added to the
 * residual stream, so for Granite they sit AFTER the residual_multiplier (resid_post = resid_pre + attn_out
 * + mlp_out holds in every family); resid_pre of layer 0 is the embedding after embedding_multiplier.
 */
export function llama(spec: ModelSpec): Architecture {
  const { nLayers, nHeads, dModel, dHead, dMlp, vocabSize, layerNormEps, llama: details } = spec;
  if (!details) throw new Error('llama: the spec has no Llama-family details');
  if (spec.activation !== 'silu') throw new Error(`llama: activation ${spec.activation} is not implemented`);
  const { nKvHeads, qkvBias, oBias, mlpBias, moe } = details;
  const groupSize = nHeads / nKvHeads;
  const inverseFrequencies = ropeInverseFrequencies(dHead, details.ropeTheta, details.ropeScaling);

  const rmsNorm = (ops: Ops, w: GraphWeights, x: Value, name: string) => ops.rmsNorm(x, w.get(`${name}.weight`, [dModel]), layerNormEps);
  const scaled = (ops: Ops, x: Value, factor: number) => (factor === 1 ? x : ops.scale(x, factor));

  const denseMlp = (ops: Ops, w: GraphWeights, x: Value, p: string) => {
    const gate = linearRows(ops, w, x, `${p}.mlp.gate_proj`, dModel, dMlp, mlpBias);
    const up = linearRows(ops, w, x, `${p}.mlp.up_proj`, dModel, dMlp, mlpBias);
    return linearRows(ops, w, ops.mul(ops.silu(gate), up), `${p}.mlp.down_proj`, dMlp, dModel, mlpBias);
  };

  /**
   * GraniteMoE's block_sparse_moe, computed densely and exactly: router logits [.., E]; the top-k experts by
   * logit (TopK: piecewise constant, no gradient through the selection); gates = softmax over those k logits,
   * scattered into a dense [.., E] tensor that is 0 for unselected experts. Every expert's SwiGLU hidden
   * units are computed at once (input_linear [E, 2·ffn, d] as one [d, E·2·ffn] matrix, each expert's rows
   * split into gate and up halves), multiplied by their expert's gate, and mapped back by output_linear
   * [E, d, ffn] as one [E·ffn, d] matrix: Σ_e gate_e · W_out,e · (silu(g_e) ⊙ u_e). Unselected experts add
   * exact zeros, so this equals the sparse computation; gradients flow through the selected experts and
   * the gate values. Cost: E/k times the MoE MLP's sparse FLOPs (4× for granite-3.0-1b-a400m, 32 experts
   * top-8), in two large matrix products rather than many small ones, with no copy of the expert weights
   * beyond one transpose of output_linear.
   */
  const moeMlp = (ops: Ops, w: GraphWeights, x: Value, p: string, nExperts: number, topK: number) => {
    const b = ops.b;
    const router = linearRows(ops, w, x, `${p}.block_sparse_moe.router.layer`, dModel, nExperts, false);
    const selected = raw.topKIndices(b, router, topK);
    const gates = ops.scatterLast(ops.softmax(ops.gatherLast(router, selected)), selected, router); // [batch, seq, E]

    // input_linear [E, 2·ffn, d] is already an [out, in] matrix once its first two axes are merged.
    const { inputAll, outputAll } = expertMatrices(b, w, p, nExperts);
    const hidden = ops.reshape(ops.linearT(x, inputAll), [0, 0, nExperts, 2 * dMlp]);
    const [gate, up] = ops.splitLast(hidden, [dMlp, dMlp]);
    const weighted = ops.mul(ops.mul(ops.silu(gate), up), ops.reshape(gates, [0, 0, nExperts, 1]));
    return ops.linearT(ops.reshape(weighted, [0, 0, nExperts * dMlp]), outputAll);
  };

  /** The experts' weights as two [out, in] matrices, made once per graph (the clean and corrupted passes share them). */
  const expertCache = new WeakMap<GraphWeights, Map<string, { inputAll: Value; outputAll: Value }>>();
  const expertMatrices = (b: Ops['b'], w: GraphWeights, p: string, nExperts: number) => {
    let perLayer = expertCache.get(w);
    if (!perLayer) expertCache.set(w, (perLayer = new Map()));
    let found = perLayer.get(p);
    if (!found) {
      const input = w.get(`${p}.block_sparse_moe.input_linear.weight`, [nExperts, 2 * dMlp, dModel]);
      const output = w.get(`${p}.block_sparse_moe.output_linear.weight`, [nExperts, dModel, dMlp]);
      found = {
        inputAll: raw.reshape(b, input, [nExperts * 2 * dMlp, dModel], [nExperts * 2 * dMlp, dModel]),
        // output_linear [E, d, ffn] → [d, E·ffn]: column e·ffn + j of row o is expert e's weight from unit j to o.
        outputAll: raw.reshape(b, raw.transpose(b, output, [1, 0, 2]), [dModel, nExperts * dMlp], [dModel, nExperts * dMlp]),
      };
      perLayer.set(p, found);
    }
    return found;
  };

  return {
    spec,
    forward(ops, w, ids, hook: Hook, attentionHooks?: AttentionHooks, circuitHooks?: CircuitHooks) {
      const { length, positions } = positionIds(ops, ids);
      let residual = scaled(ops, gatherRows(ops, w.get('model.embed_tokens.weight', [vocabSize, dModel]), ids), details.embeddingMultiplier);
      const mask = causalMask(ops, length, ids.shape[1]);
      const { cos, sin } = rotaryTables(ops, positions, inverseFrequencies, spec.maxPositions);

      for (let l = 0; l < nLayers; l++) {
        const p = `model.layers.${l}`;
        residual = hook('resid_pre', l, residual);
        const receivers = circuitHooks?.attentionInputs?.(l, residual);
        const x = receivers ? null : rmsNorm(ops, w, residual, `${p}.input_layernorm`);
        const project = (name: 'q_proj' | 'k_proj' | 'v_proj', heads: number) => {
          const linear = (y: Value) => linearRows(ops, w, y, `${p}.self_attn.${name}`, dModel, heads * dHead, qkvBias);
          if (!receivers) return ops.reshape(linear(x!), [0, 0, heads, dHead]);
          const input = { q_proj: receivers.q, k_proj: receivers.k, v_proj: receivers.v }[name];
          const byHead = inputWeightByHead(ops, w.get(`${p}.self_attn.${name}.weight`, [heads * dHead, dModel]), heads, dHead);
          const bias = qkvBias ? raw.reshape(ops.b, w.get(`${p}.self_attn.${name}.bias`, [heads * dHead]), [heads, dHead], [heads, dHead]) : undefined;
          return projectEachHead(ops, rmsNorm(ops, w, input, `${p}.input_layernorm`), byHead, bias);
        };
        const q0 = ops.rotary(project('q_proj', nHeads), cos, sin);
        const k0 = ops.rotary(project('k_proj', nKvHeads), cos, sin);
        const v0 = project('v_proj', nKvHeads);
        const scale = details.attentionScale;
        const { q, k, v } = attentionHooks ? attentionHooks.qkv(l, { q: q0, k: k0, v: v0, mask, scale }) : { q: q0, k: k0, v: v0 };
        const patternHook = attentionHooks && ((pattern: Value) => attentionHooks.pattern(l, pattern));
        const z = hook('z', l, attentionCore(ops, q, ops.repeatHeads(k, groupSize), ops.repeatHeads(v, groupSize), mask, scale, patternHook));
        let attnOut: Value;
        if (circuitHooks?.headOutputs) {
          const rows = rowsByHead(ops, w.get(`${p}.self_attn.o_proj.weight`, [dModel, nHeads * dHead]), nHeads, dHead);
          const perHead = circuitHooks.headOutputs(l, scaled(ops, headContributions(ops, z, rows), details.residualMultiplier));
          const summed = ops.reduceSum(perHead, [2], false);
          attnOut = oBias ? ops.add(summed, scaled(ops, w.get(`${p}.self_attn.o_proj.bias`, [dModel]), details.residualMultiplier)) : summed;
        } else {
          const attention = linearRows(ops, w, ops.reshape(z, [0, 0, nHeads * dHead]), `${p}.self_attn.o_proj`, nHeads * dHead, dModel, oBias);
          attnOut = scaled(ops, attention, details.residualMultiplier);
        }
        attnOut = hook('attn_out', l, attnOut);
        residual = ops.add(residual, attnOut);

        const mlpIn = circuitHooks?.mlpInput ? circuitHooks.mlpInput(l, residual) : residual;
        const y = rmsNorm(ops, w, mlpIn, `${p}.post_attention_layernorm`);
        const mlp = moe ? moeMlp(ops, w, y, p, moe.nExperts, moe.topK) : denseMlp(ops, w, y, p);
        const mlpOut = hook('mlp_out', l, scaled(ops, mlp, details.residualMultiplier));
        residual = ops.add(residual, mlpOut);
      }
      return residual;
    },
    finalNorm(ops, w, residual) {
      return rmsNorm(ops, w, residual, 'model.norm');
    },
    unembeddingRows(ops, w, ids) {
      // Tied checkpoints usually omit lm_head.weight; an untied one must have it.
      const rows = gatherRows(ops, w.get(spec.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', [vocabSize, dModel]), ids);
      return details.logitsScaling === 1 ? rows : raw.div(ops.b, rows, ops.b.scalar(details.logitsScaling));
    },
  };
}

/**
 * RoPE's inverse frequencies θ^(−2i/dHead), i < dHead/2, computed in float64 on the host, with Llama 3's
 * frequency-dependent scaling (Hugging Face's "llama3" rope type: wavelengths above
 * original_max_position_embeddings / low_freq_factor divided by factor, below ... / high_freq_factor kept,
 * smoothly interpolated between) or linear scaling (positions divided by factor).
 */
export function ropeInverseFrequencies(dHead: number, theta: number, scaling: RopeScaling | null): number[] {
  const base = Array.from({ length: dHead / 2 }, (_, i) => 1 / theta ** ((2 * i) / dHead));
  if (!scaling) return base;
  if (scaling.type === 'linear') return base.map((f) => f / scaling.factor);
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
  const lowFreqWavelength = originalMaxPositions / lowFreqFactor;
  const highFreqWavelength = originalMaxPositions / highFreqFactor;
  return base.map((f) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength < highFreqWavelength) return f;
    if (wavelength > lowFreqWavelength) return f / factor;
    const smooth = (originalMaxPositions / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}
