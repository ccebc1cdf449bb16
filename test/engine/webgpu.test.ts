import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Dim, GraphBuilder, type Value } from '../../src/engine/graph/builder';
import { Ops, raw } from '../../src/engine/graph/ops';
import { gradients } from '../../src/engine/graph/autodiff';
import { createSession } from '../../src/engine/process/runtime';
import { loadModel } from '../../src/engine/model/load';
import { readDataset } from '../../src/lib/dataset/jsonl';
import { generateTinySql } from '../../src/lib/dataset/tinysql';
import { runAttributionPatching } from '../../src/engine/patching/run';
import type { Result } from '../../src/shared/result';
import { flattenAttributions } from '../support/attributions';
import { maxError, requestFor, runFamiliesReference } from '../support/familiesReference';
import { requireTorchReference, type ReferenceResponse } from '../support/reference';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { writeRandomGptNeo, writeRandomLlamaFamily } from '../support/randomModels';
import { seededRandom } from '../support/random';
import { requireWebGpu } from '../support/webgpu';

/**
 * WebGPU as a first-class device: every op the graphs use, every op's VJP, every model family and the shipped demo
 * model, run on ONNX Runtime's WebGPU provider and compared with an independent float64 computation (the host's
 * Math for single ops, the CPU provider in float64 for VJPs, PyTorch float64 for the families, the CPU provider for
 * the demo model). WebGPU has no float64, so the device side is float32 throughout; tolerances are stated per test.
 * Without a WebGPU adapter every test here skips with the reason (fails with ATP_WEBGPU_REQUIRED=1). CI runs them on
 * SwiftShader (VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json), a software Vulkan device.
 */

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-webgpu-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

const WEBGPU = 'WebGpuExecutionProvider';

// ---- single ops against the host's float64 Math --------------------------------------------------------

/**
 * Tolerances measured on SwiftShader, with headroom, as |device − exact| ≤ abs + rel·|exact|. The float32 result of
 * a correctly rounded op is within 6e-8 relative; Vulkan allows its transcendental ops more: Exp 3 + 2·|x| ulp
 * (measured 1e-6 relative), Tanh/Sigmoid are built from Exp (1.2e-7 absolute measured). Sin and Cos are NOT used
 * by any graph (Vulkan allows 2^-11 absolute, SwiftShader is 1.9e-4 off; rotary.ts builds RoPE from host tables),
 * and the test below measures that so the reason stays visible.
 */
const UNARY: Array<{ op: string; lo: number; hi: number; exact: (x: number) => number; abs: number; rel: number }> = [
  { op: 'Exp', lo: -20, hi: 5, exact: Math.exp, abs: 0, rel: 4e-6 },
  { op: 'Tanh', lo: -6, hi: 6, exact: Math.tanh, abs: 1e-6, rel: 0 },
  { op: 'Sigmoid', lo: -12, hi: 12, exact: (x) => 1 / (1 + Math.exp(-x)), abs: 1e-6, rel: 0 },
  { op: 'Sqrt', lo: 1e-4, hi: 100, exact: Math.sqrt, abs: 0, rel: 2.5e-7 },
  { op: 'Reciprocal', lo: 0.01, hi: 100, exact: (x) => 1 / x, abs: 0, rel: 2.5e-7 },
  { op: 'Neg', lo: -5, hi: 5, exact: (x) => -x, abs: 0, rel: 0 },
];

async function runOnWebGpu(
  b: GraphBuilder,
  feeds: Record<string, ort.Tensor>,
): Promise<{ out: ort.InferenceSession.OnnxValueMapType; placement: Record<string, number> }> {
  const handle = await createSession(b.toBytes(), 'webgpu', { optimization: 'all' });
  assert.equal(handle.device, 'webgpu', `the session runs on WebGPU (${handle.notes.join('; ')})`);
  const out = await handle.session.run(feeds);
  await handle.session.release();
  return { out, placement: handle.observer.info().placement ?? {} };
}

