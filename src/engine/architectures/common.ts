import type { FloatType, Value } from '../graph/builder';
import { floatDType, type Ops, raw } from '../graph/ops';
import type { GraphWeights } from '../graph/weights';

/** Pieces of the forward pass that every decoder-only family shares. */

/** Gathers rows of a (constant) table. Not differentiable (no weight gradients). */
function gatherRows(ops: Ops, table: Value, ids: Value): Value {
  return ops.b.node('Gather', [table, ids], { axis: 0 }, { dtype: table.dtype, shape: [...ids.shape, table.shape[1]] });
}

/**
 * Rows of a table (token or position embeddings, unembedding rows) for ids, gathered from the table as stored and
 * only then cast to `to`: the same values as rows of the cast table, without a converted copy of the whole table in
 * memory (Qwen2.5's 151,936-row vocabulary is 545 MB in float32 against 272 MB as stored in BF16).
 */
export function tableRows(ops: Ops, w: GraphWeights, name: string, shape: number[], ids: Value, to: FloatType = ops.b.floatType): Value {
  return raw.cast(ops.b, gatherRows(ops, w.stored(name, shape), ids), to);
}

/**
 * Rows of the unembedding for token ids [batch] → [batch, dModel], in the graph's wide type: under float16 compute
 * the metric sees the stored values, never rounded to float16.
 */
export function unembeddingRows(ops: Ops, w: GraphWeights, name: string, shape: number[], ids: Value): Value {
  return tableRows(ops, w, name, shape, ids, ops.b.wideType);
}

/** GPT-2's and GPT-Neo's embedding: token embedding (wte) plus learned position embedding (wpe). */
export function learnedPositionEmbedding(
  ops: Ops,
  w: GraphWeights,
  ids: Value,
  positions: Value,
  dims: { vocabSize: number; maxPositions: number; dModel: number },
): Value {
  const tokens = tableRows(ops, w, 'wte.weight', [dims.vocabSize, dims.dModel], ids);
  return ops.add(tokens, tableRows(ops, w, 'wpe.weight', [dims.maxPositions, dims.dModel], positions));
}

/**
 * The sequence length of ids [batch, seq] as an int64 scalar, and their positions as a vector: 0..seq-1, or
 * start..start+seq-1 when the ids are a prompt's positions from `start` on (a pass over a shared prefix's suffix).
 */
export function positionIds(ops: Ops, ids: Value, start?: Value): { length: Value; positions: Value } {
  const b = ops.b;
  const shape = raw.shapeOf(b, ids);
  const length = b.node('Gather', [shape, b.constant('int64', [], [1])], { axis: 0 }, { dtype: 'int64', shape: [] });
  const from = start ?? b.constant('int64', [], [0]);
  const to = start ? raw.add(b, start, length) : length;
  const positions = b.node('Range', [from, to, b.constant('int64', [], [1])], {}, { dtype: 'int64', shape: [ids.shape[1]] });
  return { length, positions };
}

/**
 * Additive causal mask [seq, seq]: 0 on and below the diagonal, -1e9 above (exp underflows to exactly 0,
 * like Hugging Face's finfo.min fill, without the NaN that -inf·0 would give in a product).
 * With `window`, keys more than window-1 positions back are masked too (GPT-Neo local attention).
 * With `start`, the queries are positions start..start+seq-1 and the keys 0..start+seq-1: [seq, start + seq].
 */
export function causalMask(ops: Ops, length: Value, seqDim: Value['shape'][number], window?: number, start?: Value): Value {
  const b = ops.b;
  const keys = start ? raw.add(b, start, length) : length;
  const keyDim = start ? `${seqDim}+start` : seqDim;
  const dims = b.node('Concat', [raw.unsqueeze(b, length, [0]), raw.unsqueeze(b, keys, [0])], { axis: 0 }, { dtype: 'int64', shape: [2] });
  // In the wide type: -1e9 is beyond float16's range, and the scores it is added to are wide (see attentionCore).
  const type = b.wideType;
  const ones = b.node('ConstantOfShape', [dims], { value: { scalarTensor: 1, dtype: type } }, { dtype: type, shape: [seqDim, keyDim] });
  // Query i is position start + i: key j is in its future when j − i ≥ start + 1, too far back when j − i ≤ start − window.
  const diagonal = (offset: number) => (start ? raw.add(b, start, b.constant('int64', [], [offset])) : b.constant('int64', [], [offset]));
  let blocked = b.node('Trilu', [ones, diagonal(1)], { upper: 1 }, { dtype: type, shape: [seqDim, keyDim] });
  if (window !== undefined) {
    const tooFar = b.node('Trilu', [ones, diagonal(-window)], { upper: 0 }, { dtype: type, shape: [seqDim, keyDim] });
    blocked = raw.add(b, blocked, tooFar);
  }
  return raw.mul(b, blocked, b.scalar(-1e9, type));
}

