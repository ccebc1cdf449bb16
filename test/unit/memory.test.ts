import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/shared/errors';
import { parseJsonlDataset } from '../../src/lib/dataset/jsonl';
import { runAttributionPatching } from '../../src/engine/patching/run';
import { loadModel } from '../../src/engine/model/load';
import { indexModelWeights } from '../../src/lib/model/safetensors';
import { readModelSpec } from '../../src/engine/model/config';
import type { TensorEntry } from '../../src/lib/model/safetensors';
import {
  activationBytes,
  checkMemory,
  describeMemoryEstimate,
  estimateRunMemory,
  fitRunToMemory,
  datasetShape,
  headCounts,
  formatBytes,
  RESULT_FACTORS,
  resultBytes,
  type MemoryEstimate,
  OVERHEAD_BYTES,
  PROCESS_BYTES,
  type SystemMemory,
} from '../../src/engine/model/memory';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { resultFilesToWrite } from '../../src/lib/files/resultFile';

// This file is also the child process that measures a real run (see the last test).
const childParams = process.env.ATP_MEMORY_CHILD;
if (childParams) void measureInChild(JSON.parse(childParams));
else defineTests();

interface MeasureParams {
  dir: string;
  batchSize: number;
  seqLen: number;
  /** Examples in the dataset (default: one batch). */
  examples?: number;
  /** Where the prompts differ: their first token (nothing shared) or their last (the default). */
  differAt?: 'first' | 'last';
}

function peakRss(): number {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
}

async function measureInChild({ dir, batchSize, seqLen, examples = batchSize, differAt = 'last' }: MeasureParams): Promise<void> {
  const model = loadModel(dir);
  // " the" and " John"/" Mary" are one token each: every prompt is exactly seqLen tokens.
  const prompt = (name: string) => (differAt === 'first' ? name + ' the'.repeat(seqLen - 1) : ' the'.repeat(seqLen - 1) + name);
  const line = JSON.stringify({ clean: prompt(' John'), corrupted: prompt(' Mary'), correct: ' Mary', incorrect: ' John' });
  const dataset = parseJsonlDataset(Array.from({ length: examples }, () => line).join('\n'), 'memory.jsonl');
  (globalThis as { gc?: () => void }).gc?.();
  const before = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
  const result = await runAttributionPatching(model, dataset, { device: 'cpu', batchSize, method: 'atp', exactTokens: examples === batchSize });
  // Written as the CLI writes it (the sidecar's copy and the JSON text count): into memory only.
  if (examples > batchSize) resultFilesToWrite(join(dir, 'memory.atp-result.json'), result);
  process.stdout.write(`${JSON.stringify({ growth: peakRss() - before })}\n`);
}

type BenchShape = 'gpt2-small' | 'qwen2.5-0.5b' | 'llama-3.2-1b';

/** bench/matrix.ts's shapes: what the estimate reads of the spec. */
const BENCH_SHAPES: Record<BenchShape, { nLayers: number; dModel: number; dMlp: number; nHeads: number; kvHeads: number; vocab: number; biases: boolean }> = {
  'gpt2-small': { nLayers: 12, dModel: 768, dMlp: 3072, nHeads: 12, kvHeads: 12, vocab: 50257, biases: true },
  'qwen2.5-0.5b': { nLayers: 24, dModel: 896, dMlp: 4864, nHeads: 14, kvHeads: 2, vocab: 151936, biases: true },
  'llama-3.2-1b': { nLayers: 16, dModel: 2048, dMlp: 8192, nHeads: 32, kvHeads: 8, vocab: 128256, biases: false },
};

