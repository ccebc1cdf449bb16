// `npm run bench -- --matrix`: the engine's attribution pass (method 'atp', device cpu, as `npm run bench`) against the
// PyTorch baseline (bench/torch_baseline.py) on a matrix of model shape × batch × prompt length, time and peak memory,
// every measurement in its own child process so that one cell's memory does not count in another's.
//
//   npm run bench -- --matrix [--shapes gpt2-small,qwen2.5-0.5b,llama-3.2-1b] [--batches 1,8] [--tokens 16,128,512]
//                    [--threads 1,2] [--redo] [--profile SHAPE:BATCHxTOKENS]
//
// Cells already measured (.atp-cache/bench-matrix.jsonl) are skipped unless --redo, so a partial matrix can be
// resumed; the table printed at the end is every recorded cell. Random-weight models in Hugging Face layout are
// written once to .atp-cache/bench-models/ (GPT-2-small F32 as GPT-2 ships; the Qwen and Llama shapes BF16 as they
// ship; both sides compute in float32). A cell whose memory estimate (src/engine/model/memory.ts) does not fit runs as
// the engine runs it: in smaller batches, or without pre-packed weights (fitRunToMemory); the table says which.
//
// Time: per run, after a warm-up (which builds the session); the median of 3 timed runs, 2 when the warm-up took
// over 10 s, 1 over 40 s (BENCH_REPEATS=N: N runs). PyTorch runs once per thread count (default 1 and 2) and the best median counts.
// Memory (Linux /proc/self/status): "loaded" is the resident memory once the weights are in (engine: after a
// 1-example session build; PyTorch: after loading the model into float32 tensors); then the peak is reset
// (/proc/self/clear_refs 5) and "run peak" is VmHWM over the warm-up and timed runs; "+run" = run peak − loaded.
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../src/engine/model/load';
import { estimateRunMemory, formatBytes } from '../src/engine/model/memory';
import { runAttributionPatching } from '../src/engine/patching/run';
import { releaseSessions } from '../src/engine/process/runtime';
import { promptPairs, SHAPES, type Shape } from './shapes';

const root = resolve(__dirname, '..');
/** BENCH_REPEATS: a fixed number of timed runs (both sides) instead of 3, 2 or 1 by the warm-up's time. */
const fixedRepeats = process.env.BENCH_REPEATS ? Number(process.env.BENCH_REPEATS) : undefined;
const cacheDir = join(root, '.atp-cache');
const resultsFile = join(cacheDir, 'bench-matrix.jsonl');

interface Cell {
  shape: string;
  batch: number;
  tokens: number;
}

interface EngineMeasurement {
  perRunSeconds: number;
  runs: number[];
  warmupSeconds: number;
  loadedRss: number;
  runPeak: number;
  /** The batch size the engine ran (Result.runtime.batchSize): less than the cell's when its batch did not fit. */
  batchUsed?: number;
}

interface TorchMeasurement {
  threads: number;
  perRunSeconds: number;
  runs: number[];
  memory: { loadedRss: number; loadPeak: number; runPeak: number; peakReset: boolean };
}

interface Record {
  cell: Cell;
  date: string;
  refused?: { estimateBytes: number; totalBytes: number };
  estimateBytes: number;
  engine?: EngineMeasurement;
  torch?: TorchMeasurement[];
  error?: string;
}

function modelDir(shape: Shape): string {
  const dir = join(cacheDir, 'bench-models', shape.name);
  if (!existsSync(join(dir, 'config.json'))) {
    process.stderr.write(`writing a ${shape.description} random model to ${dir} (once)\n`);
    // In a child process: writing holds every tensor (GBs for the 1B shape) and this process would keep that
    // memory until a collection, which the engine's memory check then counts as taken.
    runChild(['--write-model', shape.name], `writing the ${shape.name} model`);
  }
  return dir;
}

// ---- memory of this process (Linux) ------------------------------------------------------------------------------

function memoryStatus(): { rss: number; hwm: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)![1]) * 1024;
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

/** Sets VmHWM back to the current resident size (Linux ≥ 4.0), so the next peak is the run's. */
function resetPeak(): void {
  writeFileSync('/proc/self/clear_refs', '5');
}

// ---- prompts of an exact length ----------------------------------------------------------------------------------

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// ---- one engine cell, in a child process -------------------------------------------------------------------------

