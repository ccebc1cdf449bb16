import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type LoadedModel } from '../../src/engine/model/load';
import { readDataset, type Dataset } from '../../src/lib/dataset/jsonl';
import { LossScaler } from '../../src/engine/patching/atp';
import { runAttributionPatching } from '../../src/engine/patching/run';
import type { PatchingOptions } from '../../src/engine/patching/options';
import { planRun } from '../../src/engine/patching/methods';
import { prepareExamples } from '../../src/engine/patching/examples';
import { runCircuit } from '../../src/engine/circuits/run';
import { float16Unsupported } from '../../src/engine/process/runtime';
import { InputError } from '../../src/shared/errors';
import type { Result } from '../../src/shared/result';
import { flattenAttributions } from '../support/attributions';
import { writeRandomGptNeo, writeRandomLlamaFamily } from '../support/randomModels';
import { requireWebGpu } from '../support/webgpu';

/**
 * float16 compute (mixed precision: weights and activations float16; norms, softmax, attention scores, the metric
 * and the attributions' products and sums float32; the backward loss-scaled) against float32 on the same examples.
 *
 * Tolerance: 3e-2 of each hook kind's largest |attribution| (and of the largest |LD| for the logit differences).
 * float16's machine epsilon is 2^-10 ≈ 9.8e-4 (unit roundoff 4.9e-4). Every activation is rounded to float16 after
 * each op; a path from a hook through two to four layers to the metric and back crosses ~30 such roundings, and
 * the logit difference is a small difference of larger logits in the random models, which amplifies them. 3e-2 is
 * ~30 ε: room for that worst case (measured: at most 1.3e-2, Qwen2's attn_out; 1.2e-3 on the trained GPT-2s). A
 * loss scale not divided out (off by 2^12), vanished gradients (off by 100%) or a wrong cast that loses a term is far
 * outside it. The top 5 heads by |attribution| must be the same set, up to heads within the tolerance of the 5th.
 */
const TOLERANCE = 3e-2;
const TOP_K = 5;

const IOI = join(__dirname, '../../examples/ioi.jsonl');
const TINYSQL = join(__dirname, '../../examples/tinysql-cs1.jsonl');
let root: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-float16-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

const GQA = { nLayers: 2, nHeads: 4, nKvHeads: 2, dModel: 32 };
const LLAMA32_ROPE = { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 32 };

interface Family {
  name: string;
  model: () => string;
  data: string;
}

const FAMILIES: Family[] = [
  { name: 'GPT-2 (built-in ioi-demo, trained)', model: () => join(__dirname, '../../models/ioi-demo'), data: IOI },
  { name: 'GPT-2 (built-in tinysql-demo, trained)', model: () => join(__dirname, '../../models/tinysql-demo'), data: TINYSQL },
  {
    name: 'GPT-Neo (global + local attention, random)',
    model: () => written('neo', (dir) => writeRandomGptNeo(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 21, windowSize: 4 })),
    data: IOI,
  },
  {
    name: 'Llama 3.2 (GQA 4/2, RoPE with llama3 scaling, untied, random)',
    model: () =>
      written('llama', (dir) =>
        writeRandomLlamaFamily(dir, { ...GQA, modelType: 'llama', dMlp: 64, seed: 22, tied: false, ropeTheta: 500000, ropeScaling: LLAMA32_ROPE }),
      ),
    data: IOI,
  },
  {
    name: 'Qwen2 (GQA 4/2, RoPE, q/k/v biases, tied, random)',
    model: () => written('qwen2', (dir) => writeRandomLlamaFamily(dir, { ...GQA, modelType: 'qwen2', dMlp: 64, seed: 24, tied: true, ropeTheta: 1000000 })),
    data: IOI,
  },
];

function written(name: string, write: (dir: string) => void): string {
  const dir = join(root, name);
  write(dir);
  return dir;
}

/** max |a − b| / max |a|, and max |a| (so a test can also check the values are not trivially zero). */
function relativeError(expected: readonly number[], actual: readonly number[]): { error: number; scale: number } {
  assert.equal(actual.length, expected.length);
  let scale = 0;
  let error = 0;
  expected.forEach((v, i) => {
    scale = Math.max(scale, Math.abs(v));
    error = Math.max(error, Math.abs(v - actual[i]));
  });
  return { error: error / scale, scale };
}

