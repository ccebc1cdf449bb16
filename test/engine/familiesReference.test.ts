import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/engine/model/load';
import { parseJsonlDataset, readDataset, type Dataset } from '../../src/lib/dataset/jsonl';
import { runAttributionPatching } from '../../src/engine/patching/run';
import type { Precision } from '../../src/engine/patching/precision';
import type { Result } from '../../src/shared/result';
import { flattenAttributions } from '../support/attributions';
import { requireTorchReference, type ReferenceRequest, type ReferenceResponse } from '../support/reference';
import { maxError, requestFor, runFamiliesReference } from '../support/familiesReference';
import { GPT_NEO_PAD_ID, GPT_NEO_PAD_TOKEN, LLAMA3_BOS_ID, writeRandomGptNeo, writeRandomLlamaFamily, type StoredDtype } from '../support/randomModels';

/**
 * Every model family against the independent PyTorch float64 reference (test/reference/families_reference.py):
 * small random-weight models in Hugging Face layout with each family's structural features (GPT-Neo's local
 * attention with a window shorter than the prompts, grouped-query attention 4 query / 2 kv heads, llama3
 * rope scaling, Qwen2's q/k/v biases, tied and untied unembeddings, head_dim ≠ hidden/heads, Granite's four
 * multipliers, GraniteMoE with 4 experts top-2), the real tokenizers, and the seed notebook's IOI prompts.
 * Tolerances, relative to the largest magnitude of each compared set: float64 engine 1e-9 (only summation
 * order differs between the two implementations); float32 engine 2e-4 (float32 rounding, ~1e-7 per op,
 * accumulated over two layers and reductions of at most 128 terms, stays far below; a wrong formula is off by
 * orders of magnitude more). BF16 checkpoints are compared in float64: both sides read the same stored values.
 */

const IOI = join(__dirname, '../../examples/ioi.jsonl');
let root: string;