async function engineCell(cell: Cell, requestFile: string): Promise<void> {
  const shape = SHAPES.find((s) => s.name === cell.shape)!;
  const model = loadModel(modelDir(shape));
  const options = { device: 'cpu' as const, batchSize: cell.batch, method: 'atp' as const, exactTokens: false };
  // The session (weights in float32, pre-packed) is built by a 1-example run: what is resident then is the load.
  await runAttributionPatching(model, promptPairs(model, 1, 16), { ...options, batchSize: 1 });
  const loadedRss = memoryStatus().rss;
  resetPeak();
  const dataset = promptPairs(model, cell.batch, cell.tokens);
  const warmup = await runAttributionPatching(model, dataset, options);
  const warmupSeconds = warmup.timings!.runSeconds;
  const repeats = fixedRepeats ?? (warmupSeconds > 40 ? 1 : warmupSeconds > 10 ? 2 : 3);
  const runs: number[] = [];
  for (let i = 0; i < repeats; i++) runs.push((await runAttributionPatching(model, dataset, options)).timings!.runSeconds);
  const runPeak = memoryStatus().hwm;
  await releaseSessions();
  writeFileSync(
    requestFile,
    JSON.stringify({
      examples: warmup.examples.map((e) => ({ cleanIds: e.cleanIds, corruptedIds: e.corruptedIds, correctId: e.correctId, incorrectId: e.incorrectId })),
    }),
  );
  const measurement: EngineMeasurement = { perRunSeconds: median(runs), runs, warmupSeconds, loadedRss, runPeak, batchUsed: warmup.runtime?.batchSize };
  process.stdout.write(`${JSON.stringify(measurement)}\n`);
}

function runChild(args: string[], what: string): string {
  const child = spawnSync(process.execPath, ['--import', 'tsx', __filename, ...args], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20, cwd: root });
  if (child.status !== 0) throw new Error(`${what} failed (${child.status ?? child.signal}):\n${child.stderr}`);
  return child.stdout.trim().split('\n').pop()!;
}

function torchCell(dir: string, requestFile: string, threads: number): TorchMeasurement {
  const child = spawnSync(
    '/usr/bin/python3',
    [
      join(root, 'bench', 'torch_baseline.py'),
      '--model-dir',
      dir,
      '--request',
      requestFile,
      '--threads',
      String(threads),
      ...(fixedRepeats ? ['--repeats', String(fixedRepeats)] : ['--adaptive']),
    ],
    { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 },
  );
  if (child.status !== 0) throw new Error(`PyTorch baseline (${threads} threads) failed:\n${child.stderr}`);
  const out = JSON.parse(child.stdout) as TorchMeasurement;
  return { threads, perRunSeconds: out.perRunSeconds, runs: out.runs, memory: out.memory };
}

function measure(cell: Cell): Record {
  const shape = SHAPES.find((s) => s.name === cell.shape)!;
  const dir = modelDir(shape);
  const model = loadModel(dir);
  const estimate = estimateRunMemory(model, { batchSize: cell.batch, seqLen: cell.tokens });
  const date = new Date().toISOString();
  const requestFile = join(cacheDir, `bench-matrix-request-${cell.shape}-${cell.batch}x${cell.tokens}.json`);
  const engine = JSON.parse(runChild(['--engine-cell', JSON.stringify(cell), requestFile], 'engine cell')) as EngineMeasurement;
  const torch = threadCounts.map((threads) => torchCell(dir, requestFile, threads));
  return { cell, date, estimateBytes: estimate.totalBytes, engine, torch };
}

