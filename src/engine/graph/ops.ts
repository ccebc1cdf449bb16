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
    this.record('Reshape', [x], [y], ([g]) => [this.reshapeBack(g!, x)]);
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

  /**
   * LayerNorm over the last axis with constant weight and bias. In float32 the forward is one LayerNormalization
   * (opset 17) node that also gives the mean and 1/std the VJP needs; float64 graphs (the gradient tests) spell it
   * out, because that node keeps its statistics in float32. The VJP is the same formula for both.
   */
  layerNorm(x: Value, weight: Value, bias: Value, eps: number): Value {
    if (weight.requiresGrad || bias.requiresGrad) throw new Error('layerNorm: gradients of weights are not supported');
    return this.widened(x, (wide) => this.layerNormOf(wide, raw.cast(this.b, weight, wide.dtype), raw.cast(this.b, bias, wide.dtype), eps));
  }

  private layerNormOf(x: Value, weight: Value, bias: Value, eps: number): Value {
    const b = this.b;
    const statShape = [...x.shape.slice(0, -1), 1];
    let y: Value, mean: Value, rstd: Value;
    if (x.dtype === 'float32') {
      [y, mean, rstd] = b.multiNode('LayerNormalization', [x, weight, bias], { axis: -1, epsilon: { float: eps } }, [
        this.out(x.dtype, [...x.shape], [x]),
        { dtype: x.dtype, shape: statShape },
        { dtype: x.dtype, shape: statShape },
      ]);
    } else {
      mean = raw.reduce(b, 'ReduceMean', x, [-1], true);
      const centered = raw.sub(b, x, mean);
      rstd = reciprocalSqrt(b, raw.add(b, raw.reduce(b, 'ReduceMean', raw.mul(b, centered, centered), [-1], true), b.scalar(eps, floatDType(x))));
      y = b.node('Add', [raw.mul(b, raw.mul(b, centered, rstd), weight), bias], {}, this.out(x.dtype, [...x.shape], [x]));
    }
    this.record('LayerNorm', [x, weight, bias], [y], ([g]) => {
      // dx = rstd ⊙ (gw − mean(gw) − x̂ ⊙ mean(gw ⊙ x̂)) with gw = g ⊙ weight and x̂ = (x − μ) ⊙ rstd, written as
      // rstd ⊙ (gw − mean(gw) − (x − μ) ⊙ rstd² ⊙ mean(gw ⊙ (x − μ))): x − μ is recomputed, x̂ never kept.
      const gw = raw.mul(b, g!, weight);
      const centered = raw.sub(b, x, mean);
      const meanGw = raw.reduce(b, 'ReduceMean', gw, [-1], true);
      const k = raw.mul(b, raw.reduce(b, 'ReduceMean', raw.mul(b, gw, centered), [-1], true), raw.mul(b, rstd, rstd));
      return [raw.mul(b, rstd, raw.sub(b, raw.sub(b, gw, meanGw), raw.mul(b, centered, k))), null, null];
    });
    return y;
  }

  /**
   * GPT-2's tanh approximation of GELU ("gelu_new"): ½x(1 + tanh(c(x + 0.044715x³))), c = √(2/π). In float32 the
   * forward is one FastGelu node (ONNX Runtime's kernel for exactly this formula). The VJP recomputes tanh from x
   * (a few elementwise kernels) instead of keeping it, and 1 + t, alive from the forward pass to the backward.
   */
  geluNew(x: Value): Value {
    return this.widened(x, (wide) => this.geluNewOf(wide));
  }

  private geluNewOf(x: Value): Value {
    const b = this.b;
    const s = (value: number) => b.scalar(value, floatDType(x));
    const c = Math.sqrt(2 / Math.PI);
    const k = 0.044715;
    let y: Value;
    if (x.dtype === 'float32') y = b.contribNode('FastGelu', [x], {}, this.out(x.dtype, [...x.shape], [x]));
    else {
      const t = b.node('Tanh', [raw.mul(b, x, raw.add(b, raw.mul(b, raw.mul(b, x, x), s(c * k)), s(c)))], {}, { dtype: x.dtype, shape: [...x.shape] });
      y = b.node('Mul', [raw.mul(b, x, raw.add(b, t, s(1))), s(0.5)], {}, this.out(x.dtype, [...x.shape], [x]));
    }
    this.record('GeluNew', [x], [y], ([g]) => {
      // dy/dx = ½(1+t) + ½·x·(1−t²)·u′ = ½(1+t)·(1 + x·(1−t)·u′), u′ = c(1 + 3·0.044715·x²)
      const x2 = raw.mul(b, x, x);
      const t = b.node('Tanh', [raw.mul(b, x, raw.add(b, raw.mul(b, x2, s(c * k)), s(c)))], {}, { dtype: x.dtype, shape: [...x.shape] });
      const halfOnePlusT = raw.add(b, raw.mul(b, t, s(0.5)), s(0.5));
      const du = raw.add(b, raw.mul(b, x2, s(3 * c * k)), s(c));
      const inner = raw.add(b, raw.mul(b, raw.mul(b, x, raw.sub(b, s(1), t)), du), s(1));
      return [raw.mul(b, g!, raw.mul(b, halfOnePlusT, inner))];
    });
    return y;
  }

  // ---- decoder families beyond GPT-2 (GPT-Neo, Llama, Qwen2, Granite, GraniteMoE) ----------------------

  /**
   * y = x·Wᵀ (+ bias) for a constant weight stored [out, in] (nn.Linear's layout), x [..., in] → [..., out], without
   * ever transposing W: the forward is one Gemm with transB (and the bias as its C) on x's rows, the VJP is g·W. (A
   * Transpose node per use would be folded by ONNX Runtime into a second, third... copy of every weight matrix.)
   */
  linearT(x: Value, weight: Value, bias?: Value): Value {
    return this.linearLayer(x, weight, bias, true);
  }

  /**
   * y = x·W (+ bias) for a constant weight stored [in, out] (GPT-2's Conv1D): one Gemm with the bias as its C; the
   * VJP g·Wᵀ is a Gemm with transB, so W is never transposed either.
   */
  linear(x: Value, weight: Value, bias?: Value): Value {
    return this.linearLayer(x, weight, bias, false);
  }

  private linearLayer(x: Value, weight: Value, bias: Value | undefined, storedOutIn: boolean): Value {
    if (weight.requiresGrad || bias?.requiresGrad) throw new Error('linear: gradients of weights are not supported');
    const [rowsOfW, columnsOfW] = weight.shape;
    if (typeof rowsOfW !== 'number' || typeof columnsOfW !== 'number' || weight.shape.length !== 2)
      throw new Error('linear: the weight must be a static matrix');
    const [nOut, nIn] = storedOutIn ? [rowsOfW, columnsOfW] : [columnsOfW, rowsOfW];
    const y = this.gemmRows(x, weight, bias, storedOutIn, nIn, nOut, x.requiresGrad);
    this.record('Linear', bias ? [x, weight, bias] : [x, weight], [y], ([g]) => [
      storedOutIn ? raw.matmul(this.b, g!, weight) : this.gemmRows(g!, weight, undefined, true, nOut, nIn, false),
      null,
      null,
    ]);
    return y;
  }

  /** x [..., nIn] → Gemm(rows of x, weight, bias) [..., nOut]: a Gemm takes matrices only, so x's leading axes are folded into rows and back. */
  private gemmRows(x: Value, weight: Value, bias: Value | undefined, transB: boolean, nIn: number, nOut: number, requiresGrad: boolean): Value {
    const b = this.b;
    const rows = raw.reshape(b, x, [-1, nIn], [`${x.name}_rows`, nIn]);
    const product = b.node('Gemm', bias ? [rows, weight, bias] : [rows, weight], { transB: transB ? 1 : 0 }, { dtype: x.dtype, shape: [rows.shape[0], nOut] });
    return b.node('Reshape', [product, this.leadingShapeWith(x, nOut)], {}, { dtype: x.dtype, shape: [...x.shape.slice(0, -1), nOut], requiresGrad });
  }

  /** The shape of x with its last axis replaced by n, as an int64 tensor; one per graph for each [batch, seq, n]. */
  private leadingShapeWith(x: Value, n: number): Value {
    const b = this.b;
    const leading = x.shape.slice(0, -1);
    if (leading.every((d) => typeof d === 'number')) return b.ints([...(leading as number[]), n]);
    const make = () => {
      const lead = b.node('Slice', [raw.shapeOf(b, x), b.ints([0]), b.ints([-1])], {}, { dtype: 'int64', shape: [leading.length] });
      return b.node('Concat', [lead, b.ints([n])], { axis: 0 }, { dtype: 'int64', shape: [leading.length + 1] });
    };
    return b.hasGlobalDims(leading) ? b.shared(`shape:${leading.join(',')},${n}`, make) : make();
  }

  /**
   * RMSNorm over the last axis with a constant weight (Llama's): y = w ⊙ x / sqrt(mean(x²) + eps). In float32 the
   * forward is one SimplifiedLayerNormalization node (ONNX Runtime's RMSNorm kernel, CPU and WebGPU) and the VJP
   * recomputes 1/rms from x (one product and a reduction): the node's own 1/rms output is wrong on WebGPU (ONNX
   * Runtime 1.30; test/engine/webgpu.test.ts caught it). Float64 graphs spell the forward out (that node keeps its
   * statistics in float32) and reuse its 1/rms. The VJP is otherwise the same for both.
   */
  rmsNorm(x: Value, weight: Value, eps: number): Value {
    if (weight.requiresGrad) throw new Error('rmsNorm: gradients of weights are not supported');
    return this.widened(x, (wide) => this.rmsNormOf(wide, raw.cast(this.b, weight, wide.dtype), eps));
  }

  private rmsNormOf(x: Value, weight: Value, eps: number): Value {
    const b = this.b;
    const inverseRms = () => reciprocalSqrt(b, raw.add(b, raw.reduce(b, 'ReduceMean', raw.mul(b, x, x), [-1], true), b.scalar(eps, floatDType(x))));
    let y: Value, forwardRstd: Value | undefined;
    if (x.dtype === 'float32') {
      y = b.node('SimplifiedLayerNormalization', [x, weight], { axis: -1, epsilon: { float: eps } }, this.out(x.dtype, [...x.shape], [x]));
    } else {
      forwardRstd = inverseRms();
      y = b.node('Mul', [weight, raw.mul(b, x, forwardRstd)], {}, this.out(x.dtype, [...x.shape], [x]));
    }
    this.record('RMSNorm', [x, weight], [y], ([g]) => {
      // dx = rstd ⊙ (gw − x̂ ⊙ mean(gw ⊙ x̂)) with gw = g ⊙ weight and x̂ = x ⊙ rstd, written as
      // rstd ⊙ (gw − x ⊙ rstd² ⊙ mean(gw ⊙ x)): x̂ is never formed nor kept.
      const rstd = forwardRstd ?? inverseRms();
      const gw = raw.mul(b, g!, weight);
      const k = raw.mul(b, raw.reduce(b, 'ReduceMean', raw.mul(b, gw, x), [-1], true), raw.mul(b, rstd, rstd));
      return [raw.mul(b, rstd, raw.sub(b, gw, raw.mul(b, x, k))), null];
    });
    return y;
  }

  /**
   * SiLU (swish): x · sigmoid(x); in float32 one QuickGelu node (ONNX Runtime's x·sigmoid(αx), α = 1). The VJP
   * recomputes sigmoid(x) (one kernel) instead of keeping it alive from the forward pass to the backward.
   */
  silu(x: Value): Value {
    const b = this.b;
    const y = swish(b, x, this.out(x.dtype, [...x.shape], [x]));
    this.record('SiLU', [x], [y], ([g]) => {
      // dy/dx = s + x·s·(1 − s) = s + y ⊙ (1 − s), s = sigmoid(x)
      const s = b.node('Sigmoid', [x], {}, { dtype: x.dtype, shape: [...x.shape] });
      return [raw.mul(b, g!, raw.add(b, s, raw.mul(b, y, raw.sub(b, b.scalar(1, floatDType(x)), s))))];
    });
    return y;
  }

  /**
   * SwiGLU's product silu(gate) ⊙ up (gate and up of one shape). Its VJP keeps only gate and up alive from the
   * forward pass (silu(gate) is recomputed, a Sigmoid and a product), where silu then a product would keep three
   * [batch, seq, dMlp] tensors per layer: the largest saved activations of a Llama-family backward.
   */
  swiglu(gate: Value, up: Value): Value {
    const b = this.b;
    const shape = [...gate.shape];
    const activated = swish(b, gate, { dtype: gate.dtype, shape });
    const y = b.node('Mul', [activated, up], {}, this.out(gate.dtype, broadcastShape(gate.shape, up.shape), [gate, up]));
    this.record('SwiGLU', [gate, up], [y], ([g]) => {
      // s = sigmoid(gate), a = gate ⊙ s = silu(gate): d/dgate = g ⊙ up ⊙ (s + a ⊙ (1 − s)), d/dup = g ⊙ a
      const s = b.node('Sigmoid', [gate], {}, { dtype: gate.dtype, shape });
      const a = raw.mul(b, gate, s);
      const slope = raw.add(b, s, raw.mul(b, a, raw.sub(b, b.scalar(1, floatDType(gate)), s)));
      return [gate.requiresGrad ? this.sumTo(raw.mul(b, raw.mul(b, g!, up), slope), gate) : null, up.requiresGrad ? this.sumTo(raw.mul(b, g!, a), up) : null];
    });
    return y;
  }

  /**
   * Rotary position embedding in the rotate-half convention (Hugging Face's Llama): y = x ⊙ cos + rot(x) ⊙ sin,
   * rot([x1, x2]) = [−x2, x1] over each head's dHead axis split in halves, for x [batch, seq, heads, dHead] or, as
   * projected, [batch, seq, heads·dHead], with constant tables cos, sin [seq, dHead/2] (the same angle for both
   * halves). In float32 one RotaryEmbedding node (ONNX Runtime's kernel) each way: the VJP Rᵀ·g is the rotation by
   * the opposite angle, the same op with −sin. Float64 and float16 graphs spell it out with the tables repeated for
   * both halves (the kernel is used in float32 only).
   */
  rotary(x: Value, cos: Value, sin: Value): Value {
    if (cos.requiresGrad || sin.requiresGrad) throw new Error('rotary: cos and sin must be constants');
    const b = this.b;
    const half = cos.shape[1];
    const width = x.shape[x.shape.length - 1];
    if (typeof half !== 'number' || typeof width !== 'number' || width % (2 * half) !== 0 || (x.shape.length === 4 && width !== 2 * half))
      throw new Error('rotary: x must be [batch, seq, heads, dHead] or [batch, seq, heads·dHead] with tables [seq, dHead/2]');
    const d = 2 * half;
    const heads = x.shape.length === 4 ? (x.shape[2] as number) : width / d;
    const [batch, seq] = x.shape;
    // Both ways below work on [batch, seq, heads·dHead] (the kernel's layout) or [batch, seq, heads, dHead] (the chain's).
    const reshaped = (v: Value, rank: number, requiresGrad = false) =>
      v.shape.length === rank
        ? v
        : raw.reshape(b, v, rank === 3 ? [0, 0, heads * d] : [0, 0, heads, d], rank === 3 ? [batch, seq, heads * d] : [batch, seq, heads, d], requiresGrad);
    if (x.dtype === 'float32') {
      const rotate = (v: Value, sinTable: Value, requiresGrad: boolean) => {
        // position_ids of shape [1] is an offset: row s of the tables is position s.
        const turned = b.contribNode(
          'RotaryEmbedding',
          [reshaped(v, 3), b.constant('int64', [1], [0]), cos, sinTable],
          { num_heads: heads, interleaved: 0 },
          {
            dtype: v.dtype,
            shape: [batch, seq, heads * d],
            requiresGrad,
          },
        );
        return reshaped(turned, x.shape.length, requiresGrad);
      };
      const y = rotate(x, sin, x.requiresGrad);
      this.record('Rotary', [x], [y], ([g]) => [
        rotate(
          g!,
          b.shared(`negated:${sin.name}`, () => raw.neg(b, sin)),
          false,
        ),
      ]);
      return y;
    }
    const [cosFull, sinFull] = [cos, sin].map((table) =>
      b.shared(`bothHalves:${table.name}`, () =>
        raw.unsqueeze(b, b.node('Concat', [table, table], { axis: 1 }, { dtype: table.dtype, shape: [table.shape[0], d] }), [1]),
      ),
    );
    const x4 = reshaped(x, 4);
    const xCos = raw.mul(b, x4, cosFull);
    const rotSin = raw.mul(b, rotateHalf(b, x4, false), sinFull);
    const y = reshaped(b.node('Add', [xCos, rotSin], {}, this.out(x.dtype, [...x4.shape], [x])), x.shape.length, x.requiresGrad);
    // The transpose of rot is rotᵀ([u1, u2]) = [u2, −u1], so dx = g ⊙ cos + rotᵀ(g ⊙ sin).
    this.record('Rotary', [x], [y], ([g]) => {
      const g4 = reshaped(g!, 4);
      return [reshaped(raw.add(b, raw.mul(b, g4, cosFull), rotateHalf(b, raw.mul(b, g4, sinFull), true)), x.shape.length)];
    });
    return y;
  }

  /**
   * Concat(prefix, x) along `axis`, where the prefix (`start` entries on that axis) carries no gradient: a shared
   * prefix's keys or values from another pass (see SharedPrefix). The VJP is g's entries from `start` on.
   */
  afterPrefix(prefix: Value, x: Value, start: Value, axis: number, joinedDim: Dim): Value {
    if (prefix.requiresGrad) throw new Error('afterPrefix: the prefix must carry no gradient');
    const b = this.b;
    const shape = [...x.shape];
    shape[axis] = joinedDim;
    const y = b.node('Concat', [prefix, x], { axis }, this.out(x.dtype, shape, [x]));
    this.record('AfterPrefix', [prefix, x], [y], ([g]) => [null, raw.sliceFrom(b, g!, start, axis, x.shape[axis])]);
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
    return this.reshapeBack(summed, x);
  }

  /**
   * g reshaped to x's shape. The target is a constant where x's shape is known when the graph is built: its fixed
   * sizes, and 0 (copy) for a symbolic dim that g has at the same index; otherwise Shape(x) at run time.
   */
  private reshapeBack(g: Value, x: Value): Value {
    const target = x.shape.map((d, i) => (typeof d === 'number' ? d : g.shape[i] === d && this.b.hasGlobalDims([d]) ? 0 : undefined));
    if (target.some((d) => d === undefined)) return raw.reshapeLike(this.b, g, x);
    return raw.reshape(this.b, g, target as number[], [...x.shape]);
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
  /** x's entries from `start` (an int64 scalar) on along `axis`, whose size is then `dim`. */
  sliceFrom: (b: GraphBuilder, x: Value, start: Value, axis: number, dim: Dim) => {
    const shape = [...x.shape];
    shape[axis] = dim;
    return b.node('Slice', [x, raw.unsqueeze(b, start, [0]), b.ints([Number.MAX_SAFE_INTEGER]), b.ints([axis])], {}, { dtype: x.dtype, shape });
  },
  /** x's first `end` (an int64 scalar) entries along `axis`, whose size is then `dim`. */
  sliceTo: (b: GraphBuilder, x: Value, end: Value, axis: number, dim: Dim) => {
    const shape = [...x.shape];
    shape[axis] = dim;
    return b.node('Slice', [x, b.ints([0]), raw.unsqueeze(b, end, [0]), b.ints([axis])], {}, { dtype: x.dtype, shape });
  },
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

/** x·sigmoid(x), the forward of SiLU: in float32 one QuickGelu node (ONNX Runtime's x·sigmoid(αx), α = 1), else Sigmoid and Mul. */
function swish(b: GraphBuilder, x: Value, out: { dtype: DType; shape: Dim[]; requiresGrad?: boolean }): Value {
  if (x.dtype === 'float32') return b.contribNode('QuickGelu', [x], { alpha: { float: 1 } }, out);
  return b.node('Mul', [x, b.node('Sigmoid', [x], {}, { dtype: x.dtype, shape: [...x.shape] })], {}, out);
}

/** 1 / sqrt(x). */
function reciprocalSqrt(b: GraphBuilder, x: Value): Value {
  return b.node('Reciprocal', [b.node('Sqrt', [x], {}, { dtype: x.dtype, shape: [...x.shape] })], {}, { dtype: x.dtype, shape: [...x.shape] });
}

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

/** x's float type; an error for any other (an int64 index, say). */
export function floatDType(x: Value): FloatType {
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
