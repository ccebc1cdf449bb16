// What every kind of run shares: options, cancellation, examples tokenized and checked, batches and their feeds,
// the graph file and session of each graph kind, and the normalisation of the metric. patching.ts (attribution
// patching, whole activation-patching sweeps) and exactPatching.ts (token effects, checks) are built on it.
import * as ort from 'onnxruntime-node';
import { InputError } from '../../shared/errors';
import { fieldRef } from '../../shared/fields';
import { GraphBuilder } from '../graph/builder';
import { GraphWeights } from '../graph/weights';
import { type LoadedModel, weightLookup } from '../model/load';
import type { Dataset, Example } from '../dataset/jsonl';
import {
  ACTIVATION_PATCHING_GRAPH_NAMES,
  ATTRIBUTION_GRAPH_NAMES,
  BATCH_INPUTS,
  buildActivationPatchingGraph,
  buildAttributionGraph,
  buildLogitDiffGraph,
  checkGraphNames,
  FLOAT16_ATTRIBUTION_GRAPH_NAMES,
  type GraphNames,
  LOGIT_DIFF_GRAPH_NAMES,
  LOGIT_DIFF_INPUT,
  PATCHING_INPUT,
} from './graphs';
import { HOOK_KINDS, type HookKind } from '../architectures/types';
import { HOOKS } from '../../shared/hooks';
import { ATP_STAR_GRAPH_NAMES, buildAtpStarGraph } from './atpStarGraph';
import { buildPatchRecordGraph, buildSuffixPatchGraph, PATCH_RECORD_GRAPH_NAMES, SUFFIX_PATCH_GRAPH_NAMES } from './suffixGraphs';
import {
  ACTIVATION_EDGE_ATTRIBUTION_GRAPH_NAMES,
  buildActivationEdgeAttributionGraph,
  buildEdgeAttributionGraph,
  buildFaithfulnessGraph,
  EDGE_ATTRIBUTION_GRAPH_NAMES,
  FAITHFULNESS_GRAPH_NAMES,
} from '../circuits/graph';
import {
  cachedSession,
  type DeviceRequest,
  float16Unsupported,
  graphDirFor,
  hasCachedSession,
  prepareGraphDir,
  releaseSessions,
  type SessionHandle,
  writeGraphFile,
} from '../process/runtime';
import { type Precision, PRECISIONS, type TokenInfo } from '../../shared/result';
import { promptTooLong } from './promptLength';
import type { ProgressEvent } from '../../shared/workerProtocol';
import { unusedWeightsWarnings } from '../model/unusedWeights';

export type { Precision };

/**
 * The graph kinds that run in float16 (mixed precision, see GraphBuilder.wideType): AtP and the forward-only graphs
 * its token effects and checks use. AtP*'s and the circuits' graphs compute in float32 or float64 only.
 */
export const FLOAT16_GRAPH_KINDS: ReadonlySet<GraphKind> = new Set<GraphKind>([
  'attribution',
  'activation-patching',
  'logit-diff',
  'patch-record',
  'suffix-patch',
]);

/** The --precision flag's value (default float32). */
export function parsePrecision(text: string | undefined): Precision {
  if (text === undefined) return 'float32';
  if ((PRECISIONS as readonly string[]).includes(text)) return text as Precision;
  throw InputError.about('precision', `expected ${PRECISIONS.join(', ')}, got "${text}"`);
}

/** Refuses float16 for what does not run in it (AtP*, circuits), naming the field and the way out. */
export function checkPrecisionFor(precision: Precision | undefined, what: string): void {
  if (precision === 'float16') throw InputError.about('precision', `float16 runs AtP and exact patching only, not ${what}; use float32 for it`);
}

