// Exact activation patching through the record and suffix-patch graphs (suffixGraphs.ts): per chunk of examples one
// record pass, then every patch set of those examples as a row that recomputes only the positions from its first
// patch on and the layers from its lowest patch up; rows that share a start position go through one session run.
// The numbers are those of a full patched forward pass per row (the activation-patching graph), to rounding.
import * as ort from 'onnxruntime-node';
import { HOOK_KINDS, type HookKind } from '../architectures/types';
import { HOOKS } from '../../shared/hooks';
import type { Component, ExampleAttributions } from '../../shared/result';
import { progressTracker } from '../../shared/progress';
import type { Dataset } from '../../lib/dataset/jsonl';
import type { LoadedModel } from '../model/load';
import { keyValueHeads } from '../model/config';
import { ATTRIBUTION_OUTPUTS, BATCH_INPUTS, PATCHED_LOGIT_DIFF, PATCHING_INPUT } from './graphs';
import { RECORD_OUTPUTS, SUFFIX_INPUTS } from './suffixGraphs';
import { checkCancelled, type RunOptions } from './options';
import type { Precision } from './precision';
import { differingPositions, type PreparedExample, prepareExamples } from './examples';
import { asNumbers, batchFeeds, feedType, longestPrompt, makeBatches, type RowPatch } from './feeds';
import { type GraphKind, sessionFor } from './sessions';
import { mean, runScale } from './normalisation';

/** The graph kinds exact patching builds sessions for (the memory estimate counts one copy of the weights each). */
export const EXACT_PATCHING_GRAPHS: readonly GraphKind[] = ['patch-record', 'suffix-patch'];

/**
 * A session run of the suffix-patch graph takes rows while (1) their keys, rows × (start + suffix length), the
 * positions each layer's attention reads (gathered per row), stay within SUFFIX_RUN_KEYS, and (2) the positions they
 * compute, rows × suffix length, within SUFFIX_RUN_POSITIONS or batchSize × 2 × the longest prompt if that is more
 * (the positions a batch of the full-pass graph computed: two passes per row). Fewer, larger runs are faster
 * (GPT-2-small, heads at the answer of 15-token prompts: 8,192 keys a run took about 1.2× as long as 32,768).
 */
export const SUFFIX_RUN_KEYS = 32768;
export const SUFFIX_RUN_POSITIONS = 2048;

/**
 * The record pass keeps per example, at every layer and position, four hooks' values and the corrupted resid_pre,
 * keys and values; a chunk of examples holds at most this many (128 MB in float32), or one example.
 */
export const RECORD_MAX_VALUES = 2 ** 25;

/** Examples per record pass: batchSize, fewer where their recorded activations would pass RECORD_MAX_VALUES. */
function recordChunkSize(model: LoadedModel, prepared: readonly PreparedExample[], batchSize: number): number {
  const { nLayers, nHeads, dModel, dHead } = model.spec;
  const perExample = nLayers * longestPrompt(prepared) * (4 * dModel + (nHeads + 2 * keyValueHeads(model.spec)) * dHead);
  return Math.max(1, Math.min(batchSize, Math.floor(RECORD_MAX_VALUES / perExample)));
}

type FloatArray = Float32Array | Float64Array;

/** What the record pass keeps of one chunk of examples, [batch, layer, seq, ...] right-padded to seq. */
interface Recorded {
  seq: number;
  /** Each chunk example's row in the record batch, by index in `prepared`. */
  rowOf: Map<number, number>;
  cleanLds: number[];
  corruptedLds: number[];
  clean: Record<HookKind, FloatArray>;
  corruptedResidPre: FloatArray;
  keys: FloatArray;
  values: FloatArray;
}

/** One patched run: an example, its patch set (none before the first difference), where it starts and enters. */
interface PatchRow {
  example: number;
  set: number;
  patches: readonly RowPatch[];
  start: number;
  entry: number;
}

/**
 * The logit difference of each example's corrupted run with each of its patch sets applied (patched[example][set]),
 * with each example's clean and corrupted logit differences. A patch takes the clean run's value at its hook, layer,
 * position (and head, for z); patches before the example's first differing position change nothing and are
 * dropped, and a set left empty is the corrupted run itself (no pass). Positions must exist in the example.
 */
