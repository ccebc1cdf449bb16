// A dataset split across machines or jobs: `atp patch --shard i/n` runs one contiguous slice of the examples and
// writes its values raw (LD units), and `atp merge` normalises them all by the whole dataset's baselines, giving
// the Result one run over the whole dataset gives (the same per-example numbers; sums to float rounding).
import { createHash } from 'node:crypto';
import { InputError } from '../../shared/errors';
import { fieldRef } from '../../shared/fields';
import type { Dataset } from '../../lib/dataset/jsonl';
import type { LoadedModel } from '../model/load';
import { runAttributionPatching } from './run';
import type { PatchingOptions } from './options';
import { modelRecord } from './assemble';
import {
  type AtpStarSummary,
  type ExampleAttributions,
  type ExampleResult,
  MAX_SHARD_COUNT,
  RESULT_SCHEMA,
  type Result,
  type ShardInfo,
  sumNodeMaps,
  summarizeHeads,
  summarizePositions,
} from '../../shared/result';
import { mean, normalisation } from './normalisation';
import { readResultFile } from '../../lib/files/resultFile';
import { readInputFile } from '../../lib/files/readInput';

/** Parses "i/n" (1 ≤ i ≤ n). */
export function parseShard(text: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!match || !Number.isSafeInteger(count) || count < 1 || count > MAX_SHARD_COUNT || index < 1 || index > count) {
    throw InputError.about('shard', `expected i/n with 1 ≤ i ≤ n ≤ ${MAX_SHARD_COUNT} (e.g. 2/4), got "${text}"`);
  }
  return { index, count };
}

/** Shard i of n (1-based) of `total` examples: contiguous, sizes differing by at most one (the first total mod n one larger). */
export function shardRange(total: number, index: number, count: number): { first: number; size: number } {
  const base = Math.floor(total / count);
  const extra = total % count;
  const i = index - 1;
  return { first: i * base + Math.min(i, extra), size: base + (i < extra ? 1 : 0) };
}

/** "sha256:<hex>" of a file's bytes (what ShardInfo.datasetHash records). */
export function fileHash(file: string): string {
  return `sha256:${createHash('sha256').update(readInputFile(file, 'dataset')).digest('hex')}`;
}

/**
 * Runs shard `index` of `count` of the dataset with raw values (see ShardInfo). An empty slice (more shards than
 * examples) runs nothing and gives an empty shard, so any n works for any dataset.
 */
export async function runShard(
  model: LoadedModel,
  dataset: Dataset,
  options: PatchingOptions,
  shard: { index: number; count: number; datasetHash: string },
): Promise<Result> {
  if ((options.check ?? 0) > 0) {
    throw new InputError(
      `${fieldRef('check')} cannot run with ${fieldRef('shard')}: checks choose components from the whole dataset's attributions (run them on the merged result's dataset)`,
      { field: 'check' },
    );
  }
  const { first, size } = shardRange(dataset.examples.length, shard.index, shard.count);
  const info: ShardInfo = {
    index: shard.index,
    count: shard.count,
    firstExample: first,
    datasetExamples: dataset.examples.length,
    datasetHash: shard.datasetHash,
  };
  const slice: Dataset = { file: dataset.file, examples: dataset.examples.slice(first, first + size) };
  if (size === 0) return emptyShard(model, dataset, options, info);
  const result = await runAttributionPatching(model, slice, { ...options, raw: true });
  return { ...result, shard: info };
}

function emptyShard(model: LoadedModel, dataset: Dataset, options: PatchingOptions, shard: ShardInfo): Result {
  const { nLayers, nHeads } = model.spec;
  const requested = options.method ?? 'atp';
  // The method of an empty shard is what was asked for; the merge takes the method of the shards that ran.
  const method = requested === 'auto' ? 'atp' : requested;
  return {
    schema: RESULT_SCHEMA,
    shard,
    createdAt: new Date().toISOString(),
    dataset: { file: dataset.file, examples: 0 },
    model: modelRecord(model),
    device: options.device,
    metric: { cleanLogitDiff: 0, corruptedLogitDiff: 0, name: 'normalized-logit-diff' },
    run: { requested, method, passes: { forward: 0, backward: 0 }, reason: 'empty shard: no examples' },
    methods: {
      attributions: method === 'atpstar' ? 'atp' : method,
      heads: method === 'atpstar' ? 'atp' : method,
      positions: method === 'atpstar' ? 'atp' : method,
      tokenScores: method,
    },
    heads: Array.from({ length: nLayers }, () => new Array<number>(nHeads).fill(0)),
    positions: null,
    examples: [],
    warnings: [],
  };
}

export interface ShardFile {
  file: string;
  result: Result;
}

