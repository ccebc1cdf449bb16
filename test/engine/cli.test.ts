import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseResult, RESULT_SCHEMA } from '../../src/shared/result';
import { contentHash } from '../../src/lib/files/contentHash';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { requireBuiltCli, runCli } from '../support/cli';

/** The built `atp` command line (dist/cli.js, built by `npm test` before the tests run), as a user runs it. */

const IOI = resolve(__dirname, '../../examples/ioi.jsonl');
let root: string;
let model: string;

before(() => {
  requireBuiltCli();
  root = mkdtempSync(join(tmpdir(), 'atp-cli-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 2, nHeads: 4, dModel: 32, seed: 1 });
});
after(() => rmSync(root, { recursive: true, force: true }));

const atp = (...args: string[]) => runCli(join(root, 'cache'), args);

test('patch writes the Result JSON and prints baselines and top heads', () => {
  const out = join(root, 'result.json');
  const run = atp('patch', '--model', model, '--data', IOI, '--out', out, '--device', 'cpu', '--batch-size', '3');
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /clean logit diff: +[-+]\d/);
  assert.match(run.stdout, /corrupted logit diff: [-+]\d/);
  assert.match(run.stdout, /L\dH\d {2}[-+]\d\.\d{4}/);
  // Piped (as here): plain progress lines with the time left, no \r.
  assert.match(run.stderr, /^AtP\*?: batch 1\/3 \(33%\), about \d+ s left$/m);
  assert.match(run.stderr, /^AtP\*?: batch 3\/3 \(100%\)$/m);
  assert.ok(!/[\r\x1b]/.test(run.stderr), 'no control characters in a pipe');
  const result = parseResult(readFileSync(out, 'utf8'), out);
  assert.equal(result.schema, RESULT_SCHEMA);
  assert.equal(result.device, 'cpu');
  assert.deepEqual([result.model.layers, result.model.heads, result.model.dModel, result.model.dHead], [2, 4, 32, 8]);
  assert.equal(result.examples.length, 8);
  assert.equal(result.heads.length, 2);
  assert.equal(result.heads[0].length, 4);
  const first = result.examples[0];
  assert.deepEqual(first.cleanIds, [2215, 1757, 290, 5335, 1816, 284, 262, 12437, 11, 1757, 2921, 262, 6131, 284]);
  assert.equal(first.correctId, 5335);
  assert.equal(first.tokens[3].text, ' Mary');
  assert.equal(first.clean.slice(first.tokens[3].start, first.tokens[3].end), ' Mary');
  assert.equal(first.attributions.z[1][13].length, 4);
  // heads is z at the answer position, summed over examples.
  const sum = result.examples.reduce((s, e) => s + e.attributions.z[1].at(-1)![2], 0);
  assert.ok(Math.abs(result.heads[1][2] - sum) < 1e-9);
});

test('--check on a default (auto) run: the passes are printed before the run (the exact head map among them), the checks of the estimated maps after it, the HTML report shows both', () => {
  const out = join(root, 'checked.json');
  const html = join(root, 'checked.html');
  const run = atp('patch', '--model', model, '--data', IOI, '--out', out, '--device', 'cpu', '--check', '2', '--html', html);
  assert.equal(run.code, 0, run.stderr);
  // Before any batch: what the run costs.
  const plan = run.stderr.indexOf(
    'AtP* (QK fix) of 8 examples: 24 forward + 8 backward passes; exact token effects: 8 forward passes; exact head map: each head at the answer patched, ',
  );
  assert.ok(plan >= 0 && plan < run.stderr.indexOf('batch 1/'), run.stderr);
  assert.match(
    run.stdout,
    /method: AtP\* estimate \(QK fix\) \(exact activation patching of every component would cost \d+ passes, over 4× AtP's 32: AtP\* estimates\)/,
  );
  assert.match(run.stdout, /AtP\* \(QK fix\), summed over positions and examples: queries L\dH\d [-+]\d/);
  assert.match(run.stdout, /token effects: exact/);
  assert.match(run.stdout, /position map \(hook_resid_pre\): AtP estimate, L0 exact \(layer 0 is the token effect\)/);
  assert.match(run.stderr, /checks of up to 12 components/);
  assert.match(run.stdout, /checked 12 components against exact activation patching \(per map: top 2 by \|attribution\| and up to 2 random\)/);
  // Each estimated map's agreement, led by its error (the head map is exact: nothing to check there).
  assert.doesNotMatch(run.stdout, /heads \(hook_z at the answer\): max error/);
  for (const map of ['hook_resid_pre', 'hook_attn_out', 'hook_mlp_out'])
    assert.match(
      run.stdout,
      new RegExp(
        `  ${map}: max error \\d+(\\.\\d)?% of the largest exact · top cell -?\\d+\\.\\d\\d× exact · Pearson -?\\d\\.\\d{3} · Spearman -?\\d\\.\\d{3} \\(4 checked`,
      ),
    );
  assert.match(run.stdout, /all maps together: Pearson -?\d\.\d{3}, Spearman -?\d\.\d{3}/);
  const result = parseResult(readFileSync(out, 'utf8'), out);
  assert.equal(result.checks!.items.length, 12);
  assert.deepEqual(
    result.checks!.maps!.map((m) => m.map),
    ['residPre', 'attnOut', 'mlpOut'],
  );
  assert.deepEqual(result.methods, {
    attributions: 'atp',
    heads: 'exact',
    positions: 'atp',
    tokenScores: 'exact',
    maps: {
      heads: { method: 'exact', exactLayers: [] },
      residPre: { method: 'atp', exactLayers: [0] },
      attnOut: { method: 'atp', exactLayers: [] },
      mlpOut: { method: 'atp', exactLayers: [] },
    },
  });
  const report = readFileSync(html, 'utf8');
  assert.match(report, /Layer × head \(hook_z at the answer position\) — exact \(activation patching\)/);
  assert.match(report, /Checked against exact activation patching</);
  assert.equal((report.match(/<tr( class="sign-differs")?><td>L\d/g) ?? []).length, 12 + 8, 'twelve checks, all eight heads');
  assert.match(report, /<li data-map="residPre">/);

  const exact = join(root, 'exact.json');
  const sweep = atp('patch', '--model', model, '--data', IOI, '--out', exact, '--device', 'cpu', '--method', 'exact', '--batch-size', '64');
  assert.equal(sweep.code, 0, sweep.stderr);
  assert.match(sweep.stderr, /exact activation patching of 8 examples: \d+ forward \+ 8 backward passes; exact token effects: included/);
  assert.equal(parseResult(readFileSync(exact, 'utf8'), exact).methods!.heads, 'exact');
  assertRejected(['--model', model, '--data', IOI, '--method', 'guess'], /--method: unknown method "guess"; choose one of auto, atp, atpstar, exact/);
  assertRejected(['--model', model, '--data', IOI, '--method', 'atp', '--grad-drop'], /--grad-drop is part of AtP\*/);
  assertRejected(['--model', model, '--data', IOI, '--check', 'three'], /--check: expected a non-negative integer, got "three"/);
});

test('a Result written by atp patch or atp merge carries the hash of the dataset text, so the editor opens it as current', () => {
  // A byte-order mark and CRLF line ends: the editor's text drops the mark and keeps the line ends.
  const text = readFileSync(IOI, 'utf8').split('\n').filter(Boolean).join('\r\n') + '\r\n';
  const data = join(root, 'bom.jsonl');
  writeFileSync(data, `\uFEFF${text}`);
  const out = join(root, 'bom.json');
  const run = atp('patch', '--model', model, '--data', data, '--out', out, '--device', 'cpu');
  assert.equal(run.code, 0, run.stderr);
  assert.equal(parseResult(readFileSync(out, 'utf8'), out).dataset.contentHash, contentHash(text));
  const shards = [1, 2].map((i) => join(root, `bom-${i}.json`));
  shards.forEach((file, i) => assert.equal(atp('patch', '--shard', `${i + 1}/2`, '--model', model, '--data', data, '--out', file, '--device', 'cpu').code, 0));
  const merged = join(root, 'bom-merged.json');
  const merge = atp('merge', ...shards, '--out', merged);
  assert.equal(merge.code, 0, merge.stderr);
  const result = parseResult(readFileSync(merged, 'utf8'), merged);
  assert.equal(result.dataset.contentHash, contentHash(text));
  assert.deepEqual(result.merged, { shards: 2 });
});

test('a device that cannot start falls back to CPU with a clear note', () => {
  const out = join(root, 'cuda.json');
  const run = atp('patch', '--model', model, '--data', IOI, '--out', out, '--device', 'webgpu');
  assert.equal(run.code, 0, run.stderr);
  const result = parseResult(readFileSync(out, 'utf8'), out);
  // On a machine with a WebGPU adapter this runs there; here there is none and it must say so.
  if (result.device === 'cpu') assert.match(run.stderr, /warning: webgpu could not start .*running on CPU instead/);
});

/** Each bad input: exit code 2, a message naming the problem, and the previous --out left untouched. */
function assertRejected(args: string[], message: RegExp): void {
  const out = join(root, 'kept.json');
  writeFileSync(out, 'previous result');
  const before = readdirSync(root).sort();
  const run = atp('patch', '--out', out, '--device', 'cpu', ...args);
  assert.equal(run.code, 2, `exit code 2; stderr: ${run.stderr}`);
  assert.match(run.stderr, message);
  assert.doesNotMatch(run.stderr, /internal error|    at /);
  assert.equal(readFileSync(out, 'utf8'), 'previous result');
  assert.deepEqual(readdirSync(root).sort(), before, 'no temporary files left behind');
}

function dataFile(name: string, lines: string[]): string {
  const file = join(root, name);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

const good = JSON.stringify({
  clean: 'When John and Mary went to the shops, John gave the bag to',
  corrupted: 'When John and Mary went to the shops, Mary gave the bag to',
  correct: ' Mary',
  incorrect: ' John',
});

test('a malformed line names the file, the line and the field', () => {
  const file = dataFile('bad.jsonl', [good, '{"clean": "a", "corrupted": 3, "correct": " b", "incorrect": " c"}']);
  assertRejected(['--model', model, '--data', file], /bad\.jsonl:2: field "corrupted" must be a string/);
  const broken = dataFile('broken.jsonl', [good, good, '{"clean": "a",']);
  assertRejected(['--model', model, '--data', broken], /broken\.jsonl:3: invalid JSON/);
});

test('a token-length mismatch names the line and both counts', () => {
  const file = dataFile('mismatch.jsonl', [
    good,
    JSON.stringify({ clean: 'When John went', corrupted: 'When Johnathan Smith went', correct: ' Mary', incorrect: ' John' }),
  ]);
  assertRejected(['--model', model, '--data', file], /mismatch\.jsonl:2: "clean" has 3 tokens but "corrupted" has 5/);
});

test('an empty answer is rejected with its line and field', () => {
  const file = dataFile('empty.jsonl', [JSON.stringify({ clean: 'a b', corrupted: 'a c', correct: '', incorrect: ' x' })]);
  assertRejected(['--model', model, '--data', file], /empty\.jsonl:1: field "correct"/);
});

test('an unknown model_type is named, with the supported ones', () => {
  const dir = join(root, 'odd-model');
  writeRandomGpt2(dir, { nLayers: 1, nHeads: 2, dModel: 8, seed: 2 });
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'mamba' }));
  assertRejected(['--model', dir, '--data', IOI], /model_type "mamba".*gpt2/);
});

