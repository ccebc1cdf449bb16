import type { Value } from '../graph/builder';
import { type Ops, raw } from '../graph/ops';
import type { GraphWeights } from '../graph/weights';
import type { ModelSpec } from '../model/config';
import { attentionCore, causalMask, gatherRows, headContributions, positionIds, projectEachHead } from './common';
import type { Architecture, AttentionHooks, CircuitHooks, Hook } from './types';

/**
 * GPT-2 (Hugging Face GPT2LMHeadModel): learned positions, pre-LayerNorm blocks, Conv1D weights stored
 * [in, out] (so y = x·W + b), fused q/k/v projection, gelu_new MLP, unembedding tied to the token embedding.
 */
export function gpt2(spec: ModelSpec): Architecture {
  const { nLayers, nHeads, dModel, dHead, dMlp, vocabSize, maxPositions, layerNormEps } = spec;

  const linear = (ops: Ops, w: GraphWeights, x: Value, name: string, nIn: number, nOut: number) =>
    ops.add(ops.matmul(x, w.get(`${name}.weight`, [nIn, nOut])), w.get(`${name}.bias`, [nOut]));
  const layerNorm = (ops: Ops, w: GraphWeights, x: Value, name: string) =>
    ops.layerNorm(x, w.get(`${name}.weight`, [dModel]), w.get(`${name}.bias`, [dModel]), layerNormEps);
  const activation = (ops: Ops, x: Value) => {
    if (spec.activation !== 'gelu_new') throw new Error(`activation ${spec.activation} is not implemented for gpt2 yet`);
    return ops.geluNew(x);
  };

  return {
    spec,
    forward(ops, w, ids, hook: Hook, attention?: AttentionHooks, circuit?: CircuitHooks) {
      const { length, positions } = positionIds(ops, ids);
      const tokens = gatherRows(ops, w.get('wte.weight', [vocabSize, dModel]), ids);
      let residual = ops.add(tokens, gatherRows(ops, w.get('wpe.weight', [maxPositions, dModel]), positions));
      const mask = causalMask(ops, length, ids.shape[1]);

      for (let l = 0; l < nLayers; l++) {
        residual = hook('resid_pre', l, residual);
        const receivers = circuit?.attentionInputs?.(l, residual);
        const [q0, k0, v0] = receivers
          ? [receivers.q, receivers.k, receivers.v].map((x, i) => {
              // Conv1D's c_attn [dModel, 3·dModel]: columns i·dModel + h·dHead … are head h's part of q, k or v.
              const b = ops.b;
              const weight = w.get(`h.${l}.attn.c_attn.weight`, [dModel, 3 * dModel]);
              const bias = w.get(`h.${l}.attn.c_attn.bias`, [3 * dModel]);
              const columns = b.node('Slice', [weight, b.ints([i * dModel]), b.ints([(i + 1) * dModel]), b.ints([1])], {}, { dtype: weight.dtype, shape: [dModel, dModel] });
              const byHead = raw.transpose(b, raw.reshape(b, columns, [dModel, nHeads, dHead], [dModel, nHeads, dHead]), [1, 0, 2]);
              const part = b.node('Slice', [bias, b.ints([i * dModel]), b.ints([(i + 1) * dModel]), b.ints([0])], {}, { dtype: bias.dtype, shape: [dModel] });
              return projectEachHead(ops, layerNorm(ops, w, x, `h.${l}.ln_1`), byHead, raw.reshape(b, part, [nHeads, dHead], [nHeads, dHead]));
            })
          : ops.splitLast(linear(ops, w, layerNorm(ops, w, residual, `h.${l}.ln_1`), `h.${l}.attn.c_attn`, dModel, 3 * dModel), [dModel, dModel, dModel]).map((x) => ops.reshape(x, [0, 0, nHeads, dHead]));
        const scale = 1 / Math.sqrt(dHead) / (spec.scaleAttnByInverseLayerIdx ? l + 1 : 1);
        const { q, k, v } = attention ? attention.qkv(l, { q: q0, k: k0, v: v0, mask, scale }) : { q: q0, k: k0, v: v0 };
        const z = hook('z', l, attentionCore(ops, q, k, v, mask, scale, attention && ((p) => attention.pattern(l, p))));
        const attnOut = hook(
          'attn_out',
          l,
          circuit?.headOutputs
            ? ops.add(
                // Conv1D's c_proj weight [in, out] is already [heads·dHead, dModel] row-major by head.
                ops.reduceSum(circuit.headOutputs(l, headContributions(ops, z, raw.reshape(ops.b, w.get(`h.${l}.attn.c_proj.weight`, [dModel, dModel]), [nHeads, dHead, dModel], [nHeads, dHead, dModel]))), [2], false),
                w.get(`h.${l}.attn.c_proj.bias`, [dModel]),
              )
            : linear(ops, w, ops.reshape(z, [0, 0, dModel]), `h.${l}.attn.c_proj`, dModel, dModel),
        );
        residual = ops.add(residual, attnOut);

        const mlpIn = circuit?.mlpInput ? circuit.mlpInput(l, residual) : residual;
        const hidden = activation(ops, linear(ops, w, layerNorm(ops, w, mlpIn, `h.${l}.ln_2`), `h.${l}.mlp.c_fc`, dModel, dMlp));
        const mlpOut = hook('mlp_out', l, linear(ops, w, hidden, `h.${l}.mlp.c_proj`, dMlp, dModel));
        residual = ops.add(residual, mlpOut);
      }
      return residual;
    },
    finalNorm(ops, w, residual) {
      return layerNorm(ops, w, residual, 'ln_f');
    },
    unembeddingRows(ops, w, ids) {
      const table = spec.tiedEmbeddings || !w.has('lm_head.weight') ? 'wte.weight' : 'lm_head.weight';
      return gatherRows(ops, w.get(table, [vocabSize, dModel]), ids);
    },
  };
}