/** Reads and checks shard files (readResultFile: a large shard has a sidecar), refusing a file that is not a shard. */
export function readShards(files: readonly string[]): ShardFile[] {
  return files.map((file) => {
    const result = readResultFile(file);
    if (result.schema !== RESULT_SCHEMA) throw new InputError(`${file}: field "schema" is ${JSON.stringify(result.schema)}; shards must be "${RESULT_SCHEMA}"`);
    if (!result.shard) throw new InputError(`${file}: not a shard (no field "shard"): make shards with \`atp patch --shard i/n\``);
    return { file, result };
  });
}

const MODEL_FIELDS = ['source', 'architecture', 'modelType', 'layers', 'heads', 'dModel', 'dHead', 'dtype'] as const;

/** Refuses unless `value` agrees across the shards: names both files and the field. */
function agree<T>(shards: readonly ShardFile[], field: string, value: (r: Result) => T): void {
  const first = shards[0];
  const expected = JSON.stringify(value(first.result));
  for (const other of shards.slice(1)) {
    const found = JSON.stringify(value(other.result));
    if (found !== expected) {
      throw new InputError(`${other.file}: field "${field}" is ${found}, but ${first.file} has ${expected}: shards of different runs cannot be merged`);
    }
  }
}

/** Combines the shards of one run (any order) into the Result one run over the whole dataset gives. */
export function mergeShards(input: readonly ShardFile[]): Result {
  if (input.length === 0) throw new InputError('atp merge needs at least one shard file');
  const shards = [...input].sort((a, b) => a.result.shard!.index - b.result.shard!.index);
  agree(shards, 'schema', (r) => r.schema);
  agree(shards, 'shard.count', (r) => r.shard!.count);
  agree(shards, 'shard.datasetHash', (r) => r.shard!.datasetHash);
  agree(shards, 'shard.datasetExamples', (r) => r.shard!.datasetExamples);
  for (const key of MODEL_FIELDS) agree(shards, `model.${key}`, (r) => r.model[key]);
  agree(shards, 'run.requested', (r) => r.run?.requested);
  const count = shards[0].result.shard!.count;
  const total = shards[0].result.shard!.datasetExamples;
  shards.forEach((s, i) => {
    const { index } = s.result.shard!;
    if (i > 0 && shards[i - 1].result.shard!.index === index)
      throw new InputError(`${s.file} and ${shards[i - 1].file}: both are shard ${index}/${count} (field "shard.index")`);
  });
  const present = new Set(shards.map((s) => s.result.shard!.index));
  const missing = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !present.has(i));
  if (missing.length > 0)
    throw new InputError(
      `shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${count} missing (field "shard.index" of the files given: ${[...present].join(', ')})`,
    );
  for (const s of shards) {
    const { index, firstExample } = s.result.shard!;
    const { first, size } = shardRange(total, index, count);
    if (firstExample !== first || s.result.examples.length !== size) {
      throw new InputError(
        `${s.file}: shard ${index}/${count} of ${total} examples must hold examples ${first}…${first + size - 1} (${size}), but it has ${s.result.examples.length} from ${firstExample} (fields "shard.firstExample", "examples")`,
      );
    }
  }
  // An empty shard ran nothing: its method is only what was asked for, so the methods come from the shards that ran.
  const ran = shards.filter((s) => s.result.examples.length > 0);
  if (ran.length === 0) throw new InputError(`${shards[0].file}: every shard is empty (the dataset has no examples)`);
  agree(ran, 'run.method', (r) => r.run?.method);
  agree(ran, 'methods', (r) => r.methods);
  agree(ran, 'atpStar.kvHeads', (r) => r.atpStar?.kvHeads);
  agree(ran, 'atpStar.gradDrop', (r) => r.atpStar?.gradDrop !== undefined);
  // Shards of one model: the same weights and tokenizer bytes (an empty shard ran nothing and records none).
  agree(ran, 'provenance.modelFiles', (r) => r.provenance?.modelFiles);
  agree(ran, 'provenance.engineVersion', (r) => r.provenance?.engineVersion);
  // One precision: a merge of float16 and float32 shards would be neither.
  agree(ran, 'runtime.precision', (r) => r.runtime?.precision);

  const raw = ran.flatMap((s) => s.result.examples);
  const cleanLogitDiff = mean(raw.map((e) => e.cleanLogitDiff));
  const corruptedLogitDiff = mean(raw.map((e) => e.corruptedLogitDiff));
  const first = ran[0].result;
  const scale = normalisation({ file: first.dataset.file, examples: [] }, cleanLogitDiff, corruptedLogitDiff, raw.length);
  const examples = raw.map((e) => scaleExample(e, scale));
  const heads = summarizeHeads(examples);
  const positions = summarizePositions(examples);
  const atpStar = first.atpStar
    ? mergeAtpStar(
        ran.map((s) => s.result),
        examples,
        first.model.layers,
        first.model.heads,
        scale,
        positions !== null,
      )
    : undefined;

  const passes = { forward: 0, backward: 0 };
  // Keys come from the shard files: summed in a Map and made an object by Object.fromEntries (which defines each
  // key), so "constructor" and "__proto__" are keys like any other, never Object.prototype's.
  const timings = new Map<string, number>();
  const warnings: string[] = [];
  for (const { result } of shards) {
    passes.forward += result.run?.passes.forward ?? 0;
    passes.backward += result.run?.passes.backward ?? 0;
    for (const [key, value] of Object.entries(result.timings ?? {})) timings.set(key, (timings.get(key) ?? 0) + value);
    for (const warning of result.warnings) if (!warnings.includes(warning)) warnings.push(warning);
  }
  const devices = [...new Set(ran.map((s) => s.result.device))];
  return {
    schema: RESULT_SCHEMA,
    merged: { shards: count },
    createdAt: new Date().toISOString(),
    // The shards read the same file (datasetHash agrees), so they agree on the text's hash too, when they have one.
    dataset: {
      file: first.dataset.file,
      examples: examples.length,
      contentHash: shards.every((s) => s.result.dataset.contentHash === first.dataset.contentHash) ? first.dataset.contentHash : undefined,
    },
    model: first.model,
    device: devices.join(', '),
    runtime: first.runtime ? { ...first.runtime, ...mergedLossScale(ran.map((s) => s.result.runtime?.lossScale)) } : undefined,
    provenance: first.provenance ? { ...first.provenance, device: devices.join(', ') } : undefined,
    metric: { cleanLogitDiff, corruptedLogitDiff, name: 'normalized-logit-diff' },
    run: first.run ? { ...first.run, passes, reason: `${first.run.reason} (merged from ${count} shards)` } : undefined,
    methods: first.methods,
    heads,
    positions,
    atpStar,
    examples,
    warnings,
    timings: Object.fromEntries(timings),
  };
}

