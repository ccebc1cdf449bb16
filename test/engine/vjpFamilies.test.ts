import { test } from 'node:test';
import { raw } from '../../src/engine/graph/ops';
import { checkFloat32AgainstFloat64, checkVjp } from '../support/finiteDifferences';

/**
 * The ops that the GPT-Neo, Llama, Qwen2, Granite and GraniteMoE architectures add, each VJP against central
 * finite differences through ONNX Runtime in float64 (see test/support/finiteDifferences.ts for the tolerance).
 */

test('linear layer x·Wᵀ with W stored [out, in] (Gemm transB), over symbolic leading axes', () =>
  checkVjp(
    (ops, [x, w]) => ops.linearT(x, w),
    [
      { dims: ['batch', 'seq', 4], size: [2, 3, 4], grad: true },
      { dims: [5, 4], grad: false },
    ],
  ));

test('RMSNorm with a constant weight', () =>
  checkVjp(
    (ops, [x, w]) => ops.rmsNorm(x, w, 1e-5),
    [
      { dims: ['batch', 3, 6], size: [2, 3, 6], grad: true },
      { dims: [6], grad: false },
    ],
  ));

test('RMSNorm of small inputs, where eps matters', () =>
  checkVjp(
    (ops, [x, w]) => ops.rmsNorm(x, w, 1e-2),
    [
      { dims: [2, 5], grad: true, scale: 0.05 },
      { dims: [5], grad: false },
    ],
  ));

test('SiLU', () => checkVjp((ops, [a]) => ops.silu(ops.scale(a, 4)), [{ dims: [4, 5], grad: true }]));

test('rotary embedding (rotate-half) with cos/sin broadcast over batch and heads', () =>
  checkVjp(
    (ops, [x, cos, sin]) => ops.rotary(x, cos, sin),
    [
      { dims: ['batch', 'seq', 3, 4], size: [2, 3, 3, 4], grad: true },
      { dims: [3, 2], grad: false },
      { dims: [3, 2], grad: false },
    ],
  ));

test('grouped-query head repetition (2 kv heads → 6 query heads)', () =>
  checkVjp(
    (ops, [x, y]) => ops.mul(ops.repeatHeads(x, 3), y),
    [
      { dims: ['batch', 'seq', 2, 3], size: [2, 2, 2, 3], grad: true },
      { dims: ['batch', 'seq', 6, 3], size: [2, 2, 6, 3], grad: false },
    ],
  ));

test('GatherElements on the last axis, repeated indices accumulate', () =>
  checkVjp(
    (ops, [x, i]) => ops.gatherLast(x, i),
    [
      { dims: [2, 2, 5], grad: true },
      { dims: [2, 2, 3], grad: false, int64: true, values: [4, 0, 4, 1, 1, 2, 3, 3, 3, 0, 2, 4] },
    ],
  ));

test('ScatterElements into zeros on the last axis', () =>
  checkVjp(
    (ops, [v, i, like]) => ops.mul(ops.scatterLast(v, i, like), like),
    [
      { dims: [2, 3, 2], grad: true },
      { dims: [2, 3, 2], grad: false, int64: true, values: [3, 1, 0, 2, 1, 3, 2, 0, 0, 1, 3, 2] },
      { dims: [2, 3, 4], grad: false },
    ],
  ));

test('MoE top-k gates: softmax over the top-k router logits scattered into a dense [.., experts] tensor', () =>
  checkVjp(
    (ops, [logits]) => {
      const indices = raw.topKIndices(ops.b, logits, 2);
      return ops.scatterLast(ops.softmax(ops.gatherLast(logits, indices)), indices, logits);
    },
    // Well-separated logits, so that no ±h step changes which experts are selected.
    [{ dims: [2, 4], grad: true, values: [0.9, -0.3, 0.35, -0.8, -0.6, 0.1, 0.7, -0.05] }],
  ));