export interface RunOptions {
  device: DeviceRequest;
  batchSize: number;
  /**
   * float32 in normal use; float64 lets tests compare with a float64 reference to many digits; float16 is mixed
   * precision for GPUs (weights and activations float16, statistics, metric and attributions float32; AtP only).
   */
  precision?: Precision;
  /**
   * float16 AtP's loss scale: 'dynamic' (the default) picks it per batch from the gradients' peak and retries a
   * batch whose gradients overflowed; a number fixes it (tests show what scaling is for with 1).
   */
  lossScale?: 'dynamic' | number;
  onProgress?: (message: string) => void;
  /** Steps of counted work (batches, exact runs), with the time left: the CLI's progress line, the editor's bar. */
  onStep?: (event: ProgressEvent) => void;
  /** Checked between batches; a cancelled run throws CancelledError and returns nothing. */
  signal?: AbortSignal;
  /**
   * Leave every value in LD units (scale 1) instead of dividing by n·(LD_clean − LD_corrupted): a shard of a
   * dataset (atp patch --shard) cannot know the whole dataset's baselines, so `atp merge` normalises afterwards.
   */
  raw?: boolean;
  /**
   * The process exits after this run (the CLI): the sessions it builds serve this run alone, so a short run builds
   * them without pre-packing (run.ts, PREPACK_MIN_TOKENS). A long-lived process (the extension's worker, a
   * benchmark) leaves it unset: its sessions serve many runs, which pre-packed weights make faster.
   */
  oneShot?: boolean;
  /**
   * Whether sessions built for this run pre-pack their weights (see SessionSettings.prepacking); run.ts sets it
   * from oneShot and the run's size; undefined: pre-pack, and reuse whichever session this process holds.
   */
  prepacking?: boolean;
}

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

export function checkCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

/** An example tokenized and checked, ready to batch. */
export interface PreparedExample {
  readonly example: Example;
  readonly tokens: TokenInfo[];
  readonly corruptedTokens: TokenInfo[];
  readonly correctId: number;
  readonly incorrectId: number;
}

/**
 * Tokenizes and validates every example; errors name the file, line and field. Answers use their first token
 * without special tokens (as the seed notebook does); longer answers produce a warning, never silence.
 */
export function prepareExamples(model: LoadedModel, dataset: Dataset, warnings: string[]): PreparedExample[] {
  if (dataset.examples.length === 0) throw new InputError(`${dataset.file}: the dataset has no examples`);
  return dataset.examples.map((example) => {
    const where = `${dataset.file}:${example.line}`;
    for (const field of ['clean', 'corrupted'] as const) {
      const tooLong = promptTooLong(example[field], model.tokenizer, model.spec.maxPositions);
      if (tooLong !== undefined) throw new InputError(`${where}: "${field}" ${tooLong}`);
    }
    const tokens = model.tokenizer.encode(example.clean);
    const corruptedTokens = model.tokenizer.encode(example.corrupted);
    if (tokens.length !== corruptedTokens.length) {
      throw new InputError(
        `${where}: "clean" has ${tokens.length} tokens but "corrupted" has ${corruptedTokens.length}; attribution patching needs prompts of equal token length`,
      );
    }
    if (tokens.length > model.spec.maxPositions) {
      throw new InputError(`${where}: "clean" has ${tokens.length} tokens, more than the model's ${model.spec.maxPositions} positions`);
    }
    const answerId = (field: 'correct' | 'incorrect') => {
      const ids = model.tokenizer.ids(example[field], { addSpecialTokens: false });
      if (ids.length === 0) throw new InputError(`${where}: "${field}" (${JSON.stringify(example[field])}) tokenizes to nothing`);
      if (ids.length > 1) {
        const first = JSON.stringify(model.tokenizer.tokenText(ids[0]));
        warnings.push(`${where}: "${field}" (${JSON.stringify(example[field])}) is ${ids.length} tokens; using its first token ${first}`);
      }
      return ids[0];
    };
    const correctId = answerId('correct');
    const incorrectId = answerId('incorrect');
    if (correctId === incorrectId) {
      throw new InputError(
        `${where}: "correct" and "incorrect" both start with the token ${JSON.stringify(model.tokenizer.tokenText(correctId))}: their logit difference is always 0`,
      );
    }
    return { example, tokens, corruptedTokens, correctId, incorrectId };
  });
}

/** Positions where the clean and corrupted token ids differ: the only places where layer 0's inputs differ. */
export function differingPositions(example: PreparedExample): number[] {
  const positions: number[] = [];
  example.tokens.forEach((token, pos) => {
    if (token.id !== example.corruptedTokens[pos].id) positions.push(pos);
  });
  return positions;
}

/**
 * Leading tokens that every example's clean and corrupted prompts share, at most up to each one's answer position:
 * at least where the attribution graph's corrupted pass starts in any batch of them (graphs.ts sharedPrefixLength).
 */
export function sharedPrefixTokens(prepared: readonly PreparedExample[]): number {
  let shared = Infinity;
  for (const example of prepared) {
    const answer = example.tokens.length - 1;
    shared = Math.min(shared, answer, differingPositions(example)[0] ?? answer);
  }
  return Number.isFinite(shared) ? Math.max(0, shared) : 0;
}

