// The sweep's plan: which cells, which command sets, where each file goes, and what is refused before anything runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modelFolderName, parseSweepFeature, planSweep } from '../../src/engine/sweep/plan';
import { parseSweepSummary } from '../../src/shared/sweep';

const spec = (models: string[], features: string[], commandSets?: number[]) => ({ models, features, commandSets, count: 3, seed: 0, method: 'atp' });

test('cells: models in order, then features, then command sets; IOI has none', () => {
  const cells = planSweep(spec(['./models/tinysql-demo', 'bm2-cs3'], ['engtablename', 'IOI']));
  assert.deepEqual(
    cells.map((c) => [c.folder, c.feature, c.commandSet, c.result, c.dataset]),
    [
      ['tinysql-demo', 'EngTableName', 1, 'tinysql-demo/EngTableName-cs1.atp-result.json', 'tinysql-demo/EngTableName-cs1.jsonl'],
      ['tinysql-demo', 'IOI', null, 'tinysql-demo/IOI.atp-result.json', 'tinysql-demo/IOI.jsonl'],
      // A bm<B>-cs<C> preset is swept on its own command set unless --cs says otherwise.
      ['bm2-cs3', 'EngTableName', 3, 'bm2-cs3/EngTableName-cs3.atp-result.json', 'bm2-cs3/EngTableName-cs3.jsonl'],
      ['bm2-cs3', 'IOI', null, 'bm2-cs3/IOI.atp-result.json', 'bm2-cs3/IOI.jsonl'],
    ],
  );
  const explicit = planSweep(spec(['M1', 'bm1-cs2'], ['DefTableName'], [1, 3]));
  assert.deepEqual(
    explicit.map((c) => `${c.folder}:${c.commandSet}`),
    ['M1:1', 'M1:3', 'bm1-cs2:1', 'bm1-cs2:3'],
  );
});

test("folder names: preset names, a folder's own name, org--name for a repo id; never a path", () => {
  assert.equal(modelFolderName('BM1-CS1'), 'bm1-cs1');
  assert.equal(modelFolderName('bm1-cs1-nonsemantic@main'), 'bm1-cs1-nonsemantic@main');
  assert.equal(modelFolderName('./models/tinysql-demo/'), 'tinysql-demo');
  assert.equal(modelFolderName('openai-community/gpt2'), 'openai-community--gpt2');
});

test('refused before anything runs: one folder for two models, unknown features and models, empty lists', () => {
  assert.throws(() => planSweep(spec(['./a/model', './b/model'], ['EngTableName'])), /"\.\/a\/model" and "\.\/b\/model" would both write to the folder model/);
  assert.throws(() => planSweep(spec(['M1'], ['TableNames'])), /unknown TinySQL feature "TableNames"/);
  assert.throws(() => planSweep(spec(['M9'], ['EngTableName'])), /unknown preset "M9"/);
  assert.throws(() => planSweep(spec([], ['EngTableName'])), /--models: give at least one model/);
  assert.throws(() => planSweep(spec(['M1'], [])), /--features: give at least one feature/);
  assert.equal(parseSweepFeature(' ioi '), 'IOI');
});

test('a summary file with a broken cell is refused with its field', () => {
  const summary = { schema: 'attribution-patching/sweep@1', cells: [{ model: 'm', folder: 'm', feature: 'IOI', result: 'r', dataset: 'd', status: 'failed' }] };
  assert.throws(() => parseSweepSummary(JSON.stringify(summary), 'summary.json'), /summary\.json: field "cells\[0\]\.error" must be a string/);
  assert.throws(() => parseSweepSummary('{"schema":"x"}', 'summary.json'), /field "schema" must be "attribution-patching\/sweep@1"/);
  assert.throws(() => parseSweepSummary('{', 'summary.json'), /summary\.json: not valid JSON/);
});
