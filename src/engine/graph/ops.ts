import { type Dim, type DType, type FloatType, GraphBuilder, type Value } from './builder';

/**
 * Differentiable ops. Each op emits its forward ONNX nodes and, when any input requires a gradient, records its
 * vector-Jacobian product (VJP) on the tape right beside it. VJPs are made of ordinary ONNX nodes, so the
 * backward pass runs on every execution provider. Gradients are only ever needed with respect to activations,
 * never weights; a VJP that would need a weight gradient throws instead of silently returning nothing.
 */

export type Grad = Value | null;

export interface TapeRecord {
  readonly op: string;
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  /** Given the gradients of the outputs (null where none flows), returns the gradients of the inputs. */
  readonly vjp: (outputGrads: readonly Grad[]) => readonly Grad[];
}

export class Tape {
  readonly records: TapeRecord[] = [];
}

export class Ops {
  readonly tape = new Tape();

  constructor(readonly b: GraphBuilder) {}

  get floatType(): FloatType {
    return this.b.floatType;
  }

  /**
   * Runs `body` on x converted to the wide type when x is float16 and converts the result back: the norms,
   * softmax and GELU's cubic need float32's range (a variance, exp, x³ overflow float16's 65504 long before
   * float32's). Identity (no nodes) for float32 and float64 values.
   */
  private widened(x: Value, body: (wide: Value) => Value): Value {
    if (x.dtype !== 'float16') return body(x);
    return this.cast(body(this.cast(x, this.b.wideType)), x.dtype);
  }

  private record(op: string, inputs: Value[], outputs: Value[], vjp: TapeRecord['vjp']): void {
    if (inputs.some((v) => v.requiresGrad)) this.tape.records.push({ op, inputs, outputs, vjp });
  }

  private out(dtype: DType, shape: Dim[], inputs: Value[]) {
    return { dtype, shape, requiresGrad: inputs.some((v) => v.requiresGrad) };
  }

  // ---- elementwise with broadcasting --------------------------------------------------------------

  add(a: Value, c: Value): Value {
    const y = this.b.node('Add', [a, c], {}, this.out(a.dtype, broadcastShape(a.shape, c.shape), [a, c]));
    this.record('Add', [a, c], [y], ([g]) => [this.sumTo(g!, a), this.sumTo(g!, c)]);
    return y;
  }

  sub(a: Value, c: Value): Value {
    const y = this.b.node('Sub', [a, c], {}, this.out(a.dtype, broadcastShape(a.shape, c.shape), [a, c]));
    this.record('Sub', [a, c], [y], ([g]) => [this.sumTo(g!, a), c.requiresGrad ? this.sumTo(raw.neg(this.b, g!), c) : null]);
    return y;
  }

  mul(a: Value, c: Value): Value {
    const y = this.b.node('Mul', [a, c], {}, this.out(a.dtype, broadcastShape(a.shape, c.shape), [a, c]));
    this.record('Mul', [a, c], [y], ([g]) => [
      a.requiresGrad ? this.sumTo(raw.mul(this.b, g!, c), a) : null,
      c.requiresGrad ? this.sumTo(raw.mul(this.b, g!, a), c) : null,
    ]);
    return y;
  }

  div(a: Value, c: Value): Value {
    const y = this.b.node('Div', [a, c], {}, this.out(a.dtype, broadcastShape(a.shape, c.shape), [a, c]));
    this.record('Div', [a, c], [y], ([g]) => [
      a.requiresGrad ? this.sumTo(raw.div(this.b, g!, c), a) : null,
      // d(a/c)/dc = -(a/c)/c
      c.requiresGrad ? this.sumTo(raw.neg(this.b, raw.div(this.b, raw.mul(this.b, g!, y), c)), c) : null,
    ]);
    return y;
  }

  /** x * constant */
  scale(x: Value, factor: number): Value {
    return this.mul(x, this.b.scalar(factor, floatDType(x)));
  }

  /** A change of float type; the gradient goes back in the input's type. */
  cast(x: Value, to: FloatType): Value {
    if (x.dtype === to) return x;
    const y = this.b.node('Cast', [x], { to: onnxTypeOf(to) }, this.out(to, [...x.shape], [x]));
    this.record('Cast', [x], [y], ([g]) => [raw.cast(this.b, g!, x.dtype)]);
    return y;
  }

