// The extension's run (the worker's handleRun, as the host calls it) refuses a result file that is the dataset or
// one of the model's files, before running and without writing anything.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { handleGenerate, handleRun } from '../../src/engine/process/worker';
import { checkOutputPaths, modelFolderInputs } from '../../src/lib/files/outputPaths';
import type { WorkerResponse } from '../../src/shared/workerProtocol';
import { writeRandomGpt2 } from '../support/randomGpt2';

const IOI = readFileSync(resolve(__dirname, '../../examples/ioi.jsonl'), 'utf8');
let root: string;
let model: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-worker-outputs-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 1, nHeads: 2, dModel: 8, seed: 1 });
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

async function run(datasetFile: string, resultFile: string): Promise<WorkerResponse[]> {
  const responses: WorkerResponse[] = [];
  const pendingFile = join(root, '.pending');
  await handleRun({ type: 'run', runId: 1, model, datasetFile, datasetText: IOI, device: 'cpu', batchSize: 8, pendingFile, resultFile }, (r) =>
    responses.push(r),
  );
  assert.equal(existsSync(pendingFile), false, 'nothing written');
  return responses;
}

test('a result file that is a model file or the dataset (also through a symlink) fails the run as an input error', async () => {
  const dataset = join(root, 'ioi.jsonl');
  writeFileSync(dataset, IOI);
  const config = readFileSync(join(model, 'config.json'));
  symlinkSync(dataset, join(root, 'ioi.jsonl.atp-result.json'));
  for (const resultFile of [join(model, 'config.json'), join(root, 'ioi.jsonl.atp-result.json')]) {
    const responses = await run(dataset, resultFile);
    const last = responses.at(-1)!;
    assert.equal(last.type, 'failed', JSON.stringify(last));
    if (last.type !== 'failed') return;
    assert.equal(last.reason, 'input');
    assert.ok(last.message.includes(resultFile), last.message);
    assert.match(last.message, /is the same file as (the dataset|the model's config\.json)/);
  }
  assert.deepEqual(readFileSync(join(model, 'config.json')), config);
  assert.equal(readFileSync(dataset, 'utf8'), IOI);
});

test('a generated dataset comes back with the model folder, so the host can refuse to save it over a model file', async () => {
  const responses: WorkerResponse[] = [];
  await handleGenerate({ type: 'generate', requestId: 1, model, spec: { kind: 'ioi', count: 2, seed: 0 }, format: 'jsonl' }, (r) => responses.push(r));
  const [response] = responses;
  assert.equal(response.type, 'generated', JSON.stringify(response));
  if (response.type !== 'generated') return;
  assert.equal(response.modelDir, resolve(model));
  assert.throws(
    () => checkOutputPaths(modelFolderInputs(response.modelDir!), [{ path: join(model, 'tokenizer.json'), role: 'the dataset file' }]),
    /the dataset file .*tokenizer\.json is the same file as the model's tokenizer\.json/,
  );
});
