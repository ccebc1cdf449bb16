// Messages between the extension host and the engine's child process (src/engine/process/worker.ts).
// It imports nothing but src/shared/ (types included): the contracts it carries (devices, generation specs, circuit
// options) live here and the engine implements them, so the extension host never reaches onnxruntime-node through it
// (the host must never load the native engine: that is the point of the child process).
import type { GenerateSpec } from './generateSpec';
import type { DeviceRequest } from './devices';
import type { SweepSpec } from './sweep';
import type { CircuitOptions } from './circuit';
import type { InputProblem } from './errors';
import type { WandbOutcome, WandbTarget } from './wandb';

export interface RunRequest {
  type: 'run';
  runId: number;
  /** A model folder in Hugging Face layout (hub ids once the engine resolves them). */
  model: string;
  /** Hugging Face token from the host's SecretStorage; kept in memory only, never logged or written. */
  hfToken?: string;
  /** Path of the dataset, used in messages and to choose the format by extension. */
  datasetFile: string;
  /** The editor's text of the dataset (it may have unsaved changes). */
  datasetText: string;
  device: DeviceRequest;
  batchSize: number;
  /** What the engine computes in (float16: mixed precision, AtP and exact patching only); absent: float32. */
  precision?: 'float32' | 'float16';
  /** atp, exact or auto (engine/methods.ts); absent: auto. */
  method?: 'auto' | 'atp' | 'atpstar' | 'exact';
  /** AtP*'s GradDrop (only with auto or atpstar). */
  gradDrop?: boolean;
  /** Components to check against exact patching (k largest |attribution| and k random); absent or 0: none. */
  check?: number;
  /** Check every head at the answer position against exact patching instead (a claims file's agreement claim); overrides check. */
  checkEveryHead?: boolean;
  /** Seed of the checks' random picks (recorded in the Result's provenance); absent: 0. */
  seed?: number;
  /** Where to write the Result; the host moves it to its final place. */
  pendingFile: string;
  /** That final place: checked against the dataset and the model's files before the run, so it never replaces one. */
  resultFile?: string;
}

/**
 * A circuit run (atp circuit): the run above, then edge attribution, the circuit and its faithfulness; the Result
 * written to pendingFile holds Result.circuit. Answered, and cancelled, as a run is (by runId).
 */
export interface CircuitRequest extends Omit<RunRequest, 'type'> {
  type: 'circuit';
  circuit: CircuitOptions;
}

export interface CancelRequest {
  type: 'cancel';
  runId: number;
}

/**
 * Tokenizer diagnostics for the editor, while typing: the dataset's text checked with the model's tokenizer (loaded
 * once per model and cached in the worker). Hub models are looked up in the local cache only: one not downloaded
 * yet answers `skipped` (the editor then shows parse diagnostics only), never a download.
 */
export interface DiagnoseRequest {
  type: 'diagnose';
  requestId: number;
  model: string;
  datasetFile: string;
  format: 'jsonl' | 'atp';
  datasetText: string;
}

/** Generates a dataset (IOI or TinySQL) for the model's tokenizer; the text comes back, nothing is written. */
export interface GenerateRequest {
  type: 'generate';
  requestId: number;
  model: string;
  hfToken?: string;
  spec: GenerateSpec;
  format: 'jsonl' | 'atp';
}

/**
 * A sweep (atp sweep in the editor): every model × feature into `outDir`, cell by cell, with progress per cell;
 * cancelled like a run (CancelRequest with its runId): the cells finished so far stay, with their summary.
 */
export interface SweepRequest {
  type: 'sweep';
  runId: number;
  spec: SweepSpec;
  outDir: string;
  device: DeviceRequest;
  batchSize: number;
  /** As RunRequest's; a kept cell must have run in it. */
  precision?: 'float32' | 'float16';
  hfToken?: string;
  /** Log each cell that runs to W&B, grouped by the sweep. */
  wandb?: WandbTarget;
}

/**
 * Logs a finished run's Result to W&B. The host asks once it has put the Result in place, so nothing about the upload
 * (slow, refused, given up) can cost the run. The key comes from SecretStorage: in memory only, never logged.
 */
export interface LogToWandbRequest {
  type: 'logToWandb';
  requestId: number;
  resultFile: string;
  target: WandbTarget;
  displayName: string;
  jobType: 'patch' | 'circuit';
  /** More of the run's settings for the W&B run's config (e.g. the batch size). */
  extraConfig?: Record<string, string | number | boolean>;
}

export type WorkerRequest = RunRequest | CircuitRequest | CancelRequest | DiagnoseRequest | GenerateRequest | SweepRequest | LogToWandbRequest;

/** A problem in the user's file, 1-based line; columns are 0-based UTF-16 offsets in that line when known. */
export interface FileDiagnostic {
  line: number;
  startColumn?: number;
  endColumn?: number;
  severity: 'error' | 'warning';
  message: string;
  /** A quick fix: select this built-in model (its name, e.g. "ioi-demo"). */
  useModel?: string;
}

export interface RunSummary {
  device: string;
  examples: number;
  cleanLogitDiff: number;
  corruptedLogitDiff: number;
  contentHash: string;
  seconds: number;
}

/**
 * One step of long work: `done` of `total` units (batches, runs, examples) of a phase, and the time left estimated
 * from the steps so far (absent before the first). Formatted by src/shared/progress.ts.
 */
export interface ProgressEvent {
  phase: string;
  unit: 'batch' | 'run' | 'example' | 'cell';
  done: number;
  total: number;
  etaSeconds?: number;
}

export type WorkerResponse =
  /** `message` for the log; `progress` when it is a step of counted work (the notification's bar and ETA). */
  | { type: 'progress'; runId: number; message: string; progress?: ProgressEvent }
  | { type: 'done'; runId: number; pendingFile: string; summary: RunSummary; warnings: string[]; diagnostics: FileDiagnostic[] }
  /** `input`: the InputError's field and detail (reason 'input' only), for the editor to word and act on. */
  | { type: 'failed'; runId: number; reason: 'input' | 'internal'; message: string; diagnostics: FileDiagnostic[]; input?: InputProblem }
  | { type: 'cancelled'; runId: number }
  /** A sweep finished (some cells may have failed: see the summary file); `wandb`: what logging its cells came to. */
  | { type: 'sweepDone'; runId: number; summaryFile: string; ran: number; kept: number; failed: number; wandb?: WandbOutcome }
  | { type: 'diagnosed'; requestId: number; diagnostics: FileDiagnostic[]; skipped?: string }
  // modelDir: the folder the tokenizer was read from, so that the host never saves the dataset over one of its files.
  | { type: 'generated'; requestId: number; text: string; examples: number; skipped: Record<string, number>; modelDir?: string }
  /** What logging to W&B came to (its failures are warnings, never the run's). */
  | { type: 'wandbLogged'; requestId: number; wandb: WandbOutcome }
  | { type: 'requestFailed'; requestId: number; message: string };

/** The responses that answer a DiagnoseRequest, GenerateRequest or LogToWandbRequest (by requestId) rather than a run. */
export type RequestResponse = Extract<WorkerResponse, { requestId: number }>;
