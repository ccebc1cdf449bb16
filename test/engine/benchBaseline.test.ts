import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadModel } from '../../src/engine/model/load';
import { readDataset } from '../../src/lib/dataset/jsonl';
import { runAttributionPatching } from '../../src/engine/patching/run';
import { flattenAttributions } from '../support/attributions';
import { maxError } from '../support/familiesReference';
import { REFERENCE_PYTHON, requireTorchReference } from '../support/reference';
import { writeRandomLlamaFamily } from '../support/randomModels';
import { writeRandomGpt2 } from '../support/randomGpt2';

/**
 * The speed baseline (bench/torch_baseline.py, what `npm run bench -- --matrix` times the engine against) computes
 * the same attributions as the engine, for every family it times: GPT-2, Llama (RMSNorm, RoPE with llama3 scaling,
 * GQA 4/2, SwiGLU, untied head) and Qwen2 (q/k/v biases, tied). Otherwise the speed comparison would be between two
 * different computations. Both run in float32; the baseline batches all 8 IOI prompts with right padding while the
 * engine runs batches of 3, so padding and batching are exercised on both sides. Tolerance 2e-4 relative to each
 * hook kind's largest magnitude: float32 rounding (~1e-7 per op) over two layers and short reductions stays far
 * below it, while a wrong formula (a missing bias, RoPE on the wrong half, an unscaled metric) is off by far more.
 */

const BASELINE = resolve(__dirname, '../../bench/torch_baseline.py');
const IOI = join(__dirname, '../../examples/ioi.jsonl');
const KINDS = ['z', 'resid_pre', 'attn_out', 'mlp_out'] as const;
const TOLERANCE = 2e-4;
let root: string;

before(() => {
  requireTorchReference();
  root = mkdtempSync(join(tmpdir(), 'atp-bench-baseline-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

const GQA = { nLayers: 2, nHeads: 4, nKvHeads: 2, dModel: 32, dMlp: 64 };
const FAMILIES: Array<{ name: string; write: (dir: string) => void }> = [
  { name: 'GPT-2', write: (dir) => writeRandomGpt2(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 31 }) },
  {
    name: 'Llama 3.2 (GQA 4/2, llama3 rope scaling, untied)',
    write: (dir) =>
      writeRandomLlamaFamily(dir, {
        ...GQA,
        modelType: 'llama',
        seed: 32,
        tied: false,
        ropeTheta: 500000,
        ropeScaling: { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 32 },
      }),
  },
  {
    name: 'Qwen2 (q/k/v biases, GQA 4/2, tied)',
    write: (dir) => writeRandomLlamaFamily(dir, { ...GQA, modelType: 'qwen2', seed: 33, tied: true, ropeTheta: 1000000 }),
  },
];

for (const [i, family] of FAMILIES.entries()) {
  test(`the PyTorch speed baseline computes the engine's attributions: ${family.name}`, async () => {
    const dir = join(root, `model-${i}`);
    family.write(dir);
    const model = loadModel(dir);
    const result = await runAttributionPatching(model, readDataset(IOI), {
      device: 'cpu',
      batchSize: 3,
      method: 'atp',
      exactTokens: false,
      precision: 'float32',
    });
    const request = join(root, `request-${i}.json`);
    const out = join(root, `attributions-${i}.json`);
    writeFileSync(
      request,
      JSON.stringify({
        examples: result.examples.map((e) => ({ cleanIds: e.cleanIds, corruptedIds: e.corruptedIds, correctId: e.correctId, incorrectId: e.incorrectId })),
      }),
    );
    const run = spawnSync(
      REFERENCE_PYTHON,
      [BASELINE, '--model-dir', dir, '--request', request, '--repeats', '1', '--threads', '1', '--attributions-out', out],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(run.status, 0, `torch_baseline.py failed: ${run.stderr}`);
    // Baseline layout: "kind.layer" → [example][position](+[head]) over the padded batch; to [example][layer][position](+[head]).
    const theirs = JSON.parse(readFileSync(out, 'utf8')) as Record<string, number[][] | number[][][]>;
    const ours = flattenAttributions(result.examples.map((e) => e.attributions));
    for (const kind of KINDS) {
      const expected = result.examples.flatMap((e, example) =>
        Array.from({ length: model.spec.nLayers }, (_, layer) => theirs[`${kind}.${layer}`][example].slice(0, e.cleanIds.length)).flat(2),
      ) as number[];
      const { error, scale } = maxError(ours[kind], expected);
      assert.ok(scale > 1e-4, `${family.name}: ${kind} attributions are not trivially zero (${scale})`);
      assert.ok(error <= TOLERANCE * scale, `${family.name}: ${kind}: error ${error} vs scale ${scale}`);
    }
  });
}
