import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type LoadedModel } from '../../src/engine/model/load';
import { readDataset, type Dataset } from '../../src/lib/dataset/jsonl';
import { runAttributionPatching } from '../../src/engine/patching/run';
import type { PatchingOptions } from '../../src/engine/patching/options';
import { fileHash, mergeShards, parseShard, readShards, runShard, shardRange, type ShardFile } from '../../src/engine/patching/shards';
import { parseResult, refuseShard, type Result, serializeResult } from '../../src/shared/result';
import { writeRandomGpt2 } from '../support/randomGpt2';

/**
 * The merge of a dataset's shards against one run over the whole dataset, on a random GPT-2 in float64.
 * Tolerance: every number within 1e-12 × the largest |value| of its field in the single run (float64 rounding:
 * per-example values are the same products, only sums over examples may add in another order).
 */

const IOI = join(__dirname, '../../examples/ioi.jsonl');
const TOLERANCE = 1e-12;
let root: string;
let model: LoadedModel;
let dataset: Dataset;
let hash: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-shards-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
  writeRandomGpt2(join(root, 'model'), { nLayers: 2, nHeads: 4, dModel: 32, seed: 3 });
  model = loadModel(join(root, 'model'));
  dataset = readDataset(IOI);
  hash = fileHash(IOI);
});
after(() => rmSync(root, { recursive: true, force: true }));

const options = (extra: Partial<PatchingOptions> = {}): PatchingOptions => ({ device: 'cpu', batchSize: 3, precision: 'float64', method: 'atp', ...extra });

/** Runs every shard of n, written and read back as files (so the JSON round trip is part of what is tested). */
async function shards(count: number, extra: Partial<PatchingOptions> = {}, order?: number[]): Promise<ShardFile[]> {
  const files: string[] = [];
  for (let index = 1; index <= count; index++) {
    const result = await runShard(model, dataset, options(extra), { index, count, datasetHash: hash });
    const file = join(root, `shard-${count}-${index}-${extra.method ?? 'atp'}.json`);
    writeFileSync(file, serializeResult(result));
    files.push(file);
  }
  return readShards((order ?? files.map((_, i) => i)).map((i) => files[i]));
}

const SKIP = new Set(['createdAt', 'timings', 'merged', 'reason', 'passes']);

/** Largest |number| under a value. */
function largest(value: unknown): number {
  if (typeof value === 'number') return Math.abs(value);
  if (Array.isArray(value)) return value.reduce((m: number, v) => Math.max(m, largest(v)), 0);
  if (value && typeof value === 'object') return Object.values(value).reduce((m: number, v) => Math.max(m, largest(v)), 0);
  return 0;
}

/** Asserts `ours` equals `expected` (numbers within the tolerance, relative to the field's largest value); returns the worst error seen. */
function compare(ours: unknown, expected: unknown, path: string, fieldScale: number): number {
  if (typeof expected === 'number') {
    assert.equal(typeof ours, 'number', path);
    const error = Math.abs((ours as number) - expected);
    assert.ok(error <= TOLERANCE * fieldScale, `${path}: ${ours} vs ${expected} (error ${error}, allowed ${TOLERANCE * fieldScale})`);
    return fieldScale > 0 ? error / fieldScale : 0;
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(ours) && ours.length === expected.length, `${path}: length`);
    return expected.reduce((m: number, v, i) => Math.max(m, compare((ours as unknown[])[i], v, `${path}[${i}]`, fieldScale)), 0);
  }
  if (expected && typeof expected === 'object') {
    assert.ok(ours && typeof ours === 'object', path);
    const keys = (o: object) =>
      Object.keys(o)
        .filter((k) => (o as Record<string, unknown>)[k] !== undefined && !SKIP.has(k))
        .sort();
    assert.deepEqual(keys(ours as object), keys(expected), `${path}: keys`);
    let worst = 0;
    for (const key of keys(expected)) {
      const e = (expected as Record<string, unknown>)[key];
      const o = (ours as Record<string, unknown>)[key];
      // A field's scale: its own largest value at the top level and per example (examples differ in size).
      const scale = path === 'result' || /^result\.examples\[\d+\]$/.test(path) ? largest(e) : fieldScale;
      worst = Math.max(worst, compare(o, e, `${path}.${key}`, scale));
    }
    return worst;
  }
  assert.deepEqual(ours, expected, path);
  return 0;
}