/** The weight index of a benchmark shape as its safetensors header lists it (names, shapes, dtypes; no data). */
function benchWeights(shape: BenchShape): Map<string, TensorEntry> {
  const s = BENCH_SHAPES[shape];
  const entries: Array<[string, number[]]> = [];
  const d = s.dModel;
  if (shape === 'gpt2-small') {
    entries.push(['wte.weight', [s.vocab, d]], ['wpe.weight', [1024, d]], ['ln_f.weight', [d]], ['ln_f.bias', [d]]);
    for (let l = 0; l < s.nLayers; l++) {
      for (const [name, dims] of [
        ['ln_1.weight', [d]],
        ['ln_1.bias', [d]],
        ['attn.c_attn.weight', [d, 3 * d]],
        ['attn.c_attn.bias', [3 * d]],
        ['attn.c_proj.weight', [d, d]],
        ['attn.c_proj.bias', [d]],
        ['ln_2.weight', [d]],
        ['ln_2.bias', [d]],
        ['mlp.c_fc.weight', [d, s.dMlp]],
        ['mlp.c_fc.bias', [s.dMlp]],
        ['mlp.c_proj.weight', [s.dMlp, d]],
        ['mlp.c_proj.bias', [d]],
      ] as Array<[string, number[]]>)
        entries.push([`h.${l}.${name}`, dims]);
    }
  } else {
    const kv = (d / s.nHeads) * s.kvHeads;
    entries.push(['model.embed_tokens.weight', [s.vocab, d]], ['model.norm.weight', [d]]);
    for (let l = 0; l < s.nLayers; l++) {
      const layer: Array<[string, number[]]> = [
        ['input_layernorm.weight', [d]],
        ['post_attention_layernorm.weight', [d]],
        ['self_attn.q_proj.weight', [d, d]],
        ['self_attn.k_proj.weight', [kv, d]],
        ['self_attn.v_proj.weight', [kv, d]],
        ['self_attn.o_proj.weight', [d, d]],
        ['mlp.gate_proj.weight', [s.dMlp, d]],
        ['mlp.up_proj.weight', [s.dMlp, d]],
        ['mlp.down_proj.weight', [d, s.dMlp]],
      ];
      if (s.biases) layer.push(['self_attn.q_proj.bias', [d]], ['self_attn.k_proj.bias', [kv]], ['self_attn.v_proj.bias', [kv]]);
      for (const [name, dims] of layer) entries.push([`model.layers.${l}.${name}`, dims]);
    }
  }
  const dtype = shape === 'gpt2-small' ? 'F32' : 'BF16';
  const size = dtype === 'F32' ? 4 : 2;
  return new Map(
    entries.map(([name, shape]) => [name, { name, dtype, shape, file: 'model.safetensors', offset: 0, length: size * shape.reduce((a, b) => a * b, 1) }]),
  );
}

/**
 * Peak resident memory (VmHWM of the whole process, over the 1-example run that builds the session, a warm-up and a
 * timed run) of the engine's attribution pass on the benchmark matrix (docs/BENCHMARKS.md, "sessions and memory";
 * one pre-packed session, CPU, float32, no memory pattern), the numbers the estimate is checked against.
 */
const MEASURED_CELLS: Array<{ shape: BenchShape; batch: number; tokens: number; peak: number }> = [
  { shape: 'gpt2-small', batch: 1, tokens: 16, peak: 0.94e9 },
  { shape: 'gpt2-small', batch: 1, tokens: 128, peak: 1.08e9 },
  { shape: 'gpt2-small', batch: 1, tokens: 512, peak: 1.72e9 },
  { shape: 'gpt2-small', batch: 8, tokens: 16, peak: 1.1e9 },
  { shape: 'gpt2-small', batch: 8, tokens: 128, peak: 2.24e9 },
  { shape: 'gpt2-small', batch: 8, tokens: 512, peak: 7.44e9 },
  { shape: 'qwen2.5-0.5b', batch: 1, tokens: 16, peak: 3.76e9 },
  { shape: 'qwen2.5-0.5b', batch: 1, tokens: 128, peak: 4.2e9 },
  { shape: 'qwen2.5-0.5b', batch: 1, tokens: 512, peak: 5.79e9 },
  { shape: 'qwen2.5-0.5b', batch: 8, tokens: 16, peak: 4.15e9 },
  { shape: 'qwen2.5-0.5b', batch: 8, tokens: 128, peak: 8.09e9 },
  { shape: 'llama-3.2-1b', batch: 1, tokens: 16, peak: 9.23e9 },
  { shape: 'llama-3.2-1b', batch: 1, tokens: 128, peak: 9.76e9 },
  { shape: 'llama-3.2-1b', batch: 8, tokens: 16, peak: 9.77e9 },
  // Measured by npm run bench -- --matrix (warm-up and 1–2 timed runs).
  { shape: 'llama-3.2-1b', batch: 1, tokens: 512, peak: 12.49e9 },
  { shape: 'llama-3.2-1b', batch: 8, tokens: 128, peak: 14.63e9 },
];

