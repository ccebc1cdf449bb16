// The plan stage: the examples prepared, what runs (methods.ts: which method, whether token effects are exact, the
// checks, the cost in passes) and the graph kinds whose sessions the run holds.
import { InputError } from '../../shared/errors';
import type { LoadedModel } from '../model/load';
import type { Dataset } from '../../lib/dataset/jsonl';
import { type PreparedExample, prepareExamples } from './examples';
import type { PatchingOptions } from './options';
import { describePlan, planRun, type RunPlan } from './methods';
import { type TokenPassGraph, tokenPassGraph } from './exact';
import { checkedMapCount } from './mapChecks';
import type { GraphKind } from './sessions';
import { EXACT_PATCHING_GRAPHS } from './suffixPatching';

/**
 * One-shot runs (RunOptions.oneShot: the CLI) over at most this many prompt tokens (examples × their length) build
 * their sessions without pre-packing the weights: the build is faster and holds no second copy of the matrices
 * (Qwen2.5-0.5B: 1.6 GB), and the MatMuls of so few tokens lose less than that saves (1.2–1.4× slower without it,
 * docs/BENCHMARKS.md). Long-lived processes pre-pack: their sessions serve many runs.
 */
export const PREPACK_MIN_TOKENS = 256;

export interface PlannedRun {
  prepared: PreparedExample[];
  plan: RunPlan;
  /** The options asked for, with pre-packing decided (the fit stage may lower the batch size and pre-packing). */
  options: PatchingOptions;
  warnings: string[];
}

/** Prepares the examples, decides pre-packing, plans the run and says the plan (onProgress); refused plans throw here. */
export function planPatchingRun(model: LoadedModel, dataset: Dataset, requested: PatchingOptions): PlannedRun {
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
    checkedMapCount(options.checkOver ?? 'heads-and-positions'),
  );
  // Checks choose components from the whole dataset's attributions, which a raw shard does not have.
  if (options.raw && plan.checks > 0) throw new InputError('checks cannot run on a raw shard: run them on the merged dataset instead');
  // A raw shard keeps the method's estimate as its head map: the merge labels maps by the run's method.
  if (options.raw) delete plan.exactHeads;
  options.onProgress?.(describePlan(plan, prepared.length));
  return { prepared, plan, options, warnings };
}

/** The graph kinds a run uses: its own (AtP's or AtP*'s), the token passes' (if exact), and every one it holds at once. */
export interface RunGraphs {
  run: 'attribution' | 'atp-star';
  tokens: TokenPassGraph | undefined;
  held: GraphKind[];
}

/** Which graphs the run uses; after releaseOtherModels, since the token passes go to a forward-only session already held. */
export function runGraphs(model: LoadedModel, prepared: readonly PreparedExample[], plan: RunPlan, options: PatchingOptions): RunGraphs {
  const runGraph = plan.method === 'atpstar' ? 'atp-star' : 'attribution';
  const tokenGraph = plan.tokenEffects === 'exact' && plan.method !== 'exact' ? tokenPassGraph(model, prepared, runGraph, options) : undefined;
  return { run: runGraph, tokens: tokenGraph, held: runSessions(runGraph, plan, tokenGraph) };
}

/**
 * The graph kinds whose sessions a run builds and holds at once, each with its own float32 copy of the weights: the
 * run's graph, exact patching's two (record and suffix-patch) for the exact sweep or checks, and the token passes' graph.
 */
function runSessions(runGraph: GraphKind, plan: RunPlan, tokenGraph: GraphKind | undefined): GraphKind[] {
  const kinds: GraphKind[] = [runGraph];
  if (plan.method === 'exact' || plan.checks > 0 || plan.exactHeads) kinds.push(...EXACT_PATCHING_GRAPHS);
  if (tokenGraph !== undefined && !kinds.includes(tokenGraph)) kinds.push(tokenGraph);
  return kinds;
}
