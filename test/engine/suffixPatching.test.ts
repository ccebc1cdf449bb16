import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadModel, type LoadedModel } from '../../src/engine/model/load';
import type { Dataset } from '../../src/lib/dataset/jsonl';
import { HOOK_KINDS } from '../../src/engine/architectures/types';
import { HOOKS } from '../../src/shared/hooks';
import type { Component } from '../../src/shared/result';
import { differingPositions, type PreparedExample, prepareExamples } from '../../src/engine/patching/examples';
import type { RowPatch } from '../../src/engine/patching/feeds';
import { activationPatchingBySuffix, headsAtAnswerBySuffix, patchComponentsBySuffix, suffixPatchedLogitDiffs } from '../../src/engine/patching/suffixPatching';
import { generateIoi } from '../../src/lib/dataset/ioi';
import { fullForwardPatchedLds } from '../support/fullForwardPatching';
import { requireWebGpu } from '../support/webgpu';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { writeRandomGptNeo, writeRandomLlamaFamily } from '../support/randomModels';

/**
 * Suffix patching (a record pass, then each patch recomputing only the positions from it on and the layers from it
 * up) against the full clean + patched forward pass per row of the activation-patching graph, for every family:
 * GPT-Neo with a local window shorter than the prompts, Llama and Qwen2 with grouped-query attention and rotary,
 * Granite's multipliers; prompts of several lengths in one batch, differing at their first position or later;
 * every hook kind, patches at the first and last positions, and sets of several patches.
 */

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-suffix-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

const GQA = { nLayers: 3, nHeads: 4, nKvHeads: 2, dModel: 32, dMlp: 64 };
const FAMILIES: Array<{ name: string; write: (dir: string) => void }> = [
  { name: 'gpt2', write: (dir) => writeRandomGpt2(dir, { nLayers: 3, nHeads: 4, dModel: 32, seed: 41 }) },
  {
    name: 'gpt_neo',
    write: (dir) => writeRandomGptNeo(dir, { nLayers: 3, nHeads: 4, dModel: 32, seed: 42, windowSize: 4, attentionTypes: [[['local', 'global', 'local'], 1]] }),
  },
  {
    name: 'llama',
    write: (dir) =>
      writeRandomLlamaFamily(dir, {
        ...GQA,
        modelType: 'llama',
        // head_dim 16: heads × dHead (64) is not dModel (32).
        headDim: 16,
        seed: 43,
        tied: true,
        ropeTheta: 500000,
        ropeScaling: { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 32 },
      }),
  },
  { name: 'qwen2', write: (dir) => writeRandomLlamaFamily(dir, { ...GQA, modelType: 'qwen2', seed: 44, tied: false }) },
  {
    name: 'granite',
    write: (dir) =>
      writeRandomLlamaFamily(dir, {
        ...GQA,
        modelType: 'granite',
        seed: 45,
        tied: true,
        multipliers: { embedding: 4.0, attention: 0.2, residual: 0.6, logitsScaling: 2.5 },
      }),
  },
];

// Several lengths; the second differs at its first token, the third at two positions.
const DATASET: Dataset = {
  file: 'suffix.jsonl',
  examples: [
    {
      clean: 'When John and Mary went to the shops, John gave the bag to',
      corrupted: 'When John and Mary went to the shops, Mary gave the bag to',
      correct: ' Mary',
      incorrect: ' John',
      line: 1,
    },
    { clean: 'John gave the bag to', corrupted: 'Mary gave the bag to', correct: ' Mary', incorrect: ' John', line: 2 },
    {
      clean: 'When Tom and James went to the park, James gave it to',
      corrupted: 'When Anna and James went to the park, Anna gave it to',
      correct: ' Tom',
      incorrect: ' James',
      line: 3,
    },
    {
      clean: 'Then Sara and Tom left, and Tom said hi to',
      corrupted: 'Then Sara and Tom left, and Sara said hi to',
      correct: ' Sara',
      incorrect: ' Tom',
      line: 4,
    },
  ],
};