  // ---- linear algebra -----------------------------------------------------------------------------

  /** Matrix product of the last two axes; `c` is either a 2-D matrix (broadcast over a's batch axes) or has a's batch axes. */
  matmul(a: Value, c: Value): Value {
    const y = this.b.node('MatMul', [a, c], {}, this.out(a.dtype, matmulShape(a.shape, c.shape), [a, c]));
    this.record('MatMul', [a, c], [y], ([g]) => [
      a.requiresGrad ? raw.matmul(this.b, g!, raw.transposeLast2(this.b, c)) : null,
      c.requiresGrad ? this.matmulRightGrad(a, c, g!) : null,
    ]);
    return y;
  }

  private matmulRightGrad(a: Value, c: Value, g: Value): Value {
    if (c.shape.length === a.shape.length) return raw.matmul(this.b, raw.transposeLast2(this.b, a), g);
    // c was broadcast over a's batch axes (a weight matrix): fold the batch axes into the rows.
    const [k, n] = c.shape;
    if (typeof k !== 'number' || typeof n !== 'number') throw new Error('matmul: a broadcast right operand needs static dims');
    const a2 = raw.reshape(this.b, a, [-1, k], [`${a.name}_rows`, k]);
    const g2 = raw.reshape(this.b, g, [-1, n], [`${a.name}_rows`, n]);
    return raw.matmul(this.b, raw.transposeLast2(this.b, a2), g2);
  }

  // ---- shape ops ----------------------------------------------------------------------------------

  /**
   * Reshape to `target`, where a 0 copies the input's dimension at that index (ONNX semantics) and numbers are
   * fixed sizes. -1 is not allowed: it would lose the symbolic shape that broadcasting decisions rely on.
   */
  reshape(x: Value, target: number[]): Value {
    const shape = target.map((d, i) => {
      if (d === 0) return x.shape[i];
      if (d < 0) throw new Error('reshape: use 0 (copy) or a fixed size, not -1');
      return d;
    });
    const y = raw.reshape(this.b, x, target, shape, x.requiresGrad);
    this.record('Reshape', [x], [y], ([g]) => [raw.reshapeLike(this.b, g!, x)]);
    return y;
  }

  transpose(x: Value, perm: number[]): Value {
    const y = raw.transpose(this.b, x, perm, x.requiresGrad);
    const inverse = perm.map((_, i) => perm.indexOf(i));
    this.record('Transpose', [x], [y], ([g]) => [raw.transpose(this.b, g!, inverse)]);
    return y;
  }

  /** Splits the last axis into pieces of the given sizes. */
  splitLast(x: Value, sizes: number[]): Value[] {
    const axis = x.shape.length - 1;
    const outs = sizes.map((size) => this.out(x.dtype, [...x.shape.slice(0, axis), size], [x]));
    const ys = this.b.multiNode('Split', [x, this.b.ints(sizes)], { axis }, outs);
    this.record('Split', [x], ys, (grads) => {
      const pieces = grads.map((g, i) => g ?? raw.zerosLike(this.b, ys[i]));
      return [this.b.node('Concat', pieces, { axis }, { dtype: x.dtype, shape: [...x.shape] })];
    });
    return ys;
  }

  reduceSum(x: Value, axes: number[], keepdims: boolean): Value {
    const y = raw.reduce(this.b, 'ReduceSum', x, axes, keepdims, x.requiresGrad);
    this.record('ReduceSum', [x], [y], ([g]) => {
      const kept = keepdims ? g! : raw.unsqueeze(this.b, g!, normalizeAxes(axes, x.shape.length));
      return [this.b.node('Expand', [kept, raw.shapeOf(this.b, x)], {}, { dtype: x.dtype, shape: [...x.shape] })];
    });
    return y;
  }

  /** Marks a point whose gradient we want (a hook): identity forward, gradient passes straight through. */
  tap(x: Value, hint: string): Value {
    const y = this.b.node('Identity', [x], {}, { dtype: x.dtype, shape: [...x.shape], requiresGrad: true }, hint);
    this.tape.records.push({ op: 'Tap', inputs: [x], outputs: [y], vjp: ([g]) => [g] });
    return y;
  }

