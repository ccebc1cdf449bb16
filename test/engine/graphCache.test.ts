// Graph files live only in our cache: never in the model folder (read-only, or the Hugging Face cache), whether or
// not the cache can hard-link the weights; the numbers do not depend on how the weights are reached.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readDataset } from '../../src/lib/dataset';
import { loadModel } from '../../src/engine/model/load';
import { PREPACK_MIN_TOKENS } from '../../src/engine/patching/plan';
import { runAttributionPatching } from '../../src/engine/patching/run';
import { graphFileSystem, releaseSessions } from '../../src/engine/process/runtime';
import { sessionIsWarm } from '../../src/engine/patching/sessions';
import { writeRandomGpt2 } from '../support/randomGpt2';

const IOI = resolve(__dirname, '../../examples/ioi.jsonl');
let root: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-graph-cache-'));
});
afterEach(async () => {
  graphFileSystem.link = (existing, created) => linkSync(existing, created);
  await releaseSessions();
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Every file under dir (following no links) with its hash. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const file = join(at, entry.name);
      if (entry.isDirectory()) walk(file);
      else files[file] = entry.isFile() ? createHash('sha256').update(readFileSync(file)).digest('hex') : 'link';
    }
  };
  walk(dir);
  return files;
}

async function run(modelDir: string, cache: string) {
  process.env.ATP_CACHE_DIR = cache;
  const result = await runAttributionPatching(loadModel(modelDir), readDataset(IOI), { device: 'cpu', batchSize: 8 });
  return result;
}

test('when hard links fail, the weights are read in place (no copy) and nothing is written into a read-only model folder', async () => {
  const model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 2, nHeads: 2, dModel: 16, seed: 5 });
  const linked = await run(model, join(root, 'cache-linked'));
  await releaseSessions();

  const modelBefore = snapshot(model);
  const links: string[] = [];
  graphFileSystem.link = (existing, created) => {
    links.push(created);
    throw Object.assign(new Error(`EXDEV: cross-device link not permitted, link '${existing}' -> '${created}'`), { code: 'EXDEV' });
  };
  const cache = join(root, 'cache-nolinks');
  // Read-only as a shared or hub model folder is (root ignores the mode; the snapshot below still holds it to that).
  chmodSync(model, 0o555);
  const fromMemory = await run(model, cache).finally(() => chmodSync(model, 0o755));
  assert.ok(links.length > 0, 'the link was tried');
  assert.deepEqual(snapshot(model), modelBefore, 'the model folder is unchanged: no graph file, no temp file');
  const cached = Object.keys(snapshot(cache));
  assert.ok(
    cached.some((file) => file.endsWith('.onnx')),
    'the graph file is in our cache',
  );
  assert.ok(
    cached.every((file) => !file.endsWith('.safetensors')),
    'the weights were not copied',
  );
  assert.deepEqual(fromMemory.warnings, []);
  assert.deepEqual(fromMemory.heads, linked.heads);
  assert.equal(fromMemory.metric.cleanLogitDiff, linked.metric.cleanLogitDiff);
});

test('shards in different folders without hard links are copied into the cache, with a note, never next to the weights', async () => {
  const model = join(root, 'sharded');
  writeRandomGpt2(model, { nLayers: 2, nHeads: 2, dModel: 16, seed: 6, shards: 2 });
  const elsewhere = join(root, 'elsewhere');
  mkdirSync(elsewhere);
  const shard = readdirSync(model).find((name) => name.endsWith('2-of-00002.safetensors'))!;
  renameSync(join(model, shard), join(elsewhere, shard));
  symlinkSync(join(elsewhere, shard), join(model, shard));
  const before = { model: snapshot(model), elsewhere: snapshot(elsewhere) };
  graphFileSystem.link = () => {
    throw Object.assign(new Error('EPERM: operation not permitted'), { code: 'EPERM' });
  };
  const cache = join(root, 'cache-copied');
  const result = await run(model, cache);
  assert.deepEqual({ model: snapshot(model), elsewhere: snapshot(elsewhere) }, before);
  assert.equal(result.warnings.length, 1, result.warnings.join('\n'));
  assert.match(result.warnings[0], /the weight files are in different folders and cannot be hard-linked into .*cache-copied.*, so they were copied there/);
  const copies = Object.keys(snapshot(cache)).filter((file) => file.endsWith('.safetensors'));
  assert.equal(copies.length, 2);
  for (const copy of copies) assert.ok(statSync(copy).size > 0);
});

