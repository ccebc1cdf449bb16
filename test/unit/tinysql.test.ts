// Property tests of the TinySQL generator over thousands of examples per feature and tokenizer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelTokenizer } from '../../src/engine/model/tokenizer';
import { InputError } from '../../src/shared/errors';
import { generateTinySql, parseTinySqlFeature, TINYSQL_FEATURES, type CommandSet, type TinySqlExample } from '../../src/lib/dataset';
import { vocabulary } from '../../src/lib/dataset/tinysql';
import { realTokenizers } from '../support/tokenizers';

const root = mkdtempSync(join(tmpdir(), 'atp-tinysql-'));
const tokenizers: Array<[string, ModelTokenizer]> = [];
before(() => {
  tokenizers.push(...realTokenizers(root));
});
after(() => rmSync(root, { recursive: true, force: true }));

const PER_FEATURE = Number(process.env.ATP_TINYSQL_EXAMPLES ?? 500);

/** Checks one example independently of the generator's own checks. */
function check(tokenizer: ModelTokenizer, e: TinySqlExample, where: string): void {
  // TinySQL's alpaca form, whitespace collapsed, ending inside the SQL.
  assert.match(e.clean, /^### Instruction: \S.* ### Context: CREATE TABLE \w+ \( .* \) ### Response: SELECT/, where);
  assert.ok(!/\s\s/.test(e.clean) && !/\s\s/.test(e.corrupted), where);
  assert.ok((e.clean + e.continuation).endsWith(e.sql), where);
  // The texts differ exactly at the reported ranges.
  const { clean: cr, corrupted: kr } = e.corruptedRanges;
  assert.equal(cr.length, kr.length);
  let ci = 0;
  let ki = 0;
  for (let r = 0; r <= cr.length; r += 1) {
    const cEnd = r < cr.length ? cr[r].start : e.clean.length;
    const kEnd = r < kr.length ? kr[r].start : e.corrupted.length;
    assert.equal(e.clean.slice(ci, cEnd), e.corrupted.slice(ki, kEnd), where);
    if (r < cr.length) {
      assert.notEqual(e.clean.slice(cr[r].start, cr[r].end), e.corrupted.slice(kr[r].start, kr[r].end), where);
      ci = cr[r].end;
      ki = kr[r].end;
    }
  }
  // Equal token counts; the tokens that differ are the corrupted words' tokens, and there is at least one.
  const clean = tokenizer.encode(e.clean);
  const corrupted = tokenizer.encode(e.corrupted);
  assert.equal(clean.length, corrupted.length, where);
  const differing = clean.flatMap((t, i) => (t.id === corrupted[i].id ? [] : [i]));
  assert.ok(differing.length > 0, where);
  for (const i of differing) {
    assert.ok(
      cr.some((r) => clean[i].start < r.end && r.start < clean[i].end),
      `${where}: token ${i} ${clean[i].text}`,
    );
    assert.ok(
      kr.some((r) => corrupted[i].start < r.end && r.start < corrupted[i].end),
      `${where}: token ${i}`,
    );
  }
  // Answers are single, different tokens; the clean answer is what the SQL continues with.
  const correct = tokenizer.ids(e.correct, { addSpecialTokens: false });
  const incorrect = tokenizer.ids(e.incorrect, { addSpecialTokens: false });
  assert.equal(correct.length, 1, where);
  assert.equal(incorrect.length, 1, where);
  assert.notEqual(correct[0], incorrect[0], where);
  const full = tokenizer.ids(e.clean + e.continuation);
  assert.deepEqual(
    full.slice(0, clean.length),
    clean.map((t) => t.id),
    `${where}: the prompt ends at a token boundary`,
  );
  assert.equal(full[clean.length], correct[0], `${where}: the answer is the next token`);
  assert.equal(e.answerPosition, clean.length);
  assert.ok(e.continuation.startsWith(e.correct), where);
}

for (const feature of TINYSQL_FEATURES) {
  test(`${feature}: ${PER_FEATURE} examples per tokenizer keep the pairing (GPT-2, Llama 3, Qwen)`, () => {
    const commandSets: CommandSet[] = feature.startsWith('DefOrderBy') ? [2, 3] : [1, 2, 3];
    const variants = commandSets.flatMap((cs) => [
      { cs, novel: false, synonyms: false },
      { cs, novel: true, synonyms: false },
      { cs, novel: false, synonyms: true },
    ]);
    const per = Math.ceil(PER_FEATURE / variants.length);
    for (const [name, tokenizer] of tokenizers) {
      let n = 0;
      for (const [v, { cs, novel, synonyms }] of variants.entries()) {
        const { examples } = generateTinySql(tokenizer, { feature, commandSet: cs, count: per, seed: 100 + v, useNovelNames: novel, useSynonyms: synonyms });
        assert.equal(examples.length, per);
        for (const e of examples) {
          check(tokenizer, e, `${name} ${feature} cs${cs}${novel ? ' novel' : ''}${synonyms ? ' synonyms' : ''} line ${e.line}`);
          if (novel) {
            const words = [...vocabulary.NOVEL_TABLE_NAMES, ...vocabulary.NOVEL_FIELD_NAMES] as readonly string[];
            if (!['DefCreateTable', 'DefFieldSeparator', 'DefOrderByDirection'].includes(feature)) assert.ok(words.includes(e.incorrect.trim()), e.incorrect);
          }
          n += 1;
        }
      }
      assert.ok(n >= PER_FEATURE);
    }
  });
}

test('the seed makes the dataset; features and options are checked', () => {
  const [, gpt2] = tokenizers[0];
  const a = generateTinySql(gpt2, { feature: 'EngFieldName', count: 30, seed: 5 }).examples;
  const b = generateTinySql(gpt2, { feature: 'EngFieldName', count: 30, seed: 5 }).examples;
  assert.deepEqual(a, b);
  assert.equal(parseTinySqlFeature('engtablename'), 'EngTableName');
  assert.equal(parseTinySqlFeature('DefOrderByDirection1'), 'DefOrderByDirection');
  assert.throws(
    () => parseTinySqlFeature('DefJoinTable1'),
    (e: unknown) => e instanceof InputError && /unknown TinySQL feature/.test(e.message),
  );
  assert.throws(() => generateTinySql(gpt2, { feature: 'DefOrderByField', commandSet: 1, count: 3, seed: 1 }), /needs ORDER BY/);
  // CS1 examples look like TinySQL's: two fields, "show me the ... table".
  const [first] = generateTinySql(gpt2, { feature: 'DefTableName', count: 1, seed: 3 }).examples;
  assert.match(
    first.clean,
    /^### Instruction: show me the \w+ and \w+ from the \w+ table ### Context: CREATE TABLE (\w+) \( \w+ [A-Z]+, \w+ [A-Z]+ \) ### Response: SELECT \w+, \w+ FROM$/,
  );
  assert.match(first.corrupted, /### Context: CREATE TABLE \w+ \(/);
});
