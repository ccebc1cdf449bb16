import * as ort from 'onnxruntime-node';
import { InputError } from './errors';
import { GraphBuilder } from './graph/builder';
import { GraphWeights } from './graph/weights';
import { HOOK_KINDS, type HookKind } from './architectures/types';
import { type LoadedModel, weightLookup } from './model/load';
import type { Dataset, Example } from './dataset/jsonl';
import {
  ATTRIBUTION_OUTPUTS,
  buildActivationPatchingGraph,
  buildAttributionGraph,
  PATCHED_LOGIT_DIFF,
  PATCHING_INPUT,
} from './patchingGraphs';
import { promptTooLong } from './promptLength';
import { unusedWeightsWarnings } from './model/unusedWeights';
import { checkMemory, describeMemoryEstimate, estimateRunMemory } from './model/memory';
import { cachedSession, type DeviceRequest, prepareGraphDir, type SessionHandle, writeGraphFile } from './runtime';
import { type ExampleAttributions, type ExampleResult, RESULT_SCHEMA, type Result, summarizeHeads, summarizePositions, type TokenInfo } from './result';

export type Precision = 'float32' | 'float64';

export interface RunOptions {
  device: DeviceRequest;
  batchSize: number;
  /** float32 in normal use; float64 lets tests compare with a float64 reference to many digits. */
  precision?: Precision;
  onProgress?: (message: string) => void;
  /** Checked between batches; a cancelled run throws CancelledError and returns nothing. */
  signal?: AbortSignal;
}

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
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
      throw new InputError(`${where}: "correct" and "incorrect" both start with the token ${JSON.stringify(model.tokenizer.tokenText(correctId))}: their logit difference is always 0`);
    }
    return { example, tokens, corruptedTokens, correctId, incorrectId };
  });
}

/** The longest prompt's token count; a loop, since Math.max(...x) overflows the stack for large datasets. */
function longest(rows: readonly PreparedExample[]): number {
  let max = 0;
  for (const row of rows) max = Math.max(max, row.tokens.length);
  return max;
}

/** Groups examples into batches of similar length (less padding); each batch keeps the examples' indices. */
function makeBatches(prepared: readonly PreparedExample[], batchSize: number): number[][] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`--batch-size must be a positive integer, got ${batchSize}`);
  const order = prepared.map((_, i) => i).sort((a, b) => prepared[a].tokens.length - prepared[b].tokens.length || a - b);
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
  return batches;
}

/** Feeds for a batch of rows, right-padded to the longest row (pad id 0 in both runs, so it never differs). */
function batchFeeds(rows: readonly PreparedExample[], precision: Precision): { feeds: Record<string, ort.Tensor>; seq: number } {
  const batch = rows.length;
  const seq = longest(rows);
  const clean = new BigInt64Array(batch * seq);
  const corrupted = new BigInt64Array(batch * seq);
  const last = precision === 'float64' ? new Float64Array(batch * seq) : new Float32Array(batch * seq);
  rows.forEach((row, i) => {
    row.tokens.forEach((t, p) => (clean[i * seq + p] = BigInt(t.id)));
    row.corruptedTokens.forEach((t, p) => (corrupted[i * seq + p] = BigInt(t.id)));
    last[i * seq + row.tokens.length - 1] = 1;
  });
  const ids = (values: number[]) => new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [batch]);
  return {
    seq,
    feeds: {
      clean_ids: new ort.Tensor('int64', clean, [batch, seq]),
      corrupted_ids: new ort.Tensor('int64', corrupted, [batch, seq]),
      last_position: new ort.Tensor(precision, last, [batch, seq]),
      correct_ids: ids(rows.map((r) => r.correctId)),
      incorrect_ids: ids(rows.map((r) => r.incorrectId)),
    },
  };
}

type GraphKind = 'attribution' | 'activation-patching';

const graphFiles = new Map<string, string>();

/**
 * Builds (once per weight files, kind and precision) the graph file, and returns a cached session for it.
 * The graph directory's name depends on the weight files' identity (path, size, mtime), so weights replaced on
 * disk get a new graph and session even in a long-lived process.
 */
async function sessionFor(model: LoadedModel, kind: GraphKind, options: RunOptions): Promise<SessionHandle> {
  const precision = options.precision ?? 'float32';
  const graphDir = prepareGraphDir(model.weightFiles);
  // The spec too: config.json edited in a long-lived process (fewer layers, say) must not reuse the old graph.
  const key = `${graphDir.dir}|${model.dir}|${kind}|${precision}|${JSON.stringify(model.spec)}`;
  let file = graphFiles.get(key);
  if (!file) {
    const builder = new GraphBuilder(precision);
    const weights = new GraphWeights(builder, weightLookup(model), graphDir.locations);
    if (kind === 'attribution') buildAttributionGraph(model.architecture, builder, weights);
    else buildActivationPatchingGraph(model.architecture, builder, weights);
    file = writeGraphFile(graphDir, builder.toBytes(), `${kind}-${precision}`, unusedWeightsWarnings(model, weights.used));
    graphFiles.set(key, file);
  }
  return cachedSession(file, options.device, { optimization: precision === 'float64' ? 'basic' : 'all' });
}

