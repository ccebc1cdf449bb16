import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, type Dim, type Value } from '../../src/engine/graph/builder';
import { Ops } from '../../src/engine/graph/ops';
import { gradients } from '../../src/engine/graph/autodiff';
import { seededRandom } from '../support/random';

/**
 * Every op's VJP against central finite differences, computed through ONNX Runtime in float64.
 * With h = 1e-5 the truncation error is O(h²·f''') ≈ 1e-10 and rounding ≈ 1e-16·|f|/h ≈ 1e-11, so a
 * tolerance of 1e-7 (absolute plus relative) can only be met by a correct gradient.
 */

interface InputSpec {
  /** Dims as declared in the graph (strings are symbolic); `size` gives the concrete size used. */
  dims: Dim[];
  size?: number[];
  grad: boolean;
  positive?: boolean;
}

async function checkVjp(build: (ops: Ops, inputs: Value[]) => Value, specs: InputSpec[], seed = 1): Promise<void> {
  const b = new GraphBuilder('float64');
  const ops = new Ops(b);
  const raw = specs.map((spec, i) => b.input(`x${i}`, 'float64', spec.dims));
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
  const data = specs.map((spec, i) =>
    Float64Array.from({ length: sizes[i].reduce((p, q) => p * q, 1) }, () => (spec.positive ? 0.5 + random() : random() * 2 - 1)),
  );
  const feeds = (values: Float64Array[]) =>
    Object.fromEntries(values.map((v, i) => [raw[i].name, new ort.Tensor('float64', v, sizes[i])]));

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
}

test('Add with broadcasting on both sides', () =>
  checkVjp((ops, [a, c]) => ops.add(a, c), [{ dims: [2, 1, 4], grad: true }, { dims: [3, 1], grad: true }]));

test('Sub with a broadcast right operand', () =>
  checkVjp((ops, [a, c]) => ops.sub(a, c), [{ dims: [2, 3, 4], grad: true }, { dims: [4], grad: true }]));

test('Mul with broadcasting and a constant', () =>
  checkVjp((ops, [a, c, k]) => ops.mul(ops.mul(a, c), k), [{ dims: [2, 3], grad: true }, { dims: [1, 3], grad: true }, { dims: [2, 1], grad: false }]));

test('Div, both operands', () =>
  checkVjp((ops, [a, c]) => ops.div(a, c), [{ dims: [3, 4], grad: true }, { dims: [3, 1], grad: true, positive: true }]));

test('MatMul, batched, both operands', () =>
  checkVjp((ops, [a, c]) => ops.matmul(a, c), [{ dims: [2, 3, 4], grad: true }, { dims: [2, 4, 5], grad: true }]));

test('MatMul with a 2-D right operand broadcast over batch axes', () =>
  checkVjp((ops, [a, c]) => ops.matmul(a, c), [{ dims: ['batch', 3, 4], size: [2, 3, 4], grad: true }, { dims: [4, 2], grad: true }]));

test('Reshape and Transpose', () =>
  checkVjp((ops, [a]) => ops.transpose(ops.reshape(a, [0, 0, 2, 3]), [0, 2, 1, 3]), [{ dims: ['batch', 'seq', 6], size: [2, 3, 6], grad: true }]));

test('Split of the last axis, with one piece unused', () =>
  checkVjp((ops, [a]) => {
    const [p, , r] = ops.splitLast(a, [2, 3, 2]);
    return ops.mul(p, r);
  }, [{ dims: [2, 7], grad: true }]));

test('ReduceSum with and without keepdims', () =>
  checkVjp((ops, [a]) => ops.add(ops.reduceSum(a, [1], false), ops.reduceSum(ops.reduceSum(a, [-1], true), [1], false)), [{ dims: [2, 3, 4], grad: true }]));

test('Softmax over the last axis', () => checkVjp((ops, [a]) => ops.softmax(a), [{ dims: [2, 3, 5], grad: true }]));

test('LayerNorm with constant weight and bias', () =>
  checkVjp((ops, [x, w, bias]) => ops.layerNorm(x, w, bias, 1e-5), [{ dims: ['batch', 3, 6], size: [2, 3, 6], grad: true }, { dims: [6], grad: false }, { dims: [6], grad: false }]));

test('gelu_new', () => checkVjp((ops, [a]) => ops.geluNew(ops.scale(a, 3)), [{ dims: [4, 5], grad: true }]));

test('gradients flow through chained taps and accumulate over fan-out', () =>
  checkVjp((ops, [a]) => {
    const inner = ops.tap(ops.mul(a, a), 'inner');
    return ops.add(ops.mul(inner, a), ops.softmax(inner));
  }, [{ dims: [3, 4], grad: true }]));