function assertSame(merged: Result, single: Result): number {
  assert.ok(merged.examples.length === single.examples.length && single.examples.length === 8);
  assert.deepEqual(merged.run?.passes, single.run?.passes, "passes: the shards' passes add up to the single run's");
  const worst = compare(merged, single, 'result', 0);
  // The comparison can fail: one value off by 1e-9 of its field is caught.
  const off = structuredClone(merged);
  off.examples[7].attributions.mlpOut[1][3] += 1e-9 * largest(single.examples[7]);
  assert.throws(() => compare(off, single, 'result', 0), /mlpOut\[1\]\[3\]/);
  return worst;
}

test('shardRange: contiguous slices covering the dataset, sizes differing by at most one', () => {
  for (const total of [0, 1, 7, 8]) {
    for (const count of [1, 2, 3, 5, 9]) {
      let next = 0;
      const sizes: number[] = [];
      for (let i = 1; i <= count; i++) {
        const { first, size } = shardRange(total, i, count);
        assert.equal(first, next);
        next += size;
        sizes.push(size);
      }
      assert.equal(next, total);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
    }
  }
  assert.deepEqual(parseShard('2/3'), { index: 2, count: 3 });
  for (const bad of ['0/3', '4/3', '1/0', 'a/b', '2', '1/2/3']) assert.throws(() => parseShard(bad), /--shard: expected i\/n/);
});

test('a shard holds raw values: the normalised run times n·(LD_clean − LD_corrupted)', async () => {
  const single = await runAttributionPatching(model, dataset, options());
  const [whole] = await shards(1);
  assert.deepEqual(whole.result.shard, { index: 1, count: 1, firstExample: 0, datasetExamples: 8, datasetHash: hash });
  const { cleanLogitDiff, corruptedLogitDiff } = single.metric;
  const gap = 8 * (cleanLogitDiff - corruptedLogitDiff);
  const raw = whole.result.examples[2].attributions.z[1].at(-1)![3];
  assert.ok(Math.abs(raw / gap - single.examples[2].attributions.z[1].at(-1)![3]) <= 1e-12 * Math.abs(raw / gap));
  assert.ok(Math.abs(raw) > 1e-6 && Math.abs(gap - 1) > 1e-3, `the raw value differs from the normalised one (raw ${raw}, gap ${gap})`);
  assert.ok(Math.abs(whole.result.examples[0].tokenScores!.joint - (single.examples[0].cleanLogitDiff - single.examples[0].corruptedLogitDiff)) < 1e-12);
  // A shard cannot be opened as a Result.
  assert.throws(() => refuseShard(whole.result, whole.file), /shard 1\/1 .*raw.*atp merge/s);
});

test('merge of any split equals the single run (AtP, exact token scores)', async () => {
  const single = await runAttributionPatching(model, dataset, options());
  assert.equal(single.methods?.tokenScores, 'exact');
  const errors: Record<string, number> = {};
  for (const [name, count, order] of [
    ['n=1', 1],
    ['n=2', 2],
    ['n=3 in reverse order', 3, [2, 0, 1]],
    ['n=8 single-example shards', 8],
    ['n=11 with empty shards, shuffled', 11, [10, 3, 7, 0, 1, 9, 2, 8, 4, 6, 5]],
  ] as Array<[string, number, number[]?]>) {
    const merged = mergeShards(await shards(count, {}, order));
    assert.deepEqual(merged.merged, { shards: count });
    errors[name] = assertSame(merged, single);
    // The merged file is an ordinary Result.
    const file = join(root, `merged-${count}.json`);
    writeFileSync(file, serializeResult(merged));
    refuseShard(parseResult(readFileSync(file, 'utf8'), file), file);
  }
  console.log('largest relative error per split:', errors);
});

test('merge equals the single run with AtP* nodes and GradDrop', async () => {
  const extra: Partial<PatchingOptions> = { method: 'atpstar', gradDrop: true };
  const single = await runAttributionPatching(model, dataset, options(extra));
  assert.ok(single.atpStar?.gradDrop);
  const errors: Record<string, number> = {};
  for (const count of [2, 3, 9]) errors[`n=${count}`] = assertSame(mergeShards(await shards(count, extra, count === 3 ? [1, 2, 0] : undefined)), single);
  console.log('AtP*: largest relative error per split:', errors);
});

