import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { requireBuiltCli, runCli } from '../support/cli';

/** Careless and hostile command lines: each ends in exit code 2 and a sentence, never a stack trace or a lost file. */

const IOI = resolve(__dirname, '../../examples/ioi.jsonl');
let root: string;
let model: string;
let result: string;

const atp = (...args: string[]) => runCli(join(root, 'cache'), args);

function assertUserError(run: { code: number | null; stderr: string }, message: RegExp): void {
  assert.equal(run.code, 2, `exit code 2; stderr: ${run.stderr}`);
  assert.match(run.stderr, message);
  assert.doesNotMatch(run.stderr, /internal error|    at /);
}

before(() => {
  requireBuiltCli();
  root = mkdtempSync(join(tmpdir(), 'atp-hostile-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 1, nHeads: 2, dModel: 8, seed: 1 });
  result = join(root, 'result.json');
  const run = atp('patch', '--model', model, '--data', IOI, '--out', result, '--device', 'cpu');
  assert.equal(run.code, 0, run.stderr);
});
after(() => rmSync(root, { recursive: true, force: true }));

test('--out or --html whose folder path runs through a file is a user error', () => {
  const file = join(root, 'plain-file');
  writeFileSync(file, 'x');
  assertUserError(
    atp('patch', '--model', model, '--data', IOI, '--device', 'cpu', '--out', join(file, 'r.json')),
    /--out .*plain-file.*: cannot create its folder: a part of its folder path is a file/,
  );
  assertUserError(atp('report', '--out', join(file, 'sub', 'r.html'), result), /--out .*plain-file.*cannot create its folder/);
  assertUserError(atp('generate', 'ioi', '-n', '2', '--model', model, '--out', join(file, 'd.jsonl')), /--out .*plain-file.*cannot create its folder/);
});

test('--out that is a folder is refused before the run', () => {
  const run = atp('patch', '--model', model, '--data', IOI, '--device', 'cpu', '--out', root);
  assertUserError(run, /--out .* is a folder; give a file path/);
  assert.doesNotMatch(run.stderr, /running/);
});

test('a Result with no examples is refused by atp report with the file and field', () => {
  const empty = join(root, 'empty.json');
  writeFileSync(empty, JSON.stringify({ ...JSON.parse(readFileSync(result, 'utf8')), examples: [] }));
  assertUserError(atp('report', '--out', join(root, 'empty.html'), empty), /empty\.json: field "examples" must be a non-empty array/);
  assert.equal(existsSync(join(root, 'empty.html')), false);
});

test('an --html that cannot be written leaves the previous --out untouched (both are written, or neither)', () => {
  const out = join(root, 'kept.json');
  writeFileSync(out, 'previous result');
  // A 240-character name is a valid file name, but its temp file's name (name + pid + random) is too long:
  // the report fails while it is staged, as a full disk or a read-only folder would, whoever runs the test.
  const html = join(root, `${'r'.repeat(235)}.html`);
  assertUserError(
    atp('patch', '--model', model, '--data', IOI, '--device', 'cpu', '--out', out, '--html', html),
    /r\.html: cannot write the report: ENAMETOOLONG/,
  );
  assert.equal(readFileSync(out, 'utf8'), 'previous result');
  assert.equal(existsSync(html), false);
  assert.deepEqual(
    readdirSync(root).filter((name) => name.endsWith('.tmp')),
    [],
    'no temp file left',
  );
});

test('an --html that is a folder is refused before the --out is replaced', () => {
  const out = join(root, 'kept2.json');
  writeFileSync(out, 'previous result');
  const folder = join(root, 'a-folder.html');
  mkdirSync(folder);
  assertUserError(
    atp('patch', '--model', model, '--data', IOI, '--device', 'cpu', '--out', out, '--html', folder),
    /--html .*a-folder\.html is a folder; give a file path/,
  );
  assert.equal(readFileSync(out, 'utf8'), 'previous result');
  assert.deepEqual(
    readdirSync(root).filter((name) => name.endsWith('.tmp')),
    [],
    'no temp file left',
  );
});

test('integer flags take plain decimal digits only; generate -n has an upper bound', () => {
  for (const text of ['0x10', '1e3', ' 8', '8 ', '+8', '0b1', '8.0', '']) {
    assertUserError(
      atp('patch', '--model', model, '--data', IOI, '--device', 'cpu', '--out', join(root, 'n.json'), '--batch-size', text),
      /--batch-size: expected a positive integer, got/,
    );
  }
  assertUserError(
    atp('generate', 'ioi', '-n', '100000000', '--model', model, '--out', join(root, 'big.jsonl')),
    /-n: expected a positive integer, got "100000000" \(plain decimal digits, 1 to 10000\)/,
  );
  assert.equal(existsSync(join(root, 'n.json')), false);
});

test('a 5 MB or 50 MB prompt line is refused with its line and the model positions, in seconds, in both formats', () => {
  for (const [name, characters] of [
    ['five', 5_000_000],
    ['fifty', 50_000_000],
  ] as const) {
    const prompt = 'word '.repeat(characters / 5);
    const jsonl = join(root, `${name}.jsonl`);
    writeFileSync(jsonl, `${JSON.stringify({ clean: prompt, corrupted: prompt, correct: ' a', incorrect: ' b' })}\n`);
    const atp = join(root, `${name}.atp`);
    writeFileSync(atp, `# a comment\n${prompt}{x|y} => " a" | " b"\n`);
    for (const [file, line] of [
      [jsonl, 1],
      [atp, 2],
    ] as const) {
      const started = performance.now();
      const run = patchWith(file);
      assertUserError(
        run,
        new RegExp(
          `${name}\\.(jsonl|atp):${line}: "clean" is ${characters + (file === atp ? 1 : 0)} characters long, so at least \\d+ tokens: more than the model's 1024 positions`,
        ),
      );
      assert.ok(performance.now() - started < 30_000, `${file} took ${performance.now() - started} ms`);
    }
    rmSync(jsonl);
    rmSync(atp);
  }
});

function patchWith(data: string) {
  return atp('patch', '--model', model, '--data', data, '--device', 'cpu', '--out', join(root, 'long.json'));
}

test('answers that are equal, or start with the same token, are refused with their line, in both formats', () => {
  const same = join(root, 'same.jsonl');
  const good = JSON.stringify({
    clean: 'When John and Mary went to the shops, John gave the bag to',
    corrupted: 'When John and Mary went to the shops, Mary gave the bag to',
    correct: ' Mary',
    incorrect: ' John',
  });
  writeFileSync(same, `${good}\n${JSON.stringify({ ...JSON.parse(good), incorrect: ' Mary' })}\n`);
  assertUserError(patchWith(same), /same\.jsonl:2: fields "correct" and "incorrect" are the same \(" Mary"\): their logit difference is always 0/);
  const sameAtp = join(root, 'same.atp');
  writeFileSync(sameAtp, `# x\n\nWhen {John|Mary} left => " Mary" | " Mary"\n`);
  assertUserError(patchWith(sameAtp), /same\.atp:3:\d+: the correct and incorrect answers are the same/);
  // Different strings, same first token: the metric is 0 for the line, so it is an error in the engine too.
  const firstToken = join(root, 'first-token.jsonl');
  writeFileSync(firstToken, `${good}\n${JSON.stringify({ ...JSON.parse(good), correct: ' John', incorrect: ' Johnathan' })}\n`);
  assertUserError(
    patchWith(firstToken),
    /first-token\.jsonl:2: "correct" and "incorrect" both start with the token " John": their logit difference is always 0/,
  );
});

test('dataset warnings (an .atp line whose prompts are the same) reach stderr and the Result', () => {
  const data = join(root, 'warn.atp');
  writeFileSync(
    data,
    'When John and Mary went to the shops, {John|Mary} gave the bag to => " Mary" | " John"\nWhen Mary left, she gave it to => " Mary" | " John"\n',
  );
  const out = join(root, 'warn.json');
  const run = atp('patch', '--model', model, '--data', data, '--device', 'cpu', '--out', out);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /warn\.atp:2:1: warning: no \{clean\|corrupted\} span: the clean and corrupted prompts are the same/);
  const result = JSON.parse(readFileSync(out, 'utf8'));
  assert.ok(
    result.warnings.some((w: string) => /warn\.atp:2:1: warning: no \{clean\|corrupted\} span/.test(w)),
    result.warnings.join('\n'),
  );
});