function scaleExample(e: ExampleResult, scale: number): ExampleResult {
  const s1 = (row: number[]) => row.map((v) => v * scale);
  const s2 = (m: number[][]) => m.map(s1);
  const a: ExampleAttributions = e.attributions;
  return {
    ...e,
    attributions: { z: a.z.map(s2), residPre: s2(a.residPre), attnOut: s2(a.attnOut), mlpOut: s2(a.mlpOut) },
    tokenScores: e.tokenScores ? { ...e.tokenScores, values: s1(e.tokenScores.values), joint: e.tokenScores.joint * scale } : undefined,
    atpStar: e.atpStar
      ? { q: e.atpStar.q.map(s2), qLinear: e.atpStar.qLinear.map(s2), k: e.atpStar.k.map(s2), kLinear: e.atpStar.kLinear.map(s2), v: e.atpStar.v.map(s2) }
      : undefined,
  };
}

/** The AtP* summary of the merged examples; GradDrop (magnitudes, scaled by |scale|) from the shards' raw sums. */
function mergeAtpStar(
  shards: readonly Result[],
  examples: readonly ExampleResult[],
  nLayers: number,
  nHeads: number,
  scale: number,
  sameLength: boolean,
): AtpStarSummary {
  const kvHeads = shards[0].atpStar!.kvHeads;
  const summary: AtpStarSummary = {
    kvHeads,
    maps: sumNodeMaps(
      examples.map((e) => e.atpStar!),
      nLayers,
      nHeads,
      kvHeads,
    ),
  };
  if (shards[0].atpStar!.gradDrop) {
    const size = Math.abs(scale);
    const add = (maps: number[][][]) => maps[0].map((row, l) => row.map((_, c) => maps.reduce((sum, m) => sum + m[l][c], 0) * size));
    const drops = shards.map((s) => s.atpStar!.gradDrop!);
    const positions = sameLength && drops.every((d) => d.positions !== null) ? add(drops.map((d) => d.positions!)) : null;
    summary.gradDrop = { heads: add(drops.map((d) => d.heads)), positions };
  }
  return summary;
}

/** float16 shards' loss scales as one range (the range over all their batches); nothing when none recorded one. */
function mergedLossScale(scales: ReadonlyArray<{ min: number; max: number } | undefined>): { lossScale?: { min: number; max: number } } {
  const known = scales.filter((s) => s !== undefined);
  if (known.length === 0) return {};
  return { lossScale: { min: Math.min(...known.map((s) => s.min)), max: Math.max(...known.map((s) => s.max)) } };
}
