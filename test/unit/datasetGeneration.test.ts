// The pure parts of the "Generate … Dataset" commands, and the generation they share with `atp generate`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDatasetText, diagnoseWithTokenizer } from '../../src/lib/dataset';
import { generateDataset } from '../../src/lib/dataset/generate';
import { TINYSQL_FEATURES } from '../../src/lib/dataset/tinysql';
import { ModelTokenizer } from '../../src/engine/model/tokenizer';
import { liveDatasetFormat } from '../../src/editor/datasetFormat';
import { generatedFileName, integerInputProblem, minimumCommandSet, TINYSQL_FEATURE_DESCRIPTIONS, uniqueFileName } from '../../src/services/datasetGeneration';
import { writeGpt2TokenizerFiles } from '../support/gpt2Tokenizer';

test('every TinySQL feature has a description; the ORDER BY features need command set 2', () => {
  for (const feature of TINYSQL_FEATURES) assert.ok(TINYSQL_FEATURE_DESCRIPTIONS[feature]);
  assert.equal(minimumCommandSet('DefOrderByField'), 2);
  assert.equal(minimumCommandSet('DefOrderByDirection'), 2);
  assert.equal(minimumCommandSet('DefTableName'), 1);
});

test('integer inputs: whole numbers within bounds only', () => {
  assert.equal(integerInputProblem('20', 1, 100), undefined);
  assert.equal(integerInputProblem(' 0 ', 0), undefined);
  assert.match(integerInputProblem('0', 1) ?? '', /1 or more/);
  assert.match(integerInputProblem('101', 1, 100) ?? '', /At most 100/);
  for (const bad of ['', 'x', '1.5', '-1', '1e3', '99999999999999999999']) assert.ok(integerInputProblem(bad, 0), bad);
});

test('file names say what the dataset holds, and never take an existing name', async () => {
  assert.equal(generatedFileName({ kind: 'ioi', count: 20, seed: 0 }, 'jsonl'), 'ioi-n20-seed0.jsonl');
  assert.equal(
    generatedFileName({ kind: 'tinysql', feature: 'EngFieldName', commandSet: 2, count: 5, seed: 7, novel: true, synonyms: true }, 'atp'),
    'tinysql-EngFieldName-cs2-n5-seed7-novel-synonyms.atp',
  );
  const taken = new Set(['a.atp', 'a-2.atp']);
  assert.equal(await uniqueFileName('a.atp', async (name) => taken.has(name)), 'a-3.atp');
  assert.equal(await uniqueFileName('b.atp', async (name) => taken.has(name)), 'b.atp');
});

test('the live diagnostics pick the format by language, else by extension', () => {
  assert.equal(liveDatasetFormat('atp', '/x/untitled-1'), 'atp');
  assert.equal(liveDatasetFormat('jsonl', '/x/a.txt'), 'jsonl');
  assert.equal(liveDatasetFormat('plaintext', '/x/A.ATP'), 'atp');
  assert.equal(liveDatasetFormat('json', '/x/a.jsonl'), 'jsonl');
  assert.equal(liveDatasetFormat('json', '/x/a.json'), undefined);
});

test('generateDataset: the same examples in both formats, parsing back without diagnostics', () => {
  const root = mkdtempSync(join(tmpdir(), 'atp-gen-'));
  try {
    writeGpt2TokenizerFiles(root);
    const tokenizer = ModelTokenizer.fromDir(root);
    const spec = { kind: 'tinysql' as const, feature: 'EngTableName' as const, commandSet: 1 as const, count: 6, seed: 1, novel: false, synonyms: true };
    const atp = generateDataset(tokenizer, spec, 'atp', 'gpt2');
    const jsonl = generateDataset(tokenizer, spec, 'jsonl', 'gpt2');
    assert.equal(atp.examples.length, 6);
    assert.match(atp.header, /synonyms, tokenizer gpt2$/);
    const a = parseDatasetText(atp.text, 'x.atp');
    const j = parseDatasetText(jsonl.text, 'x.jsonl');
    assert.deepEqual(a.diagnostics, []);
    assert.deepEqual(j.diagnostics, []);
    const strip = (e: { clean: string; corrupted: string; correct: string; incorrect: string }) => [e.clean, e.corrupted, e.correct, e.incorrect];
    assert.deepEqual(a.dataset.examples.map(strip), j.dataset.examples.map(strip));
    assert.deepEqual(diagnoseWithTokenizer(a.dataset, tokenizer), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
