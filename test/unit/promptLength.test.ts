// Prompts too long for the model are refused before tokenizing, in the engine and in live diagnostics; long
// inputs never overflow the call stack (no spread of an unbounded array into a call).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelTokenizer } from '../../src/engine/model/tokenizer';
import { diagnoseWithTokenizer, parseDatasetText } from '../../src/lib/dataset';
import { promptTooLong } from '../../src/lib/dataset/promptLength';
import { writeGpt2TokenizerFiles } from '../support/gpt2Tokenizer';
import { LLAMA3_TOKENIZER_DIR, QWEN3_TOKENIZER_DIR } from '../support/tokenizers';
import { tokenizerCorpus } from '../support/tokenizerCorpus';

let root: string;
let gpt2: ModelTokenizer;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-length-'));
  writeGpt2TokenizerFiles(join(root, 'gpt2'));
  gpt2 = ModelTokenizer.fromDir(join(root, 'gpt2'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('encode takes a prompt of 300 000 tokens without overflowing the call stack', () => {
  const tokens = gpt2.encode('a '.repeat(300_000));
  assert.equal(tokens.length, 300_000 + 1);
  assert.equal(tokens.at(-1)!.end, 600_000);
});

test('minimumTokenCount never exceeds the real token count (GPT-2, Llama 3, Qwen with its NFC normalizer)', () => {
  const texts = [...tokenizerCorpus(), '='.repeat(5000), ' '.repeat(3000), '\u1100\u1161\u11a8'.repeat(500), 'e\u0301'.repeat(1000)];
  for (const tokenizer of [gpt2, ModelTokenizer.fromDir(LLAMA3_TOKENIZER_DIR), ModelTokenizer.fromDir(QWEN3_TOKENIZER_DIR)]) {
    for (const text of texts) {
      const real = tokenizer.ids(text, { addSpecialTokens: false }).length;
      assert.ok(tokenizer.minimumTokenCount(text) <= real, `${JSON.stringify(text.slice(0, 40))}: bound ${tokenizer.minimumTokenCount(text)} > ${real}`);
    }
  }
});

test('a prompt that cannot fit is refused without tokenizing, in seconds even at 50 MB', () => {
  const huge = 'word '.repeat(10_000_000);
  const started = performance.now();
  const problem = promptTooLong(huge, gpt2, 1024);
  assert.match(problem ?? '', /is 50000000 characters long, so at least \d+ tokens: more than the model's 1024 positions/);
  assert.ok(performance.now() - started < 5000);
  assert.equal(promptTooLong('word '.repeat(100), gpt2, 1024), undefined);
});

test('live diagnostics report a prompt too long for the model at its place, and never tokenize it', () => {
  const long = 'x '.repeat(300_000);
  const text = `${JSON.stringify({ clean: long, corrupted: long, correct: ' a', incorrect: ' b' })}\n`;
  const parsed = parseDatasetText(text, 'long.jsonl');
  assert.deepEqual(parsed.diagnostics, []);
  const noEncode = {
    encode: () => assert.fail('a prompt this long must not be tokenized'),
    ids: gpt2.ids.bind(gpt2),
    tokenText: gpt2.tokenText.bind(gpt2),
    minimumTokenCount: gpt2.minimumTokenCount.bind(gpt2),
  };
  const diagnostics = diagnoseWithTokenizer(parsed.dataset, noEncode, 1024);
  assert.deepEqual(
    diagnostics.map((d) => [d.line, d.severity, d.startColumn]),
    [
      [1, 'error', 9],
      [1, 'error', text.indexOf('"corrupted"') + 12],
    ],
  );
  assert.match(diagnostics[0].message, /^the clean prompt is 600000 characters long, so at least \d+ tokens: more than the model's 1024 positions$/);
});

test('parsers keep no per-character offsets for a prompt longer than any model takes (memory stays bounded)', () => {
  const long = 'y'.repeat((1 << 20) + 10);
  const jsonl = parseDatasetText(`${JSON.stringify({ clean: long, corrupted: long, correct: ' a', incorrect: ' b' })}\n`, 'l.jsonl');
  assert.equal(jsonl.dataset.examples[0].clean, long);
  assert.equal(jsonl.dataset.examples[0].source, undefined);
  const atp = parseDatasetText(`${long}{a|b} => " a" | " b"\n`, 'l.atp');
  assert.equal(atp.dataset.examples[0].clean, `${long}a`);
  assert.equal(atp.dataset.examples[0].corrupted, `${long}b`);
  assert.equal(atp.dataset.examples[0].source, undefined);
  const short = parseDatasetText(`ab{c|d} => " a" | " b"\n`, 's.atp').dataset.examples[0];
  assert.deepEqual(short.source, { clean: [0, 1, 3, 4], corrupted: [0, 1, 5, 6] });
});