// ---- the table ---------------------------------------------------------------------------------------------------

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)}`;

function table(records: Record[]): string {
  const rows = [
    '| shape | batch × tokens | engine s/run | PyTorch s/run (threads) | ratio | engine peak GB (loaded + run) | PyTorch peak GB (loaded + run) | estimate GB |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of records) {
    const cell = `| ${r.cell.shape} | ${r.cell.batch} × ${r.cell.tokens} |`;
    if (r.refused) {
      rows.push(`${cell} refused | — | — | — | — | ${gb(r.refused.estimateBytes)} > ${gb(r.refused.totalBytes)} |`);
      continue;
    }
    if (!r.engine || !r.torch) {
      rows.push(`${cell} failed: ${(r.error ?? '?').split('\n').slice(0, 2).join(' ')} | | | | | ${gb(r.estimateBytes)} |`);
      continue;
    }
    const best = r.torch.reduce((a, b) => (b.perRunSeconds < a.perRunSeconds ? b : a));
    const others = r.torch.filter((t) => t !== best).map((t) => `${t.perRunSeconds.toFixed(3)} s @${t.threads}`);
    const e = r.engine;
    const tm = best.memory;
    const batches = e.batchUsed !== undefined && e.batchUsed < r.cell.batch ? `, in batches of ${e.batchUsed}` : '';
    rows.push(
      `${cell} ${e.perRunSeconds.toFixed(3)} (${e.runs.length}${batches}) | ${best.perRunSeconds.toFixed(3)} (${best.threads}t${others.length ? `; ${others.join(', ')}` : ''}) | ` +
        `${(e.perRunSeconds / best.perRunSeconds).toFixed(2)}× | ${gb(e.runPeak)} (${gb(e.loadedRss)} + ${gb(e.runPeak - e.loadedRss)}) | ` +
        `${gb(Math.max(tm.runPeak, tm.loadPeak))} (${gb(tm.loadedRss)} + ${gb(tm.runPeak - tm.loadedRss)}) | ${gb(r.estimateBytes)} |`,
    );
  }
  return rows.join('\n');
}

function readRecords(): Record[] {
  if (!existsSync(resultsFile)) return [];
  return readFileSync(resultsFile, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Record);
}

// ---- ORT profile of one cell -------------------------------------------------------------------------------------

/**
 * Runs one cell with ONNX Runtime's profiler on (every session the engine creates in this process) and prints the
 * node types by total kernel time and by output bytes: where the time goes and what the activations are made of.
 */
async function profileCell(cell: Cell): Promise<void> {
  const shape = SHAPES.find((s) => s.name === cell.shape)!;
  const model = loadModel(modelDir(shape));
  const profileDir = join(cacheDir, 'bench-profile');
  mkdirSync(profileDir, { recursive: true });
  const create = ort.InferenceSession.create.bind(ort.InferenceSession) as (...args: unknown[]) => Promise<ort.InferenceSession>;
  (ort.InferenceSession as unknown as { create: unknown }).create = (source: unknown, options: ort.InferenceSession.SessionOptions = {}) =>
    create(source, { ...options, enableProfiling: true, profileFilePrefix: join(profileDir, `${cell.shape}-${cell.batch}x${cell.tokens}`) });
  const dataset = promptPairs(model, cell.batch, cell.tokens);
  const options = { device: 'cpu' as const, batchSize: cell.batch, method: 'atp' as const, exactTokens: false };
  await runAttributionPatching(model, dataset, options); // warm-up
  const started = performance.now();
  await runAttributionPatching(model, dataset, options);
  const wall = (performance.now() - started) / 1000;
  await releaseSessions();
  const file = readdirSync(profileDir)
    .filter((name) => name.startsWith(`${cell.shape}-${cell.batch}x${cell.tokens}`) && name.endsWith('.json'))
    .sort()
    .pop()!;
  type Event = { cat: string; name: string; dur: number; args?: { op_name?: string; output_size?: string; activation_size?: string } };
  const events = JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as Event[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const byOp = new Map<string, { us: number; count: number; bytes: number }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    const entry = byOp.get(op) ?? { us: 0, count: 0, bytes: 0 };
    entry.us += e.dur;
    entry.count += 1;
    entry.bytes += Number(e.args?.output_size ?? 0);
    byOp.set(op, entry);
  }
  const totalUs = [...byOp.values()].reduce((sum, e) => sum + e.us, 0);
  const totalBytes = [...byOp.values()].reduce((sum, e) => sum + e.bytes, 0);
  const lines = [
    `profile: ${file} (${runs.length} session runs: warm-up and timed; the table sums both), timed run ${wall.toFixed(2)} s wall`,
    `model_run total ${(runs.reduce((s, e) => s + e.dur, 0) / 1e6).toFixed(2)} s; kernel time total ${(totalUs / 1e6).toFixed(2)} s; outputs written ${formatBytes(totalBytes)}`,
    '| op | kernel s | share | calls | output bytes | share |',
    '|---|---|---|---|---|---|',
    ...[...byOp.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, 15)
      .map(
        ([op, e]) =>
          `| ${op} | ${(e.us / 1e6).toFixed(2)} | ${((e.us / totalUs) * 100).toFixed(1)}% | ${e.count} | ${formatBytes(e.bytes)} | ${((e.bytes / totalBytes) * 100).toFixed(1)}% |`,
      ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

// ---- arguments ---------------------------------------------------------------------------------------------------

function listArg(args: string[], name: string, fallback: string[]): string[] {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = args[at + 1];
  if (!value || value.startsWith('--')) throw new Error(`${name} needs a comma-separated list`);
  return value.split(',').map((v) => v.trim());
}

function numbers(values: string[], name: string): number[] {
  return values.map((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: ${JSON.stringify(v)} is not a positive integer`);
    return n;
  });
}

