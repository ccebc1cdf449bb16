// Host side of the engine child process: forks the worker lazily, keeps it for later runs (its model and session
// caches make the next run fast), and turns its messages into one promise per run. No 'vscode' import, so it is
// tested under plain Node.
import { fork, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import type {
  ProgressEvent,
  DiagnoseRequest,
  FileDiagnostic,
  GenerateRequest,
  LogToWandbRequest,
  RequestResponse,
  CircuitRequest,
  RunRequest,
  RunSummary,
  SweepRequest,
  WorkerRequest,
  WorkerResponse,
} from '../shared/workerProtocol';
import type { InputProblem } from '../shared/errors';
import type { WandbOutcome } from '../shared/wandb';

export type RunOutcome =
  | { kind: 'done'; pendingFile: string; summary: RunSummary; warnings: string[]; diagnostics: FileDiagnostic[] }
  /** `input`: what the InputError said, by field and detail (src/shared/errors.ts), when reason is 'input'. */
  | { kind: 'failed'; reason: 'input' | 'internal' | 'crashed'; message: string; diagnostics: FileDiagnostic[]; input?: InputProblem }
  | { kind: 'cancelled' };

/** A sweep's end: its summary file (cells that failed are listed there), or why it stopped as a whole. */
export type SweepOutcome =
  | { kind: 'done'; summaryFile: string; ran: number; kept: number; failed: number; wandb?: WandbOutcome }
  | { kind: 'failed'; reason: 'input' | 'internal' | 'crashed'; message: string; input?: InputProblem }
  | { kind: 'cancelled' };

export interface RunHandlers {
  /** Every progress message; `step` when it is a step of counted work (a batch, a run), with the time left. */
  onProgress?: (message: string, step?: ProgressEvent) => void;
  /** Aborting cancels: the worker is asked to stop, and killed if it has not stopped within `cancelGraceMs`. */
  signal?: AbortSignal;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface EngineClientOptions {
  workerPath: string;
  /** Extra arguments for Node, e.g. ['--import', 'tsx'] in tests that fork the TypeScript source. */
  execArgv?: string[];
  log: Logger;
  /** How long a cancelled run may take to stop by itself before the process is killed. Default 500 ms. */
  cancelGraceMs?: number;
  /** Variables the engine process gets on top of this process's (the editor's proxy settings), read at each start. */
  environment?: () => Record<string, string>;
}

interface PendingRun {
  resolve: (outcome: RunOutcome) => void;
  handlers: RunHandlers;
  pendingFile: string;
}

export type DiagnoseOutcome = { kind: 'diagnosed'; diagnostics: FileDiagnostic[]; skipped?: string } | { kind: 'failed'; message: string };
export type GenerateOutcome =
  { kind: 'generated'; text: string; examples: number; skipped: Record<string, number>; modelDir?: string } | { kind: 'failed'; message: string };

export class EngineClient {
  private child: ChildProcess | undefined;
  private nextRunId = 1;
  private restartWhenIdle = false;
  private nextRequestId = 1;
  private readonly runs = new Map<number, PendingRun>();
  /** Sweeps in flight: like runs, cancelled by runId, but they write into their own folder (no pending file). */
  private readonly sweeps = new Map<number, { resolve: (outcome: SweepOutcome) => void; handlers: RunHandlers }>();
  /** Diagnose and generate requests in flight: they do not make the engine busy (runs may go on beside them). */
  private readonly requests = new Map<number, (response: RequestResponse | { type: 'requestFailed'; requestId: number; message: string }) => void>();

  constructor(private readonly options: EngineClientOptions) {}

  /** True while a run is in flight (one at a time keeps memory use predictable). */
  get busy(): boolean {
    return this.runs.size > 0 || this.sweeps.size > 0;
  }

  /** A sweep in the worker: progress per cell (done/total count cells), cancellation as for a run. */
  sweep(request: Omit<SweepRequest, 'type' | 'runId'>, handlers: RunHandlers = {}): Promise<SweepOutcome> {
    const runId = this.nextRunId++;
    return new Promise<SweepOutcome>((resolve) => {
      if (handlers.signal?.aborted) return resolve({ kind: 'cancelled' });
      const child = this.ensureChild();
      this.sweeps.set(runId, { resolve, handlers });
      handlers.signal?.addEventListener('abort', () => this.cancel(runId), { once: true });
      this.send(child, { ...request, type: 'sweep', runId });
    });
  }

  private finishSweep(runId: number, outcome: SweepOutcome): void {
    const sweep = this.sweeps.get(runId);
    if (!sweep) return;
    this.sweeps.delete(runId);
    sweep.resolve(outcome);
  }

  /** A run; with `circuit`, a circuit run (atp circuit: the Result also holds Result.circuit), answered the same way. */
  run(request: Omit<RunRequest, 'type' | 'runId'>, handlers: RunHandlers = {}, circuit?: CircuitRequest['circuit']): Promise<RunOutcome> {
    const runId = this.nextRunId++;
    return new Promise<RunOutcome>((resolve) => {
      if (handlers.signal?.aborted) return resolve({ kind: 'cancelled' });
      const child = this.ensureChild();
      const pending: PendingRun = { resolve, handlers, pendingFile: request.pendingFile };
      this.runs.set(runId, pending);
      handlers.signal?.addEventListener('abort', () => this.cancel(runId), { once: true });
      this.send(child, circuit ? { ...request, type: 'circuit', runId, circuit } : { ...request, type: 'run', runId });
    });
  }

  /** Tokenizer diagnostics of a dataset's text with the model's tokenizer (cached in the worker per model). */
  diagnose(request: Omit<DiagnoseRequest, 'type' | 'requestId'>): Promise<DiagnoseOutcome> {
    return this.request({ ...request, type: 'diagnose' }).then((response) =>
      response.type === 'diagnosed'
        ? { kind: 'diagnosed', diagnostics: response.diagnostics, ...(response.skipped !== undefined ? { skipped: response.skipped } : {}) }
        : { kind: 'failed', message: response.type === 'requestFailed' ? response.message : `unexpected answer ${response.type}` },
    );
  }

  /** A generated dataset's text (IOI or TinySQL) for the model's tokenizer. */
  generate(request: Omit<GenerateRequest, 'type' | 'requestId'>): Promise<GenerateOutcome> {
    return this.request({ ...request, type: 'generate' }).then((response) =>
      response.type === 'generated'
        ? { kind: 'generated', text: response.text, examples: response.examples, skipped: response.skipped, modelDir: response.modelDir }
        : { kind: 'failed', message: response.type === 'requestFailed' ? response.message : `unexpected answer ${response.type}` },
    );
  }

  /** Logs a Result already in place to W&B; never fails (what went wrong is in the outcome's warnings). */
  logToWandb(request: Omit<LogToWandbRequest, 'type' | 'requestId'>): Promise<WandbOutcome> {
    return this.request({ ...request, type: 'logToWandb' }).then((response) =>
      response.type === 'wandbLogged'
        ? response.wandb
        : { urls: [], warnings: [`W&B: not logged: ${response.type === 'requestFailed' ? response.message : `unexpected answer ${response.type}`}`] },
    );
  }

  private request(
    request: Omit<DiagnoseRequest, 'requestId'> | Omit<GenerateRequest, 'requestId'> | Omit<LogToWandbRequest, 'requestId'>,
  ): Promise<RequestResponse> {
    const requestId = this.nextRequestId++;
    return new Promise<RequestResponse>((resolve) => {
      const child = this.ensureChild();
      this.requests.set(requestId, resolve);
      this.send(child, { ...request, requestId } as WorkerRequest);
    });
  }

  private cancel(runId: number): void {
    const run = this.runs.get(runId) ?? this.sweeps.get(runId);
    const child = this.child;
    if (!run || !child) return;
    this.options.log.info(`run ${runId}: cancelling`);
    this.send(child, { type: 'cancel', runId });
    // The engine checks for cancellation between batches; a long batch must not keep the user waiting.
    const timer = setTimeout(() => {
      if ((this.runs.has(runId) || this.sweeps.has(runId)) && this.child === child) {
        this.options.log.warn(`run ${runId}: still busy ${this.options.cancelGraceMs ?? 500} ms after cancel; stopping the engine process`);
        this.finish(runId, { kind: 'cancelled' });
        this.finishSweep(runId, { kind: 'cancelled' });
        this.stopChild(child);
      }
    }, this.options.cancelGraceMs ?? 500);
    timer.unref();
  }

  private finish(runId: number, outcome: RunOutcome): void {
    const run = this.runs.get(runId);
    if (!run) return;
    this.runs.delete(runId);
    // A result written after the user cancelled is not theirs to see: remove it (best effort).
    if (outcome.kind !== 'done') void rm(run.pendingFile, { force: true });
    run.resolve(outcome);
    if (this.restartWhenIdle) this.restart();
  }

  /**
   * Starts a fresh engine process for the next request: now when nothing is in flight, else once the runs in flight
   * finish. The process decides at start where ONNX Runtime is loaded from, so this makes a CUDA install take effect.
   */
  restart(): void {
    this.restartWhenIdle = this.runs.size > 0 || this.requests.size > 0;
    if (this.restartWhenIdle || !this.child) return;
    this.options.log.info(`engine process ${this.child.pid}: stopping it so that the next run starts a fresh one`);
    this.stopChild(this.child);
  }

  private send(child: ChildProcess, request: WorkerRequest): void {
    if (child.connected) child.send(request);
  }

  private ensureChild(): ChildProcess {
    if (this.child && this.child.connected) return this.child;
    const child = fork(this.options.workerPath, [], {
      execArgv: this.options.execArgv ?? [],
      // In desktop VS Code process.execPath is Electron: run it as plain Node (onnxruntime-node is N-API).
      env: { ...process.env, ...this.options.environment?.(), ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    this.options.log.info(`engine process ${child.pid} started`);
    child.stdout?.on('data', (data: Buffer) => this.options.log.info(`[engine] ${data.toString().trimEnd()}`));
    child.stderr?.on('data', (data: Buffer) => this.options.log.warn(`[engine] ${data.toString().trimEnd()}`));
    child.on('message', (response: WorkerResponse) => this.onMessage(response));
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    child.on('error', (error) => this.options.log.error(`engine process: ${error.message}`));
    this.child = child;
    return child;
  }

  private onMessage(response: WorkerResponse): void {
    if ('requestId' in response) {
      const resolve = this.requests.get(response.requestId);
      this.requests.delete(response.requestId);
      resolve?.(response);
      if (this.restartWhenIdle) this.restart();
      return;
    }
    const sweep = this.sweeps.get(response.runId);
    if (sweep) {
      switch (response.type) {
        case 'progress':
          this.options.log.info(`sweep ${response.runId}: ${response.message}`);
          sweep.handlers.onProgress?.(response.message, response.progress);
          return;
        case 'sweepDone':
          if (sweep.handlers.signal?.aborted) return this.finishSweep(response.runId, { kind: 'cancelled' });
          return this.finishSweep(response.runId, {
            kind: 'done',
            summaryFile: response.summaryFile,
            ran: response.ran,
            kept: response.kept,
            failed: response.failed,
            ...(response.wandb ? { wandb: response.wandb } : {}),
          });
        case 'failed':
          return this.finishSweep(response.runId, {
            kind: 'failed',
            reason: response.reason,
            message: response.message,
            ...(response.input ? { input: response.input } : {}),
          });
        case 'cancelled':
          return this.finishSweep(response.runId, { kind: 'cancelled' });
        default:
          return;
      }
    }
    const run = this.runs.get(response.runId);
    if (!run) return;
    switch (response.type) {
      case 'progress':
        this.options.log.info(`run ${response.runId}: ${response.message}`);
        run.handlers.onProgress?.(response.message, response.progress);
        return;
      case 'done':
        if (run.handlers.signal?.aborted) return this.finish(response.runId, { kind: 'cancelled' });
        return this.finish(response.runId, {
          kind: 'done',
          pendingFile: response.pendingFile,
          summary: response.summary,
          warnings: response.warnings,
          diagnostics: response.diagnostics,
        });
      case 'failed':
        return this.finish(response.runId, {
          kind: 'failed',
          reason: response.reason,
          message: response.message,
          diagnostics: response.diagnostics,
          ...(response.input ? { input: response.input } : {}),
        });
      case 'cancelled':
        return this.finish(response.runId, { kind: 'cancelled' });
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    // Requests of a process stopped on purpose were answered then; a later process's requests are not this one's.
    const current = this.child === child;
    if (current) this.failRequests(`the engine process stopped (${signal ?? `exit code ${code}`})`);
    if (current) this.child = undefined;
    this.options.log.info(`engine process ${child.pid} exited (${signal ?? `code ${code}`})`);
    // A process stopped on purpose (restart, cancel) had its runs finished then; the runs now in flight are a later process's.
    if (!current) return;
    // Out of memory shows as SIGABRT/SIGKILL or V8's exit code 134; say so in words.
    const why = signal === 'SIGKILL' || signal === 'SIGABRT' || code === 134 ? ' (possibly out of memory)' : '';
    const message = `the engine process stopped unexpectedly (${signal ?? `exit code ${code}`})${why}`;
    for (const runId of [...this.runs.keys()]) this.finish(runId, { kind: 'failed', reason: 'crashed', message, diagnostics: [] });
    for (const runId of [...this.sweeps.keys()]) this.finishSweep(runId, { kind: 'failed', reason: 'crashed', message });
  }

  private failRequests(message: string): void {
    for (const [requestId, resolve] of [...this.requests]) {
      this.requests.delete(requestId);
      resolve({ type: 'requestFailed', requestId, message });
    }
  }

  private stopChild(child: ChildProcess): void {
    if (this.child === child) this.child = undefined;
    this.failRequests('the engine process was stopped');
    child.kill('SIGKILL');
  }

  dispose(): void {
    for (const runId of [...this.runs.keys()]) this.finish(runId, { kind: 'cancelled' });
    for (const runId of [...this.sweeps.keys()]) this.finishSweep(runId, { kind: 'cancelled' });
    if (this.child) this.stopChild(this.child);
  }
}
