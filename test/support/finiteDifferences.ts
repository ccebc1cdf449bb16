// Checks an op's VJP against central finite differences, computed through ONNX Runtime in float64
// (the same harness as test/engine/vjp.test.ts, shared by the op tests of the newer model families).
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, type Dim, type Value } from '../../src/engine/graph/builder';
import { Ops } from '../../src/engine/graph/ops';
import { gradients } from '../../src/engine/graph/autodiff';
import { seededRandom } from './random';

export interface InputSpec {
  /** Dims as declared in the graph (strings are symbolic); `size` gives the concrete size used. */
  dims: Dim[];
  size?: number[];
  /** Differentiate with respect to this input (it is tapped); false makes it a constant input. */
  grad: boolean;
  positive?: boolean;
  /** int64 inputs (indices); their values come from `values`. */
  int64?: boolean;
  /** Fixed values instead of random ones. */
  values?: number[];
  /** Scale of the random values (default 1: uniform in [-1, 1)). */
  scale?: number;
}

/**
 * Builds y = build(inputs), seeds its gradient with a random cotangent c, and compares the VJP of ⟨c, y⟩ with
 * respect to every `grad` input with central differences (h = 1e-5). Truncation O(h²) ≈ 1e-10 and rounding
 * ≈ 1e-16·|f|/h ≈ 1e-11, so the tolerance 1e-7·(1 + |numeric|) can only be met by a correct gradient.
 */
export async function checkVjp(build: (ops: Ops, inputs: Value[]) => Value, specs: InputSpec[], seed = 1): Promise<void> {
  const b = new GraphBuilder('float64');
  const ops = new Ops(b);
  const raw = specs.map((spec, i) => b.input(`x${i}`, spec.int64 ? 'int64' : 'float64', spec.dims));
  const inputs = raw.map((value, i) => (specs[i].grad ? ops.tap(value, `tap${i}`) : value));
  const y = build(ops, inputs);
  const cotangent = b.input('cotangent', 'float64', [...y.shape]);
  const wrt = inputs.filter((_, i) => specs[i].grad);
  const grads = gradients(ops, y, cotangent, wrt);
  b.output(y, 'y');
  wrt.forEach((value, k) => b.output(grads.get(value.name)!, `grad${k}`));
  const session = await ort.InferenceSession.create(b.toBytes());

  const random = seededRandom(seed);
  const sizes = specs.map((spec) => spec.size ?? (spec.dims as number[]));
  const data = specs.map((spec, i) => {
    const length = sizes[i].reduce((p, q) => p * q, 1);
    if (spec.values) {
      assert.equal(spec.values.length, length, `input ${i}: values have the input's size`);
      return Float64Array.from(spec.values);
    }
    const scale = spec.scale ?? 1;
    return Float64Array.from({ length }, () => scale * (spec.positive ? 0.5 + random() : random() * 2 - 1));
  });
  const feeds = (values: Float64Array[]) =>
    Object.fromEntries(
      values.map((v, i) => [
        raw[i].name,
        specs[i].int64 ? new ort.Tensor('int64', BigInt64Array.from(Array.from(v, (x) => BigInt(x))), sizes[i]) : new ort.Tensor('float64', v, sizes[i]),
      ]),
    );

  const symbols = new Map<string, number>();
  specs.forEach((spec, i) => spec.dims.forEach((d, j) => typeof d === 'string' && symbols.set(d, sizes[i][j])));
  const yShape = y.shape.map((d) => (typeof d === 'number' ? d : symbols.get(d)!));
  const cot = Float64Array.from({ length: yShape.reduce((p, q) => p * q, 1) }, () => random() * 2 - 1);
  const cotTensor = new ort.Tensor('float64', cot, yShape);
  const analytic = await session.run({ ...feeds(data), cotangent: cotTensor });

  const objective = async (values: Float64Array[]) => {
    const out = (await session.run({ ...feeds(values), cotangent: cotTensor })).y.data as Float64Array;
    return out.reduce((sum, v, i) => sum + v * cot[i], 0);
  };
  const h = 1e-5;
  let k = 0;
  for (let i = 0; i < specs.length; i++) {
    if (!specs[i].grad) continue;
    const grad = analytic[`grad${k++}`].data as Float64Array;
    assert.equal(grad.length, data[i].length, `gradient of input ${i} has the input's size`);
    for (let j = 0; j < data[i].length; j++) {
      const plus = data.map((v) => v.slice());
      const minus = data.map((v) => v.slice());
      plus[i][j] += h;
      minus[i][j] -= h;
      const numeric = ((await objective(plus)) - (await objective(minus))) / (2 * h);
      const tolerance = 1e-7 * (1 + Math.abs(numeric));
      assert.ok(Math.abs(numeric - grad[j]) <= tolerance, `input ${i}[${j}]: finite difference ${numeric} vs VJP ${grad[j]}`);
    }
  }
  await session.release();
}

