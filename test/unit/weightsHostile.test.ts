// Weights that are not what config.json says: tensors sharing bytes are refused; tensors the model never reads
// (a config with fewer layers than the checkpoint) are named in a warning rather than silently ignored.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { InputError } from '../../src/shared/errors';
import { readSafetensorsHeader } from '../../src/lib/model/safetensors';
import { readDataset } from '../../src/lib/dataset';
import { loadModel } from '../../src/engine/model/load';
import { runAttributionPatching } from '../../src/engine/patching/run';
import { releaseSessions } from '../../src/engine/process/runtime';
import { writeRandomGpt2 } from '../support/randomGpt2';

const root = mkdtempSync(join(tmpdir(), 'atp-weights-'));
after(async () => {
  await releaseSessions();
  rmSync(root, { recursive: true, force: true });
});

function rawSafetensors(name: string, header: unknown, dataBytes: number): string {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const file = join(root, name);
  writeFileSync(file, Buffer.concat([length, json, Buffer.alloc(dataBytes)]));
  return file;
}

test('tensors whose data_offsets overlap are refused, naming both', () => {
  const overlapping = rawSafetensors(
    'overlap.safetensors',
    {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    },
    16,
  );
  assert.throws(
    () => readSafetensorsHeader(overlapping),
    (error: unknown) => error instanceof InputError && /tensors "a" and "b" overlap/.test(error.message),
  );
  const same = rawSafetensors(
    'same.safetensors',
    {
      b: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    },
    8,
  );
  assert.throws(() => readSafetensorsHeader(same), /overlap/);
  // Adjacent tensors, and empty ones anywhere, are fine.
  const fine = rawSafetensors(
    'fine.safetensors',
    {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      empty: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
      b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    },
    16,
  );
  assert.deepEqual(
    readSafetensorsHeader(fine).tensors.map((t) => t.name),
    ['a', 'empty', 'b'],
  );
});

test('a config with fewer layers than the weights runs with a warning naming the unused tensors', async () => {
  process.env.ATP_CACHE_DIR = join(root, 'cache');
  const dir = join(root, 'model');
  writeRandomGpt2(dir, { nLayers: 3, nHeads: 2, dModel: 8, seed: 2 });
  const full = await runAttributionPatching(loadModel(dir), readDataset(resolve(__dirname, '../../examples/ioi.jsonl')), { device: 'cpu', batchSize: 8 });
  assert.deepEqual(full.warnings, [], 'every tensor of a matching config is used');
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, n_layer: 2 }));
  const truncated = await runAttributionPatching(loadModel(dir), readDataset(resolve(__dirname, '../../examples/ioi.jsonl')), { device: 'cpu', batchSize: 8 });
  assert.equal(truncated.heads.length, 2);
  assert.equal(truncated.warnings.length, 1, truncated.warnings.join('\n'));
  assert.match(
    truncated.warnings[0],
    /model: \d+ weight tensors are not used by the model config\.json describes \(2 layers\): "h\.2\.[^"]+", .* more; check that config\.json belongs to these weights/,
  );
});
