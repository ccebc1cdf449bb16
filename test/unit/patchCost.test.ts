import { test } from 'node:test';
import assert from 'node:assert/strict';
import { costExamples, patchingCosts } from '../../src/engine/patching/patchCost';
import type { PreparedExample } from '../../src/engine/patching/examples';

/** GPT-2-small's shape (issue 25's example): 12 layers of 12 heads. */
const GPT2_SMALL = { nLayers: 12, nHeads: 12 };

test('GPT-2-small on a 15-token IOI prompt: the hand counts of issue 25', () => {
  // IOI: the prompts differ at the second subject name, position 10 of 15.
  const costs = patchingCosts(GPT2_SMALL, [{ length: 15, firstDifference: 10 }]);
  // Two forwards over 15 positions × 12 layers, and a backward of about two forwards.
  assert.equal(costs.atpWholePrompt, 720);
  // As the engine runs it: the clean forward (15 × 12), the corrupted forward and backward from position 10 (3 × 5 × 12).
  assert.equal(costs.atp, 360);
  // 12 heads × (12 + 11 + … + 1) one-position evaluations; the record pass: a clean forward (15 × 12) and the
  // corrupted one from position 10 (5 × 12).
  assert.deepEqual(costs.heads, { record: 240, patches: 936, total: 1176 });
  // 3 hooks × (12 + … + 1) × (5 + 4 + 3 + 2 + 1): a patch at position p recomputes 15 − p positions.
  assert.deepEqual(costs.positions, { record: 240, patches: 3510, total: 3750 });
});

test('prompts differing at their first token, and prompts that do not differ', () => {
  const first = patchingCosts(GPT2_SMALL, [{ length: 15, firstDifference: 0 }]);
  assert.deepEqual(first.positions, { record: 360, patches: 3 * 78 * 120, total: 360 + 3 * 78 * 120 });
  assert.deepEqual(first.heads, { record: 360, patches: 936, total: 1296 });
  assert.equal(first.atp, 720, 'no shared prefix: the whole prompt');
  // Identical prompts: nothing to patch; the record pass's corrupted run is its answer position alone.
  const same = patchingCosts(GPT2_SMALL, [{ length: 15, firstDifference: undefined }]);
  assert.deepEqual(same.heads, { record: 180 + 12, patches: 0, total: 192 });
  assert.equal(same.atp, 180 + 3 * 12);
  // Costs add over examples.
  const both = patchingCosts(GPT2_SMALL, [
    { length: 15, firstDifference: 0 },
    { length: 15, firstDifference: undefined },
  ]);
  assert.equal(both.atpWholePrompt, 1440);
  assert.equal(both.atp, first.atp + same.atp);
  assert.equal(both.positions.total, first.positions.total + same.positions.total);
});

test('the closed forms equal a count of every patch, (L − l) layers × (T − p) positions each', () => {
  for (const spec of [
    { nLayers: 1, nHeads: 1 },
    { nLayers: 3, nHeads: 4 },
    { nLayers: 24, nHeads: 14 },
  ]) {
    for (const [length, firstDifference] of [
      [1, 0],
      [7, 3],
      [16, 0],
      [128, 64],
    ]) {
      let heads = 0;
      let positions = 0;
      for (let l = 0; l < spec.nLayers; l++) {
        heads += spec.nHeads * (spec.nLayers - l);
        for (let p = firstDifference; p < length; p++) positions += 3 * (spec.nLayers - l) * (length - p);
      }
      const costs = patchingCosts(spec, [{ length, firstDifference }]);
      assert.equal(costs.heads.patches, heads, `${JSON.stringify(spec)} ${length}/${firstDifference}: heads`);
      assert.equal(costs.positions.patches, positions, `${JSON.stringify(spec)} ${length}/${firstDifference}: positions`);
      assert.equal(costs.heads.record, spec.nLayers * (2 * length - firstDifference));
    }
  }
});

test('costExamples reads each example length and first difference', () => {
  const tokens = (ids: number[]) => ids.map((id) => ({ id, text: String(id), start: 0, end: 0 }));
  const example = (clean: number[], corrupted: number[]) => ({ tokens: tokens(clean), corruptedTokens: tokens(corrupted) }) as unknown as PreparedExample;
  assert.deepEqual(costExamples([example([1, 2, 3], [1, 5, 3]), example([4, 4], [4, 4])]), [
    { length: 3, firstDifference: 1 },
    { length: 2, firstDifference: undefined },
  ]);
});