test('single ops on WebGPU against float64 Math (tolerances per op in UNARY); Sin/Cos are too coarse to use', async (t) => {
  if (!(await requireWebGpu(t))) return;
  const n = 4096;
  for (const { op, lo, hi, exact, abs, rel } of UNARY) {
    const b = new GraphBuilder('float32');
    const x = b.input('x', 'float32', [n]);
    b.output(b.node(op, [x], {}, { dtype: 'float32', shape: [n] }), 'y');
    const xs = Float32Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
    const { out, placement } = await runOnWebGpu(b, { x: new ort.Tensor('float32', xs, [n]) });
    assert.deepEqual(placement, { [WEBGPU]: 1 }, `${op} ran on WebGPU`);
    const y = out.y.data as Float32Array;
    let worst = 0;
    xs.forEach((v, i) => {
      const e = exact(v);
      const error = Math.abs(y[i] - e);
      if (error > 0) worst = Math.max(worst, error / (abs + rel * Math.abs(e)));
      assert.ok(error <= abs + rel * Math.abs(e), `${op}(${v}) = ${y[i]}, exact ${e}`);
    });
    console.log(`${op} on WebGPU: largest error ${worst.toFixed(2)} of its tolerance (abs ${abs}, rel ${rel})`);
  }
  // Measured, not required: the reason RoPE does not use Sin/Cos on the device.
  const b = new GraphBuilder('float32');
  const x = b.input('x', 'float32', [n]);
  b.output(b.node('Sin', [x], {}, { dtype: 'float32', shape: [n] }), 'y');
  const xs = Float32Array.from({ length: n }, (_, i) => (3 * i) / (n - 1));
  const y = (await runOnWebGpu(b, { x: new ort.Tensor('float32', xs, [n]) })).out.y.data as Float32Array;
  console.log(
    `Sin on WebGPU over [0, 3]: largest absolute error ${Math.max(...Array.from(xs, (v, i) => Math.abs(y[i] - Math.sin(v)))).toExponential(2)} (not used by any graph)`,
  );
});

test('the fused float32 kernels the graphs use (norms, activations, RoPE) run on WebGPU, not on the CPU', async (t) => {
  if (!(await requireWebGpu(t))) return;
  const b = new GraphBuilder('float32');
  const ops = new Ops(b);
  const x = b.input('x', 'float32', [2, 3, 8]);
  const w = b.input('w', 'float32', [8]);
  const table = b.input('table', 'float32', [3, 2]);
  const y = ops.rotary(ops.swiglu(ops.geluNew(ops.layerNorm(ops.rmsNorm(x, w, 1e-6), w, w, 1e-5)), x), table, table);
  b.output(y, 'y');
  const data = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1));
  const { out, placement } = await runOnWebGpu(b, {
    x: new ort.Tensor('float32', data(48), [2, 3, 8]),
    w: new ort.Tensor('float32', data(8), [8]),
    table: new ort.Tensor('float32', data(6), [3, 2]),
  });
  // SimplifiedLayerNormalization, LayerNormalization, FastGelu, QuickGelu, Mul, RotaryEmbedding (its position offset is a constant).
  assert.deepEqual(placement, { [WEBGPU]: 6 }, JSON.stringify(placement));
  assert.ok(Array.from(out.y.data as Float32Array).every(Number.isFinite));
});

