import type { Value } from '../graph/builder';
import type { Ops } from '../graph/ops';
import type { GraphWeights } from '../graph/weights';
import type { ModelSpec } from '../model/config';
import { attentionCore, causalMask, gatherRows, headContributions, inputWeightByHead, linearRows, positionIds, projectEachHead, rowsByHead } from './common';
import type { Architecture, AttentionHooks, CircuitHooks, Hook } from './types';

/**
 * GPT-Neo (Hugging Face GPTNeoForCausalLM: TinyStories, the TinySQL BM1 fine-tunes). Differences from GPT-2,
 * all here: nn.Linear weights stored [out, in] (y = x·Wᵀ + b); separate q/k/v projections without bias
 * (out_proj has one); no 1/sqrt(dHead) scaling of the attention scores; layers alternate between global
 * and local attention (attention_types), a local query seeing itself and the window_size − 1 positions
 * before it. Learned positions, pre-LayerNorm blocks, gelu_new MLP and tied unembedding are as in GPT-2.
 * Hook points: z is each head's attention output before out_proj; attn_out and mlp_out are what is added
 * to the residual stream.
 */
export function gptNeo(spec: ModelSpec): Architecture {
  const { nLayers, nHeads, dModel, dHead, dMlp, vocabSize, maxPositions, layerNormEps, gptNeo: details } = spec;
  if (!details) throw new Error('gptNeo: the spec has no GPT-Neo details');
  if (spec.activation !== 'gelu_new') throw new Error(`gptNeo: activation ${spec.activation} is not implemented`);

  const layerNorm = (ops: Ops, w: GraphWeights, x: Value, name: string) =>
    ops.layerNorm(x, w.get(`${name}.weight`, [dModel]), w.get(`${name}.bias`, [dModel]), layerNormEps);

  return {
    spec,
    forward(ops, w, ids, hook: Hook, attention?: AttentionHooks, circuit?: CircuitHooks) {
      const { length, positions } = positionIds(ops, ids);
      const tokens = gatherRows(ops, w.get('wte.weight', [vocabSize, dModel]), ids);
      let residual = ops.add(tokens, gatherRows(ops, w.get('wpe.weight', [maxPositions, dModel]), positions));
      const masks = {
        global: causalMask(ops, length, ids.shape[1]),
        local: details.attentionLayers.includes('local') ? causalMask(ops, length, ids.shape[1], details.windowSize) : null,
      };

      for (let l = 0; l < nLayers; l++) {
        const p = `h.${l}`;
        residual = hook('resid_pre', l, residual);
        const receivers = circuit?.attentionInputs?.(l, residual);
        const x = receivers ? null : layerNorm(ops, w, residual, `${p}.ln_1`);
        const [q0, k0, v0] = ['q_proj', 'k_proj', 'v_proj'].map((name, i) => {
          const project = (y: Value) => linearRows(ops, w, y, `${p}.attn.attention.${name}`, dModel, dModel, false);
          if (!receivers) return ops.reshape(project(x!), [0, 0, nHeads, dHead]);
          const byHead = inputWeightByHead(ops, w.get(`${p}.attn.attention.${name}.weight`, [dModel, dModel]), nHeads, dHead);
          return projectEachHead(ops, layerNorm(ops, w, [receivers.q, receivers.k, receivers.v][i], `${p}.ln_1`), byHead);
        });
        const mask = details.attentionLayers[l] === 'local' ? masks.local! : masks.global;
        const { q, k, v } = attention ? attention.qkv(l, { q: q0, k: k0, v: v0, mask, scale: 1 }) : { q: q0, k: k0, v: v0 };
        const z = hook('z', l, attentionCore(ops, q, k, v, mask, 1, attention && ((pattern) => attention.pattern(l, pattern))));
        const outProj = `${p}.attn.attention.out_proj`;
        const attnOut = hook(
          'attn_out',
          l,
          circuit?.headOutputs
            ? ops.add(
                ops.reduceSum(circuit.headOutputs(l, headContributions(ops, z, rowsByHead(ops, w.get(`${outProj}.weight`, [dModel, dModel]), nHeads, dHead))), [2], false),
                w.get(`${outProj}.bias`, [dModel]),
              )
            : linearRows(ops, w, ops.reshape(z, [0, 0, dModel]), outProj, dModel, dModel, true),
        );
        residual = ops.add(residual, attnOut);

        const mlpIn = circuit?.mlpInput ? circuit.mlpInput(l, residual) : residual;
        const hidden = ops.geluNew(linearRows(ops, w, layerNorm(ops, w, mlpIn, `${p}.ln_2`), `${p}.mlp.c_fc`, dModel, dMlp, true));
        const mlpOut = hook('mlp_out', l, linearRows(ops, w, hidden, `${p}.mlp.c_proj`, dMlp, dModel, true));
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