export async function suffixPatchedLogitDiffs(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  patchSets: (example: number) => ReadonlyArray<readonly RowPatch[]>,
  options: RunOptions,
  /** The progress phase's name, and a number of rows per run in place of the budgets' (tests split runs with it). */
  how: { what?: string; rowsPerRun?: number } = {},
): Promise<{ cleanLds: number[]; corruptedLds: number[]; patched: number[][] }> {
  const precision = options.precision ?? 'float32';
  const cleanLds = new Array<number>(prepared.length).fill(0);
  const corruptedLds = new Array<number>(prepared.length).fill(0);
  const setsOf = prepared.map((_, e) => patchSets(e));
  const patched = setsOf.map((sets) => new Array<number>(sets.length).fill(0));
  const chunks = makeBatches(prepared, recordChunkSize(model, prepared, options.batchSize));
  const plans = chunks.map((chunk) => {
    const positions = Math.max(SUFFIX_RUN_POSITIONS, 2 * options.batchSize * longestPrompt(chunk.map((e) => prepared[e])));
    return planRuns(prepared, chunk, setsOf, { keys: SUFFIX_RUN_KEYS, positions, rows: how.rowsPerRun }, model.spec.nLayers);
  });
  const total = plans.reduce((sum, runs) => sum + 1 + runs.length, 0);
  const step = progressTracker(how.what ?? 'exact patching', 'run', total, options.onStep);
  let done = 0;
  const record = await sessionFor(model, 'patch-record', options);
  const suffix = plans.some((runs) => runs.length > 0) ? await sessionFor(model, 'suffix-patch', options) : undefined;
  for (const [c, chunk] of chunks.entries()) {
    checkCancelled(options.signal);
    step(done++);
    const recorded = await recordChunk(record.session, prepared, chunk, precision);
    for (const e of chunk) {
      cleanLds[e] = recorded.cleanLds[recorded.rowOf.get(e)!];
      corruptedLds[e] = recorded.corruptedLds[recorded.rowOf.get(e)!];
      // Sets with nothing to patch are the corrupted run; the rows below overwrite the others.
      patched[e].fill(corruptedLds[e]);
    }
    for (const run of plans[c]) {
      checkCancelled(options.signal);
      step(done++);
      const out = await suffix!.session.run(suffixFeeds(model, prepared, recorded, run, precision));
      asNumbers(out[PATCHED_LOGIT_DIFF]).forEach((ld, r) => (patched[run[r].example][run[r].set] = ld));
    }
  }
  step(total);
  return { cleanLds, corruptedLds, patched };
}

/**
 * The rows of a chunk's patch sets, in session runs: grouped by start position, each run sorted by entry layer (the
 * graph's batch grows with depth) and kept within the budgets (SUFFIX_RUN_KEYS, SUFFIX_RUN_POSITIONS).
 */
function planRuns(
  prepared: readonly PreparedExample[],
  chunk: readonly number[],
  setsOf: ReadonlyArray<ReadonlyArray<readonly RowPatch[]>>,
  budget: { keys: number; positions: number; rows?: number },
  nLayers: number,
): PatchRow[][] {
  const byStart = new Map<number, PatchRow[]>();
  for (const example of chunk) {
    const first = differingPositions(prepared[example])[0];
    if (first === undefined) continue; // identical prompts: every patch is a no-op
    setsOf[example].forEach((set, index) => {
      const patches = set.filter((p) => p.pos >= first);
      if (patches.length === 0) return;
      for (const p of patches) {
        if (p.pos >= prepared[example].tokens.length || p.layer < 0 || p.layer >= nLayers)
          throw new Error(`suffix patching: a patch at layer ${p.layer}, position ${p.pos} is outside example ${example}`);
      }
      const start = Math.min(...patches.map((p) => p.pos));
      const entry = Math.min(...patches.map((p) => p.layer));
      const row: PatchRow = { example, set: index, patches, start, entry };
      const group = byStart.get(start);
      if (group) group.push(row);
      else byStart.set(start, [row]);
    });
  }
  const runs: PatchRow[][] = [];
  for (const [, rows] of [...byStart.entries()].sort((a, b) => a[0] - b[0])) {
    // Each row's keys: the prefix before start and the longest suffix of the group (rows are padded to it).
    const keysPerRow = Math.max(...rows.map((r) => prepared[r.example].tokens.length));
    const positionsPerRow = keysPerRow - rows[0].start;
    const perRun = budget.rows ?? Math.max(1, Math.min(Math.floor(budget.keys / keysPerRow), Math.floor(budget.positions / positionsPerRow)));
    rows.sort((a, b) => a.entry - b.entry || a.example - b.example || a.set - b.set);
    // Dealt round-robin, so that every run has rows from the low layers: each run's batch grows with depth alike.
    const count = Math.ceil(rows.length / perRun);
    for (let k = 0; k < count; k++) runs.push(enteringAtLayer0(rows.filter((_, i) => i % count === k)));
  }
  return runs;
}

