import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { checkOutputPaths } from '../../src/lib/files/outputPaths';
import { InputError } from '../../src/shared/errors';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { requireBuiltCli, runCli } from '../support/cli';

/** Outputs that are inputs (or each other), through every spelling: each is refused before anything is written. */

const IOI = resolve(__dirname, '../../examples/ioi.jsonl');
let root: string;
let model: string;
let data: string;
let result: string;

const atp = (...args: string[]) => runCli(join(root, 'cache'), args);

before(() => {
  requireBuiltCli();
  root = mkdtempSync(join(tmpdir(), 'atp-outputs-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 1, nHeads: 2, dModel: 8, seed: 1 });
  data = join(root, 'ioi.jsonl');
  copyFileSync(IOI, data);
  result = join(root, 'result.json');
  const run = atp('patch', '--model', model, '--data', data, '--out', result, '--device', 'cpu');
  assert.equal(run.code, 0, run.stderr);
  symlinkSync(model, join(root, 'model-link'));
  symlinkSync(data, join(root, 'data-link.jsonl'));
  linkSync(data, join(root, 'data-hardlink.jsonl'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Hash of every file under root (outside the graph cache): what must not change when a command is refused. */
function snapshot(): Map<string, string> {
  const hashes = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = join(dir, entry.name);
      if (entry.name === 'cache') continue;
      if (entry.isDirectory()) walk(file);
      else if (entry.isFile()) hashes.set(file, createHash('sha256').update(readFileSync(file)).digest('hex'));
    }
  };
  walk(root);
  return hashes;
}

function assertRefused(args: string[], names: [string, string]): void {
  const before = snapshot();
  const run = atp(...args);
  assert.equal(run.code, 2, `exit code 2 for ${args.join(' ')}; stderr: ${run.stderr}`);
  assert.doesNotMatch(run.stderr, /internal error|    at /);
  for (const name of names) assert.ok(run.stderr.includes(name), `the message names ${name}: ${run.stderr}`);
  assert.deepEqual(snapshot(), before, `no file changed, none appeared, for ${args.join(' ')}`);
}

test('patch: --out or --html equal to any input, under any name, or to each other, is refused and changes nothing', () => {
  const modelFiles = readdirSync(model).map((name) => join(model, name));
  assert.ok(modelFiles.length >= 3, 'config, weights and tokenizer');
  // Every input, and other names for some of them: a symlinked folder, a symlink, a hard link, "x/../".
  const inputs = [
    data,
    ...modelFiles,
    join(root, 'model-link', 'config.json'),
    join(root, 'data-link.jsonl'),
    join(root, 'data-hardlink.jsonl'),
    `${model}/../${basename(data)}`,
  ];
  for (const input of inputs) {
    for (const flag of ['--out', '--html']) {
      const other = flag === '--out' ? ['--html', join(root, 'new.html')] : ['--out', join(root, 'new.json')];
      assertRefused(['patch', '--model', model, '--data', data, '--device', 'cpu', flag, input, ...other], [input, flag]);
    }
  }
  // Through the model's symlinked folder, and --out equal to --html (a file that does not exist yet).
  assertRefused(
    ['patch', '--model', join(root, 'model-link'), '--data', data, '--device', 'cpu', '--out', join(model, 'tokenizer.json')],
    ['tokenizer.json', '--out'],
  );
  const same = join(root, 'both.json');
  assertRefused(
    ['patch', '--model', model, '--data', data, '--device', 'cpu', '--out', same, '--html', `${root}/model-link/../both.json`],
    ['--out', '--html'],
  );
  assert.equal(existsSync(same), false);
});

test('report: --out equal to one of its Result files is refused', () => {
  assertRefused(['report', '--out', result, result], [result, '--out']);
  const other = join(root, 'other.json');
  writeFileSync(other, readFileSync(result));
  assertRefused(['report', '--out', other, result, other], [other, '--out']);
  rmSync(other);
});

test('generate: --out equal to a model file (the tokenizer it reads) is refused', () => {
  const tokenizerCopy = join(root, 'tok');
  mkdirSync(tokenizerCopy);
  for (const name of ['tokenizer.json', 'config.json']) copyFileSync(join(model, name), join(tokenizerCopy, name));
  // generate only writes .jsonl/.atp names; a dataset named like one in the model folder is the hostile case.
  const victim = join(tokenizerCopy, 'notes.jsonl');
  writeFileSync(victim, 'keep me\n');
  assertRefused(['generate', 'ioi', '-n', '2', '--model', tokenizerCopy, '--out', victim], [victim, '--out']);
  // A .jsonl name that is a symlink to the tokenizer itself.
  const disguised = join(root, 'disguised.jsonl');
  symlinkSync(join(tokenizerCopy, 'tokenizer.json'), disguised);
  assertRefused(['generate', 'ioi', '-n', '2', '--model', tokenizerCopy, '--out', disguised], [disguised, "the model's tokenizer.json"]);
  rmSync(disguised);
  rmSync(tokenizerCopy, { recursive: true });
});

test('checkOutputPaths compares real files: symlinks, hard links, "..", a new file in a symlinked folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atp-paths-'));
  try {
    const input = join(dir, 'in.txt');
    writeFileSync(input, 'x');
    mkdirSync(join(dir, 'sub'));
    symlinkSync(dir, join(dir, 'sub', 'up'));
    const refused = (output: string) => assert.throws(() => checkOutputPaths([{ path: input, role: '--data' }], [{ path: output, role: '--out' }]), InputError);
    refused(input);
    refused(`${dir}/sub/../in.txt`);
    refused(join(dir, 'sub', 'up', 'in.txt'));
    linkSync(input, join(dir, 'hard.txt'));
    refused(join(dir, 'hard.txt'));
    // Two outputs that do not exist yet, one through a symlinked folder.
    assert.throws(
      () =>
        checkOutputPaths(
          [],
          [
            { path: join(dir, 'new.json'), role: '--out' },
            { path: join(dir, 'sub', 'up', 'new.json'), role: '--html' },
          ],
        ),
      /--html .*new\.json is the same file as --out/,
    );
    checkOutputPaths(
      [{ path: input, role: '--data' }],
      [
        { path: join(dir, 'out.json'), role: '--out' },
        { path: join(dir, 'out.html'), role: '--html' },
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
