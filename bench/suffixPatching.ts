// Exact patching of every head at the answer position: the suffix passes (suffixPatching.ts: a record pass, then
// each head's patch recomputing one position from its layer up) against the full clean + patched forward pass per
// head of the activation-patching graph (what exact patching ran before), and plain AtP, in one process so the
// ratios are measured alike. GPT-2-small-shaped random model, IOI-like prompts of 15 tokens. Dev-time only:
//   ATP_CACHE_DIR=/tmp/atp-suffix-bench node --import tsx bench/suffixPatching.ts [examples] [old batch sizes]
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { SHAPES } from './shapes';
import { loadModel, type LoadedModel } from '../src/engine/model/load';
import type { Dataset, Example } from '../src/lib/dataset/types';
import { runAttributionPatching } from '../src/engine/patching/run';
import { prepareExamples } from '../src/engine/patching/examples';
import type { RowPatch } from '../src/engine/patching/feeds';
import { activationPatchingBySuffix } from '../src/engine/patching/suffixPatching';
import { costExamples, patchingCosts } from '../src/engine/patching/patchCost';
import { fullForwardPatchedLds } from '../test/support/fullForwardPatching';

const NAMES = [' Mary', ' John', ' Tom', ' James', ' Anna', ' Sarah', ' David', ' Paul'];
const PLACES = [' store', ' park', ' shops', ' school'];

/** "When A and B went to the P, B gave a cold drink to" → A; corrupted: the second B becomes A. 15 GPT-2 tokens, checked. */
function ioiPrompts(model: LoadedModel, n: number): Dataset {
  const examples: Example[] = [];
  for (let i = 0; i < n; i++) {
    const a = NAMES[i % NAMES.length];
    const b = NAMES[(i + 3) % NAMES.length];
    const place = PLACES[i % PLACES.length];
    const prompt = (second: string) => `When${a} and${b} went to the${place},${second} gave a cold drink to`;
    const example: Example = { clean: prompt(b), corrupted: prompt(a), correct: a, incorrect: b, line: i + 1 };
    for (const text of [example.clean, example.corrupted]) {
      const length = model.tokenizer.encode(text).length;
      if (length !== 15) throw new Error(`"${text}" is ${length} tokens, not 15`);
    }
    examples.push(example);
  }
  return { file: 'ioi-bench.jsonl', examples };
}

async function seconds(what: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await what();
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 4);
  const oldBatches = (process.argv[3] ?? '64').split(',').map(Number);
  const shape = SHAPES.find((s) => s.name === 'gpt2-small')!;
  const dir = join(tmpdir(), 'atp-bench-gpt2-small');
  if (!existsSync(join(dir, 'config.json'))) {
    mkdirSync(dir, { recursive: true });
    shape.write(dir);
  }
  const model = loadModel(dir);
  const dataset = ioiPrompts(model, n);
  const prepared = prepareExamples(model, dataset, []);
  const options = { device: 'cpu' as const, batchSize: 8, precision: 'float32' as const };
  const { nLayers, nHeads } = model.spec;
  const heads = (e: number): RowPatch[][] =>
    Array.from({ length: nLayers * nHeads }, (_, i) => [{ hook: 'z', layer: Math.floor(i / nHeads), pos: prepared[e].tokens.length - 1, head: i % nHeads }]);

  // Warm-up: every session built, one run each.
  const one = { ...dataset, examples: dataset.examples.slice(0, 1) };
  await runAttributionPatching(model, one, { ...options, method: 'atp', exactTokens: false });
  await activationPatchingBySuffix(model, one, { ...options, components: 'heads-at-answer' });
  await fullForwardPatchedLds(model, prepared.slice(0, 1), (e) => heads(e).slice(0, 8), options);

  // Alternated, best of each: on a shared machine the load changes between runs.
  let atp = Infinity;
  let suffix = Infinity;
  for (let round = 0; round < 3; round++) {
    atp = Math.min(atp, await seconds(() => runAttributionPatching(model, dataset, { ...options, method: 'atp', exactTokens: false })));
    suffix = Math.min(suffix, await seconds(() => activationPatchingBySuffix(model, dataset, { ...options, components: 'heads-at-answer' })));
  }
  const full: Array<[number, number]> = [];
  for (const batchSize of oldBatches) full.push([batchSize, await seconds(() => fullForwardPatchedLds(model, prepared, heads, { ...options, batchSize }))]);
  const oldBest = Math.min(...full.map(([, s]) => s));
  const costs = patchingCosts(model.spec, costExamples(prepared));
  const fullCost = 2 * n * (1 + nLayers * nHeads) * 15 * nLayers;

  console.log(`${shape.description}; ${n} IOI-like prompts of 15 tokens; float32, CPU`);
  console.log(`plain AtP (attribution graph, batch 8, no token passes): ${atp.toFixed(3)} s (best of 3)`);
  console.log(`exact heads at the answer, suffix passes: ${suffix.toFixed(3)} s (best of 3)`);
  for (const [batchSize, s] of full) console.log(`exact heads at the answer, full forward per head (batch ${batchSize}): ${s.toFixed(3)} s`);
  console.log(`measured: suffix / AtP ${(suffix / atp).toFixed(2)}; full / suffix ${(oldBest / suffix).toFixed(1)}; full / AtP ${(oldBest / atp).toFixed(1)}`);
  console.log(
    `cost model (position-layer evaluations): AtP ${costs.atp} (whole prompt ${costs.atpWholePrompt}); exact heads ${costs.heads.total} ` +
      `(record ${costs.heads.record} + patches ${costs.heads.patches}); full forward per head ${fullCost}`,
  );
  console.log(
    `predicted: suffix / AtP ${(costs.heads.total / costs.atp).toFixed(2)}; full / suffix ${(fullCost / costs.heads.total).toFixed(1)}; full / AtP ${(fullCost / costs.atp).toFixed(1)}`,
  );
}

void main();
