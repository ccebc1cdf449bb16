// How much memory an attribution-patching run needs, estimated from the safetensors headers (no weights read), and a
// check against what the machine has, so that a run that cannot fit stops with the numbers instead of crashing.
//
// Estimate (bytes):
//   weights      = S·(4·P + 4·Pm) + S16         every weight as float32 in each of the S sessions the run holds
//                                                (F16/BF16 are cast in the graph; sessions share nothing), plus
//                                                ONNX Runtime's pre-packed copy of each matrix that feeds a MatMul
//                                                (Pm: the 2-D weights other than embedding tables; 0 for a run
//                                                without pre-packing), plus the F16/BF16 bytes (S16) read in while
//                                                they are cast
//   activations  = 4·L·B·T·(A·d + M·m + H·h·T)   what one session run keeps alive at its peak: the clean pass's hook
//                                                values, the corrupted pass's activations that the backward pass
//                                                reads, and the backward pass's gradients, per layer and token;
//                                                × (1/3 + 2/3·(T − D)/T) when the corrupted pass and the backward
//                                                start after D shared tokens (CLEAN_PASS_SHARE)
//   overhead     = 64 MiB                        graph, session and arena slack
//   process      = 128 MiB                       the Node process and ONNX Runtime's library, resident before any
//                                                session (in the peak of a whole process, not asked of free memory)
//   results      = V·RV + N·RT + E·RE + V·RW       what grows with the dataset, held until the Result is written:
//                                                every example's arrays as JS numbers (V values: attributions
//                                                L·T·(H+3), AtP* nodes L·T·(2H+3K), token scores 2T), its token lists
//                                                and ids (N tokens, clean and corrupted), per-example records (E
//                                                examples), and at write time the sidecar's float32 copy (RW per value)
//                                                and the JSON text
// with P parameters, L layers, B the batch size, T the longest prompt in tokens, d = d_model, m = d_mlp, h = heads,
// A = 12, M = 6, H = 2.
// Fitted to the growth of the peak resident memory (VmHWM) in runs on the CPU (onnxruntime-node 1.2x, x64):
//   - GPT-2-shaped, 4 layers, d 512, 8 heads, d_mlp 512 and 4096, batch 8–16, 128–256 tokens: the per-token
//     growth fits 12.0·d + 5.1·m + 1.9–2.0·h·T floats per layer;
//   - 8 layers, d 1024, batch 1 × 8 tokens, F32 / F16 / BF16: 1.13 / 1.42 / 1.41 GB, i.e. 4·P + ~4·Pm, and the
//     half-precision runs 2·P bytes more.
//   - results: 5,000 TinySQL examples on models/tinysql-demo (docs/BENCHMARKS.md, "Memory of large datasets"), and
//     test/unit/memory.test.ts's many-short-examples run, where the results dominate.
//   - the benchmark matrix (docs/BENCHMARKS.md; GPT-2-small, Qwen2.5-0.5B- and Llama-3.2-1B-shaped, batch 1 and 8,
//     16–512 tokens): the whole process's peak over repeated runs is 1.1–1.3× below the estimate since the CPU
//     sessions run without ONNX Runtime's memory pattern (runtime.ts); with it the second run of a shape allocated
//     a planned block on top of the first run's arena chunks and peaked at up to 1.5× the estimate.
// The factors are those fits rounded up, so the estimate errs high; test/unit/memory.test.ts checks it against
// measured runs and the matrix's peaks.
//
// GPUs: onnxruntime-node has no portable query for a GPU's free memory (CUDA, DirectML, CoreML, WebGPU alike), so
// the GPU side is checked only when the caller knows its free memory (deviceFreeBytes, e.g. from nvidia-smi);
// otherwise the estimate is printed and a note says it was not checked. The host side is checked for the weights,
// which ONNX Runtime reads into host memory before copying them to the device.
import * as os from 'node:os';
import { InputError } from '../../shared/errors';
import { fieldRef } from '../../shared/fields';
import { keyValueHeads, type ModelSpec } from './config';
import type { TensorEntry } from '../../lib/model/safetensors';