test('a session this process holds is warm until released (the memory check then does not ask for its weights again)', async () => {
  const dir = join(root, 'model-warm');
  writeRandomGpt2(dir, { nLayers: 2, nHeads: 2, dModel: 16, seed: 9 });
  process.env.ATP_CACHE_DIR = join(root, 'cache-warm');
  const model = loadModel(dir);
  assert.equal(sessionIsWarm(model, 'attribution', { device: 'cpu' }), false, 'nothing is loaded before the first run');
  // Asked before the memory check, which may refuse the run: asking must not link or copy weights into the cache.
  assert.equal(existsSync(join(root, 'cache-warm')), false, 'asking created nothing in the cache');
  await runAttributionPatching(model, readDataset(IOI), { device: 'cpu', batchSize: 8, method: 'atp' });
  assert.equal(sessionIsWarm(model, 'attribution', { device: 'cpu' }), true);
  // Another kind, precision or device is another session, with weights of its own.
  assert.equal(sessionIsWarm(model, 'atp-star', { device: 'cpu' }), false);
  assert.equal(sessionIsWarm(model, 'attribution', { device: 'cpu', precision: 'float64' }), false);
  assert.equal(sessionIsWarm(model, 'attribution', { device: 'webgpu' }), false);
  await releaseSessions();
  assert.equal(sessionIsWarm(model, 'attribution', { device: 'cpu' }), false, 'released sessions hold no weights');
});

test('a short one-shot run (the CLI) builds its session without pre-packing, a long run rebuilds it pre-packed; the numbers agree', async () => {
  const dir = join(root, 'model-prepack');
  writeRandomGpt2(dir, { nLayers: 2, nHeads: 2, dModel: 16, seed: 11 });
  process.env.ATP_CACHE_DIR = join(root, 'cache-prepack');
  const model = loadModel(dir);
  const ioi = readDataset(IOI);
  assert.ok(ioi.examples.length * 14 <= PREPACK_MIN_TOKENS, 'the IOI file is a short run');
  // A long-lived process (the extension's worker) pre-packs even for a short run: its session serves many.
  await runAttributionPatching(model, ioi, { device: 'cpu', batchSize: 8, method: 'atp' });
  assert.equal(sessionIsWarm(model, 'attribution', { device: 'cpu', prepacking: true }), true);
  await releaseSessions();
  const short = await runAttributionPatching(model, ioi, { device: 'cpu', batchSize: 8, method: 'atp', raw: true, oneShot: true });
  assert.equal(sessionIsWarm(model, 'attribution', { device: 'cpu' }), true);
  assert.equal(sessionIsWarm(model, 'attribution', { device: 'cpu', prepacking: true }), false, 'a long run would rebuild it pre-packed');
  const long = { file: ioi.file, examples: Array.from({ length: Math.ceil(PREPACK_MIN_TOKENS / 14) + 1 }, (_, i) => ioi.examples[i % ioi.examples.length]) };
  const packed = await runAttributionPatching(model, long, { device: 'cpu', batchSize: 8, method: 'atp', raw: true, oneShot: true });
  assert.equal(sessionIsWarm(model, 'attribution', { device: 'cpu', prepacking: true }), true, 'rebuilt pre-packed');
  assert.equal(sessionIsWarm(model, 'attribution', { device: 'cpu', prepacking: false }), true, 'and it serves short runs too');
  // The same examples (the long file repeats the short one; raw: in LD units) give the same numbers either way, to float32 rounding.
  short.examples.forEach((example, i) => {
    const other = packed.examples[i];
    assert.ok(Math.abs(example.cleanLogitDiff - other.cleanLogitDiff) <= 1e-5 * Math.max(1, Math.abs(other.cleanLogitDiff)));
    example.attributions.residPre.forEach((row, l) =>
      row.forEach((v, p) =>
        assert.ok(
          Math.abs(v - other.attributions.residPre[l][p]) <= 1e-5 * Math.max(1, Math.abs(v)),
          `L${l} pos ${p}: ${v} vs ${other.attributions.residPre[l][p]}`,
        ),
      ),
    );
  });
});