let threadCounts = [1, 2];

export async function runMatrix(args: string[]): Promise<void> {
  const shapes = listArg(
    args,
    '--shapes',
    SHAPES.map((s) => s.name),
  );
  for (const name of shapes)
    if (!SHAPES.some((s) => s.name === name)) throw new Error(`--shapes: unknown shape ${name} (${SHAPES.map((s) => s.name).join(', ')})`);
  const batches = numbers(listArg(args, '--batches', ['1', '8']), '--batches');
  const tokens = numbers(listArg(args, '--tokens', ['16', '128', '512']), '--tokens');
  threadCounts = numbers(listArg(args, '--threads', ['1', '2']), '--threads');
  const profile = listArg(args, '--profile', []);
  if (profile.length > 0) {
    const match = /^([\w.-]+):(\d+)x(\d+)$/.exec(profile[0]);
    if (!match) throw new Error('--profile: expected SHAPE:BATCHxTOKENS, e.g. qwen2.5-0.5b:8x128');
    await profileCell({ shape: match[1], batch: Number(match[2]), tokens: Number(match[3]) });
    return;
  }
  mkdirSync(cacheDir, { recursive: true });
  process.env.ATP_CACHE_DIR ??= join(cacheDir, 'graphs');
  const done = args.includes('--redo') ? [] : readRecords().filter((r) => !r.error);
  // Smallest cells first (by tokens processed, then model), so a partial matrix has the most cells.
  const cells = shapes
    .flatMap((shape) => batches.flatMap((batch) => tokens.map((t) => ({ shape, batch, tokens: t }))))
    .sort((a, b) => a.batch * a.tokens - b.batch * b.tokens || shapes.indexOf(a.shape) - shapes.indexOf(b.shape));
  for (const cell of cells) {
    if (done.some((r) => r.cell.shape === cell.shape && r.cell.batch === cell.batch && r.cell.tokens === cell.tokens)) continue;
    process.stderr.write(`${new Date().toISOString()} ${cell.shape} ${cell.batch}×${cell.tokens}…\n`);
    let record: Record;
    try {
      record = measure(cell);
    } catch (error) {
      record = { cell, date: new Date().toISOString(), estimateBytes: 0, error: error instanceof Error ? error.message : String(error) };
    }
    appendFileSync(resultsFile, `${JSON.stringify(record)}\n`);
    process.stderr.write(`${table([record]).split('\n').pop()}\n`);
  }
  // The latest record of each cell (a failed cell that was measured later shows its measurement).
  const latest = new Map<string, Record>();
  for (const r of readRecords()) latest.set(`${r.cell.shape} ${r.cell.batch} ${r.cell.tokens}`, r);
  const all = [...latest.values()]
    .filter((r) => shapes.includes(r.cell.shape))
    .sort((a, b) => shapes.indexOf(a.cell.shape) - shapes.indexOf(b.cell.shape) || a.cell.batch - b.cell.batch || a.cell.tokens - b.cell.tokens);
  process.stdout.write(
    `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} threads, ${formatBytes(totalmem())}, node ${process.version}, onnxruntime-node ${ort.env.versions.common}\n`,
  );
  process.stdout.write(`${table(all)}\n`);
}

if (process.argv[2] === '--write-model') {
  const shape = SHAPES.find((s) => s.name === process.argv[3])!;
  shape.write(join(cacheDir, 'bench-models', shape.name));
  process.stdout.write('written\n');
}
if (process.argv[2] === '--engine-cell') {
  engineCell(JSON.parse(process.argv[3]) as Cell, process.argv[4]).catch((error) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