test('missing and truncated safetensors are reported, never loaded', () => {
  const dir = join(root, 'truncated');
  writeRandomGpt2(dir, { nLayers: 1, nHeads: 2, dModel: 8, seed: 3 });
  const weights = join(dir, 'model.safetensors');
  truncateSync(weights, statSync(weights).size - 100);
  assertRejected(['--model', dir, '--data', IOI], /model\.safetensors.*truncated/);
  unlinkSync(weights);
  writeFileSync(join(dir, 'pytorch_model.bin'), 'pickle');
  assertRejected(['--model', dir, '--data', IOI], /only safetensors/i);
});

test('--precision float16: mixed precision, recorded in the Result and said on the runtime line; what it cannot run is refused by flag', () => {
  const out = join(root, 'half.json');
  const run = atp('patch', '--model', model, '--data', IOI, '--out', out, '--device', 'cpu', '--method', 'atp', '--precision', 'float16');
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^runtime: CPUExecutionProvider, float16 \(loss scale 2\^\d+(…2\^\d+)?\)$/m);
  const result = parseResult(readFileSync(out, 'utf8'), out);
  assert.equal(result.runtime?.precision, 'float16');
  assert.ok(result.runtime?.lossScale && result.runtime.lossScale.min <= result.runtime.lossScale.max);
  assert.ok(result.examples.every((e) => e.attributions.z.flat(2).every(Number.isFinite)));
  const plain = atp('patch', '--model', model, '--data', IOI, '--out', join(root, 'single.json'), '--device', 'cpu', '--method', 'atp');
  assert.match(plain.stdout, /^runtime: CPUExecutionProvider, float32$/m);
  assertRejected(['--model', model, '--data', IOI, '--precision', 'float8'], /--precision: expected float16, float32, float64, got "float8"/);
  assertRejected(
    ['--model', model, '--data', IOI, '--precision', 'float16', '--method', 'atpstar'],
    /--precision: float16 runs AtP and exact patching only, not --method atpstar/,
  );
});