/**
 * The graph's first layer must have a row: a run whose rows all enter higher lets its lowest ones enter at layer 0
 * instead (layers below a patch reproduce the corrupted run, so the numbers are the same). An empty batch is what
 * WebGPU's kernels cannot take ("Invalid dispatch group size"); the CPU's can, but one rule for every device.
 */
function enteringAtLayer0(rows: PatchRow[]): PatchRow[] {
  const lowest = rows[0].entry;
  return lowest === 0 ? rows : rows.map((r) => (r.entry === lowest ? { ...r, entry: 0 } : r));
}

const floatArray = (precision: Precision, length: number): FloatArray => (precision === 'float64' ? new Float64Array(length) : new Float32Array(length));

/** One record pass over a chunk of examples: both logit differences and what the suffix-patch graph reads. */
async function recordChunk(
  session: ort.InferenceSession,
  prepared: readonly PreparedExample[],
  chunk: readonly number[],
  precision: Precision,
): Promise<Recorded> {
  const { feeds, seq } = batchFeeds(
    chunk.map((e) => prepared[e]),
    precision,
  );
  const out = await session.run(feeds);
  const data = (name: string) => out[name].data as FloatArray;
  return {
    seq,
    rowOf: new Map(chunk.map((e, row) => [e, row])),
    cleanLds: asNumbers(out[ATTRIBUTION_OUTPUTS.cleanLogitDiff]),
    corruptedLds: asNumbers(out[ATTRIBUTION_OUTPUTS.corruptedLogitDiff]),
    clean: Object.fromEntries(HOOK_KINDS.map((kind) => [kind, data(RECORD_OUTPUTS.clean(kind))])) as Record<HookKind, FloatArray>,
    corruptedResidPre: data(RECORD_OUTPUTS.corruptedResidPre),
    keys: data(RECORD_OUTPUTS.corruptedKeys),
    values: data(RECORD_OUTPUTS.corruptedValues),
  };
}