export function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new InputError(`${fieldRef('batchSize')} must be a positive integer, got ${batchSize}`, { field: 'batchSize' });
}

/** Groups examples into batches of similar length (less padding); each batch keeps the examples' indices. */
export function makeBatches(prepared: readonly PreparedExample[], batchSize: number): number[][] {
  checkBatchSize(batchSize);
  const order = prepared.map((_, i) => i).sort((a, b) => prepared[a].tokens.length - prepared[b].tokens.length || a - b);
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
  return batches;
}

/** The longest prompt's token count; a loop, since Math.max(...x) overflows the stack for large datasets. */
export function longestPrompt(rows: readonly PreparedExample[]): number {
  return longest(rows.map((row) => row.tokens.length));
}

function longest(lengths: readonly number[]): number {
  let max = 0;
  for (const length of lengths) max = Math.max(max, length);
  return max;
}

/** The type of a graph's float inputs: float32 under float16 compute too (see GraphBuilder.wideType). */
export const feedType = (precision: Precision): 'float32' | 'float64' => (precision === 'float64' ? 'float64' : 'float32');
const floatArray = (precision: Precision, length: number) => (precision === 'float64' ? new Float64Array(length) : new Float32Array(length));
const idTensor = (values: readonly number[]) =>
  new ort.Tensor(
    'int64',
    BigInt64Array.from(values, (v) => BigInt(v)),
    [values.length],
  );

/** The one-hot answer position of each row, [batch, seq]. */
function lastPositions(lengths: readonly number[], seq: number, precision: Precision): ort.Tensor {
  const last = floatArray(precision, lengths.length * seq);
  lengths.forEach((length, i) => (last[i * seq + length - 1] = 1));
  return new ort.Tensor(feedType(precision), last, [lengths.length, seq]);
}

/** Feeds for a batch of rows, right-padded to the longest row (pad id 0 in both runs, so it never differs). */
export function batchFeeds(rows: readonly PreparedExample[], precision: Precision): { feeds: Record<string, ort.Tensor>; seq: number } {
  const batch = rows.length;
  const seq = longest(rows.map((r) => r.tokens.length));
  const clean = new BigInt64Array(batch * seq);
  const corrupted = new BigInt64Array(batch * seq);
  rows.forEach((row, i) => {
    row.tokens.forEach((t, p) => (clean[i * seq + p] = BigInt(t.id)));
    row.corruptedTokens.forEach((t, p) => (corrupted[i * seq + p] = BigInt(t.id)));
  });
  return {
    seq,
    feeds: {
      [BATCH_INPUTS.cleanIds]: new ort.Tensor('int64', clean, [batch, seq]),
      [BATCH_INPUTS.corruptedIds]: new ort.Tensor('int64', corrupted, [batch, seq]),
      [BATCH_INPUTS.lastPosition]: lastPositions(
        rows.map((r) => r.tokens.length),
        seq,
        precision,
      ),
      [BATCH_INPUTS.correctIds]: idTensor(rows.map((r) => r.correctId)),
      [BATCH_INPUTS.incorrectIds]: idTensor(rows.map((r) => r.incorrectId)),
    },
  };
}

/** One patched activation of a row: a hook at a layer and position (and a head for hook_z). */
export interface RowPatch {
  hook: HookKind;
  layer: number;
  pos: number;
  head: number;
}

/**
 * The activation-patching graph's patch_<kind> mask inputs for a batch of rows padded to `seq`: 1 where a row's
 * patch is, 0 elsewhere; a row without a patch (null) is the plain corrupted run.
 */
export function patchMaskFeeds(
  patches: ReadonlyArray<RowPatch | null>,
  seq: number,
  spec: { nLayers: number; nHeads: number },
  precision: Precision,
): Record<string, ort.Tensor> {
  const { nLayers, nHeads } = spec;
  const feeds: Record<string, ort.Tensor> = {};
  for (const kind of HOOK_KINDS) {
    const perHead = HOOKS[kind].perHead;
    const width = perHead ? nHeads : 1;
    const mask = floatArray(precision, patches.length * nLayers * seq * width);
    patches.forEach((p, r) => {
      if (p && p.hook === kind) mask[((r * nLayers + p.layer) * seq + p.pos) * width + (perHead ? p.head : 0)] = 1;
    });
    const dims = perHead ? [patches.length, nLayers, seq, nHeads] : [patches.length, nLayers, seq];
    feeds[PATCHING_INPUT(kind)] = new ort.Tensor(feedType(precision), mask, dims);
  }
  return feeds;
}

