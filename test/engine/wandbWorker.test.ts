// The editor's path to W&B, against the fake W&B server: a run (handleRun) sends nothing; once the host has put its
// Result in place it asks handleLogToWandb, which logs it and answers the outcome; a sweep (handleSweep) logs each
// cell it ran and reports them in 'sweepDone'; no message the host logs holds the key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { handleLogToWandb, handleRun, handleSweep } from '../../src/engine/process/worker';
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

test('a run sends nothing to W&B; logToWandb, asked once the Result is in place, logs it and answers the outcome; the key in no message', async () => {
  const datasetFile = join(root, 'ioi.jsonl');
  writeFileSync(datasetFile, IOI);
  const resultFile = join(root, 'ioi.jsonl.atp-result.json');
  const pendingFile = join(root, '.pending-1.json');
  const responses: WorkerResponse[] = [];
  await handleRun({ type: 'run', runId: 1, model, datasetFile, datasetText: IOI, device: 'cpu', batchSize: 8, pendingFile, resultFile }, (r) =>
    responses.push(r),
  );
  const done = responses.at(-1)!;
  assert.equal(done.type, 'done', JSON.stringify(done));
  if (done.type !== 'done') return;
  assert.equal(server.requests.length, 0, 'the run itself sends nothing: cancelling it can never meet a half-done upload');
  // The host puts the Result in place, then asks.
  renameSync(pendingFile, resultFile);
  const log = (wandb: WandbTarget) => {
    const answers: WorkerResponse[] = [];
    return handleLogToWandb(
      { type: 'logToWandb', requestId: 7, resultFile, target: wandb, displayName: 'model · ioi.jsonl', jobType: 'patch', extraConfig: { batch_size: 8 } },
      (r) => answers.push(r),
    ).then(() => answers);
  };
  const answers = await log(target());
  assert.equal(answers.length, 1);
  const logged = answers[0];
  assert.equal(logged.type, 'wandbLogged', JSON.stringify(logged));
  if (logged.type !== 'wandbLogged') return;
  assert.deepEqual(logged.wandb.warnings, []);
  const run = server.runs.at(-1)!;
  assert.deepEqual(logged.wandb.urls, [`${server.url}/fake-user/editor/runs/${run.name}`]);
  assert.equal(run.displayName, 'model · ioi.jsonl');
  assert.equal(JSON.parse(run.history[0])['baseline/clean_logit_diff'], done.summary.cleanLogitDiff);
  const manifest = JSON.parse(server.artifacts.at(-1)!.manifest!.toString('utf8'));
  assert.deepEqual(Object.keys(manifest.contents), ['ioi.jsonl.atp-result.json']);
  assert.deepEqual(server.storage.get(manifest.contents['ioi.jsonl.atp-result.json'].digest), readFileSync(resultFile));
  assert.ok(!JSON.stringify([...responses, ...answers]).includes(KEY), 'no response (the host logs them) holds the key');

  // A refused key: a warning that names where the key came from and where the Result is.
  const refused = (await log({ ...target(), apiKey: 'wrong' }))[0];
  assert.equal(refused.type, 'wandbLogged');
  if (refused.type !== 'wandbLogged') return;
  assert.equal(refused.wandb.keyRefused, true);
  assert.match(refused.wandb.warnings[0], /refused the API key from VS Code secret storage/);
  assert.ok(refused.wandb.warnings[0].endsWith(`the Result is saved at ${resultFile}`), refused.wandb.warnings[0]);

  // A Result that cannot be read: a warning, never a failure.
  const missing: WorkerResponse[] = [];
  await handleLogToWandb({ type: 'logToWandb', requestId: 8, resultFile: join(root, 'gone.json'), target: target(), displayName: 'x', jobType: 'patch' }, (r) =>
    missing.push(r),
  );
  assert.equal(missing[0].type, 'wandbLogged');
  assert.match(missing[0].type === 'wandbLogged' ? missing[0].wandb.warnings[0] : '', /W&B: not logged: .*gone\.json/);
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
