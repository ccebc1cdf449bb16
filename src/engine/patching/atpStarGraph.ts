import type { GraphBuilder, Value } from '../graph/builder';
import { Ops, raw } from '../graph/ops';
import { gradients } from '../graph/autodiff';
import type { GraphWeights } from '../graph/weights';
import { type Architecture, HOOK_KINDS } from '../architectures/types';
import { ATTRIBUTION_GRAPH_NAMES, ATTRIBUTION_OUTPUTS, declareInputs, emptyActivations, type GraphNames, logitDiff, recordInto, stackLayers } from './graphs';

/**
 * The AtP* graph (Kramár et al. 2024): the attribution graph's inputs and outputs, plus
 *   grad_gate  float [layer]  multiplies the gradient flowing back through each layer's attn_out and mlp_out
 *                             into the residual stream; all ones is plain AtP, a 0 at ℓ is AtP+GD_ℓ (GradDrop).
 *                             The forward values never depend on it.
 * and, per layer, query/key/value nodes (q and k as they enter the scores, after RoPE; k and v per key/value
 * head), all [batch, layer, seq, heads] (q) or [batch, layer, seq, kvHeads] (k, v), un-normalised (in units of LD):
 *   atpstar_q_linear, atpstar_k_linear, atpstar_v   grad·(clean − corrupted) summed over dHead (AtP);
 *   atpstar_q   the QK fix: Σ_s (A'_ps − A_ps)·G_ps with row p of the pattern recomputed exactly for the clean query;
 *   atpstar_k   the QK fix: Σ_{h in group} Σ_t Σ_j (A'_tj − A_tj)·G_tj with score (t, p) recomputed for the clean key.
 * A is the corrupted pattern, G = ∂LD/∂A in the corrupted run (under the same grad_gate).
 */
export const ATP_STAR_GRAD_GATE = 'grad_gate';
export const ATP_STAR_OUTPUTS = {
  q: 'atpstar_q',
  qLinear: 'atpstar_q_linear',
  k: 'atpstar_k',
  kLinear: 'atpstar_k_linear',
  v: 'atpstar_v',
} as const;

export const ATP_STAR_GRAPH_NAMES: GraphNames = {
  inputs: [...ATTRIBUTION_GRAPH_NAMES.inputs, ATP_STAR_GRAD_GATE],
  outputs: [...ATTRIBUTION_GRAPH_NAMES.outputs, ...Object.values(ATP_STAR_OUTPUTS)],
};

export interface CorruptedSite {
  q: Value;
  k: Value;
  v: Value;
  mask: Value;
  scale: number;
  pattern?: Value;
}

export function buildAtpStarGraph(arch: Architecture, b: GraphBuilder, w: GraphWeights): void {
  const ops = new Ops(b);
  const inputs = declareInputs(b);
  const { nLayers } = arch.spec;
  const gate = b.input(ATP_STAR_GRAD_GATE, b.floatType, [nLayers]);
  const layerGate = (layer: number) => b.node('Gather', [gate, b.constant('int64', [], [layer])], { axis: 0 }, { dtype: b.floatType, shape: [] });

  const clean = emptyActivations();
  const cleanQkv: Array<{ q: Value; k: Value; v: Value }> = [];
  const cleanResidual = arch.forward(ops, w, inputs.cleanIds, recordInto(clean), {
    qkv: (layer, site) => (cleanQkv[layer] = { q: site.q, k: site.k, v: site.v }),
    pattern: (_layer, pattern) => pattern,
  });
  const cleanLd = logitDiff(arch, ops, w, cleanResidual, inputs);

  const corrupted = emptyActivations();
  const sites: CorruptedSite[] = [];
  const corruptedResidual = arch.forward(
    ops,
    w,
    inputs.corruptedIds,
    (kind, layer, value) => {
      const tapped = ops.tap(value, `corrupted_${kind}_${layer}`);
      corrupted[kind].push(tapped);
      // The gate sits after the tap: under GD_ℓ the node's own gradient is cut too, as the whole write is dropped.
      return kind === 'attn_out' || kind === 'mlp_out' ? ops.gradGate(tapped, layerGate(layer)) : tapped;
    },
    {
      qkv: (layer, site) => {
        const tapped = {
          q: ops.tap(site.q, `corrupted_q_${layer}`),
          k: ops.tap(site.k, `corrupted_k_${layer}`),
          v: ops.tap(site.v, `corrupted_v_${layer}`),
        };
        sites[layer] = { ...tapped, mask: site.mask, scale: site.scale };
        return tapped;
      },
      pattern: (layer, pattern) => (sites[layer].pattern = ops.tap(pattern, `corrupted_pattern_${layer}`)),
    },
  );
  const corruptedLd = logitDiff(arch, ops, w, corruptedResidual, inputs);

  const seed = b.node(
    'ConstantOfShape',
    [raw.shapeOf(b, corruptedLd)],
    { value: { scalarTensor: 1, dtype: b.floatType } },
    { dtype: b.floatType, shape: [...corruptedLd.shape] },
  );
  const taps = [...HOOK_KINDS.flatMap((kind) => corrupted[kind]), ...sites.flatMap((s) => [s.q, s.k, s.v, s.pattern!])];
  const grads = gradients(ops, corruptedLd, seed, taps);
  const grad = (v: Value) => grads.get(v.name)!;
  const dot = (g: Value, cleanValue: Value, tap: Value) => raw.reduce(b, 'ReduceSum', raw.mul(b, g, raw.sub(b, cleanValue, tap)), [-1], false);

  b.output(cleanLd, ATTRIBUTION_OUTPUTS.cleanLogitDiff);
  b.output(corruptedLd, ATTRIBUTION_OUTPUTS.corruptedLogitDiff);
  for (const kind of HOOK_KINDS) {
    b.output(
      stackLayers(
        b,
        corrupted[kind].map((tap, layer) => dot(grad(tap), clean[kind][layer], tap)),
      ),
      ATTRIBUTION_OUTPUTS.attribution(kind),
    );
  }
  const perLayer = {
    q: [] as Value[],
    qLinear: [] as Value[],
    k: [] as Value[],
    kLinear: [] as Value[],
    v: [] as Value[],
  };
  sites.forEach((site, layer) => {
    const cleanSite = cleanQkv[layer];
    perLayer.qLinear.push(dot(grad(site.q), cleanSite.q, site.q));
    perLayer.kLinear.push(dot(grad(site.k), cleanSite.k, site.k));
    perLayer.v.push(dot(grad(site.v), cleanSite.v, site.v));
    const fix = qkFix(b, site, cleanSite, grad(site.pattern!));
    perLayer.q.push(fix.q);
    perLayer.k.push(fix.k);
  });
  for (const key of Object.keys(ATP_STAR_OUTPUTS) as Array<keyof typeof ATP_STAR_OUTPUTS>) {
    b.output(stackLayers(b, perLayer[key]), ATP_STAR_OUTPUTS[key]);
  }
}

