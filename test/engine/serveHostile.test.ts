// `atp serve` against a hostile machine and hostile clients (issue #26): a client sends nothing to a socket that is
// not this user's alone (another user's folder or socket, a link, a folder others may enter: each case with a
// listener the test holds, which must receive no byte), the fallback address in $XDG_RUNTIME_DIR, a server that
// refuses such a folder in one sentence, --idle beyond setTimeout's range, and fuzzed request lines that never
// end the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { CLI, requireBuiltCli, runCli } from '../support/cli';
import { seededRandom } from '../support/random';

const IOI = resolve(__dirname, '../../examples/ioi.jsonl');
let root: string;
let model: string;
const servers = new Set<number>();
const isRoot = process.getuid?.() === 0;
/** nobody: "another user" for the ownership cases (only root can give a file away, so those need root). */
const OTHER_UID = 65534;

before(() => {
  requireBuiltCli();
  root = mkdtempSync(join(tmpdir(), 'atp-serve-hostile-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 1, nHeads: 2, dModel: 8, seed: 1 });
});

after(() => {
  for (const pid of servers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  rmSync(root, { recursive: true, force: true });
});

function assertUserError(run: { code: number | null; stderr: string }, message: RegExp): void {
  assert.equal(run.code, 2, `exit code 2; stderr: ${run.stderr}`);
  assert.match(run.stderr, message);
  assert.doesNotMatch(run.stderr, /internal error|    at /);
}

/**
 * A workspace whose cache path is too long for a socket, so the address falls back; `env` holds TMPDIR (a folder
 * of the test's, standing for the shared /tmp) and XDG_RUNTIME_DIR as each test sets them.
 */
function fallbackWorkspace(name: string, env: Record<string, string>) {
  const cache = join(root, name, 'c'.repeat(120));
  const work = join(root, name, 'work');
  mkdirSync(work, { recursive: true });
  copyFileSync(IOI, join(work, 'ioi.jsonl'));
  const atp = (args: string[]) => runCli(cache, args, work, env);
  // Where a listener of the test's must answer meanwhile (spawnSync would hold the test's event loop).
  const atpAsync = (args: string[]) => runCliAsync(cache, args, work, env);
  return { cache, work, atp, atpAsync };
}

/** runCli without blocking this process; a run that has not ended after 60 s is killed (code null). */
function runCliAsync(
  cache: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env, ATP_CACHE_DIR: cache } });
    const output = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output.stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output.stderr += text));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, ...output });
    });
  });
}

/** Where a server of this workspace would listen, as `atp serve --status` says while none does. */
function addressOf(atp: (args: string[]) => ReturnType<typeof runCli>): string {
  const status = atp(['serve', '--status']);
  const path = / would listen at (.*)\)$/m.exec(status.stderr)?.[1];
  assert.ok(path, status.stderr);
  return path;
}

/** A listener at `path`, as another user would hold it: records every byte a client sends. */
async function squatter(path: string): Promise<{ server: Server; received: () => number }> {
  let received = 0;
  const server = createServer((socket) => {
    socket.on('data', (chunk) => (received += chunk.length));
    // An impostor's answer: "it ran, exit 0".
    socket.write('{"kind":"started","pid":1}\n{"kind":"exit","code":0}\n');
  });
  await new Promise<void>((done) => server.listen(path, done));
  return { server, received: () => received };
}

const close = (server: Server) => new Promise<void>((done) => server.close(() => done()));

const UNIX = process.platform !== 'win32';

test('the fallback socket goes in $XDG_RUNTIME_DIR/atp when the cache path is too long, before any shared temp folder', { skip: !UNIX }, () => {
  const runtime = join(root, 'runtime');
  mkdirSync(runtime, { mode: 0o700 });
  chmodSync(runtime, 0o700);
  const shared = join(root, 'shared-tmp');
  mkdirSync(shared);
  const { atp } = fallbackWorkspace('xdg', { XDG_RUNTIME_DIR: runtime, TMPDIR: shared });
  const path = addressOf(atp);
  assert.equal(dirname(path), join(runtime, 'atp'));
  const started = atp(['serve', '--detach', '--idle', '5']);
  assert.equal(started.code, 0, started.stderr);
  servers.add(Number(/pid (\d+)/.exec(started.stdout)?.[1]));
  assert.ok(existsSync(path));
  const run = atp(['patch', '--model', model, '--data', 'ioi.jsonl', '--out', 'r.json', '--device', 'cpu']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /running in the atp server/);
  assert.equal(atp(['serve', '--stop']).code, 0);

  // A runtime folder others may enter is no better than /tmp: not used.
  chmodSync(runtime, 0o755);
  assert.equal(dirname(addressOf(atp)), join(shared, `atp-${process.getuid!()}`));
});

