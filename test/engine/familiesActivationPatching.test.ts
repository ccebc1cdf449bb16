import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/engine/model/load';
import { readDataset, type Dataset } from '../../src/lib/dataset/jsonl';
import { runActivationPatching } from '../../src/engine/patching/activationPatching';
import { runAttributionPatching } from '../../src/engine/patching/run';
import { readSafetensorsHeader, readTensorAsFloat32 } from '../../src/lib/model/safetensors';
import { flattenAttributions } from '../support/attributions';
import { requireTorchReference } from '../support/reference';
import { maxError, requestFor, runFamiliesReference } from '../support/familiesReference';
import { writeRandomGptNeo, writeRandomLlamaFamily } from '../support/randomModels';
import { seededRandom } from '../support/random';

/**
 * Exact activation patching of every component (each query head's z, resid_pre, attn_out, mlp_out at every
 * position of every layer), computed by the engine, against the PyTorch reference's, for every family; and
 * attribution patching converging to it as the corruption shrinks on the mixture of experts, where routing
 * is piecewise constant.
 */

const IOI = join(__dirname, '../../examples/ioi.jsonl');
const KINDS = ['z', 'resid_pre', 'attn_out', 'mlp_out'] as const;
let root: string;

before(() => {
  requireTorchReference();
  root = mkdtempSync(join(tmpdir(), 'atp-families-patching-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

const GQA = { nLayers: 2, nHeads: 4, nKvHeads: 2, dModel: 32 };
const MULTIPLIERS = { embedding: 4.0, attention: 0.2, residual: 0.6, logitsScaling: 2.5 };
const FAMILIES: Array<{ name: string; write: (dir: string) => void }> = [
  { name: 'gpt_neo', write: (dir) => writeRandomGptNeo(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 31, windowSize: 4 }) },
  {
    name: 'llama',
    write: (dir) =>
      writeRandomLlamaFamily(dir, {
        ...GQA,
        modelType: 'llama',
        dMlp: 64,
        seed: 32,
        tied: true,
        ropeTheta: 500000,
        ropeScaling: { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 32 },
      }),
  },
  { name: 'qwen2', write: (dir) => writeRandomLlamaFamily(dir, { ...GQA, modelType: 'qwen2', dMlp: 64, seed: 33, tied: false }) },
  { name: 'granite', write: (dir) => writeRandomLlamaFamily(dir, { ...GQA, modelType: 'granite', dMlp: 64, seed: 34, tied: true, multipliers: MULTIPLIERS }) },
  {
    name: 'granitemoe',
    write: (dir) =>
      writeRandomLlamaFamily(dir, {
        ...GQA,
        modelType: 'granitemoe',
        dMlp: 24,
        seed: 35,
        tied: true,
        multipliers: MULTIPLIERS,
        experts: { count: 4, topK: 2 },
      }),
  },
];

test('exact activation patching matches the PyTorch reference for every family (float64)', async () => {
  const full = readDataset(IOI);
  const dataset: Dataset = { file: full.file, examples: full.examples.slice(0, 2) };
  const runs = [];
  for (const family of FAMILIES) {
    const dir = join(root, family.name);
    family.write(dir);
    const model = loadModel(dir);
    const exact = await runActivationPatching(model, dataset, { device: 'cpu', batchSize: 128, precision: 'float64' });
    // exactTokens false: AtP's own values throughout (else resid_pre at layer 0 holds the exact token effects).
    const atp = await runAttributionPatching(model, dataset, { device: 'cpu', exactTokens: false, batchSize: 2, precision: 'float64' });
    runs.push({ family: family.name, exact, request: requestFor(atp, dir, true) });
  }
  const references = runFamiliesReference(runs.map((r) => r.request));
  runs.forEach(({ family, exact }, i) => {
    const reference = references[i];
    assert.ok(Math.abs(exact.cleanLogitDiff - reference.cleanLogitDiff) <= 1e-9 * Math.abs(reference.cleanLogitDiff), `${family}: LD_clean`);
    assert.ok(Math.abs(exact.corruptedLogitDiff - reference.corruptedLogitDiff) <= 1e-9 * Math.abs(reference.corruptedLogitDiff), `${family}: LD_corrupted`);
    const flat = flattenAttributions(exact.examples);
    for (const kind of KINDS) {
      const { error, scale } = maxError(flat[kind], reference.activationPatching![kind].flat(3) as number[]);
      assert.ok(scale > 1e-4, `${family} ${kind}: not trivially zero`);
      assert.ok(error <= 1e-9 * scale, `${family} ${kind}: error ${error} vs scale ${scale}`);
    }
    // Patching the whole residual stream entering layer 0 at every position restores the clean run: at layer 0
    // only the differing position matters, and that one patch moves the metric by its example's full share.
    const example = exact.examples[0];
    const differing = example.residPre[0].map((v, p) => [Math.abs(v), p]).filter(([v]) => v > 1e-12);
    assert.equal(differing.length, 1, `${family}: one corrupted position at layer 0`);
  });
});

/** Makes token `twin` a near-copy of token `original` in the (F32) embedding table: row + ε·noise. */
function makeTwinToken(dir: string, tensorName: string, original: number, twin: number, epsilon: number): void {
  const file = join(dir, 'model.safetensors');
  const entry = readSafetensorsHeader(file).tensors.find((t) => t.name === tensorName)!;
  const d = entry.shape[1];
  const table = readTensorAsFloat32(entry);
  const random = seededRandom(99);
  const row = Float32Array.from({ length: d }, (_, i) => table[original * d + i] + epsilon * (random() * 2 - 1));
  const fd = openSync(file, 'r+');
  writeSync(fd, new Uint8Array(row.buffer), 0, row.byteLength, entry.offset + twin * d * 4);
  closeSync(fd);
}

test('GraniteMoE: attribution patching converges to activation patching as the corruption shrinks (first order in ε)', async () => {
  const errors: number[] = [];
  for (const epsilon of [1e-2, 1e-3]) {
    const dir = join(root, `moe-twin-${epsilon}`);
    FAMILIES.find((f) => f.name === 'granitemoe')!.write(dir);
    const model = loadModel(dir);
    const john = model.tokenizer.ids(' John', { addSpecialTokens: false })[0];
    const jon = model.tokenizer.ids(' Jon', { addSpecialTokens: false })[0];
    makeTwinToken(dir, 'model.embed_tokens.weight', john, jon, epsilon);
    const clean = 'When John and Mary went to the shops, John gave the bag to';
    const dataset: Dataset = {
      file: 'twin.jsonl',
      examples: [{ clean, corrupted: clean.replace(', John', ', Jon'), correct: ' Mary', incorrect: ' John', line: 1 }],
    };
    const fresh = loadModel(dir);
    const exact = flattenAttributions((await runActivationPatching(fresh, dataset, { device: 'cpu', batchSize: 128, precision: 'float64' })).examples);
    const atp = await runAttributionPatching(fresh, dataset, { device: 'cpu', exactTokens: false, batchSize: 1, precision: 'float64' });
    const a = flattenAttributions(atp.examples.map((e) => e.attributions));
    let worst = 0;
    for (const kind of KINDS) {
      const { error, scale } = maxError(a[kind], exact[kind]);
      worst = Math.max(worst, error / scale);
    }
    errors.push(worst);
  }
  console.log(`GraniteMoE: largest |AtP − exact| relative to the largest value: ε=1e-2: ${errors[0].toExponential(2)}, ε=1e-3: ${errors[1].toExponential(2)}`);
  assert.ok(errors[1] < 0.01, `relative gap at ε=1e-3 is ${errors[1]}`);
  assert.ok(errors[1] < errors[0] / 5, `gap shrinks with ε: ${errors.join(' → ')}`);
});
