// A dataset larger than the call stack has room for as function arguments: nothing spreads it into a call.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/engine/model/load';
import { runAttributionPatching } from '../../src/engine/patching/run';
import { releaseSessions } from '../../src/engine/process/runtime';
import { writeRandomGpt2 } from '../support/randomGpt2';

const root = mkdtempSync(join(tmpdir(), 'atp-big-dataset-'));
after(async () => {
  await releaseSessions();
  rmSync(root, { recursive: true, force: true });
});

test('a dataset of 140 000 examples does not overflow the call stack (no Math.max(...examples))', async () => {
  process.env.ATP_CACHE_DIR = join(root, 'cache');
  const dir = join(root, 'small');
  writeRandomGpt2(dir, { nLayers: 1, nHeads: 2, dModel: 8, seed: 3 });
  const example = { clean: 'When John and Mary went', corrupted: 'When John and Tom went', correct: ' to', incorrect: ' home' };
  const dataset = { file: 'many.jsonl', examples: Array.from({ length: 140_000 }, (_, i) => ({ ...example, line: i + 1 })) };
  // Cancelled before the first batch: what is tested is everything up to it (preparing, sizing, the session).
  await assert.rejects(runAttributionPatching(loadModel(dir), dataset, { device: 'cpu', batchSize: 4096, signal: AbortSignal.abort() }), {
    name: 'CancelledError',
  });
});