  /**
   * Identity forward; the gradient passing back through it is multiplied by `gate` (a constant broadcasting
   * against x, e.g. a scalar graph input). A gate of 0 cuts the backward flow without touching the forward
   * values (AtP*'s GradDrop).
   */
  gradGate(x: Value, gate: Value): Value {
    if (gate.requiresGrad) throw new Error('gradGate: the gate must be a constant');
    const y = this.b.node('Identity', [x], {}, this.out(x.dtype, [...x.shape], [x]));
    this.record('GradGate', [x], [y], ([g]) => [this.sumTo(raw.mul(this.b, g!, gate), x)]);
    return y;
  }

  // ---- composite layers (forward and VJP written out as a whole: fewer nodes than the chain rule over parts) --

  softmax(x: Value): Value {
    return this.widened(x, (wide) => this.softmaxOf(wide));
  }

  private softmaxOf(x: Value): Value {
    const y = this.b.node('Softmax', [x], { axis: -1 }, this.out(x.dtype, [...x.shape], [x]));
    this.record('Softmax', [x], [y], ([g]) => {
      // dx = y ⊙ (g − Σ_j g_j y_j)
      const dot = raw.reduce(this.b, 'ReduceSum', raw.mul(this.b, g!, y), [-1], true);
      return [raw.mul(this.b, y, raw.sub(this.b, g!, dot))];
    });
    return y;
  }

  /** LayerNorm over the last axis with constant weight and bias. */
  layerNorm(x: Value, weight: Value, bias: Value, eps: number): Value {
    if (weight.requiresGrad || bias.requiresGrad) throw new Error('layerNorm: gradients of weights are not supported');
    return this.widened(x, (wide) => this.layerNormOf(wide, raw.cast(this.b, weight, wide.dtype), raw.cast(this.b, bias, wide.dtype), eps));
  }

  private layerNormOf(x: Value, weight: Value, bias: Value, eps: number): Value {
    const b = this.b;
    const s = (value: number) => b.scalar(value, floatDType(x));
    const mean = raw.reduce(b, 'ReduceMean', x, [-1], true);
    const centered = raw.sub(b, x, mean);
    const variance = raw.reduce(b, 'ReduceMean', raw.mul(b, centered, centered), [-1], true);
    const rstd = b.node(
      'Reciprocal',
      [b.node('Sqrt', [raw.add(b, variance, s(eps))], {}, { dtype: x.dtype, shape: [...variance.shape] })],
      {},
      { dtype: x.dtype, shape: [...variance.shape] },
    );
    const normalized = raw.mul(b, centered, rstd);
    const y = b.node('Add', [raw.mul(b, normalized, weight), bias], {}, this.out(x.dtype, [...x.shape], [x]));
    this.record('LayerNorm', [x, weight, bias], [y], ([g]) => {
      // dx = rstd ⊙ (gw − mean(gw) − x̂ ⊙ mean(gw ⊙ x̂)), with gw = g ⊙ weight
      const gw = raw.mul(b, g!, weight);
      const meanGw = raw.reduce(b, 'ReduceMean', gw, [-1], true);
      const meanGwX = raw.reduce(b, 'ReduceMean', raw.mul(b, gw, normalized), [-1], true);
      const inner = raw.sub(b, raw.sub(b, gw, meanGw), raw.mul(b, normalized, meanGwX));
      return [raw.mul(b, rstd, inner), null, null];
    });
    return y;
  }

  /** GPT-2's tanh approximation of GELU ("gelu_new"). */
  geluNew(x: Value): Value {
    return this.widened(x, (wide) => this.geluNewOf(wide));
  }