/**
 * The float32 graph of `build` against its float64 graph, forward value and VJP, on the same inputs (float64 values
 * rounded to float32) and cotangent. Where an op's float32 forward is ONNX Runtime's fused kernel (LayerNormalization,
 * SimplifiedLayerNormalization, FastGelu, QuickGelu, RotaryEmbedding) and its float64 forward the spelled-out chain
 * that checkVjp verifies, this checks the fused kernel and the float32-only VJP against an independent computation.
 * Tolerance: 1e-5 · max(1, largest |value| of the float64 output): float32 rounds at 6e-8 relative and these ops
 * chain at most ~10 roundings over sums of a few terms (measured errors are ~1e-7), while a wrong formula, sign or
 * table is off by O(1).
 */
export async function checkFloat32AgainstFloat64(
  build: (ops: Ops, inputs: Value[]) => Value,
  specs: InputSpec[],
  provider: 'cpu' | 'webgpu' = 'cpu',
  seed = 1,
): Promise<void> {
  const random = seededRandom(seed);
  const sizes = specs.map((spec) => spec.size ?? (spec.dims as number[]));
  const data = specs.map((spec, i) => {
    if (spec.values) return Float64Array.from(spec.values);
    const scale = spec.scale ?? 1;
    return Float64Array.from(Float32Array.from({ length: sizes[i].reduce((p, q) => p * q, 1) }, () => scale * (random() * 2 - 1)));
  });
  const run = async (precision: 'float32' | 'float64', cot?: Float64Array) => {
    const b = new GraphBuilder(precision);
    const ops = new Ops(b);
    const raws = specs.map((spec, i) => b.input(`x${i}`, spec.int64 ? 'int64' : precision, spec.dims));
    const inputs = raws.map((value, i) => (specs[i].grad ? ops.tap(value, `tap${i}`) : value));
    const y = build(ops, inputs);
    const cotangent = b.input('cotangent', precision, [...y.shape]);
    const wrt = inputs.filter((_, i) => specs[i].grad);
    const grads = gradients(ops, y, cotangent, wrt);
    b.output(y, 'y');
    wrt.forEach((value, k) => b.output(grads.get(value.name)!, `grad${k}`));
    const session = await ort.InferenceSession.create(b.toBytes(), { executionProviders: [provider] });
    const symbols = new Map<string, number>();
    specs.forEach((spec, i) => spec.dims.forEach((d, j) => typeof d === 'string' && symbols.set(d, sizes[i][j])));
    const yShape = y.shape.map((d) => (typeof d === 'number' ? d : symbols.get(d)!));
    const cotValues = cot ?? Float64Array.from(Float32Array.from({ length: yShape.reduce((p, q) => p * q, 1) }, () => random() * 2 - 1));
    const tensor = (values: Float64Array, dims: number[], int64?: boolean) =>
      int64
        ? new ort.Tensor('int64', BigInt64Array.from(Array.from(values, (x) => BigInt(x))), dims)
        : precision === 'float32'
          ? new ort.Tensor('float32', Float32Array.from(values), dims)
          : new ort.Tensor('float64', values, dims);
    const feeds = Object.fromEntries(raws.map((value, i) => [value.name, tensor(data[i], sizes[i], specs[i].int64)]));
    const out = await session.run({ ...feeds, cotangent: tensor(cotValues, yShape) });
    await session.release();
    return { out, cot: cotValues, outputs: ['y', ...wrt.map((_, k) => `grad${k}`)] };
  };
  const reference = await run('float64');
  const single = await run('float32', reference.cot);
  for (const name of reference.outputs) {
    const want = reference.out[name].data as Float64Array;
    const have = single.out[name].data as Float32Array;
    assert.equal(have.length, want.length, `${name} has the float64 graph's size`);
    const scale = Math.max(1, ...Array.from(want, Math.abs));
    const worst = Math.max(...Array.from(want, (v, j) => Math.abs(v - have[j])));
    assert.ok(worst <= 1e-5 * scale, `${name}: float32 differs from float64 by ${worst} (largest |value| ${scale})`);
  }
}
