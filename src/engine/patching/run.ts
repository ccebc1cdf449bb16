import { HOOK_KINDS, type HookKind } from '../architectures/types';
import { byPositionField } from '../../shared/hooks';
import type { LoadedModel } from '../model/load';
import type { Dataset } from '../dataset/jsonl';
import { ATTRIBUTION_OUTPUTS, GRADIENT_PEAK_OUTPUT, LOSS_SCALE_INPUT } from './graphs';
import * as ort from 'onnxruntime-node';
import { progressTracker } from '../../shared/progress';
import { checkMemory, datasetShape, describeMemoryEstimate, estimateRunMemory, fitRunToMemory, headCounts } from '../model/memory';
import {
  type AtpStarSummary,
  type ExampleAttributions,
  type ExampleResult,
  type Method,
  type NodeAttributions,
  RESULT_SCHEMA,
  type Result,
  type RuntimeRecord,
  sumNodeMaps,
  summarizeHeads,
  summarizePositions,
  type TokenScores,
} from '../../shared/result';
import { type AtpStarExample, type AtpStarResult, runAtpStar } from './atpStar';
import {
  asNumbers,
  batchFeeds,
  longestPrompt,
  checkCancelled,
  differingPositions,
  makeBatches,
  mean,
  runScale,
  type PreparedExample,
  prepareExamples,
  type RunOptions,
  sessionFor,
  releaseOtherModels,
  sessionIsWarm,
  sharedPrefixTokens,
  type GraphKind,
} from './runSupport';
import type { SessionHandle } from '../process/runtime';
import { checkCandidates, chooseChecks, patchComponents, patchTokens, summarizeChecks, type TokenPassGraph, tokenPassGraph } from './exact';
import { InputError } from '../../shared/errors';
import { describePlan, type MethodRequest, planRun, type RunPlan } from './methods';
import { computeProvenance } from '../files/provenance';
import { activationPatchingBySuffix, EXACT_PATCHING_GRAPHS } from './suffixPatching';

// Shared run pieces live in runSupport.ts; these names are what callers have always imported from here.
export { CancelledError, type Precision, type PreparedExample, prepareExamples, type RunOptions } from './runSupport';

export interface PatchingOptions extends RunOptions {
  /** 'atp' (the default here), 'exact' (activation patching of every component) or 'auto' (see methods.ts). */
  method?: MethodRequest;
  /** Check the k components with the largest |attribution| and k random others against exact patching (0: none). */
  check?: number;
  /** Seed of the random picks among the checks. */
  checkSeed?: number;
  /** Where checks choose from: the head map only ('heads': a claim's agreement over every head), or both maps (default). */
  checkOver?: 'heads' | 'heads-and-positions';
  /** With AtP*: GradDrop magnitudes too (L more passes). */
  gradDrop?: boolean;
  /**
   * false: token scores are the AtP estimates of resid_pre at layer 0 (marked as estimates), without the extra
   * forward passes; for benchmarks that compare the attribution pass alone with another tool. Default true.
   */
  exactTokens?: boolean;
}

/**
 * One-shot runs (RunOptions.oneShot: the CLI) over at most this many prompt tokens (examples × their length) build
 * their sessions without pre-packing the weights: the build is faster and holds no second copy of the matrices
 * (Qwen2.5-0.5B: 1.6 GB), and the MatMuls of so few tokens lose less than that saves (1.2–1.4× slower without it,
 * docs/BENCHMARKS.md). Long-lived processes pre-pack: their sessions serve many runs.
 */
export const PREPACK_MIN_TOKENS = 256;

/**
 * Attribution patching over a dataset: per batch, one session run (clean forward, corrupted forward, backward to
 * the hooks, reductions in the graph); then normalisation by the dataset's baselines on the host.
 */
