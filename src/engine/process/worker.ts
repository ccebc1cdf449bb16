// Child-process entry of the VS Code extension's engine. The extension host forks this file (dist/worker.js) and
// talks to it with the typed messages of workerProtocol.ts, so that a long run never blocks the host, a native crash or an
// out-of-memory kills only this process, and cancellation can fall back to killing it.
//
// A finished run is written (atomically) to `pendingFile`, never to the final result path: the host renames it
// into place unless the user cancelled meanwhile, so a cancelled run writes nothing, whatever the timing.
// First: where ONNX Runtime is loaded from must be decided before anything loads it.
import { ortRuntimeChoice } from './ortRuntime';
import { InputError, inputProblem } from '../../shared/errors';
import { diagnoseWithTokenizer, parseDatasetText } from '../../lib/dataset';
import { generateDataset } from '../../lib/dataset/generate';
import { resolveModel } from '../model/hub';
import { loadModel, type LoadedModel } from '../model/load';
import { ModelTokenizer } from '../model/tokenizer';
import { readModelSpec } from '../model/config';
import { CancelledError } from '../patching/options';
import { runAttributionPatching } from '../patching/run';
import { runCircuit } from '../circuits/run';
import { checkOutputPaths, modelFolderInputs } from '../../lib/files/outputPaths';
import { readResultFile, writeResultAtomically } from '../../lib/files/resultFile';
import { contentHash } from '../../lib/files/contentHash';
import { runSweep, SUMMARY_JSON } from '../sweep/sweep';
import { renderSweepReport } from '../sweep/report';
import { join } from 'node:path';
import { formatProgress } from '../../shared/progress';
import { logResultToWandb, sweepCellRunOptions } from '../logging/logToWandb';
import { addWandbOutcome, type WandbOutcome } from '../../shared/wandb';
import {
  type SweepRequest,
  type CircuitRequest,
  type DiagnoseRequest,
  type FileDiagnostic,
  type GenerateRequest,
  type LogToWandbRequest,
  type ProgressEvent,
  type RunRequest,
  type WorkerRequest,
  type WorkerResponse,
} from '../../shared/workerProtocol';