/** A prompt for the forward-only logit-difference graph. */
export interface PromptRow {
  ids: readonly number[];
  correctId: number;
  incorrectId: number;
}

/** Feeds of the logit-difference graph (see buildLogitDiffGraph), right-padded with id 0. */
export function promptFeeds(rows: readonly PromptRow[], precision: Precision): Record<string, ort.Tensor> {
  const seq = longest(rows.map((r) => r.ids.length));
  const ids = new BigInt64Array(rows.length * seq);
  rows.forEach((row, i) => row.ids.forEach((id, p) => (ids[i * seq + p] = BigInt(id))));
  return {
    [LOGIT_DIFF_INPUT]: new ort.Tensor('int64', ids, [rows.length, seq]),
    [BATCH_INPUTS.lastPosition]: lastPositions(
      rows.map((r) => r.ids.length),
      seq,
      precision,
    ),
    [BATCH_INPUTS.correctIds]: idTensor(rows.map((r) => r.correctId)),
    [BATCH_INPUTS.incorrectIds]: idTensor(rows.map((r) => r.incorrectId)),
  };
}

export type GraphKind =
  | 'attribution'
  | 'activation-patching'
  | 'logit-diff'
  | 'patch-record'
  | 'suffix-patch'
  | 'atp-star'
  | 'edge-attribution'
  | 'edge-attribution-activations'
  | 'faithfulness';

/** Each kind's builder, and the names its feeds and reads use (checked against each new session). */
export const GRAPHS: Record<GraphKind, { build: typeof buildAttributionGraph; names: GraphNames }> = {
  attribution: { build: buildAttributionGraph, names: ATTRIBUTION_GRAPH_NAMES },
  'activation-patching': { build: buildActivationPatchingGraph, names: ACTIVATION_PATCHING_GRAPH_NAMES },
  'logit-diff': { build: buildLogitDiffGraph, names: LOGIT_DIFF_GRAPH_NAMES },
  'patch-record': { build: buildPatchRecordGraph, names: PATCH_RECORD_GRAPH_NAMES },
  'suffix-patch': { build: buildSuffixPatchGraph, names: SUFFIX_PATCH_GRAPH_NAMES },
  'atp-star': { build: buildAtpStarGraph, names: ATP_STAR_GRAPH_NAMES },
  'edge-attribution': { build: buildEdgeAttributionGraph, names: EDGE_ATTRIBUTION_GRAPH_NAMES },
  'edge-attribution-activations': { build: buildActivationEdgeAttributionGraph, names: ACTIVATION_EDGE_ATTRIBUTION_GRAPH_NAMES },
  faithfulness: { build: buildFaithfulnessGraph, names: FAITHFULNESS_GRAPH_NAMES },
};

/** The names a graph of this kind takes and gives, built for this precision. */
export function graphNames(kind: GraphKind, precision: Precision): GraphNames {
  return kind === 'attribution' && precision === 'float16' ? FLOAT16_ATTRIBUTION_GRAPH_NAMES : GRAPHS[kind].names;
}

const graphFiles = new Map<string, string>();
// The spec too: config.json edited in a long-lived process (fewer layers, say) must not reuse the old graph.
const graphKey = (graphDir: string, model: LoadedModel, kind: GraphKind, precision: Precision) =>
  `${graphDir}|${model.dir}|${kind}|${precision}|${JSON.stringify(model.spec)}`;
const sessionSettings = (precision: Precision, prepacking?: boolean) => ({
  optimization: precision === 'float64' ? ('basic' as const) : ('all' as const),
  prepacking,
});

/**
 * Whether this process already holds the session a run of this kind would use (the extension's worker keeps them):
 * its weights are then in memory already, and the memory check must not ask for them again.
 */
export function sessionIsWarm(model: LoadedModel, kind: GraphKind, options: Pick<RunOptions, 'device' | 'precision' | 'prepacking'>): boolean {
  const precision = options.precision ?? 'float32';
  // graphDirFor, not prepareGraphDir: a run refused for memory must not have linked or copied weights into the cache.
  const file = graphFiles.get(graphKey(graphDirFor(model.weightFiles), model, kind, precision));
  return file !== undefined && hasCachedSession(file, options.device, sessionSettings(precision, options.prepacking));
}
/** Set by `atp serve` (keepOneModelAtATime): the one model whose sessions this process may hold. */
let oneModelAtATime = false;
let modelInUse: { graphDir: string; source: string } | undefined;

