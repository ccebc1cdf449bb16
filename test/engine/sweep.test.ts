// atp sweep end to end, as a user runs it (the built CLI): two local model folders of different depth — the shipped
// TinySQL model and a random 2-layer GPT-2 with the same TinySQL tokenizer — and a folder that does not exist.
// Each cell's dataset must be what `atp generate` writes and its Result what `atp patch` computes on that dataset;
// a rerun keeps finished cells byte for byte; a changed spec or a truncated Result is computed again; a failing
// cell records its error and the others go on. Cancellation (engine API) keeps the finished cells and their summary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseResult } from '../../src/shared/result';
import { parseSweepSummary } from '../../src/shared/sweep';
import { digestRun } from '../../src/shared/compare';
import { contentHash } from '../../src/lib/files/contentHash';
import { CancelledError } from '../../src/engine/patching/options';
import { runSweep } from '../../src/engine/sweep/sweep';
import { releaseSessions } from '../../src/engine/process/runtime';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { requireBuiltCli, runCli } from '../support/cli';

const DEMO = resolve(__dirname, '../../models/tinysql-demo');
let root: string;
let small: string;
let missing: string;
let out: string;

before(() => {
  requireBuiltCli();
  root = mkdtempSync(join(tmpdir(), 'atp-sweep-'));
  small = join(root, 'small-gpt2');
  missing = join(root, 'no-such-model');
  out = join(root, 'sweep');
  // A random model that can read TinySQL prompts: the demo's tokenizer (420 tokens, every name one token).
  writeRandomGpt2(small, { nLayers: 2, nHeads: 4, dModel: 32, vocabSize: 420, maxPositions: 64, seed: 3 });
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(DEMO, file), join(small, file));
  const config = JSON.parse(readFileSync(join(small, 'config.json'), 'utf8'));
  writeFileSync(join(small, 'config.json'), JSON.stringify({ ...config, bos_token_id: 419, eos_token_id: 419 }));
});
after(async () => {
  await releaseSessions();
  rmSync(root, { recursive: true, force: true });
});

const atp = (...args: string[]) => runCli(join(root, 'cache'), args);
const sweepArgs = (n: string) => [
  'sweep',
  '--models',
  `${DEMO},${small},${missing}`,
  '--features',
  'EngTableName,DefFieldName',
  '-n',
  n,
  '--device',
  'cpu',
  '--out',
  out,
];
const readSummary = () => parseSweepSummary(readFileSync(join(out, 'summary.json'), 'utf8'), 'summary.json');
const RESULTS = ['tinysql-demo/EngTableName-cs1', 'tinysql-demo/DefFieldName-cs1', 'small-gpt2/EngTableName-cs1', 'small-gpt2/DefFieldName-cs1'];