/** Parse and tokenizer problems with exact columns; the run stops at errors and reports every one of them. */
function inputFailure(file: string, diagnostics: readonly FileDiagnostic[]): InputError | undefined {
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length === 0) return undefined;
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more problem${errors.length > 2 ? 's' : ''})` : '';
  return new InputError(`${file}:${errors[0].line}: ${errors[0].message}${more}`, { field: 'data' });
}

/**
 * Engine messages start with "<file>:<line>: " when they concern one line of the dataset; those become diagnostics
 * at that line (for errors the parsers and tokenizer checks did not already place exactly).
 */
export function diagnosticsFromMessages(file: string, messages: readonly string[], severity: FileDiagnostic['severity']): FileDiagnostic[] {
  const prefix = `${file}:`;
  return messages.flatMap((message) => {
    if (!message.startsWith(prefix)) return [];
    const match = /^(\d+): ([\s\S]*)$/.exec(message.slice(prefix.length));
    return match ? [{ line: Number(match[1]), severity, message: match[2] }] : [];
  });
}

const models = new Map<string, LoadedModel>();

/** Loaded models stay cached in this process: the tokenizer and weight index are read once per session. */
function cachedModel(dir: string, source: string): LoadedModel {
  const key = `${dir}\0${source}`;
  let model = models.get(key);
  if (!model) {
    // Results name the model as the user did (a hub id, a preset), not by its cache folder.
    model = { ...loadModel(dir), source };
    models.set(key, model);
  }
  return model;
}

const tokenizers = new Map<string, ModelTokenizer>();

/** A model folder's tokenizer alone (no weights, no onnxruntime session): read once per folder, then cached. */
function cachedTokenizer(dir: string): ModelTokenizer {
  let tokenizer = tokenizers.get(dir) ?? [...models.values()].find((model) => model.dir === dir)?.tokenizer;
  if (!tokenizer) {
    tokenizer = ModelTokenizer.fromDir(dir);
    tokenizers.set(dir, tokenizer);
  }
  return tokenizer;
}

const maxPositions = new Map<string, number | undefined>();

/** The model's positions, from config.json alone (read once per folder); undefined when it cannot be read. */
function cachedMaxPositions(dir: string): number | undefined {
  if (!maxPositions.has(dir)) {
    let value: number | undefined;
    try {
      value = readModelSpec(dir).maxPositions;
    } catch {
      // An unreadable config is reported by a run; live diagnostics just skip the length check.
    }
    maxPositions.set(dir, value);
  }
  return maxPositions.get(dir);
}

/** Tokenizer diagnostics of the editor's text; `skipped` (not an error) when the model is not available locally. */
export async function handleDiagnose(request: DiagnoseRequest, send: (response: WorkerResponse) => void): Promise<void> {
  let tokenizer: ModelTokenizer;
  let positions: number | undefined;
  try {
    // The local cache only: typing in a dataset must never start a download.
    const resolved = await resolveModel(request.model, { offline: true });
    tokenizer = cachedTokenizer(resolved.dir);
    positions = cachedMaxPositions(resolved.dir);
  } catch (error) {
    send({ type: 'diagnosed', requestId: request.requestId, diagnostics: [], skipped: (error as Error).message });
    return;
  }
  try {
    const parsed = parseDatasetText(request.datasetText, request.datasetFile, request.format);
    send({ type: 'diagnosed', requestId: request.requestId, diagnostics: diagnoseWithTokenizer(parsed.dataset, tokenizer, positions) });
  } catch (error) {
    send({ type: 'requestFailed', requestId: request.requestId, message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
}

export async function handleGenerate(request: GenerateRequest, send: (response: WorkerResponse) => void): Promise<void> {
  try {
    const resolved = await resolveModel(request.model, { token: request.hfToken });
    const generated = generateDataset(cachedTokenizer(resolved.dir), request.spec, request.format, resolved.source);
    send({
      type: 'generated',
      requestId: request.requestId,
      text: generated.text,
      examples: generated.examples.length,
      skipped: generated.skipped,
      modelDir: resolved.dir,
    });
  } catch (error) {
    // An input problem (a missing folder, a bad tokenizer.json) in words; anything else with its stack for the log.
    const message = error instanceof InputError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
    send({ type: 'requestFailed', requestId: request.requestId, message });
  }
}

class InputFailure extends Error {
  constructor(
    readonly diagnostics: FileDiagnostic[],
    readonly error: InputError,
  ) {
    super(error.message);
  }
}

const runs = new Map<number, AbortController>();

export async function handleRun(request: RunRequest | CircuitRequest, send: (response: WorkerResponse) => void): Promise<void> {
  const controller = new AbortController();
  runs.set(request.runId, controller);
  const started = performance.now();
  const progress = (message: string) => send({ type: 'progress', runId: request.runId, message });
  // Counted steps go as typed events (the host's bar and ETA), with their text for the log.
  const step = (event: ProgressEvent) => send({ type: 'progress', runId: request.runId, message: formatProgress(event), progress: event });
  let warnings: FileDiagnostic[] = [];
  let modelStage = false;
  try {
    const parsed = parseDatasetText(request.datasetText, request.datasetFile);
    const parseFailure = inputFailure(request.datasetFile, parsed.diagnostics);
    if (parseFailure) throw new InputFailure(parsed.diagnostics, parseFailure);
    if (parsed.dataset.examples.length === 0)
      throw new InputError(`${request.datasetFile}: no examples (the file is empty or has only blank lines)`, { field: 'data' });
    const dataset = parsed.dataset;
    progress(ortRuntimeChoice);
    progress(`resolving model ${request.model}`);
    // Whatever stops the model from resolving or loading (a missing folder, a bad config.json, a gated repo) is the
    // model setting's problem, unless the error names a field itself (a gated repo: the token).
    modelStage = true;
    const resolved = await resolveModel(request.model, {
      token: request.hfToken,
      signal: controller.signal,
      onProgress: (download) =>
        progress(`downloading ${download.file}${download.total ? ` (${Math.round((100 * download.received) / download.total)}%)` : ''}`),
    });
    for (const note of resolved.notes) progress(note);
    progress(`loading model ${resolved.source}`);
    const model = cachedModel(resolved.dir, resolved.source);
    modelStage = false;
    if (request.resultFile !== undefined) {
      checkOutputPaths(
        [{ path: request.datasetFile, role: 'the dataset' }, ...modelFolderInputs(model.dir)],
        [{ path: request.resultFile, role: 'the result file' }],
      );
    }
    const checked = [...parsed.diagnostics, ...diagnoseWithTokenizer(dataset, model.tokenizer, model.spec.maxPositions)];
    const tokenFailure = inputFailure(request.datasetFile, checked);
    if (tokenFailure) throw new InputFailure(checked, tokenFailure);
    warnings = checked;
    progress(`running ${dataset.examples.length} examples`);
    const options = {
      device: request.device,
      batchSize: request.batchSize,
      precision: request.precision ?? 'float32',
      method: request.method ?? 'auto',
      gradDrop: request.gradDrop === true && (request.method ?? 'auto') !== 'atp' && request.method !== 'exact',
      check: request.checkEveryHead ? model.spec.nLayers * model.spec.nHeads : (request.check ?? 0),
      ...(request.checkEveryHead ? { checkOver: 'heads' as const } : {}),
      checkSeed: request.seed ?? 0,
      onProgress: progress,
      onStep: step,
      signal: controller.signal,
    };
    const result =
      request.type === 'circuit' ? await runCircuit(model, dataset, options, request.circuit) : await runAttributionPatching(model, dataset, options);
    if (controller.signal.aborted) throw new CancelledError();
    const hash = contentHash(request.datasetText);
    result.dataset.contentHash = hash;
    // The sidecar (a large result's per-example arrays) is named after the final file; the host renames the JSON
    // into place and then removes the previous run's sidecar.
    writeResultAtomically(request.pendingFile, result, { finalFile: request.resultFile });
    send({
      type: 'done',
      runId: request.runId,
      pendingFile: request.pendingFile,
      summary: {
        device: result.device,
        examples: result.examples.length,
        cleanLogitDiff: result.metric.cleanLogitDiff,
        corruptedLogitDiff: result.metric.corruptedLogitDiff,
        contentHash: hash,
        seconds: (performance.now() - started) / 1000,
      },
      warnings: result.warnings,
      diagnostics: warnings,
    });
  } catch (error) {
    if (error instanceof CancelledError || controller.signal.aborted) {
      send({ type: 'cancelled', runId: request.runId });
    } else if (error instanceof InputFailure) {
      send({ type: 'failed', runId: request.runId, reason: 'input', message: error.message, diagnostics: error.diagnostics, input: inputProblem(error.error) });
    } else if (error instanceof InputError) {
      send({
        type: 'failed',
        runId: request.runId,
        reason: 'input',
        message: error.message,
        diagnostics: diagnosticsFromMessages(request.datasetFile, [error.message], 'error'),
        input: inputProblem(modelStage ? InputError.withField(error, 'model') : error),
      });
    } else {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      send({ type: 'failed', runId: request.runId, reason: 'internal', message, diagnostics: [] });
    }
  } finally {
    runs.delete(request.runId);
  }
}

/** A sweep, cell by cell: progress says which cell (done/total count cells), cancellation stops between batches and cells. */
export async function handleSweep(request: SweepRequest, send: (response: WorkerResponse) => void): Promise<void> {
  const controller = new AbortController();
  runs.set(request.runId, controller);
  const wandb: WandbOutcome | undefined = request.wandb ? { urls: [], warnings: [] } : undefined;
  try {
    const summary = await runSweep(request.spec, request.outDir, {
      device: request.device,
      batchSize: request.batchSize,
      precision: request.precision ?? 'float32',
      signal: controller.signal,
      resolve: { token: request.hfToken },
      renderHtml: renderSweepReport,
      ...(request.wandb
        ? {
            onCellResult: async ({ cell, label, result, resultFile }) => {
              send({ type: 'progress', runId: request.runId, message: `${label}: logging to W&B` });
              addWandbOutcome(wandb!, await logResultToWandb(request.wandb!, result, resultFile, sweepCellRunOptions(cell, request.outDir, request)));
            },
          }
        : {}),
      onLog: (message) => send({ type: 'progress', runId: request.runId, message }),
      onCell: ({ cell, cells, label, phase, error }) =>
        send({
          type: 'progress',
          runId: request.runId,
          message: phase === 'start' ? `${label} (${cell}/${cells})` : `${label}: ${phase}${error ? `: ${error}` : ''}`,
          progress: { phase: 'sweep', unit: 'cell', done: phase === 'start' ? cell - 1 : cell, total: cells },
        }),
    });
    const count = (status: string) => summary.cells.filter((c) => c.status === status).length;
    send({
      type: 'sweepDone',
      runId: request.runId,
      summaryFile: join(request.outDir, SUMMARY_JSON),
      ran: count('ran'),
      kept: count('kept'),
      failed: count('failed'),
      ...(wandb ? { wandb } : {}),
    });
  } catch (error) {
    if (error instanceof CancelledError || controller.signal.aborted) send({ type: 'cancelled', runId: request.runId });
    else if (error instanceof InputError)
      send({ type: 'failed', runId: request.runId, reason: 'input', message: error.message, diagnostics: [], input: inputProblem(error) });
    else
      send({
        type: 'failed',
        runId: request.runId,
        reason: 'internal',
        message: error instanceof Error ? (error.stack ?? error.message) : String(error),
        diagnostics: [],
      });
  } finally {
    runs.delete(request.runId);
  }
}

/** Logs a Result already in place to W&B (LogToWandbRequest); the answer is the outcome, whose failures are warnings. */
export async function handleLogToWandb(request: LogToWandbRequest, send: (response: WorkerResponse) => void): Promise<void> {
  let wandb: WandbOutcome;
  try {
    const result = readResultFile(request.resultFile);
    wandb = await logResultToWandb(request.target, result, request.resultFile, {
      displayName: request.displayName,
      jobType: request.jobType,
      ...(request.extraConfig ? { extraConfig: request.extraConfig } : {}),
    });
  } catch (error) {
    wandb = { urls: [], warnings: [`W&B: not logged: ${(error as Error).message}`] };
  }
  send({ type: 'wandbLogged', requestId: request.requestId, wandb });
}

export function handleRequest(request: WorkerRequest, send: (response: WorkerResponse) => void): void {
  if (request.type === 'run' || request.type === 'circuit') void handleRun(request, send);
  else if (request.type === 'sweep') void handleSweep(request, send);
  else if (request.type === 'cancel') runs.get(request.runId)?.abort();
  else if (request.type === 'diagnose') void handleDiagnose(request, send);
  else if (request.type === 'generate') void handleGenerate(request, send);
  else if (request.type === 'logToWandb') void handleLogToWandb(request, send);
}

if (require.main === module && process.send) {
  const send = (response: WorkerResponse) => process.send!(response);
  process.on('message', (request: WorkerRequest) => handleRequest(request, send));
  // The host going away (crash, reload) closes the channel: stop rather than linger as an orphan.
  process.on('disconnect', () => process.exit(0));
}