/** For a long-lived process that runs whatever model it is asked for: its memory stays one model's (releaseOtherModels). */
export function keepOneModelAtATime(): void {
  oneModelAtATime = true;
}

/** The model whose sessions this process keeps (with keepOneModelAtATime), as the user named it. */
export function heldModel(): string | undefined {
  return modelInUse?.source;
}

/**
 * With keepOneModelAtATime: before a run of another model (other weight files), the sessions held for the previous
 * one are released, so that memory does not grow with every model tried and the memory check sees it free.
 */
export async function releaseOtherModels(model: LoadedModel): Promise<void> {
  if (!oneModelAtATime) return;
  const graphDir = graphDirFor(model.weightFiles);
  if (modelInUse !== undefined && modelInUse.graphDir !== graphDir) await releaseSessions();
  modelInUse = { graphDir, source: model.source };
}

/** `auto` choices already said in this process: the same choice for every graph kind needs saying once. */
const choicesSaid = new Set<string>();

/**
 * Builds (once per weight files, kind and precision) the graph file, and returns a cached session for it.
 * The graph directory's name depends on the weight files' identity (path, size, mtime), so weights replaced on
 * disk get a new graph and session even in a long-lived process.
 */
export async function sessionFor(model: LoadedModel, kind: GraphKind, options: RunOptions): Promise<SessionHandle> {
  await releaseOtherModels(model);
  const precision = options.precision ?? 'float32';
  if (precision === 'float16' && !FLOAT16_GRAPH_KINDS.has(kind)) checkPrecisionFor(precision, `the ${kind} graph`);
  const graphDir = prepareGraphDir(model.weightFiles);
  const key = graphKey(graphDir.dir, model, kind, precision);
  let file = graphFiles.get(key);
  if (!file) {
    const builder = new GraphBuilder(precision);
    const weights = new GraphWeights(builder, weightLookup(model), graphDir.locations);
    GRAPHS[kind].build(model.architecture, builder, weights);
    file = writeGraphFile(graphDir, builder.toBytes(), `${kind}-${precision}`, unusedWeightsWarnings(model, weights.used));
    graphFiles.set(key, file);
  }
  const handle = await cachedSession(file, options.device, sessionSettings(precision, options.prepacking));
  if (precision === 'float16') {
    const unsupported = await float16Unsupported(handle.device);
    if (unsupported) {
      const adapter = handle.observer.info().adapter;
      const on = adapter ? ` on ${adapter.name} (${adapter.vendor}${adapter.software ? ', software' : ''})` : '';
      throw InputError.about(
        'precision',
        `float16 cannot run on ${handle.device}${on}: ${unsupported} (WebGPU computes in float16 only where the adapter has the shader-f16 feature); use float32`,
      );
    }
  }
  checkGraphNames(kind, graphNames(kind, precision), handle.session);
  if (handle.choice && !choicesSaid.has(handle.choice)) {
    choicesSaid.add(handle.choice);
    options.onProgress?.(handle.choice);
  }
  return handle;
}

export const asNumbers = (tensor: ort.Tensor) => Array.from(tensor.data as Float32Array | Float64Array);

/**
 * 1 / (n·(LD_clean − LD_corrupted)): per-example values times this, summed over examples, are in units of the
 * normalised metric (LD − LD_corrupted) / (LD_clean − LD_corrupted).
 */
export function normalisation(dataset: Dataset, cleanLogitDiff: number, corruptedLogitDiff: number, n: number): number {
  const gap = cleanLogitDiff - corruptedLogitDiff;
  if (!Number.isFinite(gap) || gap === 0) {
    throw new InputError(
      `${dataset.file}: the clean and corrupted prompts give the same logit difference (${cleanLogitDiff}), so there is no effect to attribute ` +
        `(the normalised metric divides by their difference). Check that the corrupted prompts change which answer the model prefers, ` +
        `and that the correct and incorrect answers start with different tokens.`,
    );
  }
  return 1 / (n * gap);
}

/** normalisation(), or 1 for a raw run (see RunOptions.raw). */
export function runScale(options: RunOptions, dataset: Dataset, cleanLogitDiff: number, corruptedLogitDiff: number, n: number): number {
  return options.raw ? 1 : normalisation(dataset, cleanLogitDiff, corruptedLogitDiff, n);
}

export const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;