/** The suffix-patch graph's feeds for one run (see SUFFIX_PATCH_GRAPH_NAMES). */
function suffixFeeds(model: LoadedModel, prepared: readonly PreparedExample[], recorded: Recorded, run: readonly PatchRow[], precision: Precision) {
  const { nLayers, nHeads, dModel, dHead } = model.spec;
  const kvWidth = keyValueHeads(model.spec) * dHead;
  const start = run[0].start;
  const n = Math.max(...run.map((r) => prepared[r.example].tokens.length)) - start;
  const examples = [...new Set(run.map((r) => r.example))];
  const exampleSlot = new Map(examples.map((e, i) => [e, i]));
  const R = run.length;
  const E = examples.length;
  const type = feedType(precision);
  const { seq } = recorded;

  /** Rows of width `width` from a record output [batch, layer, seq, width] at positions from..from+count−1 (0 past the prompt). */
  const positions = (source: FloatArray, from: number, count: number, width: number) => {
    const target = floatArray(precision, E * nLayers * count * width);
    examples.forEach((e, slot) => {
      const row = recorded.rowOf.get(e)!;
      const available = Math.min(count, prepared[e].tokens.length - from);
      for (let l = 0; l < nLayers; l++) {
        const begin = ((row * nLayers + l) * seq + from) * width;
        target.set(source.subarray(begin, begin + available * width), (slot * nLayers + l) * count * width);
      }
    });
    return target;
  };
  const feeds: Record<string, ort.Tensor> = {
    [SUFFIX_INPUTS.start]: new ort.Tensor('int64', BigInt64Array.of(BigInt(start)), []),
    [SUFFIX_INPUTS.exampleIndex]: new ort.Tensor(
      'int64',
      BigInt64Array.from(run, (r) => BigInt(exampleSlot.get(r.example)!)),
      [R],
    ),
    [RECORD_OUTPUTS.corruptedResidPre]: new ort.Tensor(type, positions(recorded.corruptedResidPre, start, n, dModel), [E, nLayers, n, dModel]),
    [RECORD_OUTPUTS.corruptedKeys]: new ort.Tensor(type, positions(recorded.keys, 0, start, kvWidth), [E, nLayers, start, kvWidth / dHead, dHead]),
    [RECORD_OUTPUTS.corruptedValues]: new ort.Tensor(type, positions(recorded.values, 0, start, kvWidth), [E, nLayers, start, kvWidth / dHead, dHead]),
  };
  for (const kind of HOOK_KINDS) {
    const perHead = HOOKS[kind].perHead;
    feeds[RECORD_OUTPUTS.clean(kind)] = new ort.Tensor(
      type,
      positions(recorded.clean[kind], start, n, perHead ? nHeads * dHead : dModel),
      perHead ? [E, nLayers, n, nHeads, dHead] : [E, nLayers, n, dModel],
    );
    const width = perHead ? nHeads : 1;
    const mask = floatArray(precision, R * nLayers * n * width);
    run.forEach((row, r) => {
      for (const p of row.patches) if (p.hook === kind) mask[((r * nLayers + p.layer) * n + p.pos - start) * width + (perHead ? p.head : 0)] = 1;
    });
    feeds[PATCHING_INPUT(kind)] = new ort.Tensor(type, mask, perHead ? [R, nLayers, n, nHeads] : [R, nLayers, n]);
  }
  const entered = new BigInt64Array(nLayers);
  for (let l = 0, r = 0; l < nLayers; l++) {
    while (r < R && run[r].entry <= l) r++;
    entered[l] = BigInt(r);
  }
  feeds[SUFFIX_INPUTS.entered] = new ort.Tensor('int64', entered, [nLayers]);
  const first = Number(entered[0]);
  const ids = new BigInt64Array(first * n);
  for (let r = 0; r < first; r++) {
    const tokens = prepared[run[r].example].corruptedTokens;
    for (let p = start; p < Math.min(tokens.length, start + n); p++) ids[r * n + p - start] = BigInt(tokens[p].id);
  }
  feeds[SUFFIX_INPUTS.suffixIds] = new ort.Tensor('int64', ids, [first, n]);
  const last = floatArray(precision, R * n);
  run.forEach((row, r) => (last[r * n + prepared[row.example].tokens.length - 1 - start] = 1));
  feeds[BATCH_INPUTS.lastPosition] = new ort.Tensor(type, last, [R, n]);
  feeds[BATCH_INPUTS.correctIds] = new ort.Tensor(
    'int64',
    BigInt64Array.from(run, (r) => BigInt(prepared[r.example].correctId)),
    [R],
  );
  feeds[BATCH_INPUTS.incorrectIds] = new ort.Tensor(
    'int64',
    BigInt64Array.from(run, (r) => BigInt(prepared[r.example].incorrectId)),
    [R],
  );
  return feeds;
}

/**
 * Exact activation patching of each component in every example, as exact.ts's patchComponents (same arguments and
 * result): Σ_i (LD_patched,i − LD_corrupted,i) per component, not yet normalised. A component at the answer
 * (position null) is patched at each example's last position, or `fromEnd` positions before it; one at a position
 * an example lacks changes nothing.
 */
export async function patchComponentsBySuffix(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  components: readonly Component[],
  options: RunOptions,
): Promise<number[]> {
  const sets = (example: number) =>
    components.map((c): RowPatch[] => {
      const length = prepared[example].tokens.length;
      // A checked cell of prompts of several lengths is placed by its distance from the answer (fromEnd).
      const pos = c.position ?? length - 1 - (c.fromEnd ?? 0);
      return pos >= 0 && pos < length ? [{ hook: c.hook, layer: c.layer, pos, head: c.head ?? 0 }] : [];
    });
  const { corruptedLds, patched } = await suffixPatchedLogitDiffs(model, prepared, sets, options, { what: 'exact patching checks' });
  return components.map((_, c) => patched.reduce((sum, perSet, e) => sum + perSet[c] - corruptedLds[e], 0));
}

