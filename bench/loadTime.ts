// Where a large model's load time goes (issue "Scale", docs/BENCHMARKS.md): graph build, graph write, session
// creation at each optimisation level with and without pre-packing (`levels`), and session creation from an ONNX
// Runtime-optimised float32 graph saved once with optimizedModelFilePath (`save`). The model is a Qwen2.5-0.5B-shaped
// random one (24 layers, d 896, GQA 14/2, vocab 151,936, BF16: 988 MB), written on first use (about a minute, 2.3 GB
// of memory). Dev-time only:
//   ATP_CACHE_DIR=/tmp/atp-load-cache node --import tsx bench/loadTime.ts levels|save [model folder]
import * as ort from 'onnxruntime-node';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { writeRandomLlamaFamily } from '../test/support/randomModels';
import { loadModel } from '../src/engine/model/load';
import { GraphBuilder } from '../src/engine/graph/builder';
import { GraphWeights } from '../src/engine/graph/weights';
import { weightLookup } from '../src/engine/model/load';
import { buildAttributionGraph } from '../src/engine/patching/graphs';
import { prepareGraphDir, writeGraphFile } from '../src/engine/process/runtime';

const mode = process.argv[2];
const modelDir = process.argv[3] ?? join(tmpdir(), 'atp-qwen2.5-0.5b-shaped');
const t = () => performance.now() / 1000;
const rss = () => `${(process.memoryUsage.rss() / 1e9).toFixed(2)} GB`;
let last = t();
const lap = (what: string) => {
  const now = t();
  console.log(`${what}: ${(now - last).toFixed(2)} s (rss ${rss()})`);
  last = now;
};
(async () => {
  if (!existsSync(join(modelDir, 'model.safetensors'))) {
    writeRandomLlamaFamily(modelDir, {
      modelType: 'qwen2',
      nLayers: 24,
      nHeads: 14,
      nKvHeads: 2,
      dModel: 896,
      dMlp: 4864,
      seed: 1,
      tied: true,
      dtype: 'BF16',
      maxPositions: 32768,
    });
    lap(`wrote the model to ${modelDir}`);
  }
  const model = loadModel(modelDir);
  lap('loadModel (config, tokenizer, weight index)');
  const graphDir = prepareGraphDir(model.weightFiles);
  const builder = new GraphBuilder('float32');
  const weights = new GraphWeights(builder, weightLookup(model), graphDir.locations);
  buildAttributionGraph(model.architecture, builder, weights);
  const bytes = builder.toBytes();
  lap(`graph build (${(bytes.length / 1e6).toFixed(1)} MB)`);
  const file = writeGraphFile(graphDir, bytes, 'attribution-float32');
  lap('graph write');
  const options = (
    level: 'disabled' | 'basic' | 'extended' | 'all',
    extra: Partial<ort.InferenceSession.SessionOptions> = {},
  ): ort.InferenceSession.SessionOptions => ({ executionProviders: ['cpu'], graphOptimizationLevel: level, logSeverityLevel: 3, ...extra });
  if (mode === 'levels') {
    // Alternated, twice: the machine is shared, so A/B in one process says more than runs minutes apart.
    const prepacking = { extra: { session: { disable_prepacking: '1' } } } as never;
    for (let round = 0; round < 2; round++) {
      for (const [name, level, extra] of [
        ['all', 'all', {}],
        ['all, no prepacking', 'all', prepacking],
        ['basic', 'basic', {}],
        ['disabled', 'disabled', {}],
      ] as const) {
        last = t();
        const s = await ort.InferenceSession.create(file, options(level, extra));
        lap(`session create, ${name}`);
        await s.release();
      }
    }
  } else if (mode === 'save') {
    const optimized = join(graphDir.dir, 'optimized.onnx');
    const s = await ort.InferenceSession.create(
      file,
      options('all', {
        optimizedModelFilePath: optimized,
        extra: {
          session: { optimized_model_external_initializers_file_name: 'optimized.bin', optimized_model_external_initializers_min_size_in_bytes: '1024' },
        },
      } as never),
    );
    lap('session create, all, saving the optimised graph');
    await s.release();
    console.log(
      'optimized',
      existsSync(optimized) ? statSync(optimized).size : 'missing',
      existsSync(join(graphDir.dir, 'optimized.bin')) ? statSync(join(graphDir.dir, 'optimized.bin')).size : 'no bin',
    );
    for (const level of ['disabled', 'basic', 'all'] as const) {
      const o = await ort.InferenceSession.create(optimized, options(level));
      lap(`session create from the optimised graph, ${level}`);
      await o.release();
    }
  }
})();