/**
 * The same matrix after the corrupted pass started at the prompts' first difference (docs/BENCHMARKS.md, "shared
 * prefix"): the matrix's prompts differ in the middle, after tokens/2 shared tokens.
 */
const MEASURED_SHARED_PREFIX_CELLS: Array<{ shape: BenchShape; batch: number; tokens: number; peak: number }> = [
  { shape: 'gpt2-small', batch: 1, tokens: 16, peak: 0.9e9 },
  { shape: 'gpt2-small', batch: 1, tokens: 128, peak: 0.95e9 },
  { shape: 'gpt2-small', batch: 1, tokens: 512, peak: 1.24e9 },
  { shape: 'gpt2-small', batch: 8, tokens: 16, peak: 0.94e9 },
  { shape: 'gpt2-small', batch: 8, tokens: 128, peak: 1.41e9 },
  { shape: 'gpt2-small', batch: 8, tokens: 512, peak: 4.18e9 },
  { shape: 'qwen2.5-0.5b', batch: 1, tokens: 16, peak: 3.24e9 },
  { shape: 'qwen2.5-0.5b', batch: 1, tokens: 128, peak: 3.4e9 },
  { shape: 'qwen2.5-0.5b', batch: 1, tokens: 512, peak: 4.26e9 },
  { shape: 'qwen2.5-0.5b', batch: 8, tokens: 16, peak: 3.41e9 },
  { shape: 'qwen2.5-0.5b', batch: 8, tokens: 128, peak: 4.94e9 },
  { shape: 'qwen2.5-0.5b', batch: 8, tokens: 512, peak: 10.86e9 },
  { shape: 'llama-3.2-1b', batch: 1, tokens: 16, peak: 8.22e9 },
  { shape: 'llama-3.2-1b', batch: 1, tokens: 128, peak: 8.46e9 },
  { shape: 'llama-3.2-1b', batch: 8, tokens: 16, peak: 8.38e9 },
  { shape: 'llama-3.2-1b', batch: 1, tokens: 512, peak: 9.52e9 },
  { shape: 'llama-3.2-1b', batch: 8, tokens: 128, peak: 10.33e9 },
];