test('linear layer x·W + b with W stored [in, out] (GPT-2 Conv1D: Gemm with C, VJP a Gemm with transB)', () =>
  checkVjp(
    (ops, [x, w, bias]) => ops.linear(x, w, bias),
    [
      { dims: ['batch', 'seq', 4], size: [2, 3, 4], grad: true },
      { dims: [4, 5], grad: false },
      { dims: [5], grad: false },
    ],
  ));

test('linear layer x·Wᵀ + b over fixed leading axes (the output shape as a constant)', () =>
  checkVjp(
    (ops, [x, w, bias]) => ops.linearT(x, w, bias),
    [
      { dims: [2, 3, 4], grad: true },
      { dims: [5, 4], grad: false },
      { dims: [5], grad: false },
    ],
  ));

// The float32 graphs use ONNX Runtime's fused kernels (builder.contribNode, LayerNormalization, SimplifiedLayerNormalization)
// where the float64 graphs above spell the op out: each against the float64 graph, value and VJP.
const x3 = { dims: ['batch', 'seq', 6], size: [2, 3, 6], grad: true };
const constant = (n: number) => ({ dims: [n], grad: false });

test('float32 kernels against float64: RMSNorm (SimplifiedLayerNormalization) and LayerNorm (LayerNormalization)', async () => {
  await checkFloat32AgainstFloat64((ops, [x, w]) => ops.rmsNorm(x, w, 1e-6), [x3, constant(6)]);
  await checkFloat32AgainstFloat64((ops, [x, w, bias]) => ops.layerNorm(x, w, bias, 1e-5), [x3, constant(6), constant(6)]);
});

test('float32 kernels against float64: gelu_new (FastGelu), SiLU (QuickGelu), linear layers with bias (Gemm)', async () => {
  await checkFloat32AgainstFloat64((ops, [x]) => ops.geluNew(ops.scale(x, 3)), [x3]);
  await checkFloat32AgainstFloat64((ops, [x]) => ops.silu(ops.scale(x, 4)), [x3]);
  await checkFloat32AgainstFloat64((ops, [x, w, bias]) => ops.linearT(x, w, bias), [x3, { dims: [5, 6], grad: false }, constant(5)]);
  await checkFloat32AgainstFloat64((ops, [x, w, bias]) => ops.linear(x, w, bias), [x3, { dims: [6, 5], grad: false }, constant(5)]);
});

test('float32 kernels against float64: rotary embedding (RotaryEmbedding, its VJP with −sin)', () =>
  checkFloat32AgainstFloat64(
    (ops, [x, cos, sin]) => ops.rotary(x, cos, sin),
    [
      { dims: ['batch', 'seq', 3, 4], size: [2, 3, 3, 4], grad: true },
      { dims: [3, 2], grad: false },
      { dims: [3, 2], grad: false },
    ],
  ));

test('SwiGLU silu(gate) ⊙ up, both operands', () =>
  checkVjp(
    (ops, [gate, up]) => ops.swiglu(ops.scale(gate, 4), up),
    [
      { dims: ['batch', 3, 5], size: [2, 3, 5], grad: true },
      { dims: ['batch', 3, 5], size: [2, 3, 5], grad: true },
    ],
  ));

test('float32 kernels against float64: SwiGLU (QuickGelu and a product)', () =>
  checkFloat32AgainstFloat64((ops, [gate, up]) => ops.swiglu(ops.scale(gate, 4), up), [x3, x3]));

test('rotary embedding on a projection [batch, seq, heads·dHead] (2 heads of 4)', async () => {
  const specs = [
    { dims: ['batch', 'seq', 8], size: [2, 3, 8], grad: true },
    { dims: [3, 2], grad: false },
    { dims: [3, 2], grad: false },
  ];
  await checkVjp((ops, [x, cos, sin]) => ops.rotary(x, cos, sin), specs);
  await checkFloat32AgainstFloat64((ops, [x, cos, sin]) => ops.rotary(x, cos, sin), specs);
});