test('placement comes from the session itself: an op WebGPU lacks runs on the CPU and is a warning', async (t) => {
  if (!(await requireWebGpu(t))) return;
  const b = new GraphBuilder('float32');
  const x = b.input('x', 'float32', [2, 2]);
  const y = b.node('Neg', [x], {}, { dtype: 'float32', shape: [2, 2] });
  b.output(b.node('Round', [y], {}, { dtype: 'float32', shape: [2, 2] }), 'y');
  const handle = await createSession(b.toBytes(), 'webgpu', { optimization: 'basic' });
  assert.equal(handle.observer.info().placement, undefined, 'unknown before the first run');
  const out = await handle.session.run({ x: new ort.Tensor('float32', Float32Array.from([0.4, -1.6, 2.5, 3]), [2, 2]) });
  assert.deepEqual(Array.from(out.y.data as Float32Array), [-0, 2, -2, -3]);
  const placement = handle.observer.info().placement!;
  // Neg on WebGPU (with the copies ONNX Runtime inserts between the devices, which count as WebGPU nodes), Round on the CPU.
  assert.equal(placement.CPUExecutionProvider, 1);
  assert.ok(placement[WEBGPU] >= 1, JSON.stringify(placement));
  assert.deepEqual(handle.observer.warnings(), [
    '1 compute node(s) ran on the CPU because webgpu does not support them (Round ×1); results are still correct, but data moves between the devices',
  ]);
  await handle.session.release();
});

// ---- VJPs: float32 on WebGPU against float64 on the CPU -------------------------------------------------

interface Input {
  dims: Dim[];
  size?: number[];
  grad: boolean;
  positive?: boolean;
  int64?: number[];
}

/**
 * Builds y = build(inputs) and its VJP against a random cotangent twice, float64 for the CPU and float32 for WebGPU,
 * on the same inputs (float32 values, so both sides start from identical numbers), and compares y and every
 * gradient. Tolerance 2e-5 of the largest magnitude of each compared tensor: float32 rounding (6e-8 per op) over
 * graphs of at most ~30 ops and reductions of ≤ 30 terms stays below 1e-5; a wrong kernel is off by far more.
 */
async function compareVjp(label: string, build: (ops: Ops, inputs: Value[]) => Value, specs: Input[]): Promise<number> {
  const random = seededRandom(7);
  const sizes = specs.map((s) => s.size ?? (s.dims as number[]));
  const data = specs.map((s, i) =>
    s.int64 ? s.int64 : Array.from({ length: sizes[i].reduce((p, q) => p * q, 1) }, () => Math.fround(s.positive ? 0.5 + random() : random() * 2 - 1)),
  );
  const graph = (precision: 'float32' | 'float64') => {
    const b = new GraphBuilder(precision);
    const ops = new Ops(b);
    const raws = specs.map((s, i) => b.input(`x${i}`, s.int64 ? 'int64' : precision, s.dims));
    const inputs = raws.map((v, i) => (specs[i].grad ? ops.tap(v, `tap${i}`) : v));
    const y = build(ops, inputs);
    const cotangent = b.input('cotangent', precision, [...y.shape]);
    const wrt = inputs.filter((_, i) => specs[i].grad);
    const grads = gradients(ops, y, cotangent, wrt);
    b.output(y, 'y');
    wrt.forEach((v, k) => b.output(grads.get(v.name)!, `grad${k}`));
    return { b, yShape: y.shape };
  };
  const g64 = graph('float64');
  const g32 = graph('float32');
  const symbols = new Map<string, number>();
  specs.forEach((s, i) => s.dims.forEach((d, j) => typeof d === 'string' && symbols.set(d, sizes[i][j])));
  const yShape = g64.yShape.map((d) => (typeof d === 'number' ? d : symbols.get(d)!));
  const cot = Array.from({ length: yShape.reduce((p, q) => p * q, 1) }, () => Math.fround(random() * 2 - 1));
  const feeds = (precision: 'float32' | 'float64') => {
    const Float = precision === 'float64' ? Float64Array : Float32Array;
    const tensors: Record<string, ort.Tensor> = { cotangent: new ort.Tensor(precision, Float.from(cot), yShape) };
    specs.forEach((s, i) => {
      tensors[`x${i}`] = s.int64
        ? new ort.Tensor('int64', BigInt64Array.from(data[i], BigInt), sizes[i])
        : new ort.Tensor(precision, Float.from(data[i]), sizes[i]);
    });
    return tensors;
  };
  const cpu = await ort.InferenceSession.create(g64.b.toBytes(), { executionProviders: ['cpu'] });
  const expected = await cpu.run(feeds('float64'));
  await cpu.release();
  const { out, placement } = await runOnWebGpu(g32.b, feeds('float32'));
  assert.ok((placement[WEBGPU] ?? 0) > 0, `${label}: nodes ran on WebGPU (${JSON.stringify(placement)})`);
  let worst = 0;
  for (const name of Object.keys(expected)) {
    const { error, scale } = maxError(Array.from(out[name].data as Float32Array), Array.from(expected[name].data as Float64Array));
    assert.ok(scale > 0, `${label}: ${name} is not all zero`);
    assert.ok(error <= 2e-5 * scale, `${label}: ${name}: error ${error} vs scale ${scale}`);
    worst = Math.max(worst, error / scale);
  }
  return worst;
}