const KINDS = ['z', 'resid_pre', 'attn_out', 'mlp_out'] as const;

/** Per hook kind (and for the logit differences, heads and token scores) the largest error relative to the largest value. */
function compare(reference: Result, half: Result): Record<string, number> {
  const expected = flattenAttributions(reference.examples.map((e) => e.attributions));
  const actual = flattenAttributions(half.examples.map((e) => e.attributions));
  const errors: Record<string, number> = {};
  for (const kind of KINDS) {
    const { error, scale } = relativeError(expected[kind], actual[kind]);
    assert.ok(scale > 0, `${kind}: attributions are not all zero`);
    for (const v of actual[kind]) assert.ok(Number.isFinite(v), `${kind}: every float16 attribution is finite`);
    errors[kind] = error;
  }
  const lds = (r: Result) => r.examples.flatMap((e) => [e.cleanLogitDiff, e.corruptedLogitDiff]);
  errors.logitDiffs = relativeError(lds(reference), lds(half)).error;
  errors.heads = relativeError(reference.heads.flat(), half.heads.flat()).error;
  errors.tokenScores = relativeError(
    reference.examples.flatMap((e) => e.tokenScores!.values),
    half.examples.flatMap((e) => e.tokenScores!.values),
  ).error;
  return errors;
}

/** Heads of the float32 top k missing from float16's top k, unless within tolerance·max of float32's k-th (a near-tie). */
function topHeadsDisagreeing(reference: Result, half: Result, k: number, tolerance: number): string[] {
  const ranked = (r: Result) =>
    r.heads.flatMap((row, layer) => row.map((value, head) => ({ id: `L${layer}H${head}`, size: Math.abs(value) }))).sort((a, b) => b.size - a.size);
  const expected = ranked(reference);
  const actual = new Set(
    ranked(half)
      .slice(0, k)
      .map((h) => h.id),
  );
  const kth = expected[k - 1].size;
  const slack = tolerance * expected[0].size;
  return expected
    .slice(0, k)
    .filter((h) => !actual.has(h.id) && h.size - kth > slack)
    .map((h) => h.id);
}

const run = (model: LoadedModel, dataset: Dataset, options: Partial<PatchingOptions>) =>
  runAttributionPatching(model, dataset, { device: 'cpu', batchSize: 8, method: 'atp', ...options });

test('float16 agrees with float32 on the CPU provider for GPT-2, GPT-Neo, Llama 3.2 and Qwen2 within 3e-2 of each largest value; top 5 heads agree', async () => {
  const table: string[] = [];
  for (const family of FAMILIES) {
    const model = loadModel(family.model());
    const dataset = readDataset(family.data);
    const reference = await run(model, dataset, { precision: 'float32' });
    const half = await run(model, dataset, { precision: 'float16' });
    assert.equal(half.runtime?.precision, 'float16', 'the Result says it ran in float16');
    assert.equal(reference.runtime?.precision, 'float32');
    assert.ok(half.runtime?.lossScale && half.runtime.lossScale.min >= 1, 'the loss scales are recorded');
    const errors = compare(reference, half);
    for (const [what, error] of Object.entries(errors)) assert.ok(error <= TOLERANCE, `${family.name}: ${what}: error ${error} > ${TOLERANCE}`);
    assert.deepEqual(topHeadsDisagreeing(reference, half, TOP_K, TOLERANCE), [], `${family.name}: top ${TOP_K} heads`);
    const shown = Object.entries(errors).map(([what, error]) => `${what} ${error.toExponential(1)}`);
    table.push(`${family.name}: ${shown.join(', ')}; loss scale 2^${Math.log2(half.runtime!.lossScale!.min)}…2^${Math.log2(half.runtime!.lossScale!.max)}`);
  }
  console.log(`float16 vs float32 on the CPU, error relative to the largest value:\n  ${table.join('\n  ')}`);
});