/** Each way the fallback address in a shared temp folder can be another user's; `make` sets it up around `socket`. */
const SQUATS: Array<{ name: string; needsRoot: boolean; why: RegExp; make: (folder: string, socket: string, spare: string) => Promise<Server> }> = [
  {
    name: 'the folder was made by another user',
    needsRoot: true,
    why: /belongs to another user \(uid 65534\)/,
    make: async (folder, socket) => {
      mkdirSync(folder, { mode: 0o700 });
      const { server } = await squatter(socket);
      lchownSync(socket, OTHER_UID, OTHER_UID);
      lchownSync(folder, OTHER_UID, OTHER_UID);
      return server;
    },
  },
  {
    name: 'the folder is open to other users',
    needsRoot: false,
    why: /is open to other users \(mode 777/,
    make: async (folder, socket) => {
      mkdirSync(folder);
      chmodSync(folder, 0o777);
      return (await squatter(socket)).server;
    },
  },
  {
    name: 'the folder is a link to another folder',
    needsRoot: false,
    why: /is a symbolic link/,
    make: async (folder, socket, spare) => {
      mkdirSync(spare, { mode: 0o700 });
      symlinkSync(spare, folder);
      return (await squatter(socket)).server;
    },
  },
  {
    name: 'the socket belongs to another user',
    needsRoot: true,
    why: /\.sock belongs to another user \(uid 65534\)/,
    make: async (folder, socket) => {
      mkdirSync(folder, { mode: 0o700 });
      const { server } = await squatter(socket);
      lchownSync(socket, OTHER_UID, OTHER_UID);
      return server;
    },
  },
  {
    name: 'the socket is a link to a socket elsewhere',
    needsRoot: false,
    why: /\.sock is a symbolic link/,
    make: async (folder, socket, spare) => {
      mkdirSync(folder, { mode: 0o700 });
      mkdirSync(spare, { mode: 0o700 });
      const server = (await squatter(join(spare, 's.sock'))).server;
      symlinkSync(join(spare, 's.sock'), socket);
      return server;
    },
  },
];

for (const [i, squat] of SQUATS.entries()) {
  test(
    `a client sends nothing when ${squat.name}: it warns in one line and runs in-process; atp serve refuses the folder (exit 2)`,
    {
      skip: !UNIX ? 'Unix sockets' : squat.needsRoot && !isRoot ? 'needs root to give a file to another user' : false,
    },
    async () => {
      const shared = join(root, `squat-tmp-${i}`);
      mkdirSync(shared);
      const { work, atp, atpAsync } = fallbackWorkspace(`squat-${i}`, { TMPDIR: shared, XDG_RUNTIME_DIR: '' });
      const path = addressOf(atp);
      const folder = dirname(path);
      assert.equal(folder, join(shared, `atp-${process.getuid!()}`));
      let received = 0;
      const server = await squat.make(folder, path, join(root, `squat-spare-${i}`));
      server.on('connection', (socket) => socket.on('data', (chunk) => (received += chunk.length)));
      try {
        const run = await atpAsync(['patch', '--model', model, '--data', 'ioi.jsonl', '--out', 'r.json', '--device', 'cpu']);
        assert.equal(received, 0, 'the listener received nothing: no argv, no environment');
        assert.equal(run.code, 0, run.stderr);
        const warnings = run.stderr.split('\n').filter((line) => line.startsWith('atp: not using the atp server'));
        assert.equal(warnings.length, 1, run.stderr);
        assert.match(warnings[0], squat.why);
        assert.match(warnings[0], /; running in this process$/);
        assert.doesNotMatch(run.stderr, /running in the atp server/);
        assert.ok(existsSync(join(work, 'r.json')), 'the run happened here');
        assert.equal(received, 0, 'the listener received nothing: no argv, no environment');

        const serve = await atpAsync(['serve', '--idle', '1']);
        assertUserError(serve, squat.why);
        assert.equal(serve.stderr.trim().split('\n').length, 1, serve.stderr);
        assertUserError(await atpAsync(['serve', '--status']), squat.why);
        assert.equal(received, 0);
      } finally {
        await close(server);
      }
    },
  );
}

test('serve --idle beyond what a timer can wait is refused with the allowed range; the largest allowed one serves', () => {
  const cache = join(root, 'idle-cache');
  const atp = (args: string[]) => runCli(cache, args, root);
  for (const idle of ['100000', '35792', '1e9', 'Infinity'])
    assertUserError(atp(['serve', '--idle', idle]), /--idle: expected a number of minutes > 0 and at most 35791 \(24 days\)/);
  const started = atp(['serve', '--detach', '--idle', '35791']);
  assert.equal(started.code, 0, started.stderr);
  servers.add(Number(/pid (\d+)/.exec(started.stdout)?.[1]));
  const status = atp(['serve', '--status']);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /exits after 35791 minutes without a request/);
  assert.equal(atp(['serve', '--stop']).code, 0);
});

/** Sends `bytes` on a new connection; resolves with what the server answered once it closes (or after 10 s). */
function exchange(path: string, bytes: string | Buffer, { end = true } = {}): Promise<string> {
  return new Promise((done) => {
    const socket = connect(path);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => (answer += text));
    socket.on('error', () => undefined);
    socket.on('close', () => done(answer));
    socket.on('connect', () => {
      socket.write(bytes);
      if (end) socket.end();
    });
    setTimeout(() => socket.destroy(), 10_000).unref();
  });
}

