import { test } from 'node:test';
import { checkVjp } from '../support/finiteDifferences';

/**
 * Every op's VJP against central finite differences, computed through ONNX Runtime in float64
 * (test/support/finiteDifferences.ts states the tolerance and why).
 */

test('Add with broadcasting on both sides', () =>
  checkVjp(
    (ops, [a, c]) => ops.add(a, c),
    [
      { dims: [2, 1, 4], grad: true },
      { dims: [3, 1], grad: true },
    ],
  ));

test('Sub with a broadcast right operand', () =>
  checkVjp(
    (ops, [a, c]) => ops.sub(a, c),
    [
      { dims: [2, 3, 4], grad: true },
      { dims: [4], grad: true },
    ],
  ));

test('Mul with broadcasting and a constant', () =>
  checkVjp(
    (ops, [a, c, k]) => ops.mul(ops.mul(a, c), k),
    [
      { dims: [2, 3], grad: true },
      { dims: [1, 3], grad: true },
      { dims: [2, 1], grad: false },
    ],
  ));

test('Div, both operands', () =>
  checkVjp(
    (ops, [a, c]) => ops.div(a, c),
    [
      { dims: [3, 4], grad: true },
      { dims: [3, 1], grad: true, positive: true },
    ],
  ));

test('MatMul, batched, both operands', () =>
  checkVjp(
    (ops, [a, c]) => ops.matmul(a, c),
    [
      { dims: [2, 3, 4], grad: true },
      { dims: [2, 4, 5], grad: true },
    ],
  ));

test('MatMul with a 2-D right operand broadcast over batch axes', () =>
  checkVjp(
    (ops, [a, c]) => ops.matmul(a, c),
    [
      { dims: ['batch', 3, 4], size: [2, 3, 4], grad: true },
      { dims: [4, 2], grad: true },
    ],
  ));

test('Reshape and Transpose', () =>
  checkVjp((ops, [a]) => ops.transpose(ops.reshape(a, [0, 0, 2, 3]), [0, 2, 1, 3]), [{ dims: ['batch', 'seq', 6], size: [2, 3, 6], grad: true }]));

test('Split of the last axis, with one piece unused', () =>
  checkVjp(
    (ops, [a]) => {
      const [p, , r] = ops.splitLast(a, [2, 3, 2]);
      return ops.mul(p, r);
    },
    [{ dims: [2, 7], grad: true }],
  ));

test("a shared prefix joined before x on the sequence axis (Concat; the gradient is x's part only)", () =>
  checkVjp(
    (ops, [prefix, x]) => {
      const joined = ops.afterPrefix(prefix, x, ops.b.constant('int64', [], [2]), 1, 5);
      return ops.mul(joined, ops.softmax(joined));
    },
    [
      { dims: [2, 2, 3], grad: false },
      { dims: [2, 3, 3], grad: true },
    ],
  ));

test('ReduceSum with and without keepdims', () =>
  checkVjp((ops, [a]) => ops.add(ops.reduceSum(a, [1], false), ops.reduceSum(ops.reduceSum(a, [-1], true), [1], false)), [{ dims: [2, 3, 4], grad: true }]));

test('Softmax over the last axis', () => checkVjp((ops, [a]) => ops.softmax(a), [{ dims: [2, 3, 5], grad: true }]));

test('LayerNorm with constant weight and bias', () =>
  checkVjp(
    (ops, [x, w, bias]) => ops.layerNorm(x, w, bias, 1e-5),
    [
      { dims: ['batch', 3, 6], size: [2, 3, 6], grad: true },
      { dims: [6], grad: false },
      { dims: [6], grad: false },
    ],
  ));

test('gelu_new', () => checkVjp((ops, [a]) => ops.geluNew(ops.scale(a, 3)), [{ dims: [4, 5], grad: true }]));

test('gradients flow through chained taps and accumulate over fan-out', () =>
  checkVjp(
    (ops, [a]) => {
      const inner = ops.tap(ops.mul(a, a), 'inner');
      return ops.add(ops.mul(inner, a), ops.softmax(inner));
    },
    [{ dims: [3, 4], grad: true }],
  ));