/** The cases of test/engine/vjp.test.ts and vjpFamilies.test.ts (every differentiable op), at the same sizes. */
const VJP_CASES: Array<[string, (ops: Ops, inputs: Value[]) => Value, Input[]]> = [
  [
    'Add with broadcasting',
    (ops, [a, c]) => ops.add(a, c),
    [
      { dims: [2, 1, 4], grad: true },
      { dims: [3, 1], grad: true },
    ],
  ],
  [
    'Sub',
    (ops, [a, c]) => ops.sub(a, c),
    [
      { dims: [2, 3, 4], grad: true },
      { dims: [4], grad: true },
    ],
  ],
  [
    'Mul with a constant',
    (ops, [a, c, k]) => ops.mul(ops.mul(a, c), k),
    [
      { dims: [2, 3], grad: true },
      { dims: [1, 3], grad: true },
      { dims: [2, 1], grad: false },
    ],
  ],
  [
    'Div',
    (ops, [a, c]) => ops.div(a, c),
    [
      { dims: [3, 4], grad: true },
      { dims: [3, 1], grad: true, positive: true },
    ],
  ],
  [
    'MatMul, batched',
    (ops, [a, c]) => ops.matmul(a, c),
    [
      { dims: [2, 3, 4], grad: true },
      { dims: [2, 4, 5], grad: true },
    ],
  ],
  [
    'MatMul, 2-D right operand',
    (ops, [a, c]) => ops.matmul(a, c),
    [
      { dims: ['batch', 3, 4], size: [2, 3, 4], grad: true },
      { dims: [4, 2], grad: true },
    ],
  ],
  [
    'Reshape and Transpose',
    (ops, [a]) => ops.transpose(ops.reshape(a, [0, 0, 2, 3]), [0, 2, 1, 3]),
    [{ dims: ['batch', 'seq', 6], size: [2, 3, 6], grad: true }],
  ],
  [
    'Split',
    (ops, [a]) => {
      const [p, , r] = ops.splitLast(a, [2, 3, 2]);
      return ops.mul(p, r);
    },
    [{ dims: [2, 7], grad: true }],
  ],
  [
    'ReduceSum',
    (ops, [a]) => ops.add(ops.reduceSum(a, [1], false), ops.reduceSum(ops.reduceSum(a, [-1], true), [1], false)),
    [{ dims: [2, 3, 4], grad: true }],
  ],
  ['Softmax', (ops, [a]) => ops.softmax(a), [{ dims: [2, 3, 5], grad: true }]],
  [
    'LayerNorm',
    (ops, [x, w, bias]) => ops.layerNorm(x, w, bias, 1e-5),
    [
      { dims: ['batch', 3, 6], size: [2, 3, 6], grad: true },
      { dims: [6], grad: false },
      { dims: [6], grad: false },
    ],
  ],
  ['gelu_new', (ops, [a]) => ops.geluNew(ops.scale(a, 3)), [{ dims: [4, 5], grad: true }]],
  [
    'taps and fan-out',
    (ops, [a]) => {
      const inner = ops.tap(ops.mul(a, a), 'inner');
      return ops.add(ops.mul(inner, a), ops.softmax(inner));
    },
    [{ dims: [3, 4], grad: true }],
  ],
  [
    'linearT',
    (ops, [x, w]) => ops.linearT(x, w),
    [
      { dims: ['batch', 'seq', 4], size: [2, 3, 4], grad: true },
      { dims: [5, 4], grad: false },
    ],
  ],
  [
    'RMSNorm',
    (ops, [x, w]) => ops.rmsNorm(x, w, 1e-5),
    [
      { dims: ['batch', 3, 6], size: [2, 3, 6], grad: true },
      { dims: [6], grad: false },
    ],
  ],
  ['SiLU', (ops, [a]) => ops.silu(ops.scale(a, 4)), [{ dims: [4, 5], grad: true }]],
  [
    'SwiGLU',
    (ops, [gate, up]) => ops.swiglu(ops.scale(gate, 4), up),
    [
      { dims: [4, 5], grad: true },
      { dims: [4, 5], grad: true },
    ],
  ],
  [
    'rotary',
    (ops, [x, cos, sin]) => ops.rotary(x, cos, sin),
    [
      { dims: ['batch', 'seq', 3, 4], size: [2, 3, 3, 4], grad: true },
      { dims: [3, 2], grad: false },
      { dims: [3, 2], grad: false },
    ],
  ],
  [
    'repeatHeads',
    (ops, [x, y]) => ops.mul(ops.repeatHeads(x, 3), y),
    [
      { dims: ['batch', 'seq', 2, 3], size: [2, 2, 2, 3], grad: true },
      { dims: ['batch', 'seq', 6, 3], size: [2, 2, 6, 3], grad: false },
    ],
  ],
  [
    'GatherElements',
    (ops, [x, i]) => ops.gatherLast(x, i),
    [
      { dims: [2, 2, 5], grad: true },
      { dims: [2, 2, 3], grad: false, int64: [4, 0, 4, 1, 1, 2, 3, 3, 3, 0, 2, 4] },
    ],
  ],
  [
    'ScatterElements',
    (ops, [v, i, like]) => ops.mul(ops.scatterLast(v, i, like), like),
    [
      { dims: [2, 3, 2], grad: true },
      { dims: [2, 3, 2], grad: false, int64: [3, 1, 0, 2, 1, 3, 2, 0, 0, 1, 3, 2] },
      { dims: [2, 3, 4], grad: false },
    ],
  ],
  [
    'MoE top-k gates',
    (ops, [logits]) => {
      const indices = raw.topKIndices(ops.b, logits, 2);
      return ops.scatterLast(ops.softmax(ops.gatherLast(logits, indices)), indices, logits);
    },
    [{ dims: [2, 4], grad: true }],
  ],
];