export const ACTIVATION_FACTORS = Object.freeze({ dModel: 12, dMlp: 6, attention: 2 });
/**
 * Embedding tables are gathered from, never multiplied: ONNX Runtime does not pre-pack them, and the graphs gather
 * their rows as stored and cast only those (architectures/common.ts tableRows), so they stay at their stored size.
 */
const EMBEDDING = /(^|\.)(wte|wpe|embed_tokens|embed_positions|word_embeddings|position_embeddings|lm_head)(\.|$)/;
export const OVERHEAD_BYTES = 64 * 2 ** 20;
export const PROCESS_BYTES = 128 * 2 ** 20;
/**
 * Bytes per held value (RV: a double in nested JS arrays, with the arrays' own headers), per token (RT: a token
 * object with its text, and its id), per example (RE: the example's records, prompts and JSON line), and per value
 * at write time (RW: the sidecar's float32 column, its growth slack and the encoded file).
 */
export const RESULT_FACTORS = Object.freeze({ value: 28, token: 200, example: 8192, write: 12 });

export interface RunShape {
  batchSize: number;
  /** Sessions the run builds and holds at once (the attribution graph's, and an activation-patching one for checks, say); default 1. */
  sessions?: number;
  /** Whether the sessions pre-pack their weight matrices (default true; see SessionSettings.prepacking). */
  prepacking?: boolean;
  /** The longest prompt in tokens (batches are padded to their longest row). */
  seqLen: number;
  /**
   * Leading tokens that every example's clean and corrupted prompts share (the attribution graph's corrupted pass
   * and backward start after them: graphs.ts); absent for graphs that run every position (AtP*, exact patching).
   */
  sharedPrefix?: number;
  /** What grows with the dataset (absent: not counted, e.g. a single-batch estimate). */
  dataset?: DatasetShape;
}

/** The size of a run's per-example results: see datasetShape. */
export interface DatasetShape {
  examples: number;
  /** Clean plus corrupted tokens over all examples. */
  tokens: number;
  /** Values in every example's arrays (attributions, AtP* nodes, token scores). */
  values: number;
}

/** Layers, query heads and key/value heads (fewer with grouped-query attention): what the per-example arrays hold. */
export interface HeadCounts {
  nLayers: number;
  nHeads: number;
  kvHeads: number;
}

export const headCounts = (spec: ModelSpec): HeadCounts => ({ nLayers: spec.nLayers, nHeads: spec.nHeads, kvHeads: keyValueHeads(spec) });

/** The dataset's shape for the estimate: clean prompt lengths, and whether AtP*'s node arrays are kept too. */
export function datasetShape(heads: HeadCounts, cleanLengths: readonly number[], corruptedTokens: number, atpStar: boolean): DatasetShape {
  const { nLayers, nHeads, kvHeads } = heads;
  const perToken = nLayers * (nHeads + 3 + (atpStar ? 2 * nHeads + 3 * kvHeads : 0)) + 2;
  let clean = 0;
  for (const length of cleanLengths) clean += length;
  return { examples: cleanLengths.length, tokens: clean + corruptedTokens, values: clean * perToken };
}

/** Bytes of the per-example results, by the formula above. */
export function resultBytes(dataset: DatasetShape): number {
  const { value, token, example, write } = RESULT_FACTORS;
  return dataset.values * (value + write) + dataset.tokens * token + dataset.examples * example;
}

export interface MemoryEstimate {
  parameters: number;
  /** The weights' bytes on disk, and their dtype(s). */
  storedBytes: number;
  storedDtype: string;
  /** Weights as the sessions hold them (float32, embedding tables as stored; each session its own copy), plus the stored bytes while they are cast. */
  weightBytes: number;
  /** Sessions counted in weightBytes, and the weights of one of them (float32 and pre-packed copies). */
  sessions: number;
  sessionWeightBytes: number;
  activationBytes: number;
  /** What grows with the dataset (0 when RunShape.dataset was not given). */
  resultBytes?: number;
  examples?: number;
  overheadBytes: number;
  /** The process itself (Node, ONNX Runtime's library): in the total, already resident when the check runs. */
  processBytes: number;
  totalBytes: number;
  batchSize: number;
  seqLen: number;
}