test('bad flags are explained', () => {
  assertRejected(['--model', model, '--data', IOI, '--batch-size', '0'], /--batch-size: expected a positive integer/);
  assertRejected(['--model', model, '--data', IOI, '--device', 'tpu'], /unknown device "tpu"/);
  assertRejected(['--model', join(root, 'nowhere'), '--data', IOI], /--model: folder .*nowhere does not exist/);
  assertRejected(['--model', model, '--data', join(root, 'nowhere.jsonl')], /nowhere\.jsonl/);
});

test('a multi-token answer is used by its first token, with a warning naming the line and field', () => {
  // ' Maryanne' starts with ' Mary', not with the incorrect answer's ' John' (that would be refused).
  const file = dataFile('long-answer.jsonl', [good, JSON.stringify({ ...JSON.parse(good), correct: ' Maryanne' })]);
  const out = join(root, 'long-answer.json');
  const run = atp('patch', '--model', model, '--data', file, '--out', out, '--device', 'cpu');
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /warning: .*long-answer\.jsonl:2: "correct" \(" Maryanne"\) is 2 tokens; using its first token " Mary"/);
  const result = parseResult(readFileSync(out, 'utf8'), out);
  assert.equal(result.warnings.length, 1);
  assert.equal(result.examples[1].correctId, 5335);
});