/** A random JSON value, nested at most `depth` deep (never a well-formed "stop": that would end the server on purpose). */
function randomValue(random: () => number, depth: number): unknown {
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
  const kind = Math.floor(random() * (depth > 0 ? 8 : 6));
  if (kind === 0) return null;
  if (kind === 1) return random() < 0.5;
  if (kind === 2) return pick([0, -1, 1e308, 2 ** 53, 0.5, NaN]);
  if (kind === 3) return pick(['', 'run', 'status', 'STOP', 'patch', '__proto__', '\u0000', 'x'.repeat(1000)]);
  if (kind === 4) return pick(['run', 'status', 'Stop', 'exit', 'constructor', 'toString']);
  if (kind === 5) return pick([[], {}, ['patch'], ['patch', '--no-such-flag']]);
  if (kind === 6) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth - 1));
  const object: Record<string, unknown> = {};
  for (const key of ['kind', 'argv', 'cwd', 'env', 'stderrIsTTY', 'columns', '__proto__', 'constructor'])
    if (random() < 0.5) object[key] = randomValue(random, depth - 1);
  return object;
}

/** A run request, each field right or damaged at random; a request that passes every check fails in argument parsing (exit 2). */
function mutatedRun(random: () => number): Record<string, unknown> {
  const request: Record<string, unknown> = {
    kind: 'run',
    argv: ['patch', '--no-such-flag'],
    cwd: root,
    env: { PATH: process.env.PATH ?? '' },
    stderrIsTTY: false,
  };
  for (const key of Object.keys(request)) {
    const roll = random();
    if (roll < 0.2) delete request[key];
    else if (roll < 0.45) request[key] = randomValue(random, 2);
  }
  if (Array.isArray(request.argv) && request.argv.length > 0 && typeof request.argv[0] === 'string') request.argv = [...request.argv, '--no-such-flag'];
  return request;
}

test('fuzzed request lines (not JSON, null, wrong kinds, runs without argv, damaged fields, endless lines) never end the server', async () => {
  const cache = join(root, 'fuzz-cache');
  const atp = (args: string[]) => runCli(cache, args, root);
  const started = atp(['serve', '--detach', '--idle', '5']);
  assert.equal(started.code, 0, started.stderr);
  const pid = Number(/pid (\d+)/.exec(started.stdout)?.[1]);
  servers.add(pid);
  const path = /listening at (.*?), log /.exec(started.stdout)![1];
  const random = seededRandom(26);

  const fixed = [
    'null\n',
    '[]\n',
    '"run"\n',
    '{}\n',
    '{"kind":"run"}\n',
    '{"kind":"run","argv":[]}\n',
    '{"kind":"run","argv":null}\n',
    'not json\n',
    '\u00ff\u00fe\n',
  ];
  const lines = [
    ...fixed,
    ...Array.from({ length: 60 }, () => `${JSON.stringify(randomValue(random, 3))}\n`),
    ...Array.from({ length: 60 }, () => `${JSON.stringify(mutatedRun(random))}\n`),
  ];
  for (const line of lines) {
    const answer = await exchange(path, line);
    const kinds = answer
      .split('\n')
      .filter(Boolean)
      .map((text) => (JSON.parse(text) as { kind: string }).kind);
    // Refused with a reason, or (a well-formed request) answered; never a dead server.
    assert.ok(kinds.length > 0, `an answer to ${line.slice(0, 200)}`);
    if (kinds[0] === 'refused') assert.deepEqual(kinds, ['refused']);
  }
  const nullAnswer = JSON.parse((await exchange(path, 'null\n')).split('\n')[0]) as { kind: string; reason: string };
  assert.deepEqual(nullAnswer, { kind: 'refused', reason: 'expected a JSON object with "kind", got null' });
  const noArgv = JSON.parse((await exchange(path, '{"kind":"run","cwd":"/","env":{},"stderrIsTTY":false}\n')).split('\n')[0]) as { reason: string };
  assert.match(noArgv.reason, /"argv" must be a non-empty list/);

  // 20 MB without a newline: refused once it passes the cap, in bounded time (no quadratic rescans).
  const startedAt = performance.now();
  const endless = await exchange(path, Buffer.alloc(20 * 1024 * 1024, 'a'), { end: false });
  assert.match(endless, /"kind":"refused","reason":"a request line is longer than 8388608 characters"/);
  assert.ok(performance.now() - startedAt < 8000, `${performance.now() - startedAt} ms`);

  const status = atp(['serve', '--status']);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`pid ${pid}`));
  // The well-formed fuzzed runs failed at their flags; a real run still works.
  const work = join(root, 'fuzz-work');
  mkdirSync(work);
  const run = runCli(cache, ['patch', '--model', model, '--data', IOI, '--out', join(work, 'r.json'), '--device', 'cpu'], work);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /running in the atp server/);
  assert.equal(atp(['serve', '--stop']).code, 0);
  await sleep(0);
});
