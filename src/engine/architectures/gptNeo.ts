import type { GptNeoSpec } from '../model/config';
import { decoder, type DecoderFamily } from './block';
import { causalMask, learnedPositionEmbedding, inputWeightByHead, linearRows, projectEachHead, rowsByHead, unembeddingRows } from './common';
import type { Architecture } from './types';

/**
 * GPT-Neo (Hugging Face GPTNeoForCausalLM: TinyStories, the TinySQL BM1 fine-tunes). Differences from GPT-2,
 * all here: nn.Linear weights stored [out, in] (y = x·Wᵀ + b); separate q/k/v projections without bias
 * (out_proj has one); no 1/sqrt(dHead) scaling of the attention scores; layers alternate between global
 * and local attention (attention_types), a local query seeing itself and the window_size − 1 positions
 * before it. Learned positions, pre-LayerNorm blocks, gelu_new MLP and tied unembedding are as in GPT-2.
 */
export function gptNeoFamily(spec: GptNeoSpec): DecoderFamily {
  const { nHeads, dModel, dHead, dMlp, vocabSize, maxPositions, layerNormEps, gptNeo: details } = spec;
  const projections = ['q_proj', 'k_proj', 'v_proj'] as const;

  return {
    spec,
    nKvHeads: nHeads,
    residualMultiplier: 1,
    finalNormName: 'ln_f',
    normNames: (l) => ({ attention: `h.${l}.ln_1`, mlp: `h.${l}.ln_2` }),
    // Norm parameters in the wide type: under float16 compute the norm runs in float32 (Ops.layerNorm).
    norm: (ops, w, x, name) =>
      ops.layerNorm(x, w.get(`${name}.weight`, [dModel], ops.b.wideType), w.get(`${name}.bias`, [dModel], ops.b.wideType), layerNormEps),
    embed: (ops, w, ids, positions) => learnedPositionEmbedding(ops, w, ids, positions, { vocabSize, maxPositions, dModel }),
    startPass(ops, ids, length, _positions, start) {
      const global = causalMask(ops, length, ids.shape[1], undefined, start);
      const local = details.attentionLayers.includes('local') ? causalMask(ops, length, ids.shape[1], details.windowSize, start) : null;
      return { mask: (l) => (details.attentionLayers[l] === 'local' ? local! : global) };
    },
    qkv(ops, w, l, x) {
      const [q, k, v] = projections.map((name) =>
        ops.reshape(linearRows(ops, w, x, `h.${l}.attn.attention.${name}`, dModel, dModel, false), [0, 0, nHeads, dHead]),
      );
      return { q, k, v };
    },
    qkvEachHead(ops, w, l, inputs, norm) {
      const [q, k, v] = projections.map((name, i) => {
        const byHead = inputWeightByHead(ops, w.get(`h.${l}.attn.attention.${name}.weight`, [dModel, dModel]), nHeads, dHead);
        return projectEachHead(ops, norm([inputs.q, inputs.k, inputs.v][i]), byHead);
      });
      return { q, k, v };
    },
    scale: () => 1,
    outProjection: (ops, w, l, z) => linearRows(ops, w, z, `h.${l}.attn.attention.out_proj`, dModel, dModel, true),
    outRowsByHead: (ops, w, l) => rowsByHead(ops, w.get(`h.${l}.attn.attention.out_proj.weight`, [dModel, dModel]), nHeads, dHead),
    outBias: (_ops, w, l) => w.get(`h.${l}.attn.attention.out_proj.bias`, [dModel]),
    mlp: (ops, w, l, x) =>
      linearRows(ops, w, ops.geluNew(linearRows(ops, w, x, `h.${l}.mlp.c_fc`, dModel, dMlp, true)), `h.${l}.mlp.c_proj`, dMlp, dModel, true),
    unembeddingRows(ops, w, ids) {
      const table = spec.tiedEmbeddings || !w.has('lm_head.weight') ? 'wte.weight' : 'lm_head.weight';
      return unembeddingRows(ops, w, table, [vocabSize, dModel], ids);
    },
  };
}

export const gptNeo = (spec: GptNeoSpec): Architecture => decoder(gptNeoFamily(spec));
