// The run's Result: its examples, summaries and records, from what the passes computed.
import type { LoadedModel } from '../model/load';
import type { Dataset } from '../../lib/dataset/jsonl';
import {
  type AtpStarSummary,
  type ExampleAttributions,
  type ExampleResult,
  type MapMethods,
  type Method,
  type NodeAttributions,
  RESULT_SCHEMA,
  type Result,
  sumNodeMaps,
  summarizeHeads,
  summarizePositions,
  type TokenScores,
} from '../../shared/result';
import type { AtpStarExample, AtpStarResult } from './atpStar';
import type { AtpEstimates } from './atp';
import type { PreparedExample } from './examples';
import type { RunPlan } from './methods';
import type { PatchingOptions } from './options';
import { computeProvenance } from '../../lib/files/provenance';

/** The Result's description of the model. */
export function modelRecord(model: LoadedModel): Result['model'] {
  const { spec } = model;
  return {
    source: model.source,
    architecture: spec.architecture,
    modelType: spec.modelType,
    layers: spec.nLayers,
    heads: spec.nHeads,
    dModel: spec.dModel,
    dHead: spec.dHead,
    dtype: model.storedDtype,
  };
}

const nodeAttributions = (e: AtpStarExample): NodeAttributions => ({ q: e.q, qLinear: e.qLinear, k: e.k, kLinear: e.kLinear, v: e.v });

function summarizeAtpStar(star: AtpStarResult, sameLength: boolean): AtpStarSummary {
  const { nLayers, nHeads, nKvHeads, examples } = star;
  const summary: AtpStarSummary = {
    kvHeads: nKvHeads,
    maps: sumNodeMaps(examples, nLayers, nHeads, nKvHeads),
  };
  if (examples.every((e) => e.gradDrop)) {
    const heads = Array.from({ length: nLayers }, () => new Array<number>(nHeads).fill(0));
    for (const e of examples) e.gradDrop!.z.forEach((layer, l) => layer[layer.length - 1].forEach((v, h) => (heads[l][h] += v)));
    let positions: number[][] | null = null;
    if (sameLength) {
      const length = examples[0].tokens.length;
      positions = Array.from({ length: nLayers }, () => new Array<number>(length).fill(0));
      for (const e of examples) e.gradDrop!.residPre.forEach((row, l) => row.forEach((v, p) => (positions![l][p] += v)));
    }
    summary.gradDrop = { heads, positions };
  }
  return summary;
}

/** Each example's record: its prompts and tokens, its two logit differences and what the passes computed for it. */
export function exampleResults(
  prepared: readonly PreparedExample[],
  values: {
    cleanLds: readonly number[];
    corruptedLds: readonly number[];
    tokenScores: readonly TokenScores[];
    attributions: readonly ExampleAttributions[];
    star: AtpStarResult | undefined;
  },
): ExampleResult[] {
  const { cleanLds, corruptedLds, tokenScores, attributions, star } = values;
  return prepared.map((p, i) => ({
    line: p.example.line,
    clean: p.example.clean,
    corrupted: p.example.corrupted,
    correct: p.example.correct,
    incorrect: p.example.incorrect,
    cleanIds: p.tokens.map((t) => t.id),
    corruptedIds: p.corruptedTokens.map((t) => t.id),
    correctId: p.correctId,
    incorrectId: p.incorrectId,
    tokens: p.tokens,
    corruptedTokens: p.corruptedTokens,
    cleanLogitDiff: cleanLds[i],
    corruptedLogitDiff: corruptedLds[i],
    tokenScores: tokenScores[i],
    attributions: attributions[i],
    atpStar: star ? nodeAttributions(star.examples[i]) : undefined,
  }));
}

/** The maps summed over the examples: heads, positions (prompts of one length) and AtP*'s nodes. */
export function summarize(examples: ExampleResult[], star: AtpStarResult | undefined): Pick<Result, 'heads' | 'positions' | 'atpStar'> {
  const heads = summarizeHeads(examples);
  const positions = summarizePositions(examples);
  const atpStar = star ? summarizeAtpStar(star, positions !== null) : undefined;
  return { heads, positions, atpStar };
}

/** The Result of a run: what it computed, and its records (model, device, runtime, provenance, plan, timings). */
export async function assembleResult(
  model: LoadedModel,
  dataset: Dataset,
  plan: RunPlan,
  options: PatchingOptions,
  run: {
    estimates: AtpEstimates | AtpStarResult;
    metric: { cleanLogitDiff: number; corruptedLogitDiff: number };
    examples: ExampleResult[];
    maps: Pick<Result, 'heads' | 'positions' | 'atpStar'>;
    checks: Result['checks'];
    mapMethods: MapMethods;
    warnings: string[];
    times: { started: number; loaded: number };
  },
): Promise<Result> {
  const { estimates, examples, checks, warnings } = run;
  const { heads, positions, atpStar } = run.maps;
  const { cleanLogitDiff, corruptedLogitDiff } = run.metric;
  const { started, loaded } = run.times;
  const precision = options.precision ?? 'float32';
  const finished = performance.now();
  const method: Method = plan.method;
  const arrays: Method = method === 'atpstar' ? 'atp' : method;
  return {
    schema: RESULT_SCHEMA,
    createdAt: new Date().toISOString(),
    dataset: { file: dataset.file, examples: examples.length },
    model: modelRecord(model),
    device: estimates.device,
    runtime: {
      ...estimates.runtime,
      precision,
      ...('lossScale' in estimates && estimates.lossScale ? { lossScale: estimates.lossScale } : {}),
      batchSize: options.batchSize,
    },
    provenance: await computeProvenance(model, { method, device: estimates.device, seed: options.checkSeed ?? 0 }),
    metric: { cleanLogitDiff, corruptedLogitDiff, name: 'normalized-logit-diff' },
    run: { requested: plan.requested, method, passes: plan.passes.total, reason: plan.reason },
    // AtP*'s QK fix concerns query and key nodes (atpStar); for the hook points it is AtP itself.
    methods: { attributions: arrays, heads: run.mapMethods.heads.method, positions: arrays, tokenScores: plan.tokenEffects, maps: run.mapMethods },
    checks,
    heads,
    positions,
    atpStar,
    examples,
    warnings,
    timings: { loadSeconds: (loaded - started) / 1000, runSeconds: (finished - loaded) / 1000 },
  };
}