test("every op and its VJP: float32 on WebGPU equals float64 on the CPU within 2e-5 of each tensor's scale", async (t) => {
  if (!(await requireWebGpu(t))) return;
  let worst = 0;
  for (const [label, build, specs] of VJP_CASES) worst = Math.max(worst, await compareVjp(label, build, specs));
  console.log(`VJPs on WebGPU: ${VJP_CASES.length} cases, largest relative error ${worst.toExponential(2)} (tolerance 2e-5)`);
});

// ---- every family against the PyTorch float64 reference -------------------------------------------------

const GQA = { nLayers: 2, nHeads: 4, nKvHeads: 2, dModel: 32 };
const MULTIPLIERS = { embedding: 4.0, attention: 0.2, residual: 0.6, logitsScaling: 2.5 };
const FAMILIES: Array<[string, (dir: string) => void]> = [
  ['GPT-2', (dir) => writeRandomGpt2(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 20 })],
  ['GPT-Neo (local attention)', (dir) => writeRandomGptNeo(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 21, windowSize: 4 })],
  [
    'Llama 3.2 (GQA, llama3 rope scaling)',
    (dir) =>
      writeRandomLlamaFamily(dir, {
        ...GQA,
        modelType: 'llama',
        dMlp: 64,
        seed: 22,
        tied: false,
        ropeTheta: 500000,
        ropeScaling: { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 32 },
      }),
  ],
  ['Qwen2 (q/k/v biases)', (dir) => writeRandomLlamaFamily(dir, { ...GQA, modelType: 'qwen2', dMlp: 64, seed: 24, tied: true, ropeTheta: 1000000 })],
  ['Granite (multipliers)', (dir) => writeRandomLlamaFamily(dir, { ...GQA, modelType: 'granite', dMlp: 64, seed: 25, tied: true, multipliers: MULTIPLIERS })],
  [
    'GraniteMoE (4 experts top-2)',
    (dir) =>
      writeRandomLlamaFamily(dir, {
        ...GQA,
        modelType: 'granitemoe',
        dMlp: 24,
        seed: 26,
        tied: false,
        multipliers: MULTIPLIERS,
        experts: { count: 4, topK: 2 },
      }),
  ],
];