/** Every single component of an example (each head's z, resid_pre, attn_out, mlp_out at every layer and position). */
function everyComponent(model: LoadedModel, example: PreparedExample): RowPatch[][] {
  const sets: RowPatch[][] = [];
  for (const hook of HOOK_KINDS)
    for (let layer = 0; layer < model.spec.nLayers; layer++)
      for (let pos = 0; pos < example.tokens.length; pos++)
        for (let head = 0; head < (HOOKS[hook].perHead ? model.spec.nHeads : 1); head++) sets.push([{ hook, layer, pos, head }]);
  return sets;
}

/** Sets of several patches: across kinds, layers and positions, one partly before the first difference, one wholly. */
function patchSets(model: LoadedModel, example: PreparedExample): RowPatch[][] {
  const last = example.tokens.length - 1;
  const first = differingPositions(example)[0];
  const top = model.spec.nLayers - 1;
  return [
    [
      { hook: 'z', layer: top, pos: last, head: 2 },
      { hook: 'resid_pre', layer: 0, pos: first, head: 0 },
    ],
    [
      { hook: 'attn_out', layer: 1, pos: Math.min(first + 1, last), head: 0 },
      { hook: 'mlp_out', layer: top, pos: last, head: 0 },
      { hook: 'z', layer: 1, pos: last, head: 0 },
    ],
    Array.from({ length: model.spec.nHeads }, (_, head) => ({ hook: 'z' as const, layer: 1, pos: last, head })),
    [
      { hook: 'mlp_out', layer: 0, pos: 0, head: 0 },
      { hook: 'resid_pre', layer: 2, pos: last, head: 0 },
    ],
    [{ hook: 'attn_out', layer: 1, pos: Math.max(0, first - 1), head: 0 }],
  ];
}

function worst(actual: number[][], expected: number[][]): number {
  let error = 0;
  actual.forEach((row, e) => row.forEach((v, k) => (error = Math.max(error, Math.abs(v - expected[e][k])))));
  return error;
}

const largest = (values: number[][]) => values.flat().reduce((m, v) => Math.max(m, Math.abs(v)), 0);

test('suffix patching equals full patched forward passes for every family, every component and patch sets (float64, 1e-12)', async () => {
  for (const family of FAMILIES) {
    const dir = join(root, family.name);
    family.write(dir);
    const model = loadModel(dir);
    const prepared = prepareExamples(model, DATASET, []);
    assert.ok(new Set(prepared.map((p) => p.tokens.length)).size >= 3, `${family.name}: prompts of several lengths`);
    // Its first token: position 0, or 1 after the Llama family's BOS.
    assert.ok(
      prepared.some((p) => differingPositions(p)[0] <= 1),
      'a prompt differing at its first token',
    );
    const sets = (e: number) => [...everyComponent(model, prepared[e]), ...patchSets(model, prepared[e])];
    const options = { device: 'cpu' as const, batchSize: 64, precision: 'float64' as const };
    const reference = await fullForwardPatchedLds(model, prepared, sets, options);
    const ours = await suffixPatchedLogitDiffs(model, prepared, sets, options);
    // Every row its own run: runs whose rows enter above layer 0 (they then enter at 0), a batch of one.
    const oneByOne = await suffixPatchedLogitDiffs(model, prepared, sets, { ...options, batchSize: 1 }, { rowsPerRun: 1 });
    // LDs are O(1): 1e-12 is a few thousand float64 roundings of the largest.
    const scale = Math.max(largest(reference.patched), 1);
    assert.ok(largest(reference.patched) > 0.1, `${family.name}: not trivially zero`);
    for (const [what, found] of [
      ['batched', ours],
      ['one by one', oneByOne],
    ] as const) {
      assert.ok(worst([found.cleanLds], [reference.cleanLds]) <= 1e-12 * scale, `${family.name} ${what}: LD_clean`);
      assert.ok(worst([found.corruptedLds], [reference.corruptedLds]) <= 1e-12 * scale, `${family.name} ${what}: LD_corrupted`);
      const error = worst(found.patched, reference.patched);
      assert.ok(error <= 1e-12 * scale, `${family.name} ${what}: patched LD error ${error}`);
    }
    // Before the first difference a patch changes nothing: the corrupted run's value exactly (no pass).
    prepared.forEach((p, e) => {
      const first = differingPositions(p)[0];
      sets(e).forEach((set, k) => {
        if (set.every((patch) => patch.pos < first)) assert.equal(ours.patched[e][k], ours.corruptedLds[e]);
      });
    });
    console.log(
      `${family.name}: suffix vs full forward, float64: largest error ${worst(ours.patched, reference.patched).toExponential(2)} (scale ${scale.toFixed(2)})`,
    );
  }
});

