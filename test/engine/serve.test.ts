// `atp serve` (src/cli/serve.ts, serveClient.ts) through the built CLI, as a user meets it: results equal to the
// in-process run's, the client's folder and errors, sessions reused, and every way a server ends (--stop, --idle,
// a client gone mid-run, a killed server). Each test has its own cache folder, so its own server address, and
// stops its server; `after` kills any that a failed test left behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseResult, type Result } from '../../src/shared/result';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { CLI, requireBuiltCli, runCli } from '../support/cli';

const IOI = resolve(__dirname, '../../examples/ioi.jsonl');
let root: string;
let model: string;
/** Larger: exact activation patching of every component over examples/ioi.jsonl takes seconds on it. */
let slowModel: string;
const servers = new Set<number>();

before(() => {
  requireBuiltCli();
  root = mkdtempSync(join(tmpdir(), 'atp-serve-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 2, nHeads: 4, dModel: 32, seed: 1 });
  slowModel = join(root, 'slow-model');
  // Slow enough that a run is still going when a test interrupts it (exact patching got ~30× faster with suffix passes).
  writeRandomGpt2(slowModel, { nLayers: 6, nHeads: 8, dModel: 256, seed: 2 });
});

after(() => {
  for (const pid of servers) if (alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForExit(pid: number, seconds = 20): Promise<void> {
  for (let waited = 0; alive(pid) && waited < seconds * 1000; waited += 50) await sleep(50);
  assert.ok(!alive(pid), `the server (pid ${pid}) exited within ${seconds} s`);
}

/** A test's own folder: a cache (so its own server address) and a working folder holding the dataset. */
function workspace(name: string): { cache: string; work: string; atp: (args: string[], env?: Record<string, string>) => ReturnType<typeof runCli> } {
  const cache = join(root, name, 'cache');
  const work = join(root, name, 'work');
  mkdirSync(work, { recursive: true });
  copyFileSync(IOI, join(work, 'ioi.jsonl'));
  return { cache, work, atp: (args, env) => runCli(cache, args, work, env) };
}

/** `atp serve --detach` in this workspace: the server's pid, recorded for `after`. */
function startServer(atp: (args: string[]) => ReturnType<typeof runCli>, idle = '5'): number {
  const run = atp(['serve', '--detach', '--idle', idle]);
  assert.equal(run.code, 0, run.stderr);
  const pid = Number(/pid (\d+)/.exec(run.stdout)?.[1]);
  assert.ok(pid > 0, run.stdout);
  servers.add(pid);
  return pid;
}

/** A detached server's log (the one in the cache's serve folder). */
function serverLog(cache: string): string {
  const folder = join(cache, 'serve');
  return readFileSync(
    join(
      folder,
      readdirSync(folder).find((name) => name.endsWith('.log'))!,
    ),
    'utf8',
  );
}

function socketFiles(cache: string): string[] {
  const dir = join(cache, 'serve');
  return existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith('.sock')) : [];
}

const patchArgs = (out: string, ...more: string[]) => ['patch', '--model', model, '--data', 'ioi.jsonl', '--out', out, '--device', 'cpu', ...more];
const SERVED = /^atp: running in the atp server \(pid (\d+)/m;

/** The Result without what differs between any two runs: when it was made and how long it took. */
function comparable(file: string): Omit<Result, 'createdAt' | 'timings'> {
  const { createdAt, timings, ...rest } = parseResult(readFileSync(file, 'utf8'), file);
  assert.ok(createdAt && timings);
  return rest;
}

test('patch through the server: the same Result and stdout as in-process, paths from the client folder, sessions reused on the second run', async () => {
  const { cache, work, atp } = workspace('same');
  const local = atp(patchArgs('local.json'));
  assert.equal(local.code, 0, local.stderr);
  assert.doesNotMatch(local.stderr, SERVED);
  const pid = startServer(atp);

  const first = atp(patchArgs('served.json'));
  assert.equal(first.code, 0, first.stderr);
  assert.equal(Number(SERVED.exec(first.stderr)?.[1]), pid);
  // Relative --data and --out resolved in the client's folder, not the server's.
  assert.ok(existsSync(join(work, 'served.json')));
  assert.deepEqual(comparable(join(work, 'served.json')), comparable(join(work, 'local.json')));
  assert.equal(first.stdout, local.stdout.replace('wrote local.json', 'wrote served.json'));
  assert.match(first.stderr, /^atp: the atp server built [1-9]\d* ONNX Runtime sessions? for this run and reused \d+ it held$/m);

  const second = atp(patchArgs('served2.json'));
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /^atp: the atp server built 0 ONNX Runtime sessions for this run and reused [1-9]\d* it held$/m);
  assert.deepEqual(comparable(join(work, 'served2.json')), comparable(join(work, 'local.json')));

  const status = atp(['serve', '--status']);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`^atp server: pid ${pid}, listening at `, 'm'));
  assert.match(status.stdout, /2 requests served; exits after 5 minutes without a request/);
  assert.match(status.stdout, new RegExp(`model: ${model.replaceAll('/', '\\/')}; [1-9]\\d* ONNX Runtime sessions? held`));

  const stop = atp(['serve', '--stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stderr, new RegExp(`stopped the atp server \\(pid ${pid}\\)`));
  assert.ok(!alive(pid), '--stop returns once the server has exited');
  assert.deepEqual(socketFiles(cache), []);
  assert.equal(atp(['serve', '--status']).code, 1);
});

test("the server keeps one model's sessions: a run on another model releases the previous one's", () => {
  const { atp } = workspace('one-model');
  startServer(atp);
  const held = () => {
    const status = atp(['serve', '--status']).stdout;
    return { model: /model: (.*?);/.exec(status)?.[1], sessions: Number(/(\d+) ONNX Runtime sessions? held/.exec(status)?.[1]) };
  };
  assert.equal(atp(patchArgs('a.json')).code, 0);
  const first = held();
  assert.equal(first.model, model);
  assert.ok(first.sessions > 0);
  const other = atp(['patch', '--model', slowModel, '--data', 'ioi.jsonl', '--out', 'b.json', '--device', 'cpu']);
  assert.equal(other.code, 0, other.stderr);
  // Built anew (none of the first model's serve it), and only this model's are held afterwards.
  assert.match(other.stderr, /built [1-9]\d* ONNX Runtime sessions? for this run/);
  const second = held();
  assert.equal(second.model, slowModel);
  assert.ok(
    second.sessions > 0 && second.sessions <= first.sessions,
    `${second.sessions} sessions held after the second model, ${first.sessions} after the first`,
  );
  assert.equal(atp(['serve', '--stop']).code, 0);
});

test('bad input through the server: exit 2 and the input error as in-process; the server goes on serving', async () => {
  const { atp } = workspace('bad');
  const args = ['patch', '--model', model, '--data', 'missing.jsonl', '--out', 'x.json', '--device', 'cpu'];
  const local = atp(args);
  startServer(atp);
  const served = atp(args);
  assert.equal(local.code, 2);
  assert.equal(served.code, 2);
  assert.match(served.stderr, SERVED);
  const error = local.stderr.split('\n').find((line) => line.startsWith('atp: '))!;
  assert.match(error, /missing\.jsonl/);
  assert.ok(served.stderr.includes(`${error}\n`), served.stderr);
  const unknown = atp(['patch', '--model', model, '--frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown option '--frobnicate'/);
  const good = atp(patchArgs('good.json'));
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stderr, SERVED);
  assert.equal(atp(['serve', '--stop']).code, 0);
});

test('--no-server and ATP_NO_SERVER=1 run in-process while a server listens; commands without a model never go to it', async () => {
  const { atp } = workspace('bypass');
  startServer(atp);
  const flag = atp(patchArgs('flag.json', '--no-server'));
  assert.equal(flag.code, 0, flag.stderr);
  assert.doesNotMatch(flag.stderr, SERVED);
  const env = atp(patchArgs('env.json'), { ATP_NO_SERVER: '1' });
  assert.equal(env.code, 0, env.stderr);
  assert.doesNotMatch(env.stderr, SERVED);
  const report = atp(['report', '--out', 'r.html', 'flag.json']);
  assert.equal(report.code, 0, report.stderr);
  assert.doesNotMatch(report.stderr, SERVED);
  assert.match(atp(['serve', '--status']).stdout, /0 requests served/);
  assert.equal(atp(['serve', '--stop']).code, 0);
});

test('a killed server leaves a stale socket: the next call removes it and runs in-process', async () => {
  const { cache, work, atp } = workspace('stale');
  const pid = startServer(atp);
  process.kill(pid, 'SIGKILL');
  await waitForExit(pid);
  assert.equal(socketFiles(cache).length, 1, 'SIGKILL leaves the socket file');
  const run = atp(patchArgs('after.json'));
  assert.equal(run.code, 0, run.stderr);
  assert.doesNotMatch(run.stderr, SERVED);
  assert.ok(existsSync(join(work, 'after.json')));
  assert.deepEqual(socketFiles(cache), []);
});

/** A client run, in the background; resolves with its exit and output; `stderr` grows as it runs. */
function startClient(cache: string, cwd: string, args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ATP_CACHE_DIR: cache } });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (text: string) => (output.stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (output.stderr += text));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.on('close', (code, signal) => done({ code, signal })));
  const waitFor = async (pattern: RegExp) => {
    for (let waited = 0; !pattern.test(output.stderr) && waited < 30_000; waited += 20) await sleep(20);
    assert.match(output.stderr, pattern);
  };
  return { child, output, exited, waitFor };
}

// Exact activation patching of every component: thousands of passes, seconds on slowModel, so the run is still
// going when the client or the server is killed.
const slowArgs = (out: string) => ['patch', '--model', slowModel, '--data', 'ioi.jsonl', '--out', out, '--device', 'cpu', '--method', 'exact'];
// Exact patching's first suffix-pass run has started (suffixPatching.ts reports its progress in runs).
const EXACT_STARTED = /^activation patching: run 0\/\d+/m;

test('a client that goes away mid-run (Ctrl-C) stops the server at once: the run writes nothing, the next call runs in-process', async () => {
  const { cache, work, atp } = workspace('ctrl-c');
  writeFileSync(join(work, 'out.json'), 'the previous result\n');
  const pid = startServer(atp);
  const client = startClient(cache, work, slowArgs('out.json'));
  await client.waitFor(EXACT_STARTED);
  client.child.kill('SIGINT');
  await client.exited;
  await waitForExit(pid);
  // Longer than the whole run takes: had the server gone on, it would have written by now.
  await sleep(500);
  assert.equal(readFileSync(join(work, 'out.json'), 'utf8'), 'the previous result\n');
  assert.deepEqual(socketFiles(cache), []);
  const log = serverLog(cache);
  assert.match(log, /the client went away mid-run/);
  const next = atp(patchArgs('next.json'));
  assert.equal(next.code, 0, next.stderr);
  assert.doesNotMatch(next.stderr, SERVED);
});

test('a server killed mid-run: the client says so and exits 1', async () => {
  const { cache, work, atp } = workspace('killed');
  const pid = startServer(atp);
  const client = startClient(cache, work, slowArgs('out.json'));
  await client.waitFor(EXACT_STARTED);
  process.kill(pid, 'SIGKILL');
  const { code } = await client.exited;
  assert.equal(code, 1);
  assert.match(client.output.stderr, new RegExp(`atp: the atp server \\(pid ${pid}\\) stopped before the run finished`));
  assert.ok(!existsSync(join(work, 'out.json')));
});

test('a second client waits for the running request, says so once, and both finish', async () => {
  const { cache, work, atp } = workspace('queue');
  startServer(atp);
  const first = startClient(cache, work, slowArgs('slow.json'));
  await first.waitFor(SERVED);
  const second = startClient(cache, work, patchArgs('quick.json'));
  const [a, b] = await Promise.all([first.exited, second.exited]);
  assert.equal(a.code, 0, first.output.stderr);
  assert.equal(b.code, 0, second.output.stderr);
  assert.equal((second.output.stderr.match(/is busy with another run; waiting for it/g) ?? []).length, 1, second.output.stderr);
  assert.match(second.output.stderr, SERVED);
  assert.ok(existsSync(join(work, 'slow.json')) && existsSync(join(work, 'quick.json')));
  assert.equal(atp(['serve', '--stop']).code, 0);
});

test('--idle: a server with no request for that long releases its sessions and exits', async () => {
  const { cache, atp } = workspace('idle');
  // 0.02 minutes: 1.2 s.
  const pid = startServer(atp, '0.02');
  await waitForExit(pid);
  assert.deepEqual(socketFiles(cache), []);
  const log = serverLog(cache);
  assert.match(log, /no request for 0\.02 minutes; released the sessions; exiting/);
});

test('serve: one server per address, --status and --stop without one, bad flags', () => {
  const { cache, atp } = workspace('flags');
  const none = atp(['serve', '--status']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no atp server is running for this atp/);
  assert.equal(atp(['serve', '--stop']).code, 0);
  assert.equal(atp(['serve', '--idle', '0']).code, 2);
  assert.match(atp(['serve', '--idle', 'soon']).stderr, /--idle: expected a number of minutes > 0 and at most 35791 \(24 days\), got "soon"/);
  const pid = startServer(atp);
  const again = atp(['serve']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, new RegExp(`already running \\(pid ${pid}\\)`));
  // The socket is private to this user.
  const socket = join(cache, 'serve', socketFiles(cache)[0]);
  assert.equal(statMode(socket), 0o600);
  assert.equal(statMode(join(cache, 'serve')), 0o700);
  assert.equal(atp(['serve', '--stop']).code, 0);
});

const statMode = (path: string) => statSync(path).mode & 0o777;