  private geluNewOf(x: Value): Value {
    const b = this.b;
    const s = (value: number) => b.scalar(value, floatDType(x));
    const c = Math.sqrt(2 / Math.PI);
    const x3 = raw.mul(b, raw.mul(b, x, x), x);
    const u = raw.mul(b, raw.add(b, x, raw.mul(b, x3, s(0.044715))), s(c));
    const t = b.node('Tanh', [u], {}, { dtype: x.dtype, shape: [...x.shape] });
    const onePlusT = raw.add(b, t, s(1));
    const y = b.node('Mul', [raw.mul(b, x, onePlusT), s(0.5)], {}, this.out(x.dtype, [...x.shape], [x]));
    this.record('GeluNew', [x], [y], ([g]) => {
      // dy/dx = ½(1+t) + ½·x·(1−t²)·c·(1 + 3·0.044715·x²)
      const oneMinusT2 = raw.sub(b, s(1), raw.mul(b, t, t));
      const du = raw.mul(b, raw.add(b, s(1), raw.mul(b, raw.mul(b, x, x), s(3 * 0.044715))), s(c));
      const slope = raw.mul(b, raw.add(b, onePlusT, raw.mul(b, raw.mul(b, x, oneMinusT2), du)), s(0.5));
      return [raw.mul(b, g!, slope)];
    });
    return y;
  }

  // ---- decoder families beyond GPT-2 (GPT-Neo, Llama, Qwen2, Granite, GraniteMoE) ----------------------

  /**
   * y = x·Wᵀ for a constant weight stored [out, in] (nn.Linear's layout), x [..., in] → [..., out], without ever
   * transposing W: the forward is one Gemm with transB on x's rows, the VJP is g·W. (A Transpose node per use
   * would be folded by ONNX Runtime into a second, third... copy of every weight matrix.)
   */
  linearT(x: Value, weight: Value): Value {
    if (weight.requiresGrad) throw new Error('linearT: gradients of weights are not supported');
    const b = this.b;
    const [nOut, nIn] = weight.shape;
    if (typeof nOut !== 'number' || typeof nIn !== 'number' || weight.shape.length !== 2)
      throw new Error('linearT: the weight must be a static [out, in] matrix');
    const rows = raw.reshape(b, x, [-1, nIn], [`${x.name}_rows`, nIn]);
    const product = b.node('Gemm', [rows, weight], { transB: 1 }, { dtype: x.dtype, shape: [rows.shape[0], nOut] });
    const leading = b.node('Slice', [raw.shapeOf(b, x), b.ints([0]), b.ints([-1])], {}, { dtype: 'int64', shape: [x.shape.length - 1] });
    const shape = b.node('Concat', [leading, b.ints([nOut])], { axis: 0 }, { dtype: 'int64', shape: [x.shape.length] });
    const y = b.node('Reshape', [product, shape], {}, this.out(x.dtype, [...x.shape.slice(0, -1), nOut], [x]));
    this.record('LinearT', [x, weight], [y], ([g]) => [raw.matmul(b, g!, weight), null]);
    return y;
  }

  /** RMSNorm over the last axis with a constant weight (Llama's): y = w ⊙ x / sqrt(mean(x²) + eps). */
  rmsNorm(x: Value, weight: Value, eps: number): Value {
    if (weight.requiresGrad) throw new Error('rmsNorm: gradients of weights are not supported');
    return this.widened(x, (wide) => this.rmsNormOf(wide, raw.cast(this.b, weight, wide.dtype), eps));
  }

  private rmsNormOf(x: Value, weight: Value, eps: number): Value {
    const b = this.b;
    const s = (value: number) => b.scalar(value, floatDType(x));
    const meanSquare = raw.reduce(b, 'ReduceMean', raw.mul(b, x, x), [-1], true);
    const rstd = b.node(
      'Reciprocal',
      [b.node('Sqrt', [raw.add(b, meanSquare, s(eps))], {}, { dtype: x.dtype, shape: [...meanSquare.shape] })],
      {},
      { dtype: x.dtype, shape: [...meanSquare.shape] },
    );
    const normalized = raw.mul(b, x, rstd);
    const y = b.node('Mul', [weight, normalized], {}, this.out(x.dtype, [...x.shape], [x]));
    this.record('RMSNorm', [x, weight], [y], ([g]) => {
      // dx = rstd ⊙ (gw − x̂ ⊙ mean(gw ⊙ x̂)), with gw = g ⊙ weight and x̂ = x ⊙ rstd
      const gw = raw.mul(b, g!, weight);
      const meanGwX = raw.reduce(b, 'ReduceMean', raw.mul(b, gw, normalized), [-1], true);
      return [raw.mul(b, rstd, raw.sub(b, gw, raw.mul(b, normalized, meanGwX))), null];
    });
    return y;
  }

