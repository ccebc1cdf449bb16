// Byte identity of the serialised graphs across a refactor: every graph kind of the registry (sessions.ts GRAPHS) for
// a random GPT-2 and a random Qwen2 model in float32, float64 and float16 (the kinds that build in it), written as
// bytes exactly as sessionFor writes them (the same builder, weights and external-data locations), and hashed.
//   npx tsx scripts/graph-hashes.ts > before.json       (on the commit before)
//   npx tsx scripts/graph-hashes.ts --compare before.json   (after: exits 1 naming each graph that changed)
// A graph kind whose builder refuses a precision is recorded as refused (with its message), which must not change either.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GraphBuilder } from '../src/engine/graph/builder';
import { GraphWeights } from '../src/engine/graph/weights';
import { type LoadedModel, loadModel, weightLookup } from '../src/engine/model/load';
import { GRAPHS, type GraphKind } from '../src/engine/patching/sessions';
import type { Precision } from '../src/shared/result';
import { writeRandomGpt2 } from '../test/support/randomGpt2';
import { writeRandomLlamaFamily } from '../test/support/randomModels';

const PRECISIONS: readonly Precision[] = ['float32', 'float64', 'float16'];

function hashes(model: LoadedModel, name: string, out: Record<string, string>): void {
  // prepareGraphDir names the weight files so when it can hard-link them (the usual case, and the tests').
  const locations = new Map(model.weightFiles.map((file, i) => [file, `weights-${i}.safetensors`]));
  for (const kind of Object.keys(GRAPHS) as GraphKind[]) {
    for (const precision of PRECISIONS) {
      const key = `${name} ${kind} ${precision}`;
      try {
        const builder = new GraphBuilder(precision);
        const weights = new GraphWeights(builder, weightLookup(model), locations);
        GRAPHS[kind].build(model.architecture, builder, weights);
        out[key] = createHash('sha256').update(builder.toBytes()).digest('hex');
      } catch (error) {
        out[key] = `refused: ${(error as Error).message}`;
      }
    }
  }
}

const { values } = parseArgs({ options: { compare: { type: 'string' } } });
const root = mkdtempSync(join(tmpdir(), 'atp-graph-hashes-'));
try {
  writeRandomGpt2(join(root, 'gpt2'), { nLayers: 2, nHeads: 2, dModel: 16, seed: 3 });
  writeRandomLlamaFamily(join(root, 'qwen2'), { modelType: 'qwen2', nLayers: 2, nHeads: 4, nKvHeads: 2, dModel: 32, dMlp: 64, seed: 6, tied: true });
  const out: Record<string, string> = {};
  hashes(loadModel(join(root, 'gpt2')), 'gpt2', out);
  hashes(loadModel(join(root, 'qwen2')), 'qwen2', out);
  if (values.compare === undefined) {
    process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
  } else {
    const before = JSON.parse(readFileSync(values.compare, 'utf8')) as Record<string, string>;
    const keys = [...new Set([...Object.keys(before), ...Object.keys(out)])].sort();
    const changed = keys.filter((key) => before[key] !== out[key]);
    const built = keys.filter((key) => !out[key]?.startsWith('refused'));
    for (const key of changed) console.log(`changed: ${key}\n  before ${before[key]}\n  after  ${out[key]}`);
    console.log(`${keys.length - changed.length} of ${keys.length} identical (${built.length} graphs built, ${keys.length - built.length} refused)`);
    if (changed.length > 0) process.exitCode = 1;
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