test('suffix patching in float32 agrees with the full forward passes to 1e-5 of the logit differences', async () => {
  for (const family of FAMILIES.filter((f) => ['gpt2', 'gpt_neo', 'qwen2'].includes(f.name))) {
    const dir = join(root, `${family.name}-32`);
    family.write(dir);
    const model = loadModel(dir);
    const prepared = prepareExamples(model, DATASET, []);
    const sets = (e: number) => [...everyComponent(model, prepared[e]), ...patchSets(model, prepared[e])];
    const options = { device: 'cpu' as const, batchSize: 64, precision: 'float32' as const };
    const reference = await fullForwardPatchedLds(model, prepared, sets, options);
    const ours = await suffixPatchedLogitDiffs(model, prepared, sets, options);
    const scale = Math.max(largest(reference.patched), 1);
    const error = worst(ours.patched, reference.patched);
    console.log(`${family.name}: suffix vs full forward, float32: largest error ${error.toExponential(2)} (scale ${scale.toFixed(2)})`);
    assert.ok(error <= 1e-5 * scale, `${family.name}: float32 error ${error}`);
  }
});

test('activationPatchingBySuffix and patchComponentsBySuffix: the sweep and the checks, against full forward passes', async () => {
  const family = FAMILIES.find((f) => f.name === 'llama')!;
  const dir = join(root, 'llama-sweep');
  family.write(dir);
  const model = loadModel(dir);
  const prepared = prepareExamples(model, DATASET, []);
  const options = { device: 'cpu' as const, batchSize: 16, precision: 'float64' as const };
  const reference = await fullForwardPatchedLds(model, prepared, (e) => everyComponent(model, prepared[e]), options);
  const n = prepared.length;
  const scale = 1 / (n * ((reference.cleanLds.reduce((a, b) => a + b) - reference.corruptedLds.reduce((a, b) => a + b)) / n));
  for (const components of ['all', 'heads-at-answer', 'resid-pre'] as const) {
    const sweep = await activationPatchingBySuffix(model, DATASET, { ...options, components });
    prepared.forEach((p, e) => {
      everyComponent(model, p).forEach(([c], k) => {
        const selected = components === 'all' || (components === 'resid-pre' ? c.hook === 'resid_pre' : c.hook === 'z' && c.pos === p.tokens.length - 1);
        const expected = selected ? (reference.patched[e][k] - reference.corruptedLds[e]) * scale : 0;
        const field = HOOKS[c.hook].field;
        const found = field === 'z' ? sweep.examples[e].z[c.layer][c.pos][c.head] : sweep.examples[e][field][c.layer][c.pos];
        assert.ok(Math.abs(found - expected) <= 1e-11, `${components} example ${e} ${c.hook} L${c.layer} p${c.pos} h${c.head}: ${found} vs ${expected}`);
      });
    });
  }
  // Checks: at the answer (each example's own last position), at a position some examples lack, and at the first.
  const components: Component[] = [
    { hook: 'z', layer: 2, position: null, head: 3 },
    { hook: 'resid_pre', layer: 0, position: 10, head: null },
    { hook: 'mlp_out', layer: 1, position: 0, head: null },
    { hook: 'attn_out', layer: 0, position: null, head: null },
  ];
  const sets = (e: number) =>
    components.map((c): RowPatch[] => {
      const pos = c.position ?? prepared[e].tokens.length - 1;
      return pos < prepared[e].tokens.length ? [{ hook: c.hook, layer: c.layer, pos, head: c.head ?? 0 }] : [];
    });
  const full = await fullForwardPatchedLds(model, prepared, sets, options);
  const expected = components.map((_, k) => full.patched.reduce((sum, perSet, e) => sum + perSet[k] - full.corruptedLds[e], 0));
  const found = await patchComponentsBySuffix(model, prepared, components, options);
  found.forEach((v, k) => assert.ok(Math.abs(v - expected[k]) <= 1e-12, `check ${k}: ${v} vs ${expected[k]}`));
  assert.ok(
    prepared.some((p) => p.tokens.length <= 10),
    'a check position beyond some example',
  );
});