  /** SiLU (swish): x · sigmoid(x). */
  silu(x: Value): Value {
    const b = this.b;
    const one = () => b.scalar(1, floatDType(x));
    const s = b.node('Sigmoid', [x], {}, { dtype: x.dtype, shape: [...x.shape] });
    const y = b.node('Mul', [x, s], {}, this.out(x.dtype, [...x.shape], [x]));
    this.record('SiLU', [x], [y], ([g]) => {
      // dy/dx = s ⊙ (1 + x ⊙ (1 − s))
      const slope = raw.mul(b, s, raw.add(b, one(), raw.mul(b, x, raw.sub(b, one(), s))));
      return [raw.mul(b, g!, slope)];
    });
    return y;
  }

  /**
   * Rotary position embedding in the rotate-half convention (Hugging Face's Llama): y = x ⊙ cos + rot(x) ⊙ sin,
   * rot([x1, x2]) = [−x2, x1] over the last axis split in halves. cos and sin are constants that broadcast
   * against x (e.g. [seq, 1, dHead] against [batch, seq, heads, dHead]).
   */
  rotary(x: Value, cos: Value, sin: Value): Value {
    if (cos.requiresGrad || sin.requiresGrad) throw new Error('rotary: cos and sin must be constants');
    const b = this.b;
    const xCos = raw.mul(b, x, cos);
    const rotSin = raw.mul(b, rotateHalf(b, x, false), sin);
    const y = b.node('Add', [xCos, rotSin], {}, this.out(x.dtype, broadcastShape(xCos.shape, rotSin.shape), [x]));
    // The transpose of rot is rotᵀ([u1, u2]) = [u2, −u1], so dx = g ⊙ cos + rotᵀ(g ⊙ sin).
    this.record('Rotary', [x], [y], ([g]) => [raw.add(b, raw.mul(b, g!, cos), rotateHalf(b, raw.mul(b, g!, sin), true))]);
    return y;
  }

  /**
   * Grouped-query attention's key/value sharing: [batch, seq, kvHeads, dHead] → [batch, seq, kvHeads·rep, dHead],
   * query head h reading kv head ⌊h / rep⌋ (Hugging Face's repeat_kv). The VJP sums each group's gradients.
   */
  repeatHeads(x: Value, rep: number): Value {
    if (rep === 1) return x;
    const b = this.b;
    const [batch, seq, kv, d] = x.shape;
    if (typeof kv !== 'number' || typeof d !== 'number') throw new Error('repeatHeads: heads and dHead must be static');
    const expanded = b.node('Expand', [raw.unsqueeze(b, x, [3]), b.ints([1, 1, 1, rep, 1])], {}, { dtype: x.dtype, shape: [batch, seq, kv, rep, d] });
    const y = raw.reshape(b, expanded, [0, 0, kv * rep, d], [batch, seq, kv * rep, d], x.requiresGrad);
    this.record('RepeatHeads', [x], [y], ([g]) => {
      const grouped = raw.reshape(b, g!, [0, 0, kv, rep, d], [batch, seq, kv, rep, d]);
      return [raw.reduce(b, 'ReduceSum', grouped, [3], false)];
    });
    return y;
  }

  /** y[..., j] = x[..., indices[..., j]] (GatherElements on the last axis); indices are int64 and carry no gradient. */
  gatherLast(x: Value, indices: Value): Value {
    const b = this.b;
    const axis = x.shape.length - 1;
    const y = b.node('GatherElements', [x, indices], { axis }, this.out(x.dtype, [...indices.shape], [x]));
    this.record('GatherElements', [x], [y], ([g]) => [
      b.node('ScatterElements', [raw.zerosLike(b, x), indices, g!], { axis, reduction: 'add' }, { dtype: x.dtype, shape: [...x.shape] }),
    ]);
    return y;
  }