function defineTests(): void {
  const root = mkdtempSync(join(tmpdir(), 'atp-memory-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  const GB = 1e9;

  /** Runs `run` in a child process of this file (measureInChild) and returns its peak RSS growth in bytes. */
  const measureGrowth = (run: MeasureParams, timeoutSeconds: number): number => {
    const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', __filename], {
      env: { ...process.env, ATP_MEMORY_CHILD: JSON.stringify(run), ATP_CACHE_DIR: join(root, 'graphs') },
      encoding: 'utf8',
      timeout: timeoutSeconds * 1000,
    });
    assert.equal(child.status, 0, child.stderr);
    return (JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { growth: number }).growth;
  };
  const estimate = (overrides: Partial<MemoryEstimate> = {}): MemoryEstimate => ({
    parameters: 494e6,
    storedBytes: 0.99 * GB,
    storedDtype: 'BF16',
    weightBytes: 3.9 * GB,
    sessions: 1,
    sessionWeightBytes: 2.9 * GB,
    activationBytes: 0.936 * GB,
    overheadBytes: 0.064 * GB,
    processBytes: 0,
    totalBytes: 4.9 * GB,
    batchSize: 8,
    seqLen: 128,
    ...overrides,
  });
  const linux = (free: number, total = 16 * GB): SystemMemory => ({ free, total, platform: 'linux' });

  test('the estimate: float32 weights plus pre-packed matrices (embedding tables as stored, plus the stored half-precision bytes being cast), activations by the formula', () => {
    const dims = { nLayers: 2, nHeads: 2, dModel: 16 };
    for (const dtype of ['F32', 'BF16'] as const) {
      const dir = join(root, `model-${dtype}`);
      writeRandomGpt2(dir, { ...dims, seed: 1, dtype, vocabSize: 1000, maxPositions: 64 });
      const spec = readModelSpec(dir);
      const weights = indexModelWeights(dir);
      const d = 16;
      const matrices = 2 * (d * 3 * d + d * d + d * 4 * d + 4 * d * d);
      // Embeddings, 13·d of layer norms and biases per layer, the matrices, the final layer norm.
      const parameters = 1000 * d + 64 * d + 2 * 13 * d + matrices + 2 * d;
      const run = { batchSize: 3, seqLen: 10 };
      const result = estimateRunMemory({ spec, weights }, run);
      assert.equal(result.parameters, parameters);
      assert.equal(result.storedDtype, dtype);
      assert.equal(result.storedBytes, parameters * (dtype === 'F32' ? 4 : 2));
      // The embedding tables stay as stored (their rows are cast after the gather); the rest is float32, its matrices
      // pre-packed once more, and the stored half-precision bytes are held while being cast.
      const tables = 1000 * d + 64 * d;
      const stored = dtype === 'F32' ? 4 : 2;
      assert.equal(result.weightBytes, stored * tables + 4 * (parameters - tables) + 4 * matrices + (dtype === 'F32' ? 0 : 2 * (parameters - tables)));
      // 4 bytes · L · B · T · (12·d + 6·d_mlp + 2·heads·T)
      assert.equal(result.activationBytes, 4 * 2 * 3 * 10 * (12 * 16 + 6 * 64 + 2 * 2 * 10));
      assert.equal(result.activationBytes, activationBytes(spec, run));
      assert.equal(result.totalBytes, result.weightBytes + result.activationBytes + OVERHEAD_BYTES + PROCESS_BYTES);
    }
    assert.throws(() => estimateRunMemory(loadModel(join(root, 'model-F32')), { batchSize: 0, seqLen: 4 }), InputError);
  });

  test("a run that does not fit is fitted: the largest batch that fits pre-packed, else without pre-packing; nothing fits: the smallest one's error", () => {
    const dir = join(root, 'model-fit');
    writeRandomGpt2(dir, { nLayers: 2, nHeads: 2, dModel: 16, seed: 1, dtype: 'BF16', vocabSize: 1000, maxPositions: 64 });
    const model = { spec: readModelSpec(dir), weights: indexModelWeights(dir) };
    const estimateFor = (batchSize: number, prepacking: boolean) => estimateRunMemory(model, { batchSize, seqLen: 48, prepacking });
    // What checkMemory asks of free memory for a run with nothing resident: all but the process itself.
    const need = (batchSize: number, prepacking: boolean) => estimateFor(batchSize, prepacking).totalBytes - PROCESS_BYTES;
    const fitWith = (free: number) =>
      fitRunToMemory({ batchSize: 8, prepacking: true }, estimateFor, (estimate) => checkMemory(estimate, 'cpu', { system: linux(free) }));
    assert.ok(need(1, false) < need(1, true) && need(5, true) < need(6, true), 'the fixture: more batch, more memory; pre-packing costs memory');

    const asked = fitWith(need(8, true));
    assert.deepEqual([asked.batchSize, asked.prepacking, asked.notes], [8, true, []], 'what fits runs as asked, without a note');

    const lowered = fitWith(need(5, true) + 1);
    assert.deepEqual([lowered.batchSize, lowered.prepacking], [5, true]);
    assert.equal(lowered.estimate.batchSize, 5);
    assert.match(lowered.notes[0], /^memory: batch size 8 does not fit \(it needs about .+, .+ free\); running batches of 5\. The numbers are the same/);

    // Between batch 1 unpacked and batch 1 pre-packed: the largest unpacked batch.
    const free = need(1, true) - 1;
    let largest = 0;
    for (let batch = 1; batch <= 8; batch++) if (need(batch, false) <= free) largest = batch;
    assert.ok(largest >= 1);
    const unpacked = fitWith(free);
    assert.deepEqual([unpacked.batchSize, unpacked.prepacking], [largest, false]);
    assert.match(unpacked.notes[0], new RegExp(`running batches of ${largest} without pre-packed weights`));

    for (const batchSize of [0, -1, 1.5])
      assert.throws(
        () => fitRunToMemory({ batchSize, prepacking: true }, estimateFor, () => []),
        (error: unknown) => error instanceof InputError && /batch-size must be a positive integer/.test(error.message),
      );

    // A run asked without pre-packing is never given it.
    const noPack = fitRunToMemory({ batchSize: 8, prepacking: false }, estimateFor, (estimate) =>
      checkMemory(estimate, 'cpu', { system: linux(need(8, true)) }),
    );
    assert.deepEqual([noPack.batchSize, noPack.prepacking], [8, false]);

    assert.throws(
      () => fitWith(need(1, false) - 1),
      (error: unknown) =>
        error instanceof InputError && /for batch 1 × 48 tokens/.test(error.message) && /a smaller model, or a machine with more memory/.test(error.message),
    );
  });

  test('a run that does not fit on the CPU is an InputError with the numbers', () => {
    assert.throws(
      () => checkMemory(estimate(), 'cpu', { system: linux(3.1 * GB) }),
      (error: unknown) => {
        assert.ok(error instanceof InputError);
        assert.match(
          error.message,
          /^not enough memory: this run needs about 4\.9 GB, 3\.1 GB free \(weights 3\.9 GB, activations 936 MB for batch 8 × 128 tokens\)\./,
        );
        assert.match(error.message, /--batch-size 1 needs about 4\.1 GB/);
        return true;
      },
    );
    assert.throws(() => checkMemory(estimate(), 'auto', { system: linux(3.1 * GB) }), /needs about 4\.9 GB, 3\.1 GB free/);
    assert.throws(() => checkMemory(estimate(), 'cpu', { system: linux(8 * GB, 4 * GB) }), /needs about 4\.9 GB, 4\.0 GB in total/);
    assert.deepEqual(checkMemory(estimate(), 'cpu', { system: linux(5 * GB) }), []);
  });

  test('weights of a session the process already holds are not asked for again (they are counted as used, not free)', () => {
    // 4.9 GB in all, 3.9 GB of it weights: with 3.1 GB free a fresh load is refused, a warm session's run fits.
    assert.throws(() => checkMemory(estimate(), 'cpu', { system: linux(3.1 * GB) }), /needs about 4\.9 GB/);
    assert.deepEqual(checkMemory(estimate(), 'cpu', { system: linux(3.1 * GB), residentSessions: 1 }), []);
    // The rest must still fit: activations and overhead above what is free are refused, with their size.
    assert.throws(() => checkMemory(estimate(), 'cpu', { system: linux(0.5 * GB), residentSessions: 1 }), /needs about 1\.0 GB, 500 MB free/);
    // A run of two sessions (a check's activation-patching graph, say) of which the process holds one: the other's
    // copy and the cast of the stored bytes are still to come.
    const two = estimate({ sessions: 2, weightBytes: 2 * 2.9 * GB + 1 * GB, totalBytes: 7.8 * GB });
    assert.throws(() => checkMemory(two, 'cpu', { system: linux(4.5 * GB), residentSessions: 1 }), /needs about 4\.9 GB, 4\.5 GB free/);
    assert.deepEqual(checkMemory(two, 'cpu', { system: linux(5 * GB), residentSessions: 1 }), []);
    assert.deepEqual(checkMemory(two, 'cpu', { system: linux(1 * GB), residentSessions: 2 }), []);
  });

  test('macOS: only the total is a hard limit (its "free" leaves out reclaimable cache)', () => {
    const mac = (free: number): SystemMemory => ({ free, total: 8 * GB, platform: 'darwin' });
    const notes = checkMemory(estimate(), 'cpu', { system: mac(1 * GB) });
    assert.equal(notes.length, 1);
    assert.match(notes[0], /needs about 4\.9 GB and macOS reports 1\.0 GB free/);
    assert.throws(() => checkMemory(estimate({ totalBytes: 9 * GB }), 'cpu', { system: mac(1 * GB) }), /needs about 9\.0 GB, 8\.0 GB in total/);
  });

  test('GPUs: host memory is checked for the weights; device memory only when known, else a note says so', () => {
    const notes = checkMemory(estimate(), 'cuda', { system: linux(4.5 * GB) });
    assert.deepEqual(notes, ['GPU memory is not checked (onnxruntime-node cannot query it): this run needs about 4.9 GB on the cuda device']);
    assert.throws(() => checkMemory(estimate(), 'cuda', { system: linux(2 * GB) }), /needs about 4\.0 GB in host memory to load the weights, 2\.0 GB free/);
    assert.throws(
      () => checkMemory(estimate(), 'dml', { system: linux(8 * GB), deviceFreeBytes: 4 * GB }),
      /not enough GPU memory: this run needs about 4\.9 GB, 4\.0 GB free on the dml device/,
    );
    assert.deepEqual(checkMemory(estimate(), 'cuda', { system: linux(8 * GB), deviceFreeBytes: 6 * GB }), []);
  });

  test('the one-line description', () => {
    const line = describeMemoryEstimate(estimate(), 'cpu', linux(12.3 * GB));
    assert.equal(
      line,
      'memory: needs about 4.9 GB (weights 3.9 GB as float32 from BF16, activations 936 MB for batch 8 × 128 tokens); 12.3 GB free of 16.0 GB',
    );
    assert.match(describeMemoryEstimate(estimate(), 'cuda', linux(12.3 * GB)), /12\.3 GB host memory free; GPU memory is not queried$/);
    assert.equal(formatBytes(850e6), '850 MB');
    assert.equal(formatBytes(512), '1 kB');
  });

  test('the estimate bounds the peaks measured on the benchmark matrix, within a factor of 2 (docs/BENCHMARKS.md)', () => {
    const cells: Array<(typeof MEASURED_CELLS)[number] & { sharedPrefix?: number }> = [
      ...MEASURED_CELLS,
      ...MEASURED_SHARED_PREFIX_CELLS.map((cell) => ({ ...cell, sharedPrefix: cell.tokens / 2 })),
    ];
    for (const cell of cells) {
      const model = { spec: BENCH_SHAPES[cell.shape], weights: benchWeights(cell.shape) };
      const { sharedPrefix } = cell;
      const estimate = estimateRunMemory(model, { batchSize: cell.batch, seqLen: cell.tokens, sharedPrefix }).totalBytes;
      const label = `${cell.shape} ${cell.batch}×${cell.tokens}${sharedPrefix ? ` (${sharedPrefix} shared)` : ''}: estimated ${formatBytes(estimate)}, measured ${formatBytes(cell.peak)}`;
      assert.ok(estimate >= cell.peak, `${label}: the estimate errs low`);
      assert.ok(estimate <= 2 * cell.peak, `${label}: more than 2× the peak`);
    }
  });

  test(
    'the estimate bounds the measured peak memory growth of a real run, within a factor of 1.6, with and without a shared prefix',
    { skip: process.platform !== 'linux' && 'needs /proc/self/status' },
    (t) => {
      const dir = join(root, 'measured');
      // Activations dominate (about 340 MB of the 480 MB estimated): 4 layers, d_model 256, 16 examples × 128 tokens.
      writeRandomGpt2(dir, { nLayers: 4, nHeads: 4, dModel: 256, seed: 3, maxPositions: 128 });
      // Prompts that differ in their first token share nothing; in their last, all but one token (the corrupted pass
      // and the backward then cover one position: graphs.ts).
      for (const [differAt, sharedPrefix] of [
        ['first', 0],
        ['last', 127],
      ] as const) {
        const run = { dir, batchSize: 16, seqLen: 128, differAt };
        const growth = measureGrowth(run, 120);
        // The growth leaves out the process itself, resident before the run.
        const predicted = estimateRunMemory(loadModel(dir), { ...run, sharedPrefix }).totalBytes - PROCESS_BYTES;
        const label = `prompts differing in their ${differAt} token: peak RSS growth ${formatBytes(growth)}, estimated ${formatBytes(predicted)}`;
        t.diagnostic(`${label} (${(predicted / growth).toFixed(2)}×)`);
        assert.ok(growth <= predicted, `${label}: the estimate errs low`);
        assert.ok(predicted <= 1.6 * growth, `${label}: more than 1.6× the growth`);
      }
    },
  );

  test('what grows with the dataset: per-example values, tokens and examples, AtP* nodes when AtP* runs', () => {
    const gpt2 = { nLayers: 4, nHeads: 4, kvHeads: 4 };
    // Two examples of 30 and 34 clean tokens: 64 tokens × (4 layers × (4 heads + 3 hooks) + 2 token-score fields).
    const shape = datasetShape(gpt2, [30, 34], 64, false);
    assert.deepEqual(shape, { examples: 2, tokens: 128, values: 64 * (4 * 7 + 2) });
    // AtP* adds q and qLinear per query head and k, kLinear, v per key/value head (grouped-query: 2 of 8).
    const gqa = { nLayers: 2, nHeads: 8, kvHeads: 2 };
    assert.equal(datasetShape(gqa, [10], 10, true).values, 10 * (2 * (8 + 3 + 16 + 6) + 2));
    const { value, token, example, write } = RESULT_FACTORS;
    assert.equal(resultBytes(shape), shape.values * (value + write) + 128 * token + 2 * example);
    const model = { spec: { nLayers: 4, dModel: 128, dMlp: 512, nHeads: 4 }, weights: new Map() };
    const withData = estimateRunMemory(model, { batchSize: 8, seqLen: 34, dataset: shape });
    const without = estimateRunMemory(model, { batchSize: 8, seqLen: 34 });
    assert.equal(withData.totalBytes - without.totalBytes, resultBytes(shape));
    assert.match(describeMemoryEstimate(withData, 'cpu', linux(8 * GB)), /, results \d+ kB for 2 examples\)/);
  });

  test(
    'the estimate bounds the measured peak growth of a run over many short examples, within a factor of 2',
    { skip: process.platform !== 'linux' && 'needs /proc/self/status' },
    (t) => {
      const dir = join(root, 'many');
      // Results dominate: 16 heads on a small model, 2,500 examples of 24 tokens, AtP (no exact token passes).
      writeRandomGpt2(dir, { nLayers: 4, nHeads: 16, dModel: 64, seed: 5, maxPositions: 32 });
      const run = { dir, batchSize: 32, seqLen: 24, examples: 2500 };
      const growth = measureGrowth(run, 300);
      const model = loadModel(dir);
      const dataset = datasetShape(
        headCounts(model.spec),
        Array.from({ length: run.examples }, () => run.seqLen),
        run.examples * run.seqLen,
        false,
      );
      const full = estimateRunMemory(model, { ...run, dataset });
      // The growth leaves out the process itself, resident before the run.
      const estimate = { ...full, totalBytes: full.totalBytes - PROCESS_BYTES };
      t.diagnostic(
        `peak RSS growth ${formatBytes(growth)}, estimated ${formatBytes(estimate.totalBytes)} (results ${formatBytes(estimate.resultBytes!)}; ${(estimate.totalBytes / growth).toFixed(2)}×)`,
      );
      assert.ok(estimate.resultBytes! > estimate.totalBytes / 2, 'the results are most of the estimate: the test measures them');
      assert.ok(growth <= estimate.totalBytes, `measured ${formatBytes(growth)} > estimated ${formatBytes(estimate.totalBytes)}`);
      assert.ok(estimate.totalBytes <= 2 * growth, `estimated ${formatBytes(estimate.totalBytes)} > 2 × measured ${formatBytes(growth)}`);
    },
  );
}
