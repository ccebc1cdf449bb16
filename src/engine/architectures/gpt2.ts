import type { Value } from '../graph/builder';
import { type Ops, raw } from '../graph/ops';
import type { GraphWeights } from '../graph/weights';
import type { Gpt2Spec } from '../model/config';
import { decoder, type DecoderFamily } from './block';
import { causalMask, learnedPositionEmbedding, projectEachHead, unembeddingRows } from './common';
import type { Architecture } from './types';

/**
 * GPT-2 (Hugging Face GPT2LMHeadModel): learned positions, pre-LayerNorm blocks, Conv1D weights stored
 * [in, out] (so y = x·W + b), fused q/k/v projection (c_attn), gelu_new MLP, unembedding tied to the token
 * embedding; scores scaled by 1/sqrt(dHead), and by 1/(layer + 1) with scale_attn_by_inverse_layer_idx.
 */
export function gpt2Family(spec: Gpt2Spec): DecoderFamily {
  const { nHeads, dModel, dHead, dMlp, vocabSize, maxPositions, layerNormEps } = spec;

  const linear = (ops: Ops, w: GraphWeights, x: Value, name: string, nIn: number, nOut: number) =>
    ops.linear(x, w.get(`${name}.weight`, [nIn, nOut]), w.get(`${name}.bias`, [nOut]));

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
      const mask = causalMask(ops, length, ids.shape[1], undefined, start);
      return { mask: () => mask };
    },
    qkv(ops, w, l, x) {
      const [q, k, v] = ops
        .splitLast(linear(ops, w, x, `h.${l}.attn.c_attn`, dModel, 3 * dModel), [dModel, dModel, dModel])
        .map((y) => ops.reshape(y, [0, 0, nHeads, dHead]));
      return { q, k, v };
    },
    qkvEachHead(ops, w, l, inputs, norm) {
      const [q, k, v] = [inputs.q, inputs.k, inputs.v].map((x, i) => {
        // Conv1D's c_attn [dModel, 3·dModel]: columns i·dModel + h·dHead … are head h's part of q, k or v.
        const b = ops.b;
        const weight = w.get(`h.${l}.attn.c_attn.weight`, [dModel, 3 * dModel]);
        const bias = w.get(`h.${l}.attn.c_attn.bias`, [3 * dModel]);
        const columns = b.node(
          'Slice',
          [weight, b.ints([i * dModel]), b.ints([(i + 1) * dModel]), b.ints([1])],
          {},
          { dtype: weight.dtype, shape: [dModel, dModel] },
        );
        const byHead = raw.transpose(b, raw.reshape(b, columns, [dModel, nHeads, dHead], [dModel, nHeads, dHead]), [1, 0, 2]);
        const part = b.node('Slice', [bias, b.ints([i * dModel]), b.ints([(i + 1) * dModel]), b.ints([0])], {}, { dtype: bias.dtype, shape: [dModel] });
        return projectEachHead(ops, norm(x), byHead, raw.reshape(b, part, [nHeads, dHead], [nHeads, dHead]));
      });
      return { q, k, v };
    },
    scale: (l) => 1 / Math.sqrt(dHead) / (spec.scaleAttnByInverseLayerIdx ? l + 1 : 1),
    outProjection: (ops, w, l, z) => linear(ops, w, z, `h.${l}.attn.c_proj`, dModel, dModel),
    // Conv1D's c_proj weight [in, out] is already [heads·dHead, dModel] row-major by head.
    outRowsByHead: (ops, w, l) => raw.reshape(ops.b, w.get(`h.${l}.attn.c_proj.weight`, [dModel, dModel]), [nHeads, dHead, dModel], [nHeads, dHead, dModel]),
    outBias: (_ops, w, l) => w.get(`h.${l}.attn.c_proj.bias`, [dModel]),
    mlp: (ops, w, l, x) => linear(ops, w, ops.geluNew(linear(ops, w, x, `h.${l}.mlp.c_fc`, dModel, dMlp)), `h.${l}.mlp.c_proj`, dMlp, dModel),
    unembeddingRows(ops, w, ids) {
      const table = spec.tiedEmbeddings || !w.has('lm_head.weight') ? 'wte.weight' : 'lm_head.weight';
      return unembeddingRows(ops, w, table, [vocabSize, dModel], ids);
    },
  };
}

export const gpt2 = (spec: Gpt2Spec): Architecture => decoder(gpt2Family(spec));
