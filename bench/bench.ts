// `npm run bench`: attribution patching on a GPT-2-small-shaped model (124M parameters, seeded random
// weights, F32) over the seed notebook's 8 IOI prompts, against a PyTorch baseline doing the same work in
// the same script, on the same machine and threads. Prints times, the ratio, and how close each comes to the
// FLOP limit at the machine's measured matmul rate. Numbers, not assertions: the machines are shared and noisy.
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/engine/graph/builder';
import { loadModel } from '../src/engine/model/load';
import { readDataset } from '../src/lib/dataset/jsonl';
import { runAttributionPatching } from '../src/engine/patching/run';
import { releaseSessions } from '../src/engine/process/runtime';
import { writeRandomGpt2 } from '../test/support/randomGpt2';
import { runMatrix } from './matrix';

const root = resolve(__dirname, '..');
const repeats = Number(process.env.BENCH_REPEATS ?? 5);
const threads = cpus().length;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** FLOPs of one attribution-patching run: 2 forwards + 1 backward to activations, logits at answer positions only. */
function flopLimit(layers: number, d: number, vocab: number, batch: number, seq: number): number {
  const tokens = batch * seq;
  const linearPerPass = 2 * tokens * layers * 12 * d * d; // q,k,v,o (4d²) + MLP (8d²), 2 FLOPs per multiply-add
  const attentionPerPass = 2 * 2 * tokens * seq * d * layers; // QKᵀ and PV
  const unembedding = 2 * batch * d * vocab;
  const forward = linearPerPass + attentionPerPass + unembedding;
  // Gradient w.r.t. inputs only: one matmul per linear layer, two per attention product.
  const backward = linearPerPass + 2 * attentionPerPass + unembedding;
  return 2 * forward + backward;
}

/** ONNX Runtime's own float32 matmul rate on this machine (1024², best of 5), GFLOP/s. */
async function ortMatmulGflops(): Promise<number> {
  const b = new GraphBuilder('float32');
  const x = b.input('x', 'float32', [1024, 1024]);
  b.output(b.node('MatMul', [x, x], {}, { dtype: 'float32', shape: [1024, 1024] }), 'y');
  const session = await ort.InferenceSession.create(b.toBytes());
  const data = new ort.Tensor(
    'float32',
    Float32Array.from({ length: 1024 * 1024 }, (_, i) => ((i * 7919) % 1000) / 1000),
    [1024, 1024],
  );
  await session.run({ x: data });
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await session.run({ x: data });
    times.push((performance.now() - t) / 1000);
  }
  await session.release();
  return (2 * 1024 ** 3) / Math.min(...times) / 1e9;
}

async function main(): Promise<void> {
  // `npm run bench -- --matrix …`: shapes × batches × prompt lengths, time and memory (bench/matrix.ts).
  if (process.argv.includes('--matrix')) return runMatrix(process.argv.slice(2));
  const modelDir = join(root, '.atp-cache', 'bench-gpt2-small-random');
  if (!existsSync(join(modelDir, 'config.json'))) {
    process.stderr.write(`writing a GPT-2-small-shaped random model to ${modelDir} (once)\n`);
    writeRandomGpt2(modelDir, { nLayers: 12, nHeads: 12, dModel: 768, seed: 124, weightStd: 0.02 });
  }
  const model = loadModel(modelDir);
  const dataset = readDataset(join(root, 'examples', 'ioi.jsonl'));
  process.env.ATP_CACHE_DIR ??= join(root, '.atp-cache', 'graphs');

  // The attribution pass alone, as PyTorch does it (no exact token effects, no checks).
  const options = { device: 'cpu' as const, batchSize: dataset.examples.length, method: 'atp' as const, exactTokens: false };
  const first = await runAttributionPatching(model, dataset, options);
  const buildSeconds = first.timings!.loadSeconds;
  const runs: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const result = await runAttributionPatching(model, dataset, options);
    runs.push(result.timings!.runSeconds);
  }
  const ours = median(runs);
  // What a run in the editor does by default (method auto: AtP* on these short prompts, plus the exact effect of each
  // changed token), against the attribution pass alone, in this process.
  const editorDefault = { device: 'cpu' as const, batchSize: dataset.examples.length, method: 'auto' as const };
  const warm = await runAttributionPatching(model, dataset, editorDefault);
  const defaultRuns: number[] = [];
  for (let i = 0; i < repeats; i++) defaultRuns.push((await runAttributionPatching(model, dataset, editorDefault)).timings!.runSeconds);
  const defaults = median(defaultRuns);
  await releaseSessions();

  const requestFile = join(root, '.atp-cache', 'bench-request.json');
  mkdirSync(join(root, '.atp-cache'), { recursive: true });
  writeFileSync(
    requestFile,
    JSON.stringify({
      examples: first.examples.map((e) => ({ cleanIds: e.cleanIds, corruptedIds: e.corruptedIds, correctId: e.correctId, incorrectId: e.incorrectId })),
    }),
  );
  const torch = spawnSync(
    '/usr/bin/python3',
    [join(root, 'bench', 'torch_baseline.py'), '--model-dir', modelDir, '--request', requestFile, '--repeats', String(repeats), '--threads', String(threads)],
    {
      encoding: 'utf8',
    },
  );
  if (torch.status !== 0) throw new Error(`PyTorch baseline failed:\n${torch.stderr}`);
  if (torch.stderr.trim()) process.stderr.write(torch.stderr);
  const baseline = JSON.parse(torch.stdout) as { perRunSeconds: number; torchVersion: string; openblasPthread: boolean; matmulGflops: number };

  const seq = Math.max(...first.examples.map((e) => e.cleanIds.length));
  const flops = flopLimit(model.spec.nLayers, model.spec.dModel, model.spec.vocabSize, dataset.examples.length, seq);
  const ortGflops = await ortMatmulGflops();
  const rate = Math.max(baseline.matmulGflops, ortGflops) * 1e9;
  const limit = flops / rate;
  const lines = [
    `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${threads} threads, node ${process.version}, onnxruntime-node ${ort.env.versions.common}`,
    `model: GPT-2-small shape (12 layers, d 768, 12 heads, vocab 50257), random F32 weights; data: 8 IOI prompts, ${seq} tokens`,
    `matmul rate (1024², float32): PyTorch (${baseline.openblasPthread ? 'OpenBLAS pthread' : 'NOT OpenBLAS: baseline too slow to compare'}) ${baseline.matmulGflops.toFixed(0)} GFLOP/s, ONNX Runtime ${ortGflops.toFixed(0)} GFLOP/s`,
    `FLOP limit: ${(flops / 1e9).toFixed(1)} GFLOP per run → ${limit.toFixed(3)} s at the faster rate`,
    `engine: session build ${buildSeconds.toFixed(2)} s; per run ${ours.toFixed(3)} s (median of ${repeats}); ${((limit / ours) * 100).toFixed(0)}% of the FLOP limit`,
    `PyTorch ${baseline.torchVersion}: per run ${baseline.perRunSeconds.toFixed(3)} s (median of ${repeats}); ${((limit / baseline.perRunSeconds) * 100).toFixed(0)}% of the FLOP limit`,
    `ratio engine / PyTorch: ${(ours / baseline.perRunSeconds).toFixed(2)}× (goal ≤ 0.70×)`,
    `editor default (method auto → ${warm.run!.method}, exact token effects): per run ${defaults.toFixed(3)} s (median of ${repeats}), ${(defaults / ours).toFixed(2)}× the attribution pass alone`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