/**
 * The QK fix of one layer, both [batch, seq, heads] (q) and [batch, seq, kvHeads] (k). No gradient is taken
 * through it (plain nodes). The key formula: patching key p changes only score (t, p) of each query row t, by
 * δ_tp = scale·q_t·(k_p^clean − k_p); with W_j = exp(S_tj − max_t S), R_p = Σ_{j≠p} W_j and x_p = log W_p − log R_p,
 * A_tp = σ(x_p) and A'_tp = σ(x_p + δ_tp), the other entries of the row scale by (1 − A'_tp)/(1 − A_tp), so
 *   Σ_j (A'_tj − A_tj) G_tj = (A'_tp − A_tp)·(G_tp − Σ_{j≠p} W_j G_j / R_p).
 * When p is the row's argmax, R_p and Σ_{j≠p} W_j G_j are formed from the other keys alone, relative to the
 * second largest score (saturated rows: 1 − A_tp below the float epsilon, or every other weight underflowing);
 * elsewhere R_p = Σ_j W_j − W_p ≥ 1 (the argmax's W is 1), without cancellation.
 * Masked entries and rows with a single visible key contribute exactly 0.
 */
export function qkFix(b: GraphBuilder, site: CorruptedSite, clean: { q: Value; k: Value }, gradPattern: Value): { q: Value; k: Value } {
  const A = site.pattern!;
  const G = gradPattern;
  const [, , nHeads, dHead] = site.q.shape;
  const nKv = site.k.shape[2];
  if (typeof nHeads !== 'number' || typeof nKv !== 'number' || typeof dHead !== 'number') throw new Error('qkFix: head counts must be static');
  const rep = nHeads / nKv;
  const headsFirst = (x: Value) => raw.transpose(b, x, [0, 2, 1, 3]);
  const repeatKv = (x: Value) => {
    if (rep === 1) return x;
    const [batch, seq] = x.shape;
    const expanded = b.node('Expand', [raw.unsqueeze(b, x, [3]), b.ints([1, 1, 1, rep, 1])], {}, { dtype: x.dtype, shape: [batch, seq, nKv, rep, dHead] });
    return raw.reshape(b, expanded, [0, 0, nHeads, dHead], [batch, seq, nHeads, dHead]);
  };
  const scaledScores = (q: Value, k: Value) => raw.mul(b, raw.matmul(b, q, raw.transposeLast2(b, k)), b.scalar(site.scale));
  const like = (op: string, inputs: Value[], shapeOf: Value, attributes = {}) =>
    b.node(op, inputs, attributes, { dtype: shapeOf.dtype, shape: [...shapeOf.shape] });
  const rowSum = (x: Value) => raw.reduce(b, 'ReduceSum', x, [-1], true);

  const qCorrupted = headsFirst(site.q); // [batch, heads, seq, dHead]
  const kCorrupted = headsFirst(repeatKv(site.k));

  // Query nodes: row p of the pattern recomputed with the clean query against the corrupted keys.
  const patternQ = like('Softmax', [raw.add(b, scaledScores(headsFirst(clean.q), kCorrupted), site.mask)], A, { axis: -1 });
  const qFix = raw.reduce(b, 'ReduceSum', raw.mul(b, raw.sub(b, patternQ, A), G), [-1], false); // [batch, heads, seq]

  // Key nodes.
  const scores = raw.add(b, scaledScores(qCorrupted, kCorrupted), site.mask); // [batch, heads, t, p]
  const delta = scaledScores(qCorrupted, headsFirst(repeatKv(raw.sub(b, clean.k, site.k))));
  const rowMax = b.node('ReduceMax', [scores, b.ints([-1])], { keepdims: 1 }, { dtype: scores.dtype, shape: [...scores.shape.slice(0, -1), 1] });
  const shifted = raw.sub(b, scores, rowMax);
  const W = like('Exp', [shifted], scores);
  const argmax = b.node('ArgMax', [scores], { axis: -1, keepdims: 1 }, { dtype: 'int64', shape: [...scores.shape.slice(0, -1), 1] });
  const length = b.node('Gather', [raw.shapeOf(b, scores), b.constant('int64', [], [3])], { axis: 0 }, { dtype: 'int64', shape: [] });
  const keys = b.node('Range', [b.constant('int64', [], [0]), length, b.constant('int64', [], [1])], {}, { dtype: 'int64', shape: [scores.shape[3]] });
  const isMax = b.node('Equal', [argmax, keys], {}, { dtype: 'bool', shape: [...scores.shape] });
  const where = (cond: Value, x: Value, y: Value) => b.node('Where', [cond, x, y], {}, { dtype: scores.dtype, shape: [...scores.shape] });
  const zero = b.scalar(0);
  const one = b.scalar(1);
  const WG = raw.mul(b, W, G);
  const visible = b.node('Greater', [site.mask, b.scalar(-1)], {}, { dtype: 'bool', shape: [...site.mask.shape] });
  const other = b.node(
    'And',
    [visible, b.node('Not', [isMax], {}, { dtype: 'bool', shape: [...scores.shape] })],
    {},
    { dtype: 'bool', shape: [...scores.shape] },
  );
  const hasOther = b.node('Greater', [rowSum(raw.cast(b, other, scores.dtype)), zero], {}, { dtype: 'bool', shape: [...rowMax.shape] });
  // p = argmax: weights relative to the second largest visible score, so that R_p ≥ 1 even when every
  // exp(S_tj − max) underflows; log R_p = (M2 − M) + log Σ_{j≠p} exp(S_tj − M2).
  const secondMax = b.node(
    'ReduceMax',
    [where(other, scores, b.scalar(-1e30)), b.ints([-1])],
    { keepdims: 1 },
    { dtype: scores.dtype, shape: [...rowMax.shape] },
  );
  const W2 = like('Exp', [where(other, raw.sub(b, scores, secondMax), b.scalar(-1e30))], scores);
  const R2 = rowSum(W2);
  const safeR2 = b.node('Where', [hasOther, R2, one], {}, { dtype: scores.dtype, shape: [...rowMax.shape] });
  const xAtMax = raw.sub(b, raw.sub(b, rowMax, secondMax), like('Log', [safeR2], safeR2));
  const othersGAtMax = raw.div(b, rowSum(raw.mul(b, W2, G)), safeR2);
  // p ≠ argmax: R_p = Σ_j W_j − W_p ≥ W_argmax = 1, no cancellation.
  const total = rowSum(W);
  const totalWG = rowSum(WG);
  const rest = raw.sub(b, total, W);
  const safeRest = where(other, rest, one);
  const xOther = raw.sub(b, shifted, like('Log', [safeRest], scores));
  const othersGOther = raw.div(b, raw.sub(b, totalWG, WG), safeRest);
  const x = where(isMax, xAtMax, xOther); // log A_tp − log(1 − A_tp)
  const othersG = where(isMax, othersGAtMax, othersGOther); // Σ_{j≠p} A_tj G_tj / (1 − A_tp)
  const change = raw.sub(b, like('Sigmoid', [raw.add(b, x, delta)], scores), like('Sigmoid', [x], scores)); // A'_tp − A_tp
  // Masked keys, and rows with a single visible key (nothing can change), contribute exactly 0.
  const live = b.node('And', [visible, hasOther], {}, { dtype: 'bool', shape: [...scores.shape] });
  const perEntry = where(live, raw.mul(b, change, raw.sub(b, G, othersG)), zero);
  const perKeyHead = raw.reduce(b, 'ReduceSum', perEntry, [2], false); // Σ_t → [batch, heads, p]
  const [batch, , seq] = perKeyHead.shape;
  const perKey = rep === 1 ? perKeyHead : raw.reduce(b, 'ReduceSum', raw.reshape(b, perKeyHead, [0, nKv, rep, -1], [batch, nKv, rep, seq]), [2], false);

  return { q: raw.transpose(b, qFix, [0, 2, 1]), k: raw.transpose(b, perKey, [0, 2, 1]) };
}