/**
 * Largest error relative to the largest magnitude, over logit differences and each kind of attribution. The
 * attributions are compared before normalisation (each side times its own n·(LD_clean − LD_corrupted)): the
 * normalisation divides by a difference of means that can be tiny for a random model (9e-4 against logit
 * differences of 2.9 for the Granite one here), which would amplify float32's 1e-7 in the logit differences into
 * 1e-4 in every attribution, on the CPU as much as on WebGPU. The CPU tests check the normalisation itself.
 */
function relativeError(result: Result, expected: ReferenceResponse): number {
  const lds = maxError(
    result.examples.flatMap((e) => [e.cleanLogitDiff, e.corruptedLogitDiff]),
    expected.cleanLogitDiffs.flatMap((c, i) => [c, expected.corruptedLogitDiffs[i]]),
  );
  let worst = lds.error / lds.scale;
  const n = result.examples.length;
  const ours = flattenAttributions(result.examples.map((e) => e.attributions));
  const oursScale = n * (result.metric.cleanLogitDiff - result.metric.corruptedLogitDiff);
  const theirsScale = n * (expected.cleanLogitDiff - expected.corruptedLogitDiff);
  for (const kind of ['z', 'resid_pre', 'attn_out', 'mlp_out'] as const) {
    const theirs = (expected.attributions[kind].flat(3) as number[]).map((v) => v * theirsScale);
    const { error, scale } = maxError(
      ours[kind].map((v) => v * oursScale),
      theirs,
    );
    assert.ok(scale > 1e-4, `${kind} attributions are not trivially zero`);
    worst = Math.max(worst, error / scale);
  }
  return worst;
}

/**
 * Tolerance 1e-4 relative to each set's largest magnitude: float32 rounding (6e-8 per op) over two layers, the
 * forward and the backward pass; measured on SwiftShader 7e-7 (Llama) to 1.6e-5 (GraniteMoE: multipliers up to 4
 * and a 2.5 logit divisor scale the rounding up). A wrong formula or kernel is off by orders of magnitude more.
 */