test('exact activation patching in float16 agrees with float32 (the forward-only graphs)', async () => {
  const model = loadModel(FAMILIES[0].model());
  const full = readDataset(IOI);
  // Three examples: one patched run per component and example is the cost.
  const dataset = { ...full, examples: full.examples.slice(0, 3) };
  const options = { method: 'exact' as const, batchSize: 32 };
  const reference = await run(model, dataset, { ...options, precision: 'float32' });
  const half = await run(model, dataset, { ...options, precision: 'float16' });
  assert.equal(half.run?.method, 'exact');
  const errors = compare(reference, half);
  // A patched LD minus the corrupted LD: a difference of two float16 forward passes, so the same tolerance holds on
  // the components that matter and the small ones carry the LD's own rounding (measured below).
  for (const [what, error] of Object.entries(errors)) assert.ok(error <= TOLERANCE, `exact: ${what}: error ${error} > ${TOLERANCE}`);
  console.log(`exact patching, float16 vs float32: ${Object.entries(errors).map(([w, e]) => `${w} ${e.toExponential(1)}`)}`);
});

/** Multiplies one F32 tensor of a written model in place (the test models' weights are F32). */
function scaleWeight(dir: string, name: string, factor: number): void {
  const entry = loadModel(dir).weights.get(name);
  assert.ok(entry && entry.dtype === 'F32', `${name} is an F32 tensor`);
  const bytes = Buffer.alloc(entry.length);
  const fd = openSync(entry.file, 'r+');
  try {
    readSync(fd, bytes, 0, entry.length, entry.offset);
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, entry.length / 4);
    for (let i = 0; i < values.length; i++) values[i] *= factor;
    writeSync(fd, bytes, 0, entry.length, entry.offset);
  } finally {
    closeSync(fd);
  }
}

function untiedLlama(name: string): string {
  return written(name, (dir) => writeRandomLlamaFamily(dir, { ...GQA, modelType: 'llama', dMlp: 64, seed: 22, tied: false }));
}

test('tiny gradients: they vanish in float16 without loss scaling, and dynamic loss scaling gives float32 numbers', async () => {
  // The unembedding × 1e-8: every gradient of LD is 1e8 times smaller (its largest ~1e-8, most far below
  // float16's smallest subnormal 6e-8), while the normalised attributions, a ratio, are the unscaled model's.
  // (Measured without scaling: × 1e-6 already costs 6–19% of each largest value, × 1e-7 32–47%.)
  const dir = untiedLlama('tiny-gradients');
  scaleWeight(dir, 'lm_head.weight', 1e-8);
  const model = loadModel(dir);
  const dataset = readDataset(IOI);
  const reference = await run(model, dataset, { precision: 'float32' });
  const unscaled = await run(model, dataset, { precision: 'float16', lossScale: 1 });
  const scaled = await run(model, dataset, { precision: 'float16' });

  const expected = flattenAttributions(reference.examples.map((e) => e.attributions));
  const lost = flattenAttributions(unscaled.examples.map((e) => e.attributions));
  const kept = flattenAttributions(scaled.examples.map((e) => e.attributions));
  for (const kind of KINDS) {
    // So the case does underflow: without scaling the attributions are mostly lost.
    const withoutScaling = relativeError(expected[kind], lost[kind]).error;
    assert.ok(withoutScaling > 10 * TOLERANCE, `${kind}: without loss scaling float16 loses the gradients (error ${withoutScaling})`);
    const { error } = relativeError(expected[kind], kept[kind]);
    assert.ok(error <= TOLERANCE, `${kind}: with dynamic loss scaling: error ${error}`);
  }
  assert.deepEqual(unscaled.runtime?.lossScale, { min: 1, max: 1 });
  assert.ok(scaled.runtime!.lossScale!.min >= 2 ** 24, `the loss scale rose to carry ~1e-8 gradients: ${JSON.stringify(scaled.runtime?.lossScale)}`);
});

test('large gradients: a loss scale that overflows is retried smaller; a fixed one that overflows is an error, never inf or NaN', async () => {
  // The unembedding × 1e4: gradients ~1e4 times larger, so 2^12 · gradient overflows float16 (65504).
  const dir = untiedLlama('large-gradients');
  scaleWeight(dir, 'lm_head.weight', 1e4);
  const model = loadModel(dir);
  const dataset = readDataset(IOI);
  const reference = await run(model, dataset, { precision: 'float32' });
  await assert.rejects(
    run(model, dataset, { precision: 'float16', lossScale: LossScaler.INITIAL }),
    (error: unknown) => error instanceof InputError && error.field === 'precision' && /gradients overflow float16's range/.test(error.message),
  );
  const half = await run(model, dataset, { precision: 'float16' });
  assert.ok(half.runtime!.lossScale!.max < LossScaler.INITIAL, `the scale came down: ${JSON.stringify(half.runtime?.lossScale)}`);
  for (const [what, error] of Object.entries(compare(reference, half))) assert.ok(error <= TOLERANCE, `${what}: error ${error}`);
});