before(() => {
  requireTorchReference();
  root = mkdtempSync(join(tmpdir(), 'atp-families-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

const KINDS = ['z', 'resid_pre', 'attn_out', 'mlp_out'] as const;

function assertMatchesReference(label: string, result: Result, reference: ReferenceResponse, tolerance: number): void {
  const lds = maxError(
    result.examples.flatMap((e) => [e.cleanLogitDiff, e.corruptedLogitDiff]),
    reference.cleanLogitDiffs.flatMap((c, i) => [c, reference.corruptedLogitDiffs[i]]),
  );
  assert.ok(lds.scale > 1e-2, `${label}: logit differences are not trivially small (${lds.scale})`);
  assert.ok(lds.error <= tolerance * lds.scale, `${label}: logit differences: error ${lds.error} vs scale ${lds.scale}`);
  assert.ok(Math.abs(result.metric.cleanLogitDiff - reference.cleanLogitDiff) <= tolerance * lds.scale, `${label}: LD_clean`);
  assert.ok(Math.abs(result.metric.corruptedLogitDiff - reference.corruptedLogitDiff) <= tolerance * lds.scale, `${label}: LD_corrupted`);
  const ours = flattenAttributions(result.examples.map((e) => e.attributions));
  let worst = lds.error / lds.scale;
  for (const kind of KINDS) {
    const { error, scale } = maxError(ours[kind], reference.attributions[kind].flat(3) as number[]);
    assert.ok(scale > 1e-4, `${label}: ${kind} attributions are not trivially zero (${scale})`);
    assert.ok(error <= tolerance * scale, `${label}: ${kind}: error ${error} vs scale ${scale}`);
    worst = Math.max(worst, error / scale);
  }
  console.log(`${label}: largest relative error ${worst.toExponential(2)} (tolerance ${tolerance})`);
}

interface Variant {
  name: string;
  write: (dir: string, dtype: StoredDtype) => void;
  /** Also run the engine in float32 (on the F32 checkpoint). */
  float32: boolean;
}

const GQA = { nLayers: 2, nHeads: 4, nKvHeads: 2, dModel: 32 };
const LLAMA32_ROPE = { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 32 };
const GRANITE_MULTIPLIERS = { embedding: 4.0, attention: 0.2, residual: 0.6, logitsScaling: 2.5 };

const VARIANTS: Variant[] = [
  {
    name: 'GPT-Neo (global + local attention, window 4 < prompt length, tied)',
    write: (dir, dtype) => writeRandomGptNeo(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 21, windowSize: 4, dtype }),
    float32: true,
  },
  {
    name: 'Llama 3.2 (GQA 4/2, llama3 rope scaling, untied)',
    write: (dir, dtype) =>
      writeRandomLlamaFamily(dir, { ...GQA, modelType: 'llama', dMlp: 64, seed: 22, tied: false, ropeTheta: 500000, ropeScaling: LLAMA32_ROPE, dtype }),
    float32: true,
  },
  {
    name: 'Llama / SmolLM (tied, head_dim 16 ≠ hidden/heads, attention and MLP biases, MHA)',
    write: (dir, dtype) =>
      writeRandomLlamaFamily(dir, {
        modelType: 'llama',
        nLayers: 2,
        nHeads: 4,
        nKvHeads: 4,
        dModel: 32,
        headDim: 16,
        dMlp: 48,
        seed: 23,
        tied: true,
        attentionBias: true,
        mlpBias: true,
        dtype,
      }),
    float32: false,
  },
  {
    name: 'Qwen2 (q/k/v biases, GQA 4/2, tied)',
    write: (dir, dtype) => writeRandomLlamaFamily(dir, { ...GQA, modelType: 'qwen2', dMlp: 64, seed: 24, tied: true, ropeTheta: 1000000, dtype }),
    float32: true,
  },
  {
    name: 'Granite (embedding/attention/residual multipliers, logits scaling, GQA 4/2, tied)',
    write: (dir, dtype) =>
      writeRandomLlamaFamily(dir, { ...GQA, modelType: 'granite', dMlp: 64, seed: 25, tied: true, multipliers: GRANITE_MULTIPLIERS, dtype }),
    float32: true,
  },
  {
    name: 'GraniteMoE (4 experts top-2, multipliers, GQA 4/2, untied)',
    write: (dir, dtype) =>
      writeRandomLlamaFamily(dir, {
        ...GQA,
        modelType: 'granitemoe',
        dMlp: 24,
        seed: 26,
        tied: false,
        multipliers: GRANITE_MULTIPLIERS,
        experts: { count: 4, topK: 2 },
        dtype,
      }),
    float32: true,
  },
];

test('every family matches the PyTorch reference: F32 (float64 and float32 engine) and BF16 checkpoints', async () => {
  const dataset = readDataset(IOI);
  const runs: Array<{ label: string; result: Result; request: ReferenceRequest; tolerance: number }> = [];
  for (const [i, variant] of VARIANTS.entries()) {
    for (const dtype of ['F32', 'BF16'] as const) {
      const dir = join(root, `variant-${i}-${dtype}`);
      variant.write(dir, dtype);
      const model = loadModel(dir);
      assert.equal(model.storedDtype, dtype);
      const precisions: Precision[] = dtype === 'F32' && variant.float32 ? ['float64', 'float32'] : ['float64'];
      for (const precision of precisions) {
        // exactTokens false: AtP's own values throughout (else resid_pre at layer 0 holds the exact token effects).
        const result = await runAttributionPatching(model, dataset, { device: 'cpu', exactTokens: false, batchSize: 3, precision });
        runs.push({
          label: `${variant.name}, ${dtype}, ${precision}`,
          result,
          request: requestFor(result, dir),
          tolerance: precision === 'float64' ? 1e-9 : 2e-4,
        });
      }
    }
  }
  // One interpreter start for every model (the float32 runs share their F32 model's reference).
  const unique = [...new Map(runs.map((r) => [r.request.modelDir, r.request])).values()];
  const responses = new Map(runFamiliesReference(unique).map((response, i) => [unique[i].modelDir, response]));
  for (const run of runs) assertMatchesReference(run.label, run.result, responses.get(run.request.modelDir)!, run.tolerance);
});

test('prompts that first differ late: the corrupted pass runs from there on the clean keys and values, and matches the reference', async () => {
  // Three lengths in one batch, each pair first differing at least 8 tokens in (past GPT-Neo's window of 4): the
  // graph's corrupted pass starts at the batch's earliest difference and reads the clean pass's keys and values before it.
  const line = (clean: string, name: string, n: number) =>
    JSON.stringify({ clean: clean.replace('NAME', ' John'), corrupted: clean.replace('NAME', name), correct: ' Mary', incorrect: ' John', line: n });
  const dataset = parseJsonlDataset(
    [
      line('When the cat and the dog went to the park by the river,NAME gave a ball to', ' Mary', 1),
      line('After the long day at the office in the city,NAME handed the keys to', ' Mary', 2),
      line('In the morning the children played outside while NAME read to', ' Mary', 3),
    ].join('\n'),
    'late.jsonl',
  );
  const runs: Array<{ label: string; result: Result; request: ReferenceRequest }> = [];
  for (const index of [0, 1, 5]) {
    const variant = VARIANTS[index];
    const dir = join(root, `late-${index}`);
    variant.write(dir, 'F32');
    const result = await runAttributionPatching(loadModel(dir), dataset, { device: 'cpu', exactTokens: false, batchSize: 3, precision: 'float64' });
    const firstDifferences = result.examples.map((e) => e.cleanIds.findIndex((id, p) => id !== e.corruptedIds[p]));
    assert.ok(Math.min(...firstDifferences) >= 8, `${variant.name}: the prompts share at least 8 tokens (${firstDifferences.join(', ')})`);
    assert.ok(new Set(result.examples.map((e) => e.cleanIds.length)).size === 3, 'three prompt lengths in the batch');
    // Before its first difference a position's clean and corrupted activations are one and the same: exactly 0.
    for (const [i, example] of result.examples.entries())
      for (const row of example.attributions.residPre) assert.ok(row.slice(0, firstDifferences[i]).every((v) => v === 0));
    runs.push({ label: `${variant.name}, late difference, float64`, result, request: requestFor(result, dir) });
  }
  const responses = runFamiliesReference(runs.map((r) => r.request));
  runs.forEach((run, i) => assertMatchesReference(run.label, run.result, responses[i], 1e-9));
});

test('Llama 3 prompts start with BOS from the post-processor; answers use their first non-special token', async () => {
  const dir = join(root, 'llama-bos');
  writeRandomLlamaFamily(dir, { ...GQA, modelType: 'llama', dMlp: 64, seed: 27, tied: true });
  const model = loadModel(dir);
  const dataset = readDataset(IOI);
  const result = await runAttributionPatching(model, dataset, { device: 'cpu', exactTokens: false, batchSize: 8, precision: 'float64' });
  for (const [i, example] of result.examples.entries()) {
    assert.equal(example.cleanIds[0], LLAMA3_BOS_ID, 'the prompt starts with <|begin_of_text|>');
    assert.equal(example.corruptedIds[0], LLAMA3_BOS_ID);
    assert.deepEqual(example.tokens[0], { id: LLAMA3_BOS_ID, text: '<|begin_of_text|>', start: 0, end: 0 });
    assert.equal(example.cleanIds.filter((id) => id === LLAMA3_BOS_ID).length, 1, 'exactly one BOS');
    const answer = dataset.examples[i].correct;
    assert.deepEqual(model.tokenizer.ids(answer), [LLAMA3_BOS_ID, example.correctId], 'with specials the answer would start with BOS');
    assert.equal(example.correctId, model.tokenizer.ids(answer, { addSpecialTokens: false })[0]);
    assert.notEqual(example.incorrectId, LLAMA3_BOS_ID);
  }
  assert.deepEqual(result.heads.length, 2);
  assert.deepEqual(result.heads[0].length, 4, 'one head entry per query head under GQA');
});

test('TinySQL BM1-style GPT-Neo: <|pad|> added to the tokenizer, embedding resized beyond 50257 rows', async () => {
  const dir = join(root, 'neo-bm1');
  writeRandomGptNeo(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 28, windowSize: 3, padToken: true, padVocabSize: 50264, dtype: 'BF16' });
  const model = loadModel(dir);
  assert.equal(model.spec.vocabSize, 50264);
  assert.equal(model.tokenizer.vocabSize, GPT_NEO_PAD_ID + 1);
  assert.deepEqual(model.tokenizer.ids(GPT_NEO_PAD_TOKEN, { addSpecialTokens: false }), [GPT_NEO_PAD_ID]);
  // Prompts that contain the added token, and an answer whose first token is it: its embedding row (50257,
  // beyond GPT-2's vocabulary) is used on both the input and the unembedding side.
  const dataset: Dataset = {
    file: 'bm1.jsonl',
    examples: [
      {
        line: 1,
        clean: `${GPT_NEO_PAD_TOKEN}SELECT name FROM users WHERE age`,
        corrupted: `${GPT_NEO_PAD_TOKEN}SELECT name FROM items WHERE age`,
        correct: GPT_NEO_PAD_TOKEN,
        incorrect: ' >',
      },
      { line: 2, clean: 'SELECT price FROM orders ORDER BY', corrupted: 'SELECT price FROM users ORDER BY', correct: ' price', incorrect: GPT_NEO_PAD_TOKEN },
    ],
  };
  const result = await runAttributionPatching(model, dataset, { device: 'cpu', exactTokens: false, batchSize: 2, precision: 'float64' });
  assert.equal(result.examples[0].cleanIds[0], GPT_NEO_PAD_ID);
  assert.equal(result.examples[0].correctId, GPT_NEO_PAD_ID);
  assert.equal(result.examples[1].incorrectId, GPT_NEO_PAD_ID);
  const [reference] = runFamiliesReference([requestFor(result, dir)]);
  assertMatchesReference('GPT-Neo BM1 (<|pad|>), BF16, float64', result, reference, 1e-9);
});