const asNumbers = (tensor: ort.Tensor) => Array.from(tensor.data as Float32Array | Float64Array);

function checkCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

function normalisation(dataset: Dataset, cleanLogitDiff: number, corruptedLogitDiff: number, n: number): number {
  const gap = cleanLogitDiff - corruptedLogitDiff;
  if (!Number.isFinite(gap) || gap === 0) {
    throw new InputError(
      `${dataset.file}: the clean and corrupted logit differences are equal (${cleanLogitDiff}); the normalised metric (LD − LD_corrupted) / (LD_clean − LD_corrupted) is undefined`,
    );
  }
  return 1 / (n * gap);
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/**
 * Attribution patching over a dataset: per batch, one session run (clean forward, corrupted forward, backward to
 * the hooks, reductions in the graph); then normalisation by the dataset's baselines on the host.
 */
export async function runAttributionPatching(model: LoadedModel, dataset: Dataset, options: RunOptions): Promise<Result> {
  const started = performance.now();
  const warnings: string[] = [];
  const prepared = prepareExamples(model, dataset, warnings);
  const precision = options.precision ?? 'float32';
  // Say up front what the run needs, and refuse with the numbers rather than crash when it cannot fit.
  const memory = estimateRunMemory(model, { batchSize: Math.min(options.batchSize, prepared.length), seqLen: longest(prepared) });
  options.onProgress?.(describeMemoryEstimate(memory, options.device));
  warnings.push(...checkMemory(memory, options.device));
  const handle = await sessionFor(model, 'attribution', options);
  warnings.push(...handle.notes);
  const loaded = performance.now();
  const { nLayers, nHeads } = model.spec;

  const cleanLds = new Array<number>(prepared.length);
  const corruptedLds = new Array<number>(prepared.length);
  const raw = new Array<ExampleAttributions>(prepared.length);
  const batches = makeBatches(prepared, options.batchSize);
  for (const [b, indices] of batches.entries()) {
    checkCancelled(options.signal);
    options.onProgress?.(`batch ${b + 1}/${batches.length} (${indices.length} examples)`);
    const rows = indices.map((i) => prepared[i]);
    const { feeds, seq } = batchFeeds(rows, precision);
    const out = await handle.session.run(feeds);
    const clean = asNumbers(out[ATTRIBUTION_OUTPUTS.cleanLogitDiff]);
    const corrupted = asNumbers(out[ATTRIBUTION_OUTPUTS.corruptedLogitDiff]);
    const attributions = Object.fromEntries(HOOK_KINDS.map((kind) => [kind, out[ATTRIBUTION_OUTPUTS.attribution(kind)].data])) as Record<HookKind, Float32Array | Float64Array>;
    indices.forEach((exampleIndex, row) => {
      cleanLds[exampleIndex] = clean[row];
      corruptedLds[exampleIndex] = corrupted[row];
      raw[exampleIndex] = unpackAttributions(attributions, row, seq, prepared[exampleIndex].tokens.length, nLayers, nHeads);
    });
  }
  checkCancelled(options.signal);

  const cleanLogitDiff = mean(cleanLds);
  const corruptedLogitDiff = mean(corruptedLds);
  const scale = normalisation(dataset, cleanLogitDiff, corruptedLogitDiff, prepared.length);
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
    attributions: scaleAttributions(raw[i], scale),
  }));
  const finished = performance.now();
  return {
    schema: RESULT_SCHEMA,
    createdAt: new Date().toISOString(),
    dataset: { file: dataset.file, examples: examples.length },
    model: {
      source: model.source,
      architecture: model.spec.architecture,
      modelType: model.spec.modelType,
      layers: nLayers,
      heads: nHeads,
      dModel: model.spec.dModel,
      dHead: model.spec.dHead,
      dtype: model.storedDtype,
    },
    device: handle.device,
    metric: { cleanLogitDiff, corruptedLogitDiff, name: 'normalized-logit-diff' },
    heads: summarizeHeads(examples),
    positions: summarizePositions(examples),
    examples,
    warnings,
    timings: { loadSeconds: (loaded - started) / 1000, runSeconds: (finished - loaded) / 1000 },
  };
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
  return { z, residPre: perPosition(out.resid_pre), attnOut: perPosition(out.attn_out), mlpOut: perPosition(out.mlp_out) };
}

