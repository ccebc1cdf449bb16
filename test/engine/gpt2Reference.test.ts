import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/engine/model/load';
import { readDataset } from '../../src/lib/dataset/jsonl';
import { runAttributionPatching } from '../../src/engine/patching/run';
import type { Precision } from '../../src/engine/patching/precision';
import type { Result } from '../../src/shared/result';
import { flattenAttributions } from '../support/attributions';
import { maxError } from '../support/familiesReference';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { requireTorchReference, runGpt2Reference, type ReferenceResponse } from '../support/reference';

/**
 * The engine's forward pass and attributions against an independent PyTorch float64 implementation
 * (test/reference/gpt2_reference.py), on small random GPT-2 models with the real GPT-2 tokenizer and the
 * seed notebook's IOI prompts.
 * Tolerances: the engine in float64 must agree to 1e-9 of the largest magnitude (only summation order differs);
 * in float32 to 2e-4 of the largest magnitude (float32 rounding, ~1e-7 per op, accumulated over a few
 * layers and reductions of ≤ 64 terms, stays well below that; a wrong formula is off by far more).
 */

const IOI = join(__dirname, '../../examples/ioi.jsonl');
let root: string;

before(() => {
  requireTorchReference();
  root = mkdtempSync(join(tmpdir(), 'atp-gpt2-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

function referenceFor(result: Result, modelDir: string, activationPatching = false): ReferenceResponse {
  return runGpt2Reference({
    modelDir,
    activationPatching,
    examples: result.examples.map((e) => ({ cleanIds: e.cleanIds, corruptedIds: e.corruptedIds, correctId: e.correctId, incorrectId: e.incorrectId })),
  });
}

function assertMatchesReference(result: Result, reference: ReferenceResponse, tolerance: number): void {
  const lds = maxError(
    result.examples.flatMap((e) => [e.cleanLogitDiff, e.corruptedLogitDiff]),
    reference.cleanLogitDiffs.flatMap((c, i) => [c, reference.corruptedLogitDiffs[i]]),
  );
  assert.ok(lds.scale > 1e-3, 'logit differences are not trivially zero');
  assert.ok(lds.error <= tolerance * lds.scale, `logit differences: error ${lds.error} vs scale ${lds.scale}`);
  assert.ok(Math.abs(result.metric.cleanLogitDiff - reference.cleanLogitDiff) <= tolerance * lds.scale);
  assert.ok(Math.abs(result.metric.corruptedLogitDiff - reference.corruptedLogitDiff) <= tolerance * lds.scale);

  const ours = flattenAttributions(result.examples.map((e) => e.attributions));
  for (const kind of ['z', 'resid_pre', 'attn_out', 'mlp_out'] as const) {
    const expected = reference.attributions[kind].flat(3) as number[];
    const { error, scale } = maxError(ours[kind], expected);
    assert.ok(scale > 1e-6, `${kind}: attributions are not trivially zero`);
    assert.ok(error <= tolerance * scale, `${kind}: error ${error} vs scale ${scale}`);
  }
}

for (const precision of ['float64', 'float32'] as Precision[]) {
  test(`GPT-2 forward and attributions match the PyTorch reference (${precision})`, async () => {
    const dir = join(root, `model-${precision}`);
    writeRandomGpt2(dir, { nLayers: 3, nHeads: 4, dModel: 32, seed: 7 });
    const model = loadModel(dir);
    // exactTokens false: AtP's own values throughout (else resid_pre at layer 0 holds the exact token effects).
    const result = await runAttributionPatching(model, readDataset(IOI), { device: 'cpu', exactTokens: false, batchSize: 3, precision });
    assertMatchesReference(result, referenceFor(result, dir), precision === 'float64' ? 1e-9 : 2e-4);
  });
}

test('BF16 and F16 checkpoints are cast in the graph and match the reference on the same stored weights', async () => {
  for (const dtype of ['BF16', 'F16'] as const) {
    const dir = join(root, `model-${dtype}`);
    writeRandomGpt2(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 11, dtype, shards: 2, withPrefix: true });
    const model = loadModel(dir);
    assert.equal(model.storedDtype, dtype);
    const result = await runAttributionPatching(model, readDataset(IOI), { device: 'cpu', exactTokens: false, batchSize: 8, precision: 'float64' });
    assertMatchesReference(result, referenceFor(result, dir), 1e-9);
  }
});
