import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelTokenizer } from '../../src/engine/model/tokenizer';
import { generateIoi, ioiSeedExamples, IOI_NAMES, singleTokenNames, parseJsonlDataset } from '../../src/lib/dataset';
import { realTokenizers } from '../support/tokenizers';

const root = mkdtempSync(join(tmpdir(), 'atp-ioi-'));
const tokenizers: Array<[string, ModelTokenizer]> = [];
before(() => {
  tokenizers.push(...realTokenizers(root));
});
after(() => rmSync(root, { recursive: true, force: true }));

const fields = (e: { clean: string; corrupted: string; correct: string; incorrect: string }) => [e.clean, e.corrupted, e.correct, e.incorrect];

test('the built-in seed examples equal examples/ioi.jsonl', () => {
  const file = parseJsonlDataset(readFileSync('examples/ioi.jsonl', 'utf8'), 'ioi.jsonl').examples;
  assert.deepEqual(ioiSeedExamples().map(fields), file.map(fields));
  assert.deepEqual(
    ioiSeedExamples().map((e) => e.line),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
});

test('generated IOI: deterministic per seed, ABBA and BABA, answers (indirect object, subject), one differing token', () => {
  for (const [name, tokenizer] of tokenizers) {
    const names = new Set(singleTokenNames(tokenizer, IOI_NAMES));
    assert.ok(names.size >= 20, `${name}: ${names.size} single-token names`);
    const examples = generateIoi(tokenizer, { count: 1500, seed: 42 });
    assert.deepEqual(generateIoi(tokenizer, { count: 20, seed: 42 }).map(fields), examples.slice(0, 20).map(fields));
    assert.notDeepEqual(generateIoi(tokenizer, { count: 20, seed: 43 }).map(fields), examples.slice(0, 20).map(fields));
    assert.ok(new Set(examples.map((e) => e.template)).size >= 7);
    for (const e of examples) {
      assert.ok(names.has(e.indirectObject) && names.has(e.subject) && e.indirectObject !== e.subject);
      assert.equal(e.correct, ` ${e.indirectObject}`);
      assert.equal(e.incorrect, ` ${e.subject}`);
      const [a, b] = e.order === 'ABBA' ? [e.indirectObject, e.subject] : [e.subject, e.indirectObject];
      assert.ok(e.clean.includes(` ${a} and ${b} `), e.clean);
      assert.ok(e.clean.endsWith(' to'));
      // The corrupted prompt names the other person as the subject.
      assert.equal(
        e.corrupted,
        e.clean.slice(0, e.clean.lastIndexOf(` ${e.subject} `)) +
          ` ${e.indirectObject} ` +
          e.clean.slice(e.clean.lastIndexOf(` ${e.subject} `) + e.subject.length + 2),
      );
      const clean = tokenizer.ids(e.clean);
      const corrupted = tokenizer.ids(e.corrupted);
      assert.equal(clean.length, corrupted.length, `${name}: ${e.clean}`);
      const differing = clean.flatMap((id, i) => (id === corrupted[i] ? [] : [i]));
      assert.equal(differing.length, 1, `${name}: ${e.clean}`);
      assert.equal(tokenizer.tokenText(clean[differing[0]]), e.incorrect);
      assert.equal(tokenizer.tokenText(corrupted[differing[0]]), e.correct);
      assert.equal(tokenizer.ids(e.correct, { addSpecialTokens: false }).length, 1);
      assert.equal(tokenizer.ids(e.incorrect, { addSpecialTokens: false }).length, 1);
    }
    assert.deepEqual(new Set(examples.map((e) => e.order)), new Set(['ABBA', 'BABA']));
  }
});

test('names that are not one token are never used', () => {
  const [, gpt2] = tokenizers[0];
  const examples = generateIoi(gpt2, { count: 200, seed: 1, names: ['John', 'Mary', 'Zyxquorth', 'Blorptastic'] });
  for (const e of examples) assert.ok(['John', 'Mary'].includes(e.subject) && ['John', 'Mary'].includes(e.indirectObject));
  assert.throws(() => generateIoi(gpt2, { count: 5, seed: 1, names: ['Zyxquorth', 'John'] }), /at least two names/);
  assert.throws(() => generateIoi(gpt2, { count: 0, seed: 1 }), /positive integer/);
});