type Dims = Pick<ModelSpec, 'nLayers' | 'dModel' | 'dMlp' | 'nHeads'>;

/**
 * The share of a full run's activations that the clean pass holds (its hook values), which a shared prefix does not
 * shorten; the rest (the corrupted pass and the backward) scales with the positions after the prefix. Measured: a
 * GPT-2-shaped run whose prompts differ only in their last token (test/unit/memory.test.ts) keeps about 22% of a full
 * run's activations; 1/3 errs high.
 */
export const CLEAN_PASS_SHARE = 1 / 3;

/** Activation bytes of one session run, by the formula above. */
export function activationBytes(dims: Dims, run: RunShape): number {
  const { dModel, dMlp, attention } = ACTIVATION_FACTORS;
  const perToken = dModel * dims.dModel + dMlp * dims.dMlp + attention * dims.nHeads * run.seqLen;
  const suffix = run.sharedPrefix ? Math.max(0, run.seqLen - run.sharedPrefix) / run.seqLen : 1;
  return 4 * dims.nLayers * run.batchSize * run.seqLen * perToken * (CLEAN_PASS_SHARE + (1 - CLEAN_PASS_SHARE) * suffix);
}

/**
 * The memory a run needs, from the model's dimensions and its weight index (indexModelWeights: headers only).
 * `model` can be a LoadedModel.
 */
export function estimateRunMemory(model: { spec: Dims; weights: ReadonlyMap<string, TensorEntry> }, run: RunShape): MemoryEstimate {
  if (!Number.isInteger(run.batchSize) || run.batchSize < 1)
    throw new InputError(`${fieldRef('batchSize')} must be a positive integer, got ${run.batchSize}`, { field: 'batchSize' });
  if (!Number.isInteger(run.seqLen) || run.seqLen < 1) throw new Error(`estimateRunMemory: seqLen must be a positive integer, got ${run.seqLen}`);
  let parameters = 0;
  let matrixParameters = 0;
  let storedBytes = 0;
  let castBytes = 0;
  const dtypes = new Set<string>();
  let heldBytes = 0;
  for (const entry of model.weights.values()) {
    const elements = entry.shape.reduce((product, size) => product * size, 1);
    parameters += elements;
    storedBytes += entry.length;
    dtypes.add(entry.dtype);
    if (EMBEDDING.test(entry.name)) {
      heldBytes += entry.length;
      continue;
    }
    heldBytes += 4 * elements;
    if (entry.shape.length === 2) matrixParameters += elements;
    if (entry.dtype !== 'F32') castBytes += entry.length;
  }
  const sessions = run.sessions ?? 1;
  const sessionWeightBytes = heldBytes + (run.prepacking === false ? 0 : 4 * matrixParameters);
  const weightBytes = sessions * sessionWeightBytes + castBytes;
  const activations = activationBytes(model.spec, run);
  const results = run.dataset ? resultBytes(run.dataset) : 0;
  return {
    parameters,
    storedBytes,
    storedDtype: [...dtypes].sort().join('+'),
    weightBytes,
    sessions,
    sessionWeightBytes,
    activationBytes: activations,
    overheadBytes: OVERHEAD_BYTES,
    processBytes: PROCESS_BYTES,
    ...(run.dataset ? { resultBytes: results, examples: run.dataset.examples } : {}),
    totalBytes: weightBytes + activations + results + OVERHEAD_BYTES + PROCESS_BYTES,
    batchSize: run.batchSize,
    seqLen: run.seqLen,
  };
}

