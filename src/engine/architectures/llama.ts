import type { Value } from '../graph/builder';
import { type Ops, raw } from '../graph/ops';
import type { GraphWeights } from '../graph/weights';
import type { LlamaSpec, RopeScaling } from '../model/config';
import { decoder, type DecoderFamily } from './block';
import { causalMask, tableRows, inputWeightByHead, linearRows, projectEachHead, rowsByHead, unembeddingRows } from './common';
import { rotaryTables } from './rotary';
import type { Architecture } from './types';

/**
 * The Llama family (Hugging Face LlamaForCausalLM, Qwen2ForCausalLM, GraniteForCausalLM,
 * GraniteMoeForCausalLM; SmolLM is a Llama): pre-RMSNorm blocks, rotary position embeddings (rotate-half,
 * rope_theta, "llama3"/"linear" scaling), grouped-query attention, SwiGLU MLP down(silu(gate(x)) ⊙ up(x)),
 * tied or untied unembedding. The model_types differ only in what config.ts records in LlamaDetails:
 *   qwen2       q/k/v biases;
 *   granite     embeddings × embedding_multiplier, attention scores × attention_multiplier (instead of
 *               1/sqrt(dHead)), each attention/MLP output × residual_multiplier before it is added to the
 *               residual stream (the decoder applies it, so attn_out and mlp_out sit after it), logits ÷
 *               logits_scaling;
 *   granitemoe  Granite with every MLP a mixture of experts (see moeMlp).
 * resid_pre of layer 0 is the embedding after embedding_multiplier.
 */
export function llamaFamily(spec: LlamaSpec): DecoderFamily {
  const { nHeads, dModel, dHead, dMlp, vocabSize, layerNormEps, llama: details } = spec;
  const { nKvHeads, qkvBias, oBias, mlpBias, moe } = details;
  const inverseFrequencies = ropeInverseFrequencies(dHead, details.ropeTheta, details.ropeScaling);
  const scaled = (ops: Ops, x: Value, factor: number) => (factor === 1 ? x : ops.scale(x, factor));
  const headsOf = { q_proj: nHeads, k_proj: nKvHeads, v_proj: nKvHeads };

  const denseMlp = (ops: Ops, w: GraphWeights, x: Value, p: string) => {
    const gate = linearRows(ops, w, x, `${p}.mlp.gate_proj`, dModel, dMlp, mlpBias);
    const up = linearRows(ops, w, x, `${p}.mlp.up_proj`, dModel, dMlp, mlpBias);
    return linearRows(ops, w, ops.swiglu(gate, up), `${p}.mlp.down_proj`, dMlp, dModel, mlpBias);
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
    // The routing in the wide type: float16 has no CPU kernel for the gather's gradient (ScatterElements with
    // add), and the gates are a softmax. No casts unless the compute type is float16.
    const router = ops.cast(linearRows(ops, w, x, `${p}.block_sparse_moe.router.layer`, dModel, nExperts, false), b.wideType);
    const selected = raw.topKIndices(b, router, topK);
    const gates = ops.cast(ops.scatterLast(ops.softmax(ops.gatherLast(router, selected)), selected, router), ops.b.floatType); // [batch, seq, E]

    // input_linear [E, 2·ffn, d] is already an [out, in] matrix once its first two axes are merged.
    const { inputAll, outputAll } = expertMatrices(b, w, p, nExperts);
    const hidden = ops.reshape(ops.linearT(x, inputAll), [0, 0, nExperts, 2 * dMlp]);
    const [gate, up] = ops.splitLast(hidden, [dMlp, dMlp]);
    const weighted = ops.mul(ops.swiglu(gate, up), ops.reshape(gates, [0, 0, nExperts, 1]));
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
    nKvHeads,
    residualMultiplier: details.residualMultiplier,
    finalNormName: 'model.norm',
    normNames: (l) => ({ attention: `model.layers.${l}.input_layernorm`, mlp: `model.layers.${l}.post_attention_layernorm` }),
    // The norm weight in the wide type: under float16 compute RMSNorm runs in float32 (Ops.rmsNorm).
    norm: (ops, w, x, name) => ops.rmsNorm(x, w.get(`${name}.weight`, [dModel], ops.b.wideType), layerNormEps),
    embed: (ops, w, ids) => scaled(ops, tableRows(ops, w, 'model.embed_tokens.weight', [vocabSize, dModel], ids), details.embeddingMultiplier),
    startPass(ops, ids, length, positions, start) {
      const mask = causalMask(ops, length, ids.shape[1], undefined, start);
      return { mask: () => mask, rotary: rotaryTables(ops, positions, inverseFrequencies, spec.maxPositions) };
    },
    qkv(ops, w, l, x, pass) {
      // RoPE on the projections as they come, [batch, seq, heads·dHead], then split into heads.
      const project = (name: keyof typeof headsOf) => linearRows(ops, w, x, `model.layers.${l}.self_attn.${name}`, dModel, headsOf[name] * dHead, qkvBias);
      const byHead = (y: Value, name: keyof typeof headsOf) => ops.reshape(y, [0, 0, headsOf[name], dHead]);
      const { cos, sin } = pass.rotary!;
      const q = byHead(ops.rotary(project('q_proj'), cos, sin), 'q_proj');
      const k = byHead(ops.rotary(project('k_proj'), cos, sin), 'k_proj');
      return { q, k, v: byHead(project('v_proj'), 'v_proj') };
    },
    qkvEachHead(ops, w, l, inputs, norm, pass) {
      const project = (name: keyof typeof headsOf, input: Value) => {
        const p = `model.layers.${l}.self_attn.${name}`;
        const heads = headsOf[name];
        const byHead = inputWeightByHead(ops, w.get(`${p}.weight`, [heads * dHead, dModel]), heads, dHead);
        const bias = qkvBias ? raw.reshape(ops.b, w.get(`${p}.bias`, [heads * dHead]), [heads, dHead], [heads, dHead]) : undefined;
        return projectEachHead(ops, norm(input), byHead, bias);
      };
      const { cos, sin } = pass.rotary!;
      const q = ops.rotary(project('q_proj', inputs.q), cos, sin);
      const k = ops.rotary(project('k_proj', inputs.k), cos, sin);
      return { q, k, v: project('v_proj', inputs.v) };
    },
    scale: () => details.attentionScale,
    outProjection: (ops, w, l, z) => linearRows(ops, w, z, `model.layers.${l}.self_attn.o_proj`, nHeads * dHead, dModel, oBias),
    outRowsByHead: (ops, w, l) => rowsByHead(ops, w.get(`model.layers.${l}.self_attn.o_proj.weight`, [dModel, nHeads * dHead]), nHeads, dHead),
    outBias: (_ops, w, l) => (oBias ? w.get(`model.layers.${l}.self_attn.o_proj.bias`, [dModel]) : undefined),
    mlp: (ops, w, l, x) => (moe ? moeMlp(ops, w, x, `model.layers.${l}`, moe.nExperts, moe.topK) : denseMlp(ops, w, x, `model.layers.${l}`)),
    unembeddingRows(ops, w, ids) {
      // Tied checkpoints usually omit lm_head.weight; an untied one must have it.
      const rows = unembeddingRows(ops, w, spec.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', [vocabSize, dModel], ids);
      return details.logitsScaling === 1 ? rows : raw.div(ops.b, rows, ops.b.scalar(details.logitsScaling, ops.b.wideType));
    },
  };
}

export const llama = (spec: LlamaSpec): Architecture => decoder(llamaFamily(spec));

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