/**
 * Multi-head causal attention core. q, k, v: [batch, seq, heads, dHead] → z: [batch, seq, heads, dHead]
 * (the per-head output before the output projection: TransformerLens' hook_z). patternHook sees the
 * pattern [batch, heads, seq_q, seq_k] and returns the one used. Under float16 compute the scores are formed,
 * scaled, masked and normalised in the mask's (wide) type — q·k reaches float16's 65504 in real models (Qwen2's
 * large q/k biases) — and the pattern, within [0, 1], meets v in float16; otherwise there are no casts.
 */
export function attentionCore(ops: Ops, q: Value, k: Value, v: Value, mask: Value, scale: number, patternHook?: (pattern: Value) => Value): Value {
  const qh = ops.transpose(q, [0, 2, 1, 3]); // [batch, heads, seq, dHead]
  const kt = ops.transpose(k, [0, 2, 3, 1]); // [batch, heads, dHead, seq]
  const vh = ops.transpose(v, [0, 2, 1, 3]);
  const wide = floatDType(mask);
  const scores = ops.add(ops.scale(ops.matmul(ops.cast(qh, wide), ops.cast(kt, wide)), scale), mask);
  const softmax = ops.softmax(scores);
  const pattern = ops.cast(patternHook ? patternHook(softmax) : softmax, floatDType(vh));
  return ops.transpose(ops.matmul(pattern, vh), [0, 2, 1, 3]);
}

/** nn.Linear as Hugging Face stores it, weight [out, in]: y = x·Wᵀ (+ b), the weight never transposed, the bias in the Gemm (Ops.linearT). */
export function linearRows(ops: Ops, w: GraphWeights, x: Value, name: string, nIn: number, nOut: number, bias: boolean): Value {
  return ops.linearT(x, w.get(`${name}.weight`, [nOut, nIn]), bias ? w.get(`${name}.bias`, [nOut]) : undefined);
}

/**
 * q, k or v for the circuit graph, where every head reads its own input: x [batch, seq, heads, dModel] (each head's
 * normalised input) → each head's projection of its own copy [batch, seq, heads, dHead], with the projection's
 * weight by head [heads, dModel, dHead] and bias by head [heads, dHead]. One batched product: no more work than
 * the plain projection.
 */
export function projectEachHead(ops: Ops, x: Value, weightByHead: Value, biasByHead?: Value): Value {
  const projected = ops.transpose(ops.matmul(ops.transpose(x, [0, 2, 1, 3]), weightByHead), [0, 2, 1, 3]);
  return biasByHead ? ops.add(projected, biasByHead) : projected;
}

/** An nn.Linear weight [heads·dHead, dModel] (out, in) as [heads, dModel, dHead] (for projectEachHead). */
export function inputWeightByHead(ops: Ops, weight: Value, heads: number, dHead: number): Value {
  const dModel = weight.shape[1] as number;
  const b = ops.b;
  return raw.transpose(b, raw.reshape(b, weight, [heads, dHead, dModel], [heads, dHead, dModel]), [0, 2, 1]);
}

/**
 * Each head's contribution to the residual stream: z [batch, seq, heads, dHead] times its rows of the output
 * projection, outByHead [heads, dHead, dModel] → [batch, seq, heads, dModel] (no bias).
 */
export function headContributions(ops: Ops, z: Value, outByHead: Value): Value {
  const perHead = ops.matmul(ops.transpose(z, [0, 2, 1, 3]), outByHead); // [batch, heads, seq, dModel]
  return ops.transpose(perHead, [0, 2, 1, 3]);
}

/** An nn.Linear weight [out, in·heads·dHead] as [heads, dHead, out] (for headContributions). */
export function rowsByHead(ops: Ops, weight: Value, heads: number, dHead: number): Value {
  const [nOut] = weight.shape as number[];
  return raw.reshape(ops.b, raw.transpose(ops.b, weight, [1, 0]), [heads, dHead, nOut], [heads, dHead, nOut]);
}