/** "4.9 GB" (decimal units, as system monitors show free memory), "850 MB" below 1 GB. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${Math.round(bytes / 1e6)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

export interface SystemMemory {
  /** Bytes the process can still get: os.freemem(), capped by a container's memory limit. */
  free: number;
  total: number;
  platform: NodeJS.Platform;
}

/** The machine's memory now; in a container with a memory limit, the limit counts. */
export function systemMemory(): SystemMemory {
  let free = os.freemem();
  let total = os.totalmem();
  const limit = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : undefined;
  if (limit !== undefined && limit > 0 && limit < total) {
    total = limit;
    free = Math.min(free, Math.max(0, limit - process.memoryUsage.rss()));
  }
  return { free, total, platform: process.platform };
}

const GPU_DEVICES = new Set(['cuda', 'dml', 'coreml', 'webgpu']);

/** One line for the CLI to print before a run. */
export function describeMemoryEstimate(estimate: MemoryEstimate, device: string = 'cpu', system: SystemMemory = systemMemory()): string {
  const cast = estimate.storedDtype === 'F32' ? 'float32' : `float32 from ${estimate.storedDtype}`;
  const where = GPU_DEVICES.has(device)
    ? `${formatBytes(system.free)} host memory free; GPU memory is not queried`
    : `${formatBytes(system.free)} free of ${formatBytes(system.total)}`;
  return (
    `memory: needs about ${formatBytes(estimate.totalBytes)} ` +
    `(weights ${formatBytes(estimate.weightBytes)} as ${cast}${estimate.sessions > 1 ? ` in ${estimate.sessions} sessions` : ''}, activations ${formatBytes(estimate.activationBytes)} ` +
    `for batch ${estimate.batchSize} × ${estimate.seqLen} tokens` +
    `${estimate.resultBytes ? `, results ${formatBytes(estimate.resultBytes)} for ${estimate.examples} examples` : ''}); ${where}`
  );
}

export interface CheckOptions {
  system?: SystemMemory;
  /** A GPU's free memory when the caller knows it (e.g. from nvidia-smi); without it the GPU side is not checked. */
  deviceFreeBytes?: number;
  /**
   * How many of the run's sessions this process already holds (sessionIsWarm): their weights are already in memory,
   * counted as used rather than free, so the host check asks only for the rest.
   */
  residentSessions?: number;
}

function smallerBatchHint(estimate: MemoryEstimate): string {
  if (estimate.batchSize === 1) return 'a smaller model, or a machine with more memory';
  const perExample = estimate.activationBytes / estimate.batchSize;
  const atOne = estimate.totalBytes - estimate.activationBytes + perExample;
  return `a smaller batch size (${fieldRef('batchSize', 1)} needs about ${formatBytes(atOne)}), a smaller model, or a machine with more memory`;
}

/**
 * Throws an InputError when the run cannot fit; returns notes (possibly none) for what could not be checked.
 * `device` is the device the run will use: 'cpu' (and 'auto', whose fallback is the CPU) checks the whole estimate
 * against free RAM; a GPU checks the weights against host RAM (ONNX Runtime stages them there) and the whole estimate
 * against deviceFreeBytes when given. On macOS os.freemem() leaves out reclaimable cache, so there only the total counts
 * as a hard limit and a shortfall against "free" is a note.
 */