  /**
   * The dense tensor shaped like `like` that holds `values` at `indices` on the last axis and 0 elsewhere
   * (ScatterElements into zeros); the indices must be distinct within a row (TopK's are). Gradient to values only.
   */
  scatterLast(values: Value, indices: Value, like: Value): Value {
    const b = this.b;
    const axis = like.shape.length - 1;
    const y = b.node('ScatterElements', [raw.zerosLike(b, like), indices, values], { axis }, this.out(values.dtype, [...like.shape], [values]));
    this.record('ScatterElements', [values], [y], ([g]) => [
      b.node('GatherElements', [g!, indices], { axis }, { dtype: values.dtype, shape: [...values.shape] }),
    ]);
    return y;
  }

  // ---- gradient helpers -----------------------------------------------------------------------------

  /** Sums a broadcast gradient back to the shape of `x` (the reverse of broadcasting). */
  private sumTo(g: Value, x: Value): Grad {
    if (!x.requiresGrad) return null;
    const axes = broadcastAxes(x.shape, g.shape);
    if (axes.length === 0 && x.shape.length === g.shape.length) return g;
    const summed = axes.length > 0 ? raw.reduce(this.b, 'ReduceSum', g, axes, true) : g;
    return raw.reshapeLike(this.b, summed, x);
  }
}

// ---- plain (untaped) node helpers, shared by forward passes and VJPs ------------------------------------

