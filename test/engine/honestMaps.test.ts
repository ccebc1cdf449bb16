import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadModel, type LoadedModel } from '../../src/engine/model/load';
import { readDataset, type Dataset } from '../../src/lib/dataset/jsonl';
import { runAttributionPatching } from '../../src/engine/patching/run';
import { runActivationPatching } from '../../src/engine/patching/activationPatching';
import { panelResult } from '../../src/shared/resultViews';
import { mapMethodsOf } from '../../src/shared/resultMethods';
import type { Result } from '../../src/shared/result';

/**
 * Every cell honest (issue #24): on the shipped TinySQL model and dataset, AtP puts the changed token's resid_pre at
 * layer 0 at −1.81 (summed over the 16 examples) where exact patching gives +1.00. The maps must show the exact value
 * there, for every method, and say that the row is exact.
 */

const root = resolve(__dirname, '../..');
let work: string;
let model: LoadedModel;
let dataset: Dataset;
/** resid_pre patched exactly at every layer and position (the activation-patching graph): the independent reference. */
let reference: number[][];

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'atp-honest-'));
  process.env.ATP_CACHE_DIR = join(work, 'cache');
  model = loadModel(join(root, 'models', 'tinysql-demo'));
  dataset = readDataset(join(root, 'examples', 'tinysql-cs1.jsonl'));
  const exact = await runActivationPatching(model, dataset, { device: 'cpu', batchSize: 64, components: 'resid-pre' });
  const length = exact.examples[0].residPre[0].length;
  reference = exact.examples[0].residPre.map((row) => new Array<number>(row.length).fill(0));
  for (const example of exact.examples) {
    assert.equal(example.residPre[0].length, length, 'the shipped dataset has prompts of one length');
    example.residPre.forEach((row, layer) => row.forEach((value, pos) => (reference[layer][pos] += value)));
  }
});
after(() => rmSync(work, { recursive: true, force: true }));

/** The one position where the shipped dataset's prompts differ (the changed word), the same in every example. */
function changedPosition(result: Result): number {
  const positions = new Set(result.examples.flatMap((e) => e.cleanIds.flatMap((id, pos) => (id !== e.corruptedIds[pos] ? [pos] : []))));
  assert.equal(positions.size, 1, `one changed position, got ${[...positions].join(', ')}`);
  return [...positions][0];
}

for (const method of ['auto', 'atp', 'atpstar'] as const) {
  test(`${method}: the position map's layer-0 row is the exact token effect, labelled exact`, async () => {
    const result = await runAttributionPatching(model, dataset, { device: 'cpu', batchSize: 8, method });
    assert.notEqual(result.run!.method, 'exact', 'the run estimates (else this test proves nothing)');
    const pos = changedPosition(result);
    const tokenEffect = result.examples.reduce((sum, e) => sum + e.tokenScores!.values[pos], 0);
    const cell = result.positions![0][pos];
    console.log(
      `${method} (${result.run!.method}): L0 at position ${pos}: map ${cell.toFixed(4)}, token effect ${tokenEffect.toFixed(4)}, exact ${reference[0][pos].toFixed(4)}`,
    );
    assert.ok(
      result.examples.every((e) => e.tokenScores!.exact.every(Boolean)),
      'token effects are exact',
    );
    assert.equal(Math.sign(cell), Math.sign(tokenEffect));
    assert.ok(Math.abs(cell - tokenEffect) <= 1e-6, `${cell} vs token effect ${tokenEffect}`);
    // Against exact activation patching of resid_pre (another graph): every cell of the row, not only the changed one.
    result.positions![0].forEach((value, p) => assert.ok(Math.abs(value - reference[0][p]) <= 1e-4, `L0 pos ${p}: ${value} vs exact ${reference[0][p]}`));
    assert.ok(reference[0][pos] > 0.9, `exact patching of the changed token restores the metric: ${reference[0][pos]}`);
    // Per example too: the panel's one-example view reads these arrays.
    for (const e of result.examples) assert.deepEqual(e.attributions.residPre[0], e.tokenScores!.values);
    const maps = mapMethodsOf(result);
    assert.deepEqual(maps.residPre, { method: 'atp', exactLayers: [0] });
    assert.deepEqual(maps.attnOut.exactLayers, []);
    assert.deepEqual(maps.heads.exactLayers, []);
  });
}

test('where AtP has the wrong sign, the panel never shows it at a cell whose exact value is known', async () => {
  const result = await runAttributionPatching(model, dataset, { device: 'cpu', batchSize: 8, method: 'atp', exactTokens: true });
  const pos = changedPosition(result);
  // AtP's own estimate there (token effects off): the wrong sign this test is about.
  const estimated = await runAttributionPatching(model, dataset, { device: 'cpu', batchSize: 8, method: 'atp', exactTokens: false });
  assert.ok(estimated.positions![0][pos] < -1, `AtP estimates ${estimated.positions![0][pos]}`);
  assert.deepEqual(mapMethodsOf(estimated).residPre.exactLayers, [], 'estimated token effects leave the row estimated');
  const panel = panelResult(result, { kind: 'all' });
  const shown = panel.allPositions!.residPre;
  for (let p = 0; p < shown[0].length; p++) {
    // Opposite signs are wrong; a tiny value of either sign next to an exact 0 is float noise.
    if (Math.abs(reference[0][p]) > 1e-4)
      assert.equal(Math.sign(shown[0][p]), Math.sign(reference[0][p]), `L0 pos ${p}: shown ${shown[0][p]}, exact ${reference[0][p]}`);
    assert.equal(panel.summary.positions![0][p], shown[0][p]);
  }
  assert.deepEqual(panel.summary.methods?.maps?.residPre.exactLayers, [0]);
});