export function checkMemory(estimate: MemoryEstimate, device: string, options: CheckOptions = {}): string[] {
  const system = options.system ?? systemMemory();
  const notes: string[] = [];
  const gpu = GPU_DEVICES.has(device);
  const resident = Math.min(options.residentSessions ?? 0, estimate.sessions);
  // Every session already built: nothing to load or cast. Otherwise the others' copies and the cast.
  const loading = resident === estimate.sessions ? 0 : estimate.weightBytes - resident * estimate.sessionWeightBytes;
  // The process is running already: its own memory is not asked of what is free.
  const hostNeed = gpu ? loading + estimate.overheadBytes : estimate.totalBytes - estimate.processBytes - estimate.weightBytes + loading;
  const what = gpu ? 'in host memory to load the weights' : '';
  const fail = (available: string) =>
    new InputError(
      `not enough memory: this run needs about ${formatBytes(hostNeed)}${what ? ` ${what}` : ''}, ${available} ` +
        `(weights ${formatBytes(estimate.weightBytes)}, activations ${formatBytes(estimate.activationBytes)} for batch ${estimate.batchSize} × ${estimate.seqLen} tokens). ` +
        `Use ${gpu ? 'a smaller model, or close other programs' : smallerBatchHint(estimate)}.`,
      { field: 'batchSize' },
    );
  if (hostNeed > system.total) throw fail(`${formatBytes(system.total)} in total`);
  if (hostNeed > system.free) {
    if (system.platform === 'darwin')
      notes.push(
        `this run needs about ${formatBytes(hostNeed)} and macOS reports ${formatBytes(system.free)} free (not counting reclaimable cache); it may swap`,
      );
    else throw fail(`${formatBytes(system.free)} free`);
  }
  if (gpu) {
    if (options.deviceFreeBytes === undefined) {
      notes.push(
        `GPU memory is not checked (onnxruntime-node cannot query it): this run needs about ${formatBytes(estimate.totalBytes)} on the ${device} device`,
      );
    } else if (estimate.totalBytes > options.deviceFreeBytes) {
      throw new InputError(
        `not enough GPU memory: this run needs about ${formatBytes(estimate.totalBytes)}, ${formatBytes(options.deviceFreeBytes)} free on the ${device} device. ` +
          `Use ${smallerBatchHint(estimate)}, or ${fieldRef('device', 'cpu')}.`,
        { field: 'batchSize' },
      );
    }
  }
  return notes;
}

/** A run's configuration that fits in memory (fitRunToMemory) and what was said about it. */
export interface RunFit {
  estimate: MemoryEstimate;
  batchSize: number;
  prepacking: boolean;
  /** checkMemory's notes for the chosen configuration, and a note when it is not the requested one. */
  notes: string[];
}

/**
 * The run as requested when it fits; else the largest batch that fits with the requested pre-packing, else the largest
 * that fits without pre-packed weights (one copy of the weight matrices fewer, slower products). Batches only group
 * examples for speed: every example's numbers are computed the same way whatever the batch. When nothing fits, the
 * smallest configuration's error (from checkMemory, with its numbers).
 */
export function fitRunToMemory(
  requested: { batchSize: number; prepacking: boolean },
  estimateFor: (batchSize: number, prepacking: boolean) => MemoryEstimate,
  check: (estimate: MemoryEstimate, prepacking: boolean) => string[],
): RunFit {
  // A batch size that is no size at all is the estimate's InputError, before anything is tried.
  estimateFor(requested.batchSize, requested.prepacking);
  const tried: Array<{ batchSize: number; prepacking: boolean }> = [];
  for (const prepacking of requested.prepacking ? [true, false] : [false])
    for (let batchSize = requested.batchSize; batchSize >= 1; batchSize--) tried.push({ batchSize, prepacking });
  let firstError: InputError | undefined;
  let lastError: unknown;
  for (const candidate of tried) {
    const estimate = estimateFor(candidate.batchSize, candidate.prepacking);
    try {
      const notes = check(estimate, candidate.prepacking);
      if (firstError) notes.unshift(fitNote(requested, candidate, firstError));
      return { estimate, ...candidate, notes };
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      firstError ??= error;
      lastError = error;
    }
  }
  throw lastError;
}

function fitNote(requested: { batchSize: number }, chosen: { batchSize: number; prepacking: boolean }, refusal: InputError): string {
  const need = /needs about (.+?), (.+?) \(weights/.exec(refusal.message);
  const why = need ? ` (it needs about ${need[1]}, ${need[2]})` : '';
  const how = `batches of ${chosen.batchSize}${chosen.prepacking ? '' : ' without pre-packed weights (slower matrix products)'}`;
  return `memory: batch size ${requested.batchSize} does not fit${why}; running ${how}. The numbers are the same: batches only group examples`;
}
