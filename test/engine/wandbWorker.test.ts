// The editor's path to W&B: the worker's run and sweep (handleRun, handleSweep, as the host calls them) with a
// WandbTarget in the request, against the fake W&B server. The Result is written to the pending file first; the
// artefact names it as the final result file; the outcome comes back in 'done' / 'sweepDone'; no message the host
// logs holds the key; without a target nothing is sent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { handleRun, handleSweep } from '../../src/engine/process/worker';
import { releaseSessions } from '../../src/engine/process/runtime';
import type { WorkerResponse } from '../../src/shared/workerProtocol';
import type { WandbTarget } from '../../src/shared/wandb';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { type FakeWandb, startFakeWandb } from '../support/fakeWandb';

const KEY = 'local-worker-key-0a1b2c3d4e5f';
const IOI = readFileSync(resolve(__dirname, '../../examples/ioi.jsonl'), 'utf8');
const DEMO = resolve(__dirname, '../../models/tinysql-demo');
let root: string;
let model: string;
let server: FakeWandb;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'atp-wandb-worker-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 2, nHeads: 2, dModel: 8, seed: 1 });
  process.env.ATP_CACHE_DIR = join(root, 'cache');
  server = await startFakeWandb(KEY);
});
after(async () => {
  await server.close();
  await releaseSessions();
  rmSync(root, { recursive: true, force: true });
});

const target = (): WandbTarget => ({ project: 'editor', apiKey: KEY, keySource: 'VS Code secret storage', baseUrl: server.url });

test('a run with a W&B target: Result written, run logged, the outcome in "done", the key in no message', async () => {
  const datasetFile = join(root, 'ioi.jsonl');
  writeFileSync(datasetFile, IOI);
  const resultFile = join(root, 'ioi.jsonl.atp-result.json');
  const pendingFile = join(root, '.pending-1.json');
  const responses: WorkerResponse[] = [];
  await handleRun({ type: 'run', runId: 1, model, datasetFile, datasetText: IOI, device: 'cpu', batchSize: 8, pendingFile, resultFile, wandb: target() }, (r) =>
    responses.push(r),
  );
  const done = responses.at(-1)!;
  assert.equal(done.type, 'done', JSON.stringify(done));
  if (done.type !== 'done') return;
  assert.deepEqual(done.wandb?.warnings, []);
  const run = server.runs.at(-1)!;
  assert.deepEqual(done.wandb?.urls, [`${server.url}/fake-user/editor/runs/${run.name}`]);
  assert.equal(run.displayName, 'model · ioi.jsonl');
  assert.equal(JSON.parse(run.history[0])['baseline/clean_logit_diff'], done.summary.cleanLogitDiff);
  const manifest = JSON.parse(server.artifacts.at(-1)!.manifest!.toString('utf8'));
  assert.deepEqual(Object.keys(manifest.contents), ['ioi.jsonl.atp-result.json'], 'named as the final file, not the pending one');
  assert.deepEqual(server.storage.get(manifest.contents['ioi.jsonl.atp-result.json'].digest), readFileSync(pendingFile));
  assert.ok(responses.some((r) => r.type === 'progress' && /logging to W&B \(editor\)/.test(r.message)));
  assert.ok(!JSON.stringify(responses).includes(KEY), 'no response (the host logs them) holds the key');

  // A refused key: the warning gives the final result file, the one the user will find, not the pending one.
  const refused: WorkerResponse[] = [];
  await handleRun(
    {
      type: 'run',
      runId: 4,
      model,
      datasetFile,
      datasetText: IOI,
      device: 'cpu',
      batchSize: 8,
      pendingFile,
      resultFile,
      wandb: { ...target(), apiKey: 'wrong' },
    },
    (r) => refused.push(r),
  );
  const refusedDone = refused.at(-1)!;
  assert.equal(refusedDone.type, 'done');
  if (refusedDone.type !== 'done') return;
  assert.equal(refusedDone.wandb?.keyRefused, true);
  assert.match(refusedDone.wandb!.warnings[0], /refused the API key from VS Code secret storage/);
  assert.ok(refusedDone.wandb!.warnings[0].endsWith(`the Result is saved at ${resultFile}`), refusedDone.wandb!.warnings[0]);

  const sent = server.requests.length;
  const plain: WorkerResponse[] = [];
  await handleRun({ type: 'run', runId: 2, model, datasetFile, datasetText: IOI, device: 'cpu', batchSize: 8, pendingFile, resultFile }, (r) => plain.push(r));
  const last = plain.at(-1)!;
  assert.equal(last.type, 'done');
  assert.equal(last.type === 'done' && last.wandb, undefined);
  assert.equal(server.requests.length, sent, 'no target: nothing sent');
});

test('a sweep with a W&B target logs each cell that ran and reports them in "sweepDone"', async () => {
  const small = join(root, 'small-gpt2');
  writeRandomGpt2(small, { nLayers: 1, nHeads: 2, dModel: 16, vocabSize: 420, maxPositions: 64, seed: 3 });
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(DEMO, file), join(small, file));
  const config = JSON.parse(readFileSync(join(small, 'config.json'), 'utf8'));
  writeFileSync(join(small, 'config.json'), JSON.stringify({ ...config, bos_token_id: 419, eos_token_id: 419 }));
  const responses: WorkerResponse[] = [];
  const runs = server.runs.length;
  await handleSweep(
    {
      type: 'sweep',
      runId: 3,
      spec: { models: [small], features: ['EngTableName', 'DefFieldName'], count: 2, seed: 0, method: 'atp' },
      outDir: join(root, 'editor-sweep'),
      device: 'cpu',
      batchSize: 8,
      wandb: target(),
    },
    (r) => responses.push(r),
  );
  const done = responses.at(-1)!;
  assert.equal(done.type, 'sweepDone', JSON.stringify(done));
  if (done.type !== 'sweepDone') return;
  assert.equal(done.ran, 2);
  assert.equal(done.wandb?.urls.length, 2);
  assert.deepEqual(done.wandb?.warnings, []);
  const logged = server.runs.slice(runs);
  assert.deepEqual(
    logged.map((r) => [r.group, r.displayName]),
    [
      ['atp-sweep-editor-sweep', 'small-gpt2 · EngTableName CS1'],
      ['atp-sweep-editor-sweep', 'small-gpt2 · DefFieldName CS1'],
    ],
  );
  assert.ok(!JSON.stringify(responses).includes(KEY));
});
