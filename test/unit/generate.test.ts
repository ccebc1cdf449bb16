import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCommand } from '../../src/cli/generate';
import { InputError } from '../../src/shared/errors';
import { readDataset, diagnoseWithTokenizer, parseDatasetText } from '../../src/lib/dataset';
import { ModelTokenizer } from '../../src/engine/model/tokenizer';
import { writeGpt2TokenizerFiles } from '../support/gpt2Tokenizer';

const root = mkdtempSync(join(tmpdir(), 'atp-generate-'));
const model = join(root, 'gpt2');
let gpt2: ModelTokenizer;
before(() => {
  writeGpt2TokenizerFiles(model);
  gpt2 = ModelTokenizer.fromDir(model);
});
after(() => rmSync(root, { recursive: true, force: true }));

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (s: string) => out.push(s), stderr: (s: string) => err.push(s) } };
}

test('generate ioi writes JSONL, and .atp when --out ends with .atp; both read back the same, without diagnostics', async () => {
  const jsonl = join(root, 'out', 'ioi.jsonl');
  const atp = join(root, 'out', 'ioi.atp');
  const a = io();
  await generateCommand(['ioi', '-n', '50', '--seed', '3', '--model', model, '--out', jsonl], a.io);
  assert.deepEqual(a.out, [`wrote 50 examples to ${jsonl}\n`]);
  await generateCommand(['ioi', '-n', '50', '--seed', '3', '--model', model, '--out', atp], io().io);
  const fromJsonl = readDataset(jsonl).examples;
  const fromAtp = readDataset(atp).examples;
  const fields = (e: { clean: string; corrupted: string; correct: string; incorrect: string }) => [e.clean, e.corrupted, e.correct, e.incorrect];
  assert.equal(fromJsonl.length, 50);
  assert.deepEqual(fromAtp.map(fields), fromJsonl.map(fields));
  assert.ok(readFileSync(atp, 'utf8').startsWith('# IOI: 50 examples, seed 3'));
  assert.deepEqual(diagnoseWithTokenizer(readDataset(atp), gpt2), []);
  assert.deepEqual(readdirSync(join(root, 'out')).sort(), ['ioi.atp', 'ioi.jsonl'], 'no temporary files are left');
});

test('generate tinysql writes the requested feature', async () => {
  const out = join(root, 'sql.atp');
  await generateCommand(
    ['tinysql', '--feature', 'DefOrderByDirection', '--cs', '2', '-n', '20', '--seed', '1', '--novel', '--model', model, '--out', out],
    io().io,
  );
  const dataset = readDataset(out);
  assert.equal(dataset.examples.length, 20);
  for (const e of dataset.examples) assert.ok(e.clean.endsWith(' ORDER BY ' + e.clean.split(' ORDER BY ')[1]));
  assert.deepEqual(diagnoseWithTokenizer(dataset, gpt2), []);
});

test('bad flags are InputErrors, and nothing is written', async () => {
  const out = join(root, 'bad.jsonl');
  const cases: [string[], RegExp][] = [
    [['--model', model, '--out', out], /say what to generate, ioi or tinysql/],
    [['sql', '--model', model, '--out', out], /ioi or tinysql \(got sql\)/],
    [['ioi', '--out', out], /--model is required/],
    [['ioi', '--model', model], /--out is required/],
    [['ioi', '-n', '0', '--model', model, '--out', out], /-n: expected a positive integer, got "0"/],
    [['ioi', '-n', '2.5', '--model', model, '--out', out], /-n: expected a positive integer/],
    [['ioi', '--seed', '-1', '--model', model, '--out', out], /--seed/],
    [['ioi', '--feature', 'EngTableName', '--model', model, '--out', out], /--feature is for tinysql only/],
    [['ioi', '--bogus', '--model', model, '--out', out], /Unknown option '--bogus'/],
    [['ioi', '--model', model, '--out', join(root, 'x.csv')], /must end with \.jsonl or \.atp/],
    [['ioi', '--model', join(root, 'nowhere'), '--out', out], /No tokenizer found/],
    [['tinysql', '--model', model, '--out', out], /--feature is required/],
    [['tinysql', '--feature', 'Nope', '--model', model, '--out', out], /unknown TinySQL feature "Nope"/],
    [['tinysql', '--feature', 'DefTableName', '--cs', '4', '--model', model, '--out', out], /--cs: expected 1, 2 or 3/],
    [['tinysql', '--feature', 'DefOrderByField', '--model', model, '--out', out], /needs ORDER BY/],
  ];
  for (const [args, message] of cases) {
    await assert.rejects(generateCommand(args, io().io), (error: unknown) => error instanceof InputError && message.test(error.message), args.join(' '));
  }
  assert.equal(existsSync(out), false);
});

test('diagnoseWithTokenizer: multi-token answers and token-count mismatches at exact ranges, in both formats', () => {
  const atp = [
    'When John and Mary went to the shops, {John|Mary} gave the bag to => " Mary" | " John"',
    'When {John|Maryanne Smith} left, she gave it to => " Mary" | " Johnathan"',
    'a {b|c} => " x" | " x!"',
  ].join('\r\n');
  const parsed = parseDatasetText(atp, 'd.atp');
  assert.deepEqual(parsed.diagnostics, []);
  const line2 = atp.split('\r\n')[1];
  assert.deepEqual(diagnoseWithTokenizer(parsed.dataset, gpt2), [
    {
      line: 2,
      startColumn: line2.indexOf('" Johnathan"'),
      endColumn: line2.indexOf('" Johnathan"') + '" Johnathan"'.length,
      severity: 'warning',
      message: 'the incorrect answer " Johnathan" is 2 tokens (" John", "athan"); only its first token " John" is used',
    },
    {
      line: 2,
      startColumn: 5,
      endColumn: 5 + '{John|Maryanne Smith}'.length,
      severity: 'error',
      message: 'the clean prompt is 8 tokens and the corrupted prompt 10: attribution patching needs prompts of equal token counts',
    },
    {
      line: 3,
      startColumn: 18,
      endColumn: 23,
      severity: 'warning',
      message: 'the incorrect answer " x!" is 2 tokens (" x", "!"); only its first token " x" is used',
    },
    { line: 3, startColumn: 11, endColumn: 23, severity: 'error', message: 'both answers start with the token " x": their logit difference is always 0' },
  ]);
  const jsonLine = JSON.stringify({ clean: 'When John left', corrupted: 'When Maryanne left', correct: ' Mary', incorrect: ' John' });
  const jsonl = parseDatasetText(`\n${jsonLine}`, 'd.jsonl');
  const corruptedAt = jsonLine.indexOf('"When Maryanne left"');
  assert.deepEqual(diagnoseWithTokenizer(jsonl.dataset, gpt2), [
    {
      line: 2,
      startColumn: corruptedAt,
      endColumn: corruptedAt + '"When Maryanne left"'.length,
      severity: 'error',
      message: 'the clean prompt is 3 tokens and the corrupted prompt 4: attribution patching needs prompts of equal token counts',
    },
  ]);
});