test('a forward pass beyond float16 range is an error naming the precision, not a Result', async () => {
  // Embeddings × 1e5 (~5e4 per entry, beyond 65504 after a few sums): the residual stream overflows float16.
  const dir = untiedLlama('forward-overflow');
  scaleWeight(dir, 'model.embed_tokens.weight', 1e5);
  const model = loadModel(dir);
  const dataset = readDataset(IOI);
  await assert.rejects(
    run(model, dataset, { precision: 'float16' }),
    (error: unknown) => error instanceof InputError && error.field === 'precision' && /forward pass .* leaves float16's range/.test(error.message),
  );
  const reference = await run(model, dataset, { precision: 'float32' });
  assert.ok(
    reference.examples.every((e) => Number.isFinite(e.cleanLogitDiff)),
    'float32 runs the same model',
  );
});

test('float16 refuses AtP*, GradDrop and circuits by name; auto never picks AtP* in float16', async () => {
  const model = loadModel(FAMILIES[0].model());
  const dataset = readDataset(IOI);
  const prepared = prepareExamples(model, dataset, []);
  const refusal = (pattern: RegExp) => (error: unknown) => error instanceof InputError && error.field === 'precision' && pattern.test(error.message);
  assert.throws(() => planRun(model.spec, prepared, 'atpstar', 0, false, true, true), refusal(/not --method atpstar/));
  assert.throws(() => planRun(model.spec, prepared, 'auto', 0, true, true, true), refusal(/not --grad-drop/));
  // This dataset is where float32's auto takes AtP* (exact patching would exceed its budget).
  const long = prepared.map((p) => ({
    ...p,
    tokens: [...p.tokens, ...p.tokens, ...p.tokens],
    corruptedTokens: [...p.corruptedTokens, ...p.corruptedTokens, ...p.corruptedTokens],
  }));
  assert.equal(planRun(model.spec, long, 'auto', 0).method, 'atpstar');
  const auto = planRun(model.spec, long, 'auto', 0, false, true, true);
  assert.equal(auto.method, 'atp');
  assert.match(auto.reason, /AtP\* does not run in float16/);
  await assert.rejects(
    runCircuit(model, dataset, { device: 'cpu', batchSize: 8, precision: 'float16' }, { method: 'eap', selection: { rule: 'top-n', edges: 5 } }),
    refusal(/not circuits/),
  );
});

test('WebGPU: float16 agrees with float32 where the adapter has shader-f16, and is refused by name where it does not', async (t: TestContext) => {
  if (!(await requireWebGpu(t))) return;
  const model = loadModel(FAMILIES[0].model());
  const dataset = readDataset(IOI);
  const unsupported = await float16Unsupported('webgpu');
  if (unsupported) {
    await assert.rejects(
      runAttributionPatching(model, dataset, { device: 'webgpu', batchSize: 8, precision: 'float16' }),
      (error: unknown) => error instanceof InputError && error.field === 'precision' && /cannot run on webgpu.*shader-f16/.test(error.message),
    );
    t.diagnostic(`the WebGPU adapter lacks shader-f16 (${unsupported}): float16 is refused there, as tested; its accuracy on WebGPU is not measured here`);
    return;
  }
  const reference = await run(model, dataset, { precision: 'float32' });
  const half = await runAttributionPatching(model, dataset, { device: 'webgpu', batchSize: 8, method: 'atp', precision: 'float16' });
  assert.equal(half.runtime?.provider, 'WebGpuExecutionProvider');
  const errors = compare(reference, half);
  for (const [what, error] of Object.entries(errors)) assert.ok(error <= TOLERANCE, `webgpu: ${what}: error ${error}`);
  assert.deepEqual(topHeadsDisagreeing(reference, half, TOP_K, TOLERANCE), []);
  console.log(`WebGPU float16 vs CPU float32: ${Object.entries(errors).map(([w, e]) => `${w} ${e.toExponential(1)}`)}`);
});