/** Which components a sweep patches: every one, each head's z at the answer, or resid_pre everywhere (run.ts). */
export type SweepComponents = 'all' | 'heads-at-answer' | 'resid-pre';

/**
 * Exact activation patching of every component of every example (run.ts runActivationPatching: same result),
 * normalised like the attributions; components before an example's first difference are exactly 0.
 */
export async function activationPatchingBySuffix(
  model: LoadedModel,
  dataset: Dataset,
  options: RunOptions & { components?: SweepComponents },
): Promise<{ cleanLogitDiff: number; corruptedLogitDiff: number; examples: ExampleAttributions[] }> {
  const prepared = prepareExamples(model, dataset, []);
  const { nLayers, nHeads } = model.spec;
  const headsOnly = options.components === 'heads-at-answer';
  const kinds: readonly HookKind[] = headsOnly ? ['z'] : options.components === 'resid-pre' ? ['resid_pre'] : HOOK_KINDS;
  const componentsOf = (example: number): RowPatch[] => {
    const length = prepared[example].tokens.length;
    const first = differingPositions(prepared[example])[0] ?? length;
    const list: RowPatch[] = [];
    for (const kind of kinds)
      for (let layer = 0; layer < nLayers; layer++)
        for (let pos = headsOnly ? length - 1 : first; pos < length; pos++) {
          if (HOOKS[kind].perHead) for (let head = 0; head < nHeads; head++) list.push({ hook: kind, layer, pos, head });
          else list.push({ hook: kind, layer, pos, head: 0 });
        }
    return list;
  };
  const components = prepared.map((_, e) => componentsOf(e));
  const { cleanLds, corruptedLds, patched } = await suffixPatchedLogitDiffs(model, prepared, (e) => components[e].map((c) => [c]), options, {
    what: 'activation patching',
  });
  const cleanLogitDiff = mean(cleanLds);
  const corruptedLogitDiff = mean(corruptedLds);
  const scale = runScale(options, dataset, cleanLogitDiff, corruptedLogitDiff, prepared.length);
  const examples = prepared.map((example, e): ExampleAttributions => {
    const length = example.tokens.length;
    const delta: ExampleAttributions = {
      z: Array.from({ length: nLayers }, () => Array.from({ length }, () => new Array<number>(nHeads).fill(0))),
      residPre: Array.from({ length: nLayers }, () => new Array<number>(length).fill(0)),
      attnOut: Array.from({ length: nLayers }, () => new Array<number>(length).fill(0)),
      mlpOut: Array.from({ length: nLayers }, () => new Array<number>(length).fill(0)),
    };
    components[e].forEach((c, i) => {
      const d = (patched[e][i] - corruptedLds[e]) * scale;
      const field = HOOKS[c.hook].field;
      if (field === 'z') delta.z[c.layer][c.pos][c.head] = d;
      else delta[field][c.layer][c.pos] = d;
    });
    return delta;
  });
  return { cleanLogitDiff, corruptedLogitDiff, examples };
}

/**
 * Each head's z patched at each example's answer position, [example][layer][head] in LD units (LD_patched −
 * LD_corrupted, not normalised), with both logit differences: the exact head map from prepared examples, for a run
 * that has them already (`auto` choosing exact heads when patchCost.ts says they fit its budget).
 */
export async function headsAtAnswerBySuffix(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  options: RunOptions,
): Promise<{ cleanLds: number[]; corruptedLds: number[]; heads: number[][][] }> {
  const { nLayers, nHeads } = model.spec;
  const sets = (example: number): RowPatch[][] =>
    Array.from({ length: nLayers * nHeads }, (_, i) => [
      { hook: 'z', layer: Math.floor(i / nHeads), pos: prepared[example].tokens.length - 1, head: i % nHeads },
    ]);
  const { cleanLds, corruptedLds, patched } = await suffixPatchedLogitDiffs(model, prepared, sets, options, { what: 'exact heads' });
  const heads = patched.map((lds, e) =>
    Array.from({ length: nLayers }, (_, l) => Array.from({ length: nHeads }, (_, h) => lds[l * nHeads + h] - corruptedLds[e])),
  );
  return { cleanLds, corruptedLds, heads };
}
