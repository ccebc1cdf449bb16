// `atp patch --wandb` and `atp sweep --wandb` as a user runs them (the built CLI), against the fake W&B server
// (test/support/fakeWandb.ts) through WANDB_BASE_URL: the run logged with the Result's numbers, the key never in the
// output, a refused key or an unreachable server a warning with the Result written and exit status 0, nothing sent
// without --wandb, a missing key refused before the run, and a sweep's cells one W&B run each in one group.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readResultFile } from '../../src/lib/files/resultFile';
import { releaseSessions } from '../../src/engine/process/runtime';
import { CLI, requireBuiltCli } from '../support/cli';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { type FakeWandb, startFakeWandb } from '../support/fakeWandb';

const KEY = 'local-cli-test-key-5f2e8a9c0b1d4e7f';
const DEMO = resolve(__dirname, '../../models/tinysql-demo');
const IOI = resolve(__dirname, '../../examples/ioi.jsonl');
let root: string;
let model: string;
let server: FakeWandb;

before(async () => {
  requireBuiltCli();
  root = mkdtempSync(join(tmpdir(), 'atp-wandb-cli-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 2, nHeads: 4, dModel: 32, seed: 1 });
  server = await startFakeWandb(KEY);
});
after(async () => {
  await server.close();
  await releaseSessions();
  rmSync(root, { recursive: true, force: true });
});

/** The CLI in a child process, asynchronously: the fake server in this process must keep answering meanwhile. */
function atp(args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ATP_CACHE_DIR: join(root, 'cache') };
    delete childEnv.WANDB_API_KEY;
    delete childEnv.WANDB_BASE_URL;
    delete childEnv.NETRC;
    for (const [name, value] of Object.entries(env)) if (value !== undefined) childEnv[name] = value;
    const child = spawn(process.execPath, [CLI, ...args], { env: childEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

const patchArgs = (out: string) => ['patch', '--model', model, '--data', IOI, '--out', out, '--device', 'cpu', '--batch-size', '4'];

test('atp patch --wandb logs the run with the Result’s numbers; the key appears in no output', async () => {
  const out = join(root, 'logged.json');
  const run = await atp([...patchArgs(out), '--wandb', 'team/atp-cli', '--precision', 'float64'], { WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url });
  assert.equal(run.code, 0, run.stderr);
  const result = readResultFile(out);
  assert.equal(server.runs.length, 1);
  const logged = server.runs[0];
  assert.equal(logged.entity, 'team');
  assert.equal(logged.project, 'atp-cli');
  assert.equal(logged.jobType, 'patch');
  assert.equal(logged.config.precision.value, 'float64');
  assert.equal(logged.config.n.value, result.dataset.examples);
  assert.equal(logged.config.model.value, result.model.source);
  const row = JSON.parse(logged.history[0]);
  assert.equal(row['baseline/clean_logit_diff'], result.metric.cleanLogitDiff);
  assert.equal(row['baseline/corrupted_logit_diff'], result.metric.corruptedLogitDiff);
  const heads = JSON.parse(logged.files.get(row.heads.path)!.toString('utf8'));
  assert.equal(heads.data.length, result.model.layers * result.model.heads);
  for (const [layer, head, value] of heads.data) assert.equal(value, result.heads[layer][head]);
  assert.deepEqual(logged.complete, { exitcode: 0 });
  const artifact = server.artifacts.at(-1)!;
  assert.equal(artifact.state, 'COMMITTED');
  assert.deepEqual(server.storage.get(JSON.parse(artifact.manifest!.toString('utf8')).contents['logged.json'].digest), readFileSync(out));
  assert.match(run.stderr, new RegExp(`W&B run: ${server.url}/team/atp-cli/runs/${logged.name}`));
  assert.ok(!run.stdout.includes(KEY) && !run.stderr.includes(KEY), 'the key is never printed');
});

test('a refused key or an unreachable server: a warning, the Result written, exit status 0', async () => {
  const out = join(root, 'refused.json');
  const refused = await atp([...patchArgs(out), '--wandb', 'atp-cli'], { WANDB_API_KEY: 'not-the-key-123', WANDB_BASE_URL: server.url });
  assert.equal(refused.code, 0, refused.stderr);
  assert.ok(readResultFile(out).heads.length > 0);
  assert.match(refused.stderr, /warning: W&B logging failed \(creating the run in atp-cli\): .*refused the API key from WANDB_API_KEY \(HTTP 401/);
  assert.ok(!refused.stderr.includes('not-the-key-123'));
  const closed = http.createServer();
  await new Promise<void>((done) => closed.listen(0, '127.0.0.1', () => done()));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((done) => closed.close(() => done()));
  const out2 = join(root, 'unreachable.json');
  const unreachable = await atp([...patchArgs(out2), '--wandb', 'atp-cli'], { WANDB_API_KEY: KEY, WANDB_BASE_URL: `http://127.0.0.1:${port}` });
  assert.equal(unreachable.code, 0, unreachable.stderr);
  assert.ok(existsSync(out2));
  assert.match(unreachable.stderr, new RegExp(`warning: W&B logging failed .*could not reach W&B at http://127\\.0\\.0\\.1:${port}/graphql`));
});

test('without --wandb nothing is sent, even with a key in the environment; --wandb without a key is refused before the run', async () => {
  const sent = server.requests.length;
  const out = join(root, 'quiet.json');
  const quiet = await atp(patchArgs(out), { WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url });
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(server.requests.length, sent, 'no request reached W&B');
  const out2 = join(root, 'nokey.json');
  const noKey = await atp([...patchArgs(out2), '--wandb', 'atp-cli'], { WANDB_BASE_URL: server.url });
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /--wandb needs a W&B API key in WANDB_API_KEY/);
  assert.ok(!existsSync(out2), 'refused before running');
  const badName = await atp([...patchArgs(out2), '--wandb', 'a/b/c'], { WANDB_API_KEY: KEY });
  assert.equal(badName.code, 2);
  assert.match(badName.stderr, /--wandb "a\/b\/c": expected PROJECT or ENTITY\/PROJECT/);
  assert.equal(server.requests.length, sent);
});

test('atp sweep --wandb: one W&B run per cell that ran, grouped by the sweep; kept cells are not logged again', async () => {
  const small = join(root, 'small-gpt2');
  writeRandomGpt2(small, { nLayers: 2, nHeads: 4, dModel: 32, vocabSize: 420, maxPositions: 64, seed: 3 });
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(DEMO, file), join(small, file));
  const config = JSON.parse(readFileSync(join(small, 'config.json'), 'utf8'));
  writeFileSync(join(small, 'config.json'), JSON.stringify({ ...config, bos_token_id: 419, eos_token_id: 419 }));
  const out = join(root, 'my-sweep');
  const args = ['sweep', '--models', `${DEMO},${small}`, '--features', 'EngTableName', '-n', '2', '--device', 'cpu', '--out', out, '--wandb', 'atp-sweeps'];
  const runsBefore = server.runs.length;
  const sweep = await atp(args, { WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url });
  assert.equal(sweep.code, 0, sweep.stderr);
  const cells = server.runs.slice(runsBefore);
  assert.equal(cells.length, 2);
  assert.deepEqual(
    cells.map((c) => c.group),
    ['atp-sweep-my-sweep', 'atp-sweep-my-sweep'],
  );
  assert.deepEqual(
    cells.map((c) => c.displayName),
    ['tinysql-demo · EngTableName CS1', 'small-gpt2 · EngTableName CS1'],
  );
  assert.ok(cells.every((c) => c.jobType === 'sweep-cell' && c.config.feature.value === 'EngTableName' && c.complete?.exitcode === 0));
  const demoResult = readResultFile(join(out, 'tinysql-demo', 'EngTableName-cs1.atp-result.json'));
  assert.equal(JSON.parse(cells[0].history[0])['baseline/clean_logit_diff'], demoResult.metric.cleanLogitDiff);
  assert.match(sweep.stderr, /W&B: 2 runs in group atp-sweep-my-sweep/);
  assert.ok(!sweep.stdout.includes(KEY) && !sweep.stderr.includes(KEY));
  const again = await atp(args, { WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /0 ran, 2 kept/);
  assert.equal(server.runs.length, runsBefore + 2, 'kept cells: no new W&B runs');
});

test('atp patch --wandb takes the key from ~/.netrc as `wandb login` writes it (the server host’s entry)', async () => {
  const home = join(root, 'home');
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, '.netrc'), `machine api.wandb.ai\n  login user\n  password wrong-key\nmachine 127.0.0.1\n  login user\n  password ${KEY}\n`);
  const runs = server.runs.length;
  const run = await atp([...patchArgs(join(root, 'netrc.json')), '--wandb', 'team/atp-netrc'], { HOME: home, WANDB_BASE_URL: server.url });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(server.runs.length, runs + 1);
  assert.equal(server.runs.at(-1)!.project, 'atp-netrc');
  assert.ok(!`${run.stdout}${run.stderr}`.includes(KEY));
  // A malformed netrc stops the run before it starts, naming the file.
  writeFileSync(join(home, '.netrc'), `machine 127.0.0.1 pasword ${KEY}\n`);
  const refused = await atp([...patchArgs(join(root, 'netrc2.json')), '--wandb', 'team/atp-netrc'], { HOME: home, WANDB_BASE_URL: server.url });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /the netrc file .*\.netrc is malformed at line 1/);
  assert.ok(!refused.stderr.includes(KEY));
  assert.ok(!existsSync(join(root, 'netrc2.json')));
});