function scaleAttributions(a: ExampleAttributions, scale: number): ExampleAttributions {
  const s2 = (m: number[][]) => m.map((row) => row.map((v) => v * scale));
  return { z: a.z.map(s2), residPre: s2(a.residPre), attnOut: s2(a.attnOut), mlpOut: s2(a.mlpOut) };
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
    /** 'heads-at-answer': only each head's z at the answer position (the head heatmap); others stay 0. Default 'all'. */
    components?: 'all' | 'heads-at-answer';
  },
): Promise<ActivationPatchingResult> {
  const prepared = prepareExamples(model, dataset, []);
  const precision = options.precision ?? 'float32';
  const handle = await sessionFor(model, 'activation-patching', options);
  const { nLayers, nHeads } = model.spec;
  const Float = precision === 'float64' ? Float64Array : Float32Array;

  const cleanLds: number[] = [];
  const corruptedLds: number[] = [];
  const deltas: ExampleAttributions[] = [];
  for (const [index, example] of prepared.entries()) {
    checkCancelled(options.signal);
    options.onProgress?.(`activation patching: example ${index + 1}/${prepared.length}`);
    const seq = example.tokens.length;
    // Row 0 patches nothing (the corrupted baseline); each further row patches one component.
    const components: Array<{ kind: HookKind; layer: number; pos: number; head: number } | null> = [null];
    const headsOnly = options.components === 'heads-at-answer';
    for (const kind of headsOnly ? (['z'] as const) : HOOK_KINDS) {
      for (let layer = 0; layer < nLayers; layer++) {
        for (let pos = headsOnly ? seq - 1 : 0; pos < seq; pos++) {
          if (kind === 'z') for (let head = 0; head < nHeads; head++) components.push({ kind, layer, pos, head });
          else components.push({ kind, layer, pos, head: 0 });
        }
      }
    }
    const patched = new Array<number>(components.length);
    let clean = 0;
    for (let start = 0; start < components.length; start += options.batchSize) {
      checkCancelled(options.signal);
      const chunk = components.slice(start, start + options.batchSize);
      const rows = chunk.map(() => example);
      const { feeds } = batchFeeds(rows, precision);
      const masks = Object.fromEntries(
        HOOK_KINDS.map((kind) => [kind, new Float(chunk.length * nLayers * seq * (kind === 'z' ? nHeads : 1))]),
      ) as Record<HookKind, Float32Array | Float64Array>;
      chunk.forEach((c, r) => {
        if (!c) return;
        const width = c.kind === 'z' ? nHeads : 1;
        masks[c.kind][((r * nLayers + c.layer) * seq + c.pos) * width + c.head] = 1;
      });
      for (const kind of HOOK_KINDS) {
        const dims = kind === 'z' ? [chunk.length, nLayers, seq, nHeads] : [chunk.length, nLayers, seq];
        feeds[PATCHING_INPUT(kind)] = new ort.Tensor(precision, masks[kind], dims);
      }
      const out = await handle.session.run(feeds);
      const lds = asNumbers(out[PATCHED_LOGIT_DIFF]);
      clean = asNumbers(out[ATTRIBUTION_OUTPUTS.cleanLogitDiff])[0];
      lds.forEach((ld, r) => (patched[start + r] = ld));
    }
    cleanLds.push(clean);
    corruptedLds.push(patched[0]);
    const delta: ExampleAttributions = {
      z: Array.from({ length: nLayers }, () => Array.from({ length: seq }, () => new Array<number>(nHeads).fill(0))),
      residPre: Array.from({ length: nLayers }, () => new Array<number>(seq).fill(0)),
      attnOut: Array.from({ length: nLayers }, () => new Array<number>(seq).fill(0)),
      mlpOut: Array.from({ length: nLayers }, () => new Array<number>(seq).fill(0)),
    };
    components.forEach((c, i) => {
      if (!c) return;
      const d = patched[i] - patched[0];
      if (c.kind === 'z') delta.z[c.layer][c.pos][c.head] = d;
      else delta[c.kind === 'resid_pre' ? 'residPre' : c.kind === 'attn_out' ? 'attnOut' : 'mlpOut'][c.layer][c.pos] = d;
    });
    deltas.push(delta);
  }
  const cleanLogitDiff = mean(cleanLds);
  const corruptedLogitDiff = mean(corruptedLds);
  const scale = normalisation(dataset, cleanLogitDiff, corruptedLogitDiff, prepared.length);
  return { cleanLogitDiff, corruptedLogitDiff, examples: deltas.map((d) => scaleAttributions(d, scale)) };
}
