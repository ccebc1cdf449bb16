// The checks behind `atp serve`'s address and protocol (src/cli/serveClient.ts), in-process: whose folder and socket
// a client accepts (another user simulated by passing another uid, so this runs without root), where the fallback
// address goes, and request validation on random values (never a throw, never a half-checked request).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { folderProblem, parseServeRequest, serverAddress, socketProblem } from '../../src/cli/serveClient';
import { seededRandom } from '../support/random';

const unix = process.platform !== 'win32';
const uid = process.getuid?.() ?? 0;

test('folderProblem: a private folder of this uid passes; another uid, a mode open to others, a link or a file do not', { skip: !unix }, () => {
  const root = mkdtempSync(join(tmpdir(), 'atp-serve-folder-'));
  try {
    const dir = join(root, 'private');
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o700);
    assert.equal(folderProblem(dir, uid), undefined);
    assert.match(folderProblem(dir, uid + 1)!, new RegExp(`belongs to another user \\(uid ${uid}\\), not to this one \\(uid ${uid + 1}\\)`));
    for (const mode of [0o750, 0o705, 0o777]) {
      chmodSync(dir, mode);
      assert.match(folderProblem(dir, uid)!, new RegExp(`is open to other users \\(mode ${mode.toString(8)}; it must be 700\\)`));
    }
    chmodSync(dir, 0o700);
    symlinkSync(dir, join(root, 'link'));
    assert.match(folderProblem(join(root, 'link'), uid)!, /is a symbolic link/);
    assert.match(folderProblem(join(root, 'missing'), uid)!, /cannot be examined \(ENOENT\)/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("socketProblem: this uid's private socket passes; another uid, an open mode, a link or a plain file do not", { skip: !unix }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'atp-serve-socket-'));
  const path = join(root, 's.sock');
  const server = createServer();
  await new Promise<void>((done) => server.listen(path, done));
  try {
    chmodSync(path, 0o600);
    assert.equal(socketProblem(path, uid), undefined);
    assert.match(socketProblem(path, uid + 1)!, /belongs to another user/);
    chmodSync(path, 0o666);
    assert.match(socketProblem(path, uid)!, /is open to other users \(mode 666; it must be 600\)/);
    symlinkSync(path, join(root, 'link.sock'));
    assert.match(socketProblem(join(root, 'link.sock'), uid)!, /is a symbolic link/);
    assert.match(socketProblem(root, uid)!, /is not a socket/);
  } finally {
    await new Promise<void>((done) => server.close(() => done()));
    rmSync(root, { recursive: true, force: true });
  }
});

test('serverAddress: the cache when the socket path fits; else a private XDG_RUNTIME_DIR; else the temp folder', { skip: !unix }, () => {
  const root = mkdtempSync(join(tmpdir(), 'atp-serve-address-'));
  const saved = process.env.ATP_CACHE_DIR;
  try {
    process.env.ATP_CACHE_DIR = join(root, 'cache');
    assert.equal(dirname(serverAddress({}).path), join(root, 'cache', 'serve'));
    process.env.ATP_CACHE_DIR = join(root, 'c'.repeat(120));
    const runtime = join(root, 'run');
    mkdirSync(runtime, { mode: 0o700 });
    chmodSync(runtime, 0o700);
    assert.equal(dirname(serverAddress({ XDG_RUNTIME_DIR: runtime }).path), join(runtime, 'atp'));
    assert.equal(serverAddress({ XDG_RUNTIME_DIR: runtime }).socketDir, join(runtime, 'atp'));
    chmodSync(runtime, 0o755);
    assert.equal(dirname(serverAddress({ XDG_RUNTIME_DIR: runtime }).path), join(tmpdir(), `atp-${uid}`));
    assert.equal(dirname(serverAddress({ XDG_RUNTIME_DIR: 'relative/run' }).path), join(tmpdir(), `atp-${uid}`));
    assert.equal(dirname(serverAddress({}).path), join(tmpdir(), `atp-${uid}`));
  } finally {
    if (saved === undefined) delete process.env.ATP_CACHE_DIR;
    else process.env.ATP_CACHE_DIR = saved;
    rmSync(root, { recursive: true, force: true });
  }
});

function randomValue(random: () => number, depth: number): unknown {
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
  const kind = Math.floor(random() * (depth > 0 ? 7 : 5));
  if (kind === 0) return pick([null, true, false, 0, -1, 1.5, 1e308, '', 'x', '/', '/tmp', 'run', 'status', 'stop', 'patch', '__proto__']);
  if (kind === 1) return pick([[], {}, ['patch'], ['serve'], [1], ['patch', 2]]);
  if (kind === 2) return pick([{ A: 'b' }, { 'A=B': 'c' }, { A: 1 }, { '': 'x' }, { A: 'a\u0000' }, JSON.parse('{"__proto__": "x"}')]);
  if (kind === 3) return pick(['run', 'status', 'stop']);
  if (kind === 4) return pick([undefined, 80, 0, -3, 2.5]);
  if (kind === 5) return Array.from({ length: Math.floor(random() * 3) }, () => randomValue(random, depth - 1));
  const object: Record<string, unknown> = {};
  for (const key of ['kind', 'argv', 'cwd', 'env', 'stderrIsTTY', 'columns']) if (random() < 0.7) object[key] = randomValue(random, depth - 1);
  return object;
}

function mutatedRun(random: () => number): Record<string, unknown> {
  const request: Record<string, unknown> = { kind: 'run', argv: ['patch', '--out', 'x'], cwd: '/work', env: { HOME: '/root' }, stderrIsTTY: true, columns: 80 };
  for (const key of Object.keys(request)) {
    const roll = random();
    if (roll < 0.1) delete request[key];
    else if (roll < 0.25) request[key] = randomValue(random, 2);
  }
  return request;
}

test('parseServeRequest: random values give a checked request or a sentence, never a throw; what passes is well-formed', () => {
  const random = seededRandom(7);
  let runs = 0;
  for (let i = 0; i < 20_000; i++) {
    // Half random values, half a valid run with each field damaged or dropped at random.
    const value = i % 2 === 0 ? randomValue(random, 3) : mutatedRun(random);
    const parsed = parseServeRequest(value);
    if (typeof parsed === 'string') {
      assert.ok(parsed.length > 0 && !parsed.includes('\n'));
      continue;
    }
    if (parsed.kind !== 'run') continue;
    runs += 1;
    assert.ok(Array.isArray(parsed.argv) && parsed.argv.length > 0 && parsed.argv.every((arg) => typeof arg === 'string'));
    assert.ok(['patch', 'validate', 'circuit', 'sweep', 'test'].includes(parsed.argv[0]));
    assert.ok(parsed.cwd.startsWith('/'));
    assert.equal(Object.getPrototypeOf(parsed.env), null);
    for (const [name, text] of Object.entries(parsed.env)) assert.ok(typeof text === 'string' && !name.includes('=') && name !== '');
    assert.equal(typeof parsed.stderrIsTTY, 'boolean');
  }
  assert.ok(runs > 0, 'some random requests were well-formed runs');
  assert.equal(parseServeRequest(null), 'expected a JSON object with "kind", got null');
  assert.match(parseServeRequest({ kind: 'run' }) as string, /"argv" must be a non-empty list/);
  assert.match(parseServeRequest({ kind: 'run', argv: ['serve'], cwd: '/', env: {}, stderrIsTTY: false }) as string, /"argv" must start with one of patch/);
});