test('merge equals the single run with exact activation patching of every component', async () => {
  const extra: Partial<PatchingOptions> = { method: 'exact' };
  const single = await runAttributionPatching(model, dataset, options(extra));
  assert.equal(single.methods?.attributions, 'exact');
  const errors: Record<string, number> = {};
  for (const count of [3, 8]) errors[`n=${count}`] = assertSame(mergeShards(await shards(count, extra, count === 3 ? [2, 1, 0] : undefined)), single);
  console.log('exact: largest relative error per split:', errors);
});

test('float32: the merge agrees with the single run to float32 rounding (batches are made of other examples)', async () => {
  const extra: Partial<PatchingOptions> = { precision: 'float32' };
  const single = await runAttributionPatching(model, dataset, options(extra));
  const merged = mergeShards(await shards(3, extra, [1, 0, 2]));
  const flat = (r: Result) =>
    r.examples.flatMap((e) => [e.attributions.z.flat(2), e.attributions.residPre.flat(), e.attributions.mlpOut.flat(), e.tokenScores!.values].flat());
  const a = flat(merged);
  const b = flat(single);
  const scale = Math.max(...b.map(Math.abs));
  const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i]))) / scale;
  console.log('float32: largest error relative to the largest value:', worst);
  assert.ok(worst <= 1e-5, `${worst}`);
});

test('merge refuses shards of different runs, missing or duplicate shards, and non-shards', async () => {
  const [a, b] = await shards(2);
  const edit = (s: ShardFile, name: string, change: (r: Record<string, any>) => void): ShardFile => {
    const result = JSON.parse(JSON.stringify(s.result));
    change(result);
    const file = join(root, name);
    writeFileSync(file, JSON.stringify(result));
    return readShards([file])[0];
  };
  assert.throws(() => mergeShards([a]), /shard 2 of 2 missing/);
  assert.throws(() => mergeShards([a, a, b]), /both are shard 1\/2/);
  assert.throws(() => mergeShards([a, edit(b, 'other-model.json', (r) => (r.model.source = '/elsewhere/model'))]), /other-model\.json: field "model\.source"/);
  assert.throws(() => mergeShards([a, edit(b, 'other-dtype.json', (r) => (r.model.dtype = 'float16'))]), /field "model\.dtype"/);
  assert.throws(() => mergeShards([a, edit(b, 'other-data.json', (r) => (r.shard.datasetHash = 'sha256:00'))]), /other-data\.json: field "shard\.datasetHash"/);
  assert.throws(() => mergeShards([a, edit(b, 'other-count.json', (r) => (r.shard.count = 3))]), /field "shard\.count"/);
  assert.throws(() => mergeShards([a, edit(b, 'other-method.json', (r) => (r.run.method = 'exact'))]), /field "run\.method"/);
  assert.throws(() => edit(b, 'old-schema.json', (r) => (r.schema = 'attribution-patching/result@1')), /old-schema\.json: field "schema"/);
  assert.throws(() => edit(b, 'not-shard.json', (r) => delete r.shard), /not-shard\.json: not a shard/);
  assert.throws(() => mergeShards([a, edit(b, 'moved.json', (r) => (r.shard.firstExample = 3))]), /moved\.json: shard 2\/2 .*shard\.firstExample/);
  await assert.rejects(runShard(model, dataset, options({ check: 2 }), { index: 1, count: 2, datasetHash: hash }), /--check cannot run with --shard/);
});

test("the merge keeps the shards' provenance and refuses shards of other weights", async () => {
  const parts = await shards(2);
  const merged = mergeShards(parts);
  assert.deepEqual(merged.provenance, parts[0].result.provenance);
  assert.equal(merged.provenance?.modelFiles['model.safetensors'], fileHash(join(root, 'model', 'model.safetensors')));
  const other = structuredClone(parts[1]);
  other.result.provenance!.modelFiles['model.safetensors'] = 'sha256:00';
  assert.throws(() => mergeShards([parts[0], other]), /field "provenance\.modelFiles" is .*shards of different runs cannot be merged/);
});
