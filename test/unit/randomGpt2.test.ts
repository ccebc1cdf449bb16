import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTensor, readModelSpec } from '../../src/engine/model/config';
import { indexModelWeights, readTensorAsFloat32, type TensorEntry } from '../../src/lib/model/safetensors';
import { writeRandomGpt2 } from '../support/randomGpt2';

const root = mkdtempSync(join(tmpdir(), 'atp-random-gpt2-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SMALL = { nLayers: 2, nHeads: 2, dModel: 8, maxPositions: 32, seed: 7 };

/** Every GPT-2 weight name (without prefix) with its expected shape. */
function expectedShapes(nLayers: number, dModel: number, vocabSize: number, maxPositions: number): Map<string, number[]> {
  const shapes = new Map<string, number[]>([
    ['wte.weight', [vocabSize, dModel]],
    ['wpe.weight', [maxPositions, dModel]],
    ['ln_f.weight', [dModel]],
    ['ln_f.bias', [dModel]],
  ]);
  for (let layer = 0; layer < nLayers; layer++) {
    const h = `h.${layer}`;
    shapes.set(`${h}.ln_1.weight`, [dModel]).set(`${h}.ln_1.bias`, [dModel]);
    shapes.set(`${h}.attn.c_attn.weight`, [dModel, 3 * dModel]).set(`${h}.attn.c_attn.bias`, [3 * dModel]);
    shapes.set(`${h}.attn.c_proj.weight`, [dModel, dModel]).set(`${h}.attn.c_proj.bias`, [dModel]);
    shapes.set(`${h}.ln_2.weight`, [dModel]).set(`${h}.ln_2.bias`, [dModel]);
    shapes.set(`${h}.mlp.c_fc.weight`, [dModel, 4 * dModel]).set(`${h}.mlp.c_fc.bias`, [4 * dModel]);
    shapes.set(`${h}.mlp.c_proj.weight`, [4 * dModel, dModel]).set(`${h}.mlp.c_proj.bias`, [dModel]);
  }
  return shapes;
}

function assertLoadsBack(dir: string, prefix: string): Map<string, TensorEntry> {
  const spec = readModelSpec(dir);
  assert.equal(spec.architecture, 'gpt2');
  assert.equal(spec.nLayers, SMALL.nLayers);
  assert.equal(spec.nHeads, SMALL.nHeads);
  assert.equal(spec.dModel, SMALL.dModel);
  assert.equal(spec.dHead, SMALL.dModel / SMALL.nHeads);
  assert.equal(spec.dMlp, 4 * SMALL.dModel);
  assert.equal(spec.vocabSize, 50257);
  assert.equal(spec.maxPositions, SMALL.maxPositions);
  assert.equal(spec.tiedEmbeddings, true);

  const weights = indexModelWeights(dir);
  const expected = expectedShapes(spec.nLayers, spec.dModel, spec.vocabSize, spec.maxPositions);
  assert.deepEqual([...weights.keys()].sort(), [...expected.keys()].map((name) => prefix + name).sort());
  for (const [name, shape] of expected) {
    assert.deepEqual(findTensor(weights, name).shape, shape, name);
    assert.equal(weights.get(prefix + name)?.name, prefix + name);
  }
  assert.ok(existsSync(join(dir, 'tokenizer.json')), 'tokenizer.json is written');
  assert.ok(existsSync(join(dir, 'tokenizer_config.json')), 'tokenizer_config.json is written');
  return weights;
}

const readAll = (weights: Map<string, TensorEntry>, name: string) => readTensorAsFloat32(findTensor(weights, name));

test('a one-file random GPT-2 loads back with the right shapes', () => {
  const dir = join(root, 'single');
  writeRandomGpt2(dir, SMALL);
  assert.ok(existsSync(join(dir, 'model.safetensors')));
  assert.ok(!existsSync(join(dir, 'model.safetensors.index.json')));
  const weights = assertLoadsBack(dir, '');

  // Weights are N(0, 0.1²); layer norms sit around (1, 0) but not on it.
  const wte = readAll(weights, 'wte.weight');
  const mean = wte.reduce((sum, value) => sum + value, 0) / wte.length;
  const std = Math.sqrt(wte.reduce((sum, value) => sum + (value - mean) ** 2, 0) / wte.length);
  assert.ok(Math.abs(mean) < 0.002, `mean ${mean}`);
  assert.ok(Math.abs(std - 0.1) < 0.002, `std ${std}`);
  const lnWeight = readAll(weights, 'h.0.ln_1.weight');
  assert.ok(lnWeight.every((value) => Math.abs(value - 1) < 0.5) && lnWeight.some((value) => value !== 1));
  assert.ok(readAll(weights, 'ln_f.bias').some((value) => value !== 0));
});

test('three shards load back through the index, with the same weights as one file', () => {
  const dir = join(root, 'sharded');
  writeRandomGpt2(dir, { ...SMALL, shards: 3 });
  assert.deepEqual(
    readdirSync(dir)
      .filter((name) => name.endsWith('.safetensors'))
      .sort(),
    ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'],
  );
  assert.ok(!existsSync(join(dir, 'model.safetensors')));
  const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
  assert.equal(new Set(Object.values(index.weight_map)).size, 3);
  const weights = assertLoadsBack(dir, '');
  assert.equal(new Set([...weights.values()].map((entry) => entry.file)).size, 3);

  const single = indexModelWeights(join(root, 'single'));
  for (const name of ['wte.weight', 'h.1.mlp.c_proj.weight', 'ln_f.weight']) {
    assert.deepEqual(readAll(weights, name), readAll(single, name), name);
  }
});

test('the prefix variant names every weight "transformer.…" with the same values', () => {
  const dir = join(root, 'prefixed');
  writeRandomGpt2(dir, { ...SMALL, withPrefix: true });
  const weights = assertLoadsBack(dir, 'transformer.');
  const single = indexModelWeights(join(root, 'single'));
  assert.deepEqual(readAll(weights, 'h.0.attn.c_attn.weight'), readAll(single, 'h.0.attn.c_attn.weight'));
});

test('the prefix variant also shards', () => {
  const dir = join(root, 'prefixed-sharded');
  writeRandomGpt2(dir, { ...SMALL, withPrefix: true, shards: 3 });
  assertLoadsBack(dir, 'transformer.');
});

test('F16 and BF16 folders hold the same weights, rounded; other seeds differ', () => {
  const single = indexModelWeights(join(root, 'single'));
  const reference = readAll(single, 'h.1.attn.c_attn.weight');
  for (const dtype of ['F16', 'BF16'] as const) {
    const dir = join(root, `dtype-${dtype}`);
    writeRandomGpt2(dir, { ...SMALL, dtype });
    const weights = indexModelWeights(dir);
    assert.equal(findTensor(weights, 'h.1.attn.c_attn.weight').dtype, dtype);
    const rounded = readAll(weights, 'h.1.attn.c_attn.weight');
    const tolerance = dtype === 'F16' ? 2 ** -11 : 2 ** -8; // relative half-ulp
    rounded.forEach((value, i) => assert.ok(Math.abs(value - reference[i]) <= Math.abs(reference[i]) * tolerance + 1e-7, `${dtype}[${i}]`));
    assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).torch_dtype, dtype === 'F16' ? 'float16' : 'bfloat16');
  }

  const other = join(root, 'other-seed');
  writeRandomGpt2(other, { ...SMALL, seed: 8 });
  assert.notDeepEqual(readAll(indexModelWeights(other), 'h.1.attn.c_attn.weight'), reference);
});