test('a sweep writes every Result beside its dataset and one summary; a missing model fails its cells only', () => {
  const run = atp(...sweepArgs('3'));
  assert.equal(run.code, 3, `some cells failed: exit 3\n${run.stderr}`);
  assert.match(run.stderr, /sweep: 6 cells \(3 models × 2 features\)/);
  assert.match(run.stderr, /\[1\/6\] .*tinysql-demo · EngTableName CS1: ran/);
  assert.match(run.stdout, /4 ran, 0 kept, 2 failed/);
  const summary = readSummary();
  assert.equal(summary.plannedCells, 6);
  assert.deepEqual(
    summary.cells.map((c) => c.status),
    ['ran', 'ran', 'ran', 'ran', 'failed', 'failed'],
  );
  for (const cell of summary.cells.slice(4)) assert.match(cell.error!, /folder .*no-such-model does not exist/);

  for (const [index, name] of RESULTS.entries()) {
    const cell = summary.cells[index];
    assert.equal(cell.result, `${name}.atp-result.json`);
    const resultFile = join(out, cell.result);
    const result = parseResult(readFileSync(resultFile, 'utf8'), resultFile);
    const datasetText = readFileSync(join(out, cell.dataset), 'utf8');
    assert.equal(result.dataset.contentHash, contentHash(datasetText), 'the Result says which dataset text it describes');
    assert.equal(result.dataset.examples, 3);
    assert.equal(result.run!.requested, 'atp');
    // The summary's digest is the Result's.
    assert.deepEqual(cell.digest, JSON.parse(JSON.stringify(digestRun(cell.digest!.label, result, 5))));
  }
  assert.deepEqual(
    summary.cells.map((c) => c.digest?.layers ?? null),
    [4, 4, 2, 2, null, null],
  );

  // The dataset is exactly what `atp generate` writes for that model's tokenizer.
  const generated = join(root, 'generated.jsonl');
  const generate = atp('generate', 'tinysql', '--feature', 'EngTableName', '--cs', '1', '-n', '3', '--seed', '0', '--model', small, '--out', generated);
  assert.equal(generate.code, 0, generate.stderr);
  assert.equal(readFileSync(join(out, 'small-gpt2/EngTableName-cs1.jsonl'), 'utf8'), readFileSync(generated, 'utf8'));

  // And the Result is what `atp patch` computes on that dataset (same engine path; its numerics are tested elsewhere).
  const patched = join(root, 'patched.json');
  const patch = atp(
    'patch',
    '--model',
    DEMO,
    '--data',
    join(out, 'tinysql-demo/EngTableName-cs1.jsonl'),
    '--out',
    patched,
    '--device',
    'cpu',
    '--method',
    'atp',
  );
  assert.equal(patch.code, 0, patch.stderr);
  const fromPatch = parseResult(readFileSync(patched, 'utf8'), patched);
  const fromSweep = parseResult(readFileSync(join(out, RESULTS[0] + '.atp-result.json'), 'utf8'), 'sweep');
  assert.deepEqual(fromSweep.heads, fromPatch.heads);
  assert.equal(fromSweep.metric.cleanLogitDiff, fromPatch.metric.cleanLogitDiff);

  const html = readFileSync(join(out, 'summary.html'), 'utf8');
  assert.match(html, /6 of 6 cells done, 2 failed/);
  assert.equal((html.match(/data-status="ran"/g) ?? []).length, 4);
  assert.equal((html.match(/data-status="failed"/g) ?? []).length, 2);
  assert.match(html, /<a href="tinysql-demo\/EngTableName-cs1\.atp-result\.json">ran<\/a>/);
  assert.doesNotMatch(html, /<script|(src|href)=["']?https?:/);
});

test('a rerun keeps finished cells byte for byte; a new -n or a truncated Result is computed again', () => {
  const files = RESULTS.map((name) => join(out, `${name}.atp-result.json`));
  const before = files.map((file) => ({ text: readFileSync(file, 'utf8'), mtime: statSync(file).mtimeMs }));
  const again = atp(...sweepArgs('3'));
  assert.equal(again.code, 3, again.stderr);
  assert.match(again.stdout, /0 ran, 4 kept, 2 failed/);
  assert.doesNotMatch(again.stderr, /batch 1\//, 'nothing was run');
  files.forEach((file, i) => {
    assert.equal(readFileSync(file, 'utf8'), before[i].text);
    assert.equal(statSync(file).mtimeMs, before[i].mtime, `${file} was not rewritten`);
  });

  // The same folders named relative to another working directory are the same models (their files' hashes say so).
  const relativeArgs = sweepArgs('3').map((arg) => (arg.includes(small) ? arg.replace(DEMO, relative(root, DEMO)).replace(small, './small-gpt2') : arg));
  const relativeRun = runCli(join(root, 'cache'), relativeArgs, root);
  assert.match(relativeRun.stdout, /0 ran, 4 kept, 2 failed/, relativeRun.stderr);
  files.forEach((file, i) => assert.equal(statSync(file).mtimeMs, before[i].mtime, `${file} was not rewritten`));

  // A Result cut short (a crash while someone copied it, a hand edit) is not "finished".
  truncateSync(files[1], 200);
  const repaired = atp(...sweepArgs('3'));
  assert.match(repaired.stdout, /1 ran, 3 kept, 2 failed/);
  assert.deepEqual(
    readSummary()
      .cells.slice(0, 4)
      .map((c) => c.status),
    ['kept', 'ran', 'kept', 'kept'],
  );
  assert.deepEqual(parseResult(readFileSync(files[1], 'utf8'), files[1]).heads, parseResult(before[1].text, files[1]).heads, 'the same numbers again');

  // Another precision: a cell computed in float32 is not float16's, so every cell runs again; then it is kept.
  const half = atp(...sweepArgs('3'), '--precision', 'float16');
  assert.match(half.stdout, /4 ran, 0 kept, 2 failed/);
  assert.equal(parseResult(readFileSync(files[0], 'utf8'), files[0]).runtime?.precision, 'float16');
  assert.match(atp(...sweepArgs('3'), '--precision', 'float16').stdout, /0 ran, 4 kept, 2 failed/);

  // Another spec (4 examples) makes other datasets: every cell runs again.
  const bigger = atp(...sweepArgs('4'));
  assert.match(bigger.stdout, /4 ran, 0 kept, 2 failed/);
  assert.equal(parseResult(readFileSync(files[0], 'utf8'), files[0]).dataset.examples, 4);
});

test('atp compare on two cells of the sweep: different depths are compared by depth profile and depth slices', () => {
  const a = join(out, RESULTS[0] + '.atp-result.json');
  const b = join(out, RESULTS[2] + '.atp-result.json');
  const run = atp('compare', a, b, '--json', join(root, 'cmp.json'));
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /small-gpt2\/EngTableName-cs1\.atp-result\.json\s+no\s+—\s+-?\d\.\d{3}\s+\d\.\d{3} \(depth: depth [^)]+\)/);
  const comparison = JSON.parse(readFileSync(join(root, 'cmp.json'), 'utf8'));
  assert.deepEqual(
    comparison.runs.map((r: { layers: number }) => r.layers),
    [4, 2],
  );
});

test('cancelling a sweep keeps the cells finished so far and their summary', async () => {
  const dir = join(root, 'cancelled');
  const controller = new AbortController();
  const spec = { models: [DEMO, small], features: ['EngTableName'], count: 2, seed: 0, method: 'atp' };
  await assert.rejects(
    runSweep(spec, dir, {
      device: 'cpu',
      batchSize: 8,
      signal: controller.signal,
      onCell: ({ phase }) => {
        if (phase === 'ran') controller.abort();
      },
    }),
    CancelledError,
  );
  const summary = parseSweepSummary(readFileSync(join(dir, 'summary.json'), 'utf8'), 'summary.json');
  assert.equal(summary.plannedCells, 2);
  assert.deepEqual(
    summary.cells.map((c) => c.status),
    ['ran'],
  );
  assert.ok(existsSync(join(dir, 'tinysql-demo/EngTableName-cs1.atp-result.json')));
  assert.equal(existsSync(join(dir, 'small-gpt2/EngTableName-cs1.atp-result.json')), false);
});