export const raw = {
  add: (b: GraphBuilder, x: Value, y: Value) => b.node('Add', [x, y], {}, { dtype: x.dtype, shape: broadcastShape(x.shape, y.shape) }),
  sub: (b: GraphBuilder, x: Value, y: Value) => b.node('Sub', [x, y], {}, { dtype: x.dtype, shape: broadcastShape(x.shape, y.shape) }),
  mul: (b: GraphBuilder, x: Value, y: Value) => b.node('Mul', [x, y], {}, { dtype: x.dtype, shape: broadcastShape(x.shape, y.shape) }),
  div: (b: GraphBuilder, x: Value, y: Value) => b.node('Div', [x, y], {}, { dtype: x.dtype, shape: broadcastShape(x.shape, y.shape) }),
  neg: (b: GraphBuilder, x: Value) => b.node('Neg', [x], {}, { dtype: x.dtype, shape: [...x.shape] }),
  matmul: (b: GraphBuilder, x: Value, y: Value) => b.node('MatMul', [x, y], {}, { dtype: x.dtype, shape: matmulShape(x.shape, y.shape) }),
  cast: (b: GraphBuilder, x: Value, to: DType) => (x.dtype === to ? x : b.node('Cast', [x], { to: onnxTypeOf(to) }, { dtype: to, shape: [...x.shape] })),
  shapeOf: (b: GraphBuilder, x: Value) => b.node('Shape', [x], {}, { dtype: 'int64', shape: [x.shape.length] }),
  transpose: (b: GraphBuilder, x: Value, perm: number[], requiresGrad = false) =>
    b.node('Transpose', [x], { perm }, { dtype: x.dtype, shape: perm.map((p) => x.shape[p]), requiresGrad }),
  transposeLast2: (b: GraphBuilder, x: Value) => {
    const n = x.shape.length;
    const perm = [...Array(n).keys()];
    [perm[n - 2], perm[n - 1]] = [perm[n - 1], perm[n - 2]];
    return raw.transpose(b, x, perm);
  },
  reshape: (b: GraphBuilder, x: Value, target: number[], shape: Dim[], requiresGrad = false) =>
    b.node('Reshape', [x, b.ints(target)], {}, { dtype: x.dtype, shape, requiresGrad }),
  reshapeLike: (b: GraphBuilder, x: Value, like: Value) => b.node('Reshape', [x, raw.shapeOf(b, like)], {}, { dtype: x.dtype, shape: [...like.shape] }),
  unsqueeze: (b: GraphBuilder, x: Value, axes: number[]) => {
    const shape: Dim[] = [...x.shape];
    for (const axis of [...axes].sort((p, q) => p - q)) shape.splice(axis, 0, 1);
    return b.node('Unsqueeze', [x, b.ints(axes)], {}, { dtype: x.dtype, shape });
  },
  reduce: (b: GraphBuilder, op: 'ReduceSum' | 'ReduceMean', x: Value, axes: number[], keepdims: boolean, requiresGrad = false) => {
    const normalized = normalizeAxes(axes, x.shape.length);
    const shape = keepdims ? x.shape.map((d, i) => (normalized.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !normalized.includes(i));
    return b.node(op, [x, b.ints(axes)], { keepdims: keepdims ? 1 : 0 }, { dtype: x.dtype, shape, requiresGrad });
  },
  /** Indices [..., k] of the k largest values along the last axis, largest first (TopK); piecewise constant, so never differentiated. */
  topKIndices: (b: GraphBuilder, x: Value, k: number) => {
    const shape = [...x.shape.slice(0, -1), k];
    const [, indices] = b.multiNode('TopK', [x, b.ints([k])], { axis: -1, largest: 1, sorted: 1 }, [
      { dtype: x.dtype, shape },
      { dtype: 'int64', shape },
    ]);
    return indices;
  },
  zerosLike: (b: GraphBuilder, x: Value) =>
    b.node('ConstantOfShape', [raw.shapeOf(b, x)], { value: { scalarTensor: 0, dtype: floatDType(x) } }, { dtype: x.dtype, shape: [...x.shape] }),
};

/** rot(x) = [−x2, x1] over the halves of the last axis; with `transposed`, rotᵀ(x) = [x2, −x1]. */
function rotateHalf(b: GraphBuilder, x: Value, transposed: boolean): Value {
  const axis = x.shape.length - 1;
  const d = x.shape[axis];
  if (typeof d !== 'number' || d % 2 !== 0) throw new Error('rotary: the last axis must have a static, even size');
  const half = [...x.shape.slice(0, axis), d / 2];
  const [x1, x2] = b.multiNode('Split', [x, b.ints([d / 2, d / 2])], { axis }, [
    { dtype: x.dtype, shape: half },
    { dtype: x.dtype, shape: half },
  ]);
  const pieces = transposed ? [x2, raw.neg(b, x1)] : [raw.neg(b, x2), x1];
  return b.node('Concat', pieces, { axis }, { dtype: x.dtype, shape: [...x.shape] });
}

function floatDType(x: Value): FloatType {
  if (x.dtype !== 'float32' && x.dtype !== 'float64' && x.dtype !== 'float16') throw new Error(`${x.dtype} is not a compute type`);
  return x.dtype;
}

function onnxTypeOf(dtype: DType): number {
  return { float32: 1, float64: 11, float16: 10, bfloat16: 16, int64: 7, bool: 9 }[dtype];
}

// ---- shape inference ----------------------------------------------------------------------------------

export function normalizeAxes(axes: number[], rank: number): number[] {
  return axes.map((a) => (a < 0 ? a + rank : a));
}

export function broadcastShape(a: readonly Dim[], c: readonly Dim[]): Dim[] {
  const rank = Math.max(a.length, c.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = c[c.length - rank + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else if (typeof x === 'string' && typeof y === 'number') out.push(y);
    else if (typeof y === 'string' && typeof x === 'number') out.push(x);
    else throw new Error(`cannot broadcast [${a.join(',')}] with [${c.join(',')}]`);
  }
  return out;
}

/** Axes of `out` (in out's coordinates) along which a tensor of shape `input` was broadcast. */
export function broadcastAxes(input: readonly Dim[], out: readonly Dim[]): number[] {
  const axes: number[] = [];
  const offset = out.length - input.length;
  for (let i = 0; i < out.length; i++) {
    const d = i < offset ? undefined : input[i - offset];
    if (d === undefined || (d === 1 && out[i] !== 1)) axes.push(i);
  }
  return axes;
}

export function matmulShape(a: readonly Dim[], c: readonly Dim[]): Dim[] {
  if (a.length < 2 || c.length < 2) throw new Error('matmul needs operands of rank ≥ 2');
  const batch = broadcastShape(a.slice(0, -2), c.slice(0, -2));
  return [...batch, a[a.length - 2], c[c.length - 1]];
}