test("ioi-demo (trained): the exact head map's top cell equals full forward patching of that head (float32, 1e-4)", async () => {
  const model = loadModel(resolve(__dirname, '../../models/ioi-demo'));
  const examples = generateIoi(model.tokenizer, { count: 32, seed: 11 });
  const prepared = prepareExamples(model, { file: 'ioi.jsonl', examples }, []);
  const options = { device: 'cpu' as const, batchSize: 64 };
  const { cleanLds, corruptedLds, heads } = await headsAtAnswerBySuffix(model, prepared, options);
  const n = prepared.length;
  const scale = 1 / (n * ((cleanLds.reduce((a, b) => a + b) - corruptedLds.reduce((a, b) => a + b)) / n));
  const map = heads[0].map((row, l) => row.map((_, h) => heads.reduce((sum, e) => sum + e[l][h], 0) * scale));
  let top = { layer: 0, head: 0, value: 0 };
  map.forEach((row, layer) => row.forEach((value, head) => Math.abs(value) > Math.abs(top.value) && (top = { layer, head, value })));
  const full = await fullForwardPatchedLds(
    model,
    prepared,
    (e) => [[{ hook: 'z', layer: top.layer, pos: prepared[e].tokens.length - 1, head: top.head }]],
    options,
  );
  const expected = full.patched.reduce((sum, [ld], e) => sum + ld - full.corruptedLds[e], 0) * scale;
  console.log(`ioi-demo: top head L${top.layer}H${top.head}: suffix ${top.value.toFixed(6)}, full forward ${expected.toFixed(6)}`);
  // The model card's head: one layer-0 head restores about the whole metric.
  assert.ok(top.value > 0.8, `L${top.layer}H${top.head} ${top.value}`);
  assert.ok(Math.abs(top.value - expected) <= 1e-4, `${top.value} vs ${expected}`);
});

test("WebGPU runs the record and suffix-patch graphs with the CPU's numbers (float32)", async (t) => {
  if (!(await requireWebGpu(t))) return;
  const dir = join(root, 'gpt2-webgpu');
  FAMILIES.find((f) => f.name === 'gpt2')!.write(dir);
  const model = loadModel(dir);
  const prepared = prepareExamples(model, DATASET, []);
  const every = (e: number) => [...everyComponent(model, prepared[e]), ...patchSets(model, prepared[e])];
  const some = (e: number) => patchSets(model, prepared[e]);
  // Every component in runs of many rows; and patch sets with every row its own run, entering at layer 0 when its
  // patches are higher (WebGPU's kernels take no empty batch).
  for (const [what, sets, rowsPerRun] of [
    ['every component', every, undefined],
    ['patch sets, one row a run', some, 1],
  ] as const) {
    const cpu = await suffixPatchedLogitDiffs(model, prepared, sets, { device: 'cpu', batchSize: 64 });
    const gpu = await suffixPatchedLogitDiffs(model, prepared, sets, { device: 'webgpu', batchSize: 64 }, { rowsPerRun });
    const error = worst(gpu.patched, cpu.patched);
    console.log(`WebGPU vs CPU, suffix patching, ${what}: largest error ${error.toExponential(2)}`);
    assert.ok(error <= 1e-4 * Math.max(largest(cpu.patched), 1), `${what}: WebGPU error ${error}`);
  }
});
