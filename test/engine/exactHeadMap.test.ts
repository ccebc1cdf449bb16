// `auto` decides per map (issue #24): the head map is exact whenever each head's patch at the answer fits the budget
// (patchCost.ts). On the trained ioi-demo model AtP reads its top head L0H2 at about 0.12 where exact patching gives
// about 1.01: a default run's head map must show the exact value, and say so, while --method atp keeps the estimate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { loadModel } from '../../src/engine/model/load';
import { generateIoi } from '../../src/lib/dataset/ioi';
import { prepareExamples } from '../../src/engine/patching/examples';
import { runAttributionPatching } from '../../src/engine/patching/run';
import { describePlan, planRun } from '../../src/engine/patching/methods';
import { methodAt } from '../../src/shared/resultViews';
import { fullForwardPatchedLds } from '../support/fullForwardPatching';

const model = loadModel(resolve(__dirname, '../../models/ioi-demo'));
const dataset = { file: 'ioi.jsonl', examples: generateIoi(model.tokenizer, { count: 16, seed: 11 }) };
const options = { device: 'cpu' as const, batchSize: 16 };

test("a default (auto) run's head map is exact patching of each head at the answer, to 1e-4 of a full forward pass per head, and says so; --method atp keeps AtP's estimate", async () => {
  const prepared = prepareExamples(model, dataset, []);
  const plan = planRun(model.spec, prepared, 'auto', 0);
  assert.ok(plan.exactHeads && plan.exactHeads.cost <= 4 * plan.exactHeads.atp, JSON.stringify(plan.exactHeads));
  assert.match(describePlan(plan, prepared.length), /exact head map: each head at the answer patched, \d+ position-layer evaluations \(\d\.\d× AtP's \d+\)/);
  assert.equal(planRun(model.spec, prepared, 'atp', 0).exactHeads, undefined, 'asked for AtP by name: its estimate');

  const result = await runAttributionPatching(model, dataset, { ...options, method: 'auto' });
  assert.equal(result.methods?.maps?.heads.method, 'exact');
  assert.equal(result.methods?.heads, 'exact');
  // The independent reference: the activation-patching graph, one full clean + patched forward pass per head.
  const { nLayers, nHeads } = model.spec;
  const full = await fullForwardPatchedLds(
    model,
    prepared,
    (e) =>
      Array.from({ length: nLayers * nHeads }, (_, i) => [
        { hook: 'z' as const, layer: Math.floor(i / nHeads), pos: prepared[e].tokens.length - 1, head: i % nHeads },
      ]),
    options,
  );
  const n = prepared.length;
  const scale = 1 / (n * (result.metric.cleanLogitDiff - result.metric.corruptedLogitDiff));
  let top = { layer: 0, head: 0, value: 0 };
  for (let l = 0; l < nLayers; l++) {
    for (let h = 0; h < nHeads; h++) {
      const exact = full.patched.reduce((sum, lds, e) => sum + lds[l * nHeads + h] - full.corruptedLds[e], 0) * scale;
      // float32 runs of two graphs over values of order 1: 1e-4 is rounding, not another number.
      assert.ok(Math.abs(result.heads[l][h] - exact) <= 1e-4, `L${l}H${h}: head map ${result.heads[l][h]} vs exact ${exact}`);
      if (Math.abs(exact) > Math.abs(top.value)) top = { layer: l, head: h, value: exact };
    }
  }
  assert.ok(top.value > 0.8, `the model card's head restores about the whole metric: L${top.layer}H${top.head} ${top.value}`);
  // Views: the head's colour is exact at the answer, the estimate elsewhere (z at other positions is still AtP's).
  const example = result.examples[0];
  const head = { kind: 'head' as const, layer: top.layer, head: top.head };
  assert.deepEqual(methodAt(result, example, example.tokens.length - 1, head), { method: 'exact', exact: true });
  assert.equal(methodAt(result, example, 0, head).exact, false);

  const atp = await runAttributionPatching(model, dataset, { ...options, method: 'atp' });
  assert.equal(atp.methods?.maps?.heads.method, 'atp');
  const estimate = atp.heads[top.layer][top.head];
  console.log(`ioi-demo L${top.layer}H${top.head}: exact head map ${result.heads[top.layer][top.head].toFixed(4)}, AtP ${estimate.toFixed(4)}`);
  assert.ok(Math.abs(estimate - top.value) > 0.3, 'AtP is far off here: the test tells the two apart');
});
