import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/engine/model/load';
import { readDataset, type Dataset } from '../../src/lib/dataset/jsonl';
import { runActivationPatching } from '../../src/engine/patching/activationPatching';
import { runAttributionPatching } from '../../src/engine/patching/run';
import { readSafetensorsHeader, readTensorAsFloat32 } from '../../src/lib/model/safetensors';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { requireTorchReference, runGpt2Reference } from '../support/reference';
import { seededRandom } from '../support/random';
import { flattenAttributions } from '../support/attributions';
import { maxError } from '../support/familiesReference';
import { spearman } from '../../src/engine/patching/validation';

/**
 * Exact activation patching, computed by the engine, against the PyTorch reference's activation patching; and
 * attribution patching against activation patching where the linear approximation must hold.
 */

const IOI = join(__dirname, '../../examples/ioi.jsonl');
let root: string;

before(() => {
  requireTorchReference();
  root = mkdtempSync(join(tmpdir(), 'atp-patching-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

const KINDS = ['z', 'resid_pre', 'attn_out', 'mlp_out'] as const;

test('exact activation patching matches the PyTorch reference, component by component (float64)', async () => {
  const dir = join(root, 'model');
  writeRandomGpt2(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 3 });
  const model = loadModel(dir);
  const full = readDataset(IOI);
  const dataset: Dataset = { file: full.file, examples: full.examples.slice(0, 4) };
  const ours = await runActivationPatching(model, dataset, { device: 'cpu', batchSize: 64, precision: 'float64' });
  // exactTokens false: AtP's own values throughout (else resid_pre at layer 0 holds the exact token effects).
  const attribution = await runAttributionPatching(model, dataset, { device: 'cpu', exactTokens: false, batchSize: 4, precision: 'float64' });
  const reference = runGpt2Reference({
    modelDir: dir,
    activationPatching: true,
    examples: attribution.examples.map((e) => ({ cleanIds: e.cleanIds, corruptedIds: e.corruptedIds, correctId: e.correctId, incorrectId: e.incorrectId })),
  });
  assert.ok(Math.abs(ours.cleanLogitDiff - reference.cleanLogitDiff) < 1e-9);
  const flat = flattenAttributions(ours.examples);
  for (const kind of KINDS) {
    const { error, scale } = maxError(flat[kind], reference.activationPatching![kind].flat(3) as number[]);
    assert.ok(scale > 1e-6, `${kind}: not trivially zero`);
    assert.ok(error <= 1e-9 * scale, `${kind}: error ${error} vs scale ${scale}`);
  }
  // Patching the whole residual stream entering layer 0 at the one corrupted position (9, " John"/" Mary")
  // restores the clean run exactly: that example's share of the metric is 1/n.
  const example = ours.examples[0];
  const sumOverPositions = example.residPre[0].reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(example.residPre[0][9] - sumOverPositions) < 1e-12, 'only the differing position matters at layer 0');

  // For a real (large) corruption attribution patching is only an approximation: report how close it is.
  const atp = flattenAttributions(attribution.examples.map((e) => e.attributions));
  for (const kind of KINDS) {
    // Components upstream of the corrupted position are exactly 0 in both; rank only the others.
    const live = flat[kind].map((_, i) => i).filter((i) => Math.abs(flat[kind][i]) > 1e-12 || Math.abs(atp[kind][i]) > 1e-12);
    const rho = spearman(
      live.map((i) => atp[kind][i]),
      live.map((i) => flat[kind][i]),
    );
    console.log(`IOI, random 2-layer model, ${kind}: Spearman(AtP, exact) = ${rho.toFixed(3)} over ${live.length} components`);
  }
});

/**
 * Makes token `twin` a near-copy of token `original` in the embedding (wte row + ε·noise), so that a prompt
 * with `twin` in place of `original` is a tiny corruption, where attribution patching must agree with
 * activation patching to first order in ε.
 */
function makeTwinToken(dir: string, original: number, twin: number, epsilon: number): void {
  const [file] = [join(dir, 'model.safetensors')];
  const entry = readSafetensorsHeader(file).tensors.find((t) => t.name.endsWith('wte.weight'))!;
  const d = entry.shape[1];
  const all = readTensorAsFloat32(entry);
  const random = seededRandom(99);
  const row = Float32Array.from({ length: d }, (_, i) => all[original * d + i] + epsilon * (random() * 2 - 1));
  const fd = openSync(file, 'r+');
  writeSync(fd, new Uint8Array(row.buffer), 0, row.byteLength, entry.offset + twin * d * 4);
  closeSync(fd);
}

test('attribution patching converges to activation patching as the corruption shrinks (first order in ε)', async () => {
  const errors: number[] = [];
  for (const epsilon of [1e-2, 1e-3]) {
    const dir = join(root, `twin-${epsilon}`);
    writeRandomGpt2(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 5 });
    const model = loadModel(dir);
    const john = model.tokenizer.ids(' John', { addSpecialTokens: false })[0];
    const jon = model.tokenizer.ids(' Jon', { addSpecialTokens: false })[0];
    makeTwinToken(dir, john, jon, epsilon);
    const clean = 'When John and Mary went to the shops, John gave the bag to';
    const dataset: Dataset = {
      file: 'twin.jsonl',
      examples: [{ clean, corrupted: clean.replace(', John', ', Jon'), correct: ' Mary', incorrect: ' John', line: 1 }],
    };
    const fresh = loadModel(dir);
    const exact = await runActivationPatching(fresh, dataset, { device: 'cpu', batchSize: 128, precision: 'float64' });
    const atp = await runAttributionPatching(fresh, dataset, { device: 'cpu', exactTokens: false, batchSize: 1, precision: 'float64' });
    const a = flattenAttributions(atp.examples.map((e) => e.attributions));
    const e = flattenAttributions(exact.examples);
    let worst = 0;
    for (const kind of KINDS) {
      const { error, scale } = maxError(a[kind], e[kind]);
      worst = Math.max(worst, error / scale);
    }
    errors.push(worst);
  }
  // Normalised values are O(1); the gap is O(ε): small at ε = 1e-3, and ~10× smaller than at 1e-2.
  console.log(`largest |AtP − exact| relative to the largest value: ε=1e-2: ${errors[0].toExponential(2)}, ε=1e-3: ${errors[1].toExponential(2)}`);
  assert.ok(errors[1] < 0.01, `relative gap at ε=1e-3 is ${errors[1]}`);
  assert.ok(errors[1] < errors[0] / 5, `gap shrinks with ε: ${errors.join(' → ')}`);
});