test('every family on WebGPU (float32) matches the PyTorch float64 reference within 1e-4', async (t) => {
  if (!(await requireWebGpu(t))) return;
  requireTorchReference();
  const dataset = readDataset(join(__dirname, '../../examples/ioi.jsonl'));
  const runs: Array<{ name: string; dir: string; result: Result }> = [];
  for (const [i, [name, write]] of FAMILIES.entries()) {
    const dir = join(root, `family-${i}`);
    write(dir);
    // exactTokens false: the reference is AtP's, and resid_pre at layer 0 would otherwise hold the exact token effects.
    const result = await runAttributionPatching(loadModel(dir), dataset, { device: 'webgpu', batchSize: 8, precision: 'float32', exactTokens: false });
    assert.equal(result.device, 'webgpu', `${name}: ran on WebGPU (${result.warnings.join('; ')})`);
    assert.equal(result.runtime?.provider, WEBGPU);
    assert.ok((result.runtime?.placement?.[WEBGPU] ?? 0) > 0, `${name}: nodes were placed on WebGPU`);
    assert.deepEqual(
      result.warnings.filter((w) => w.includes('ran on the CPU')),
      [],
      `${name}: every compute node runs on WebGPU`,
    );
    runs.push({ name, dir, result });
  }
  const responses = runFamiliesReference(runs.map((r) => requestFor(r.result, r.dir)));
  runs.forEach((run, i) => {
    const error = relativeError(run.result, responses[i]);
    const placement = Object.entries(run.result.runtime!.placement!)
      .map(([p, n]) => `${n} ${p.replace(/ExecutionProvider$/, '')}`)
      .join(', ');
    console.log(`${run.name} on WebGPU: largest relative error ${error.toExponential(2)} (tolerance 1e-4); nodes ${placement}`);
    assert.ok(error <= 1e-4, `${run.name}: ${error}`);
  });
});

// ---- the shipped demo model ----------------------------------------------------------------------------

test("the shipped demo model on WebGPU gives the CPU's numbers (within 1e-4 of each set's scale) and the same top heads", async (t) => {
  if (!(await requireWebGpu(t))) return;
  const model = loadModel(resolve(__dirname, '../../models/tinysql-demo'));
  const { examples } = generateTinySql(model.tokenizer, { feature: 'DefTableName', commandSet: 1, count: 8, seed: 11 });
  const dataset = { file: 'DefTableName.jsonl', examples };
  const options = { batchSize: 8, precision: 'float32' as const };
  const cpu = await runAttributionPatching(model, dataset, { ...options, device: 'cpu' });
  const gpu = await runAttributionPatching(model, dataset, { ...options, device: 'webgpu' });
  assert.equal(gpu.device, 'webgpu');
  const placement = gpu.runtime?.placement ?? {};
  console.log(`demo model on WebGPU: nodes ${JSON.stringify(placement)}; warnings ${JSON.stringify(gpu.warnings)}`);
  assert.ok((placement[WEBGPU] ?? 0) > 10 * (placement.CPUExecutionProvider ?? 0), 'nearly every node runs on WebGPU');
  assert.deepEqual(
    gpu.warnings.filter((w) => w.includes('ran on the CPU')),
    [],
    'the CPU nodes are shape computations only',
  );
  const lds = maxError(
    gpu.examples.flatMap((e) => [e.cleanLogitDiff, e.corruptedLogitDiff]),
    cpu.examples.flatMap((e) => [e.cleanLogitDiff, e.corruptedLogitDiff]),
  );
  let worst = lds.error / lds.scale;
  const ours = flattenAttributions(gpu.examples.map((e) => e.attributions));
  const theirs = flattenAttributions(cpu.examples.map((e) => e.attributions));
  for (const kind of ['z', 'resid_pre', 'attn_out', 'mlp_out'] as const) {
    const { error, scale } = maxError(ours[kind], theirs[kind]);
    worst = Math.max(worst, error / scale);
  }
  console.log(`demo model on WebGPU vs CPU: largest relative error ${worst.toExponential(2)} (tolerance 1e-4)`);
  assert.ok(worst <= 1e-4, `${worst}`);
  const top = (r: Result) =>
    r.heads
      .flatMap((row, l) => row.map((v, h) => ({ v, id: `L${l}H${h}` })))
      .sort((a, b) => Math.abs(b.v) - Math.abs(a.v))
      .slice(0, 3)
      .map((x) => x.id);
  assert.deepEqual(top(gpu), top(cpu));
});
