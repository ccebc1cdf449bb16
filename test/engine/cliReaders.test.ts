// What the built `atp` does with inputs that are not what they claim to be (issue #26): a dataset, Result, claims
// file or CUDA package that is a FIFO, a folder or a symlink to /dev/zero; Results and shards with 1e999, a huge
// shard count or prototype keys; a damaged CUDA package with its correct hash. Each is exit code 2 and a sentence
// naming the file, in seconds, with no input changed — never "internal error", a stack trace or a hang.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { CLI, requireBuiltCli } from '../support/cli';
import { makeNupkg } from '../support/fakeNuget';

const IOI = resolve(__dirname, '../../examples/ioi.jsonl');
const posix = process.platform !== 'win32' && existsSync('/dev/zero');
let root: string;
let model: string;
let shards: string[];

/** `atp args…` with a time limit: a read that hangs (a FIFO) fails the test instead of hanging it. */
function atp(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string; seconds: number } {
  const started = performance.now();
  const run = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ATP_CACHE_DIR: join(root, 'cache'), ATP_CUDA_DIR: join(root, 'cuda'), ...env },
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr, seconds: (performance.now() - started) / 1000 };
}

function assertUserError(run: ReturnType<typeof atp>, message: RegExp): void {
  assert.equal(run.code, 2, `exit code 2; stderr: ${run.stderr}`);
  assert.match(run.stderr, message);
  assert.doesNotMatch(run.stderr, /internal error|\n\s+at /);
  assert.ok(run.seconds < 30, `took ${run.seconds} s`);
}

const fifo = (file: string) => assert.equal(spawnSync('mkfifo', [file]).status, 0);

before(() => {
  requireBuiltCli();
  root = mkdtempSync(join(tmpdir(), 'atp-cli-readers-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 1, nHeads: 2, dModel: 8, seed: 1 });
  shards = [1, 2].map((i) => {
    const out = join(root, `shard-${i}.json`);
    const run = atp(['patch', '--model', model, '--data', IOI, '--out', out, '--device', 'cpu', '--shard', `${i}/2`]);
    assert.equal(run.code, 0, run.stderr);
    return out;
  });
});
after(() => rmSync(root, { recursive: true, force: true }));

test('a dataset, Result or claims file that is a FIFO, a folder or a symlink to /dev/zero: exit 2 naming it, at once', { skip: !posix }, () => {
  const kinds: Array<[string, (file: string) => void, string]> = [
    ['zero', (file) => symlinkSync('/dev/zero', file), 'a character device'],
    ['fifo', fifo, 'a FIFO'],
    ['folder', (file) => mkdirSync(file), 'a folder'],
  ];
  for (const [name, make, what] of kinds) {
    const data = join(root, `${name}.jsonl`);
    make(data);
    assertUserError(
      atp(['patch', '--model', model, '--data', data, '--device', 'cpu', '--out', join(root, `${name}-out.json`)]),
      new RegExp(`${data} is not a regular file \\(${what}\\)`),
    );
    const result = join(root, `${name}.atp-result.json`);
    make(result);
    assertUserError(atp(['report', result, '--out', join(root, `${name}.html`)]), new RegExp(`${result} is not a regular file \\(${what}\\)`));
    // (A folder given to atp test is a folder of claims files to find: not this case.)
    if (name === 'folder') continue;
    const claims = join(root, `${name}.claims.yaml`);
    make(claims);
    // Named on atp test's command line: a usage error like a missing file (exit 2), not a failed suite.
    assertUserError(atp(['test', claims]), new RegExp(`${claims}: not a regular file \\(a claims file must be one\\)`));
  }
});

test('atp merge: 1e999, a shard count of 2^53−1 and per-example shapes are refused naming the file and field; inputs unchanged', () => {
  const damaged = (name: string, edit: (text: string) => string) => {
    const file = join(root, name);
    writeFileSync(file, edit(readFileSync(shards[1], 'utf8')));
    return file;
  };
  const cases: Array<[string, RegExp]> = [
    [
      damaged('inf.json', (t) => t.replace(/"cleanLogitDiff": -?[0-9.e-]+/, '"cleanLogitDiff": 1e999')),
      /inf\.json: field "metric\.cleanLogitDiff" must be a finite number/,
    ],
    [damaged('count.json', (t) => t.replace(/"count": 2/, `"count": ${2 ** 53 - 1}`)), /count\.json: field "shard\.count" must be an integer from 1 to 10000/],
    [
      damaged('shape.json', (t) => {
        const r = JSON.parse(t);
        r.examples[0].attributions.z[0].pop();
        return JSON.stringify(r);
      }),
      /shape\.json: field "examples\[0\]\.attributions\.z\[0\]": has \d+ entries, expected \d+/,
    ],
  ];
  for (const [file, message] of cases) {
    const before = readFileSync(file);
    const out = join(root, 'merged-bad.json');
    assertUserError(atp(['merge', shards[0], file, '--out', out]), message);
    assert.deepEqual(readFileSync(file), before);
    assert.equal(existsSync(out), false);
  }
});

test('atp merge: shards whose timings are named "constructor" and "__proto__" merge into a Result atp report opens', () => {
  const named = shards.map((file, i) => {
    const renamed = join(root, `proto-${i}.json`);
    writeFileSync(renamed, readFileSync(file, 'utf8').replace('"loadSeconds"', i === 0 ? '"constructor"' : '"__proto__"'));
    return renamed;
  });
  const out = join(root, 'merged-proto.json');
  const merge = atp(['merge', ...named, '--out', out]);
  assert.equal(merge.code, 0, merge.stderr);
  const timings = JSON.parse(readFileSync(out, 'utf8')).timings as Record<string, number>;
  assert.ok(Object.hasOwn(timings, 'constructor') && Object.hasOwn(timings, '__proto__'), JSON.stringify(timings));
  const report = atp(['report', out, '--out', join(root, 'merged-proto.html')]);
  assert.equal(report.code, 0, report.stderr);
});

test(
  'atp install-cuda --from a folder, /dev/zero or a damaged package with its correct --sha512: exit 2 naming it, nothing installed',
  { skip: !posix || process.platform !== 'linux' || process.arch !== 'x64' },
  () => {
    const folder = join(root, 'a-folder');
    mkdirSync(folder);
    const hash = ['--sha512', 'ab'.repeat(64)];
    assertUserError(atp(['install-cuda', '--from', folder, ...hash]), new RegExp(`--from ${folder} is not a regular file \\(a folder\\)`));
    assertUserError(atp(['install-cuda', '--from', '/dev/zero', ...hash]), /--from \/dev\/zero is not a regular file \(a character device\)/);
    const packageBytes = makeNupkg({ 'runtimes/linux-x64/native/libonnxruntime_providers_cuda.so': Buffer.alloc(1000, 1) });
    const eocd = packageBytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    packageBytes.writeUInt32LE(0xfffffff0, eocd + 12); // the central directory's size: past the end of the file
    const file = join(root, 'damaged.nupkg');
    writeFileSync(file, packageBytes);
    const run = atp(['install-cuda', '--from', file, '--sha512', createHash('sha512').update(packageBytes).digest('hex')]);
    assertUserError(run, new RegExp(`${file}: not a usable zip archive: `));
    assert.equal(existsSync(join(root, 'cuda', 'downloads')) && existsSync(join(root, 'cuda', '1.30.0')), false);
  },
);