export async function runAttributionPatching(model: LoadedModel, dataset: Dataset, requested: PatchingOptions): Promise<Result> {
  const started = performance.now();
  const warnings: string[] = [];
  const prepared = prepareExamples(model, dataset, warnings);
  let runTokens = 0;
  for (const example of prepared) runTokens += example.tokens.length;
  // A short one-shot run (the CLI over a few prompts) builds its sessions without pre-packing: see PREPACK_MIN_TOKENS.
  const unpacked = requested.oneShot === true && runTokens <= PREPACK_MIN_TOKENS;
  const options: PatchingOptions = { ...requested, prepacking: requested.prepacking ?? !unpacked };
  const precision = options.precision ?? 'float32';
  const plan = planRun(
    model.spec,
    prepared,
    options.method ?? 'atp',
    options.check ?? 0,
    options.gradDrop ?? false,
    options.exactTokens ?? true,
    precision === 'float16',
  );
  // Checks choose components from the whole dataset's attributions, which a raw shard does not have.
  if (options.raw && plan.checks > 0) throw new InputError('checks cannot run on a raw shard: run them on the merged dataset instead');
  options.onProgress?.(describePlan(plan, prepared.length));
  // Say up front what the run needs, and refuse with the numbers rather than crash when it cannot fit.
  const datasetSize = datasetShape(
    headCounts(model.spec),
    prepared.map((p) => p.tokens.length),
    prepared.reduce((sum, p) => sum + p.corruptedTokens.length, 0),
    plan.method === 'atpstar',
  );
  // A long-lived process holding another model's sessions lets them go first: the memory check counts them as used.
  await releaseOtherModels(model);
  const runGraph = plan.method === 'atpstar' ? 'atp-star' : 'attribution';
  const tokenGraph = plan.tokenEffects === 'exact' && plan.method !== 'exact' ? tokenPassGraph(model, prepared, runGraph, options) : undefined;
  const sessions = runSessions(runGraph, plan, tokenGraph);
  // Only the attribution graph's corrupted pass starts after the prompts' shared prefix (AtP*, exact patching and checks run every position).
  const sharedPrefix = plan.method === 'atp' && plan.checks === 0 ? sharedPrefixTokens(prepared) : undefined;
  // A batch or pre-packing that does not fit is lowered (with a note) before anything is built; nothing fits: refused.
  const fit = fitRunToMemory(
    { batchSize: Math.min(options.batchSize, prepared.length), prepacking: options.prepacking !== false },
    (batchSize, prepacking) =>
      estimateRunMemory(model, { batchSize, seqLen: longestPrompt(prepared), sharedPrefix, dataset: datasetSize, sessions: sessions.length, prepacking }),
    (estimate, prepacking) =>
      checkMemory(estimate, options.device, { residentSessions: sessions.filter((kind) => sessionIsWarm(model, kind, { ...options, prepacking })).length }),
  );
  options.onProgress?.(describeMemoryEstimate(fit.estimate, options.device));
  warnings.push(...fit.notes);
  if (fit.batchSize < options.batchSize && fit.batchSize < prepared.length) options.batchSize = fit.batchSize;
  if (!fit.prepacking) options.prepacking = false;
  // Session creation (seconds for a large model) is the load time; AtP* creates its own inside its run.
  const handle = plan.method === 'atpstar' ? undefined : await sessionFor(model, 'attribution', options);
  const loaded = performance.now();
  const { nLayers, nHeads } = model.spec;
  const star = plan.method === 'atpstar' ? await runAtpStar(model, dataset, { ...options, gradDrop: plan.gradDrop, prepared }) : undefined;
  const estimates = star ?? (await runAtpBatches(handle!, model, prepared, options));
  warnings.push(...estimates.warnings);
  const cleanLds = estimates.examples.map((e) => e.cleanLogitDiff);
  const corruptedLds = estimates.examples.map((e) => e.corruptedLogitDiff);
  checkCancelled(options.signal);

  const cleanLogitDiff = mean(cleanLds);
  const corruptedLogitDiff = mean(corruptedLds);
  const scale = runScale(options, dataset, cleanLogitDiff, corruptedLogitDiff, prepared.length);
  // AtP* reports its attributions normalised already; the plain AtP batches leave that to here.
  // Scaled in place: the unscaled arrays are not needed again, and a large dataset would otherwise hold both.
  let attributions = star ? star.examples.map((e) => e.attributions) : estimates.examples.map((e) => scaleAttributionsInPlace(e.attributions, scale));
  if (plan.method === 'exact') {
    attributions = (await runActivationPatching(model, dataset, options)).examples;
  }
  const tokenScores = await computeTokenScores(model, prepared, plan, tokenGraph, attributions, { cleanLds, corruptedLds, scale }, options);
  const examples: ExampleResult[] = prepared.map((p, i) => ({
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
  const heads = summarizeHeads(examples);
  const positions = summarizePositions(examples);
  const atpStar = star ? summarizeAtpStar(star, positions !== null) : undefined;
  let checks: Result['checks'];
  if (plan.checks > 0) {
    const checkPositions = options.checkOver === 'heads' ? null : positions;
    const candidateSources: Array<'heads' | 'positions'> = checkPositions ? ['heads', 'positions'] : ['heads'];
    const seed = options.checkSeed ?? 0;
    const chosen = chooseChecks(checkCandidates(heads, checkPositions), plan.checks, seed);
    const exact = await patchComponents(model, prepared, chosen, options);
    checks = summarizeChecks(
      plan.checks,
      seed,
      candidateSources,
      chosen.map((c, i) => ({
        hook: c.hook,
        layer: c.layer,
        position: c.position,
        head: c.head,
        pick: c.pick,
        attribution: c.attribution,
        exact: exact[i] * scale,
      })),
    );
  }
  checkCancelled(options.signal);
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
    methods: { attributions: arrays, heads: arrays, positions: arrays, tokenScores: plan.tokenEffects },
    checks,
    heads,
    positions,
    atpStar,
    examples,
    warnings,
    timings: { loadSeconds: (loaded - started) / 1000, runSeconds: (finished - loaded) / 1000 },
  };
}

/**
 * The graph kinds whose sessions a run builds and holds at once, each with its own float32 copy of the weights: the
 * run's graph, the activation-patching graph for the exact sweep or checks, and the token passes' graph.
 */
function runSessions(runGraph: GraphKind, plan: RunPlan, tokenGraph: GraphKind | undefined): GraphKind[] {
  const kinds: GraphKind[] = [runGraph];
  if (plan.method === 'exact' || plan.checks > 0) kinds.push(...EXACT_PATCHING_GRAPHS);
  if (tokenGraph !== undefined && !kinds.includes(tokenGraph)) kinds.push(tokenGraph);
  return kinds;
}

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

/** The plain AtP pass over every batch: per example its two LDs and its attributions (not yet normalised). */
async function runAtpBatches(
  handle: SessionHandle,
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  options: PatchingOptions,
): Promise<{
  examples: Array<{ cleanLogitDiff: number; corruptedLogitDiff: number; attributions: ExampleAttributions }>;
  device: string;
  runtime: RuntimeRecord;
  warnings: string[];
  /** float16 only: the smallest and largest loss scale the batches ran with. */
  lossScale?: { min: number; max: number };
}> {
  const precision = options.precision ?? 'float32';
  const { nLayers, nHeads } = model.spec;
  const examples = new Array<{ cleanLogitDiff: number; corruptedLogitDiff: number; attributions: ExampleAttributions }>(prepared.length);
  const batches = makeBatches(prepared, options.batchSize);
  const step = progressTracker('AtP', 'batch', batches.length, options.onStep);
  const scaler = precision === 'float16' ? new LossScaler(options.lossScale ?? 'dynamic') : undefined;
  for (const [b, indices] of batches.entries()) {
    checkCancelled(options.signal);
    step(b);
    const rows = indices.map((i) => prepared[i]);
    const { feeds, seq } = batchFeeds(rows, precision);
    const out = scaler ? await scaler.run(handle, feeds, rows) : await handle.session.run(feeds);
    const clean = asNumbers(out[ATTRIBUTION_OUTPUTS.cleanLogitDiff]);
    const corrupted = asNumbers(out[ATTRIBUTION_OUTPUTS.corruptedLogitDiff]);
    const attributions = Object.fromEntries(HOOK_KINDS.map((kind) => [kind, out[ATTRIBUTION_OUTPUTS.attribution(kind)].data])) as Record<
      HookKind,
      Float32Array | Float64Array
    >;
    indices.forEach((exampleIndex, row) => {
      examples[exampleIndex] = {
        cleanLogitDiff: clean[row],
        corruptedLogitDiff: corrupted[row],
        attributions: unpackAttributions(attributions, row, seq, prepared[exampleIndex].tokens.length, nLayers, nHeads),
      };
    });
  }
  step(batches.length);
  return {
    examples,
    device: handle.device,
    runtime: handle.observer.info(),
    warnings: [...handle.notes, ...handle.observer.warnings()],
    ...(scaler ? { lossScale: scaler.range() } : {}),
  };
}

/**
 * float16 AtP's loss scaling. The backward is seeded with S (a power of two, so scaling and unscaling are exact)
 * instead of 1; the graph divides the attributions by S in float32 and reports the gradients' peak max|S·g| over
 * every hook. Per batch, dynamically: a peak or attribution that is not finite means the backward overflowed
 * float16 — the batch runs again with S/16, and S never again exceeds that (a ceiling); a peak below
 * RERUN_BELOW means the gradients used so little of float16's range that small ones lost bits or vanished
 * (float16 is subnormal below 6.1e-5 and zero below 6e-8) — the batch runs again with the S that puts the peak at
 * TARGET_PEAK. The next batch starts from the S that puts this batch's peak at TARGET_PEAK. A fixed S never
 * retries; overflow with it is an error. No inf or NaN ever reaches a Result: what cannot be fixed is an error.
 */
export class LossScaler {
  /** Where S puts the gradients' peak: 16× below float16's largest finite value (65504), room for the backward's intermediates. */
  static readonly TARGET_PEAK = 2 ** 12;
  static readonly RERUN_BELOW = 2 ** 4;
  static readonly INITIAL = 2 ** 12;
  static readonly SMALLEST = 2 ** -24;
  static readonly LARGEST = 2 ** 64;
  private static readonly ATTEMPTS = 12;
  private scale: number;
  private ceiling = LossScaler.LARGEST;
  private used: number[] = [];

  constructor(private readonly mode: 'dynamic' | number) {
    if (mode !== 'dynamic' && !(Number.isFinite(mode) && mode > 0)) throw new Error(`a fixed loss scale must be a positive number, got ${mode}`);
    this.scale = mode === 'dynamic' ? LossScaler.INITIAL : mode;
  }

  /** One batch through the float16 attribution graph, again with another S where the peak says so. */
  async run(handle: SessionHandle, feeds: Record<string, ort.Tensor>, rows: readonly PreparedExample[]): Promise<ort.InferenceSession.OnnxValueMapType> {
    for (let attempt = 0; attempt < LossScaler.ATTEMPTS; attempt++) {
      const out = await handle.session.run({ ...feeds, [LOSS_SCALE_INPUT]: new ort.Tensor('float32', Float32Array.of(this.scale), []) });
      checkForwardFinite(out, rows);
      const peak = (out[GRADIENT_PEAK_OUTPUT].data as Float32Array)[0];
      const finite = Number.isFinite(peak) && HOOK_KINDS.every((kind) => allFinite(out[ATTRIBUTION_OUTPUTS.attribution(kind)].data as Float32Array));
      if (this.mode !== 'dynamic') {
        if (!finite) throw overflowError(`the fixed loss scale ${this.mode}`);
        this.used.push(this.scale);
        return out;
      }
      if (!finite) {
        this.ceiling = this.scale / 16;
        this.scale = this.ceiling;
        if (this.scale < LossScaler.SMALLEST) throw overflowError(`every loss scale down to ${LossScaler.SMALLEST}`);
        continue;
      }
      const ideal = this.idealFor(peak);
      if (peak < LossScaler.RERUN_BELOW && ideal > this.scale) {
        this.scale = ideal;
        continue;
      }
      this.used.push(this.scale);
      this.scale = ideal;
      return out;
    }
    throw new Error(`float16 loss scaling did not settle in ${LossScaler.ATTEMPTS} runs of one batch (last scale ${this.scale})`);
  }

  /** The S that puts a peak measured at the current S at TARGET_PEAK (a power of two, within ceiling and range). */
  private idealFor(peak: number): number {
    // All gradients underflowed to 0: nothing to measure, so try far larger.
    const wanted = peak === 0 ? this.scale * 2 ** 16 : 2 ** Math.floor(Math.log2((LossScaler.TARGET_PEAK * this.scale) / peak));
    return Math.max(LossScaler.SMALLEST, Math.min(wanted, this.ceiling, LossScaler.LARGEST));
  }

  range(): { min: number; max: number } {
    return { min: Math.min(...this.used), max: Math.max(...this.used) };
  }
}

function allFinite(values: Float32Array): boolean {
  for (const v of values) if (!Number.isFinite(v)) return false;
  return true;
}

function overflowError(tried: string): InputError {
  return InputError.about(
    'precision',
    `float16: the gradients overflow float16's range (largest finite value 65504) with ${tried}, so its attributions would be infinite or NaN; use float32`,
  );
}

/** A forward pass that left float16's range gives infinite or NaN logit differences: an error, never a Result. */
function checkForwardFinite(out: ort.InferenceSession.OnnxValueMapType, rows: readonly PreparedExample[]): void {
  for (const name of [ATTRIBUTION_OUTPUTS.cleanLogitDiff, ATTRIBUTION_OUTPUTS.corruptedLogitDiff]) {
    const values = out[name].data as Float32Array;
    const row = values.findIndex((v) => !Number.isFinite(v));
    if (row >= 0) {
      const which = name === ATTRIBUTION_OUTPUTS.cleanLogitDiff ? 'clean' : 'corrupted';
      throw InputError.about(
        'precision',
        `float16: the ${which} forward pass of the example on line ${rows[row].example.line} leaves float16's range (largest finite value 65504): its logit difference is ${values[row]}; use float32`,
      );
    }
  }
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

/** Cuts one row out of the [batch, layer, seq(, head)] outputs, dropping the padding. */
function unpackAttributions(
  out: Record<HookKind, Float32Array | Float64Array>,
  row: number,
  seq: number,
  length: number,
  nLayers: number,
  nHeads: number,
): ExampleAttributions {
  const perPosition = (data: Float32Array | Float64Array) =>
    Array.from({ length: nLayers }, (_, l) => Array.from({ length }, (_, p) => data[(row * nLayers + l) * seq + p]));
  const z = Array.from({ length: nLayers }, (_, l) =>
    Array.from({ length }, (_, p) => Array.from({ length: nHeads }, (_, h) => out.z[((row * nLayers + l) * seq + p) * nHeads + h])),
  );
  return { z, ...byPositionField((kind) => perPosition(out[kind])) };
}

function scaleAttributionsInPlace(a: ExampleAttributions, scale: number): ExampleAttributions {
  const s2 = (m: number[][]) => {
    for (const row of m) for (let j = 0; j < row.length; j++) row[j] *= scale;
  };
  a.z.forEach(s2);
  s2(a.residPre);
  s2(a.attnOut);
  s2(a.mlpOut);
  return a;
}

/**
 * The per-token values the editor colours by (see TokenScores): at each differing position the exact effect of
 * patching that token (one forward pass each) or, when that would exceed the budget, the AtP estimate of
 * resid_pre at layer 0 there; 0 (exactly) wherever the two prompts have the same token.
 */
async function computeTokenScores(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  plan: RunPlan,
  tokenGraph: TokenPassGraph | undefined,
  attributions: readonly ExampleAttributions[],
  baselines: { cleanLds: readonly number[]; corruptedLds: readonly number[]; scale: number },
  options: RunOptions,
): Promise<TokenScores[]> {
  const method = plan.tokenEffects;
  // After an exact sweep, resid_pre at layer 0 already is the exact token patch: no extra pass.
  // Through the run's own session while the passes are short: no second session to build and hold (tokenPassGraph).
  const patched = tokenGraph !== undefined ? await patchTokens(model, prepared, options, tokenGraph) : undefined;
  return prepared.map((example, i) => {
    const values = new Array<number>(example.tokens.length).fill(0);
    const exact = new Array<boolean>(example.tokens.length).fill(true);
    differingPositions(example).forEach((pos, slot) => {
      if (patched) values[pos] = (patched[i][slot] - baselines.corruptedLds[i]) * baselines.scale;
      else values[pos] = attributions[i].residPre[0][pos];
      exact[pos] = method === 'exact';
    });
    return { kind: 'token-patch', method, values, exact, joint: (baselines.cleanLds[i] - baselines.corruptedLds[i]) * baselines.scale };
  });
}

/** Exact activation patching of every component, in the same units and shapes as the attributions. */
export interface ActivationPatchingResult {
  cleanLogitDiff: number;
  corruptedLogitDiff: number;
  examples: ExampleAttributions[];
}

/**
 * Exact activation patching: for every example and every component (each head's z at each position, and
 * resid_pre / attn_out / mlp_out at each position, in every layer), one corrupted run with that component
 * patched to its clean value. Reports (LD_patched − LD_corrupted) / (n·(LD_clean − LD_corrupted)) per example,
 * which summed over examples is the normalised metric of patching that component in every example.
 * Cost grows with layers × positions × heads per example: meant for validation and small models.
 */
export async function runActivationPatching(
  model: LoadedModel,
  dataset: Dataset,
  options: RunOptions & {
    /**
     * 'heads-at-answer': only each head's z at the answer position (the head heatmap); 'resid-pre': only resid_pre at
     * every layer and position (the position heatmap); the others stay 0. Default 'all'.
     */
    components?: 'all' | 'heads-at-answer' | 'resid-pre';
  },
): Promise<ActivationPatchingResult> {
  // Each patch recomputes only the positions from it on and the layers from it up (suffixPatching.ts).
  return activationPatchingBySuffix(model, dataset, options);
}
