// Where a large model's load time goes (issue "Scale", docs/BENCHMARKS.md): graph build, graph write, session
// creation at each optimisation level with and without pre-packing (`levels`), and session creation from an ONNX
// Runtime-optimised float32 graph saved once with optimizedModelFilePath (`save`). The model is a Qwen2.5-0.5B-shaped
// random one (24 layers, d 896, GQA 14/2, vocab 151,936, BF16: 988 MB), written on first use (about a minute, 2.3 GB
// of memory). Dev-time only:
//   ATP_CACHE_DIR=/tmp/atp-load-cache node --import tsx bench/loadTime.ts levels|save [model folder]
// `ab` compares session options as the CLI meets them: each variant in a fresh process (alternated, `rounds` times),
// one run of `method` as `atp patch` does it (load, session, first run), then timed runs of the same batch, with
// the resident memory after the first run and the peak over the timed runs:
//   node --import tsx bench/loadTime.ts ab MODEL_DIR BATCHxTOKENS METHOD RUNS ROUNDS VARIANT,VARIANT…
// (variants: SESSION_VARIANTS below; METHOD auto|atp|atp-only, the last without exact token passes).
// `serve` times `atp patch --method auto` of one example through the built CLI (npm run build first), as a user
// meets it: `cold` in-process runs (today's CLI), then through a fresh `atp serve` (its first run, then `warm` more),
// each wall time and the client's peak RSS from /usr/bin/time, and the server's peak RSS from /proc:
//   ATP_CACHE_DIR=/tmp/atp-serve-bench node --import tsx bench/loadTime.ts serve MODEL_DIR [COLD] [WARM]
import * as ort from 'onnxruntime-node';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { promptPairs, SHAPES } from './shapes';
import { loadModel } from '../src/engine/model/load';
import { GraphBuilder } from '../src/engine/graph/builder';
import { GraphWeights } from '../src/engine/graph/weights';
import { weightLookup } from '../src/engine/model/load';
import { buildAttributionGraph } from '../src/engine/patching/graphs';
import { runAttributionPatching } from '../src/engine/patching/run';
import { batchFeeds } from '../src/engine/patching/feeds';
import { prepareExamples } from '../src/engine/patching/examples';
import { prepareGraphDir, writeGraphFile } from '../src/engine/process/runtime';

/** Session options layered over the engine's own (runtime.ts), by name: what `ab` compares. */
const SESSION_VARIANTS: Record<string, Partial<ort.InferenceSession.SessionOptions>> = {
  engine: {},
  'no-prepacking': { extra: { session: { disable_prepacking: '1' } } } as never,
  'no-arena': { enableCpuMemArena: false },
  'no-mem-pattern': { enableMemPattern: false },
  'no-arena-no-pattern': { enableCpuMemArena: false, enableMemPattern: false },
  prepacking: { extra: { 'session.disable_prepacking': '0' } },
  'no-mem-pattern-no-prepacking': { enableMemPattern: false, extra: { session: { disable_prepacking: '1' } } } as never,
  basic: { graphOptimizationLevel: 'basic' },
};

const mode = process.argv[2];
if (mode === 'ab-runs') void abRuns(process.argv[3], process.argv[4], Number(process.argv[5]), process.argv[6].split(','));
else if (mode === 'ab-child') void abChild(process.argv[3], process.argv[4], process.argv[5], Number(process.argv[6]), process.argv[7]);
else if (mode === 'ab') abParent();
else if (mode === 'serve') serveBench(process.argv[3], Number(process.argv[4] ?? 2), Number(process.argv[5] ?? 2));

/** One `atp` call, timed from outside: wall seconds, the process's peak RSS (kB) and its stderr. */
function timedAtp(args: string[], cwd: string): { wall: number; maxRssKb: number; stderr: string } {
  const cli = join(__dirname, '..', 'dist', 'cli.js');
  const child = spawnSync('/usr/bin/time', ['-f', 'TIME %e %M', process.execPath, cli, ...args], { cwd, encoding: 'utf8' });
  const time = /TIME ([\d.]+) (\d+)/.exec(child.stderr);
  if (child.status !== 0 || !time) throw new Error(`atp ${args.join(' ')} failed:\n${child.stderr}`);
  return { wall: Number(time[1]), maxRssKb: Number(time[2]), stderr: child.stderr };
}

function serveBench(dir: string, cold: number, warm: number): void {
  const work = join(tmpdir(), 'atp-serve-bench');
  spawnSync('mkdir', ['-p', work]);
  writeFileSync(
    join(work, 'one.jsonl'),
    `${JSON.stringify({ clean: 'When Mary and John went to the store, John gave a drink to', corrupted: 'When Mary and John went to the store, Mary gave a drink to', correct: ' Mary', incorrect: ' John' })}\n`,
  );
  const patch = (extra: string[] = []) => [
    'patch',
    '--model',
    dir,
    '--data',
    'one.jsonl',
    '--out',
    'result.json',
    '--method',
    'auto',
    '--device',
    'cpu',
    ...extra,
  ];
  const row = (what: string, r: { wall: number; maxRssKb: number }, more = '') =>
    console.log(`${what}: ${r.wall.toFixed(1)} s wall, client peak RSS ${(r.maxRssKb / 1e6).toFixed(2)} GB${more}`);
  for (let i = 0; i < cold; i++) row(`in-process (--no-server) ${i + 1}`, timedAtp(patch(['--no-server']), work));
  const started = spawnSync(process.execPath, [join(__dirname, '..', 'dist', 'cli.js'), 'serve', '--detach', '--idle', '10'], { cwd: work, encoding: 'utf8' });
  const pid = Number(/pid (\d+)/.exec(started.stdout)?.[1]);
  if (!pid) throw new Error(`atp serve --detach failed:\n${started.stderr}`);
  try {
    const server = () => {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)![1]);
      return `; server RSS ${(kb('VmRSS') / 1e6).toFixed(2)} GB, peak ${(kb('VmHWM') / 1e6).toFixed(2)} GB`;
    };
    for (let i = 0; i <= warm; i++) {
      const r = timedAtp(patch(), work);
      const note = /the atp server built .*/.exec(r.stderr)?.[0] ?? 'not served';
      row(i === 0 ? 'server, first run' : `server, run ${i + 1}`, r, `${server()} (${note})`);
    }
  } finally {
    spawnSync(process.execPath, [join(__dirname, '..', 'dist', 'cli.js'), 'serve', '--stop'], { cwd: work });
  }
}

function memoryStatus(): { rss: number; hwm: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)![1]) * 1024;
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

/** One variant in this fresh process: a CLI-like first run (session build included), then `runs` timed runs. */
async function abChild(dir: string, shape: string, method: string, runs: number, variant: string): Promise<void> {
  const started = performance.now();
  const extra = SESSION_VARIANTS[variant];
  if (!extra) throw new Error(`unknown variant ${variant}`);
  const create = ort.InferenceSession.create.bind(ort.InferenceSession) as (...args: unknown[]) => Promise<ort.InferenceSession>;
  let sessionSeconds = 0;
  let sessionCpuSeconds = 0;
  const builds: number[] = [];
  (ort.InferenceSession as unknown as { create: unknown }).create = async (source: unknown, options: ort.InferenceSession.SessionOptions = {}) => {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const merged = { ...options, ...extra, extra: { ...(options.extra as object), ...(extra.extra as object) } };
    const session = await create(source, merged);
    sessionSeconds += (performance.now() - t0) / 1000;
    builds.push(Number(((performance.now() - t0) / 1000).toFixed(2)));
    // CPU time too: on a shared machine the wall time of a CPU-bound build says more about the neighbours.
    const cpu = process.cpuUsage(cpu0);
    sessionCpuSeconds += (cpu.user + cpu.system) / 1e6;
    return session;
  };
  const [batch, tokens] = shape.split('x').map(Number);
  const model = loadModel(dir);
  const dataset = promptPairs(model, batch, tokens);
  const options = {
    device: 'cpu' as const,
    batchSize: batch,
    method: (method === 'atp-only' ? 'atp' : method) as 'auto' | 'atp',
    exactTokens: method !== 'atp-only',
  };
  const first = await runAttributionPatching(model, dataset, options);
  const firstWall = (performance.now() - started) / 1000;
  const afterFirst = memoryStatus();
  writeFileSync('/proc/self/clear_refs', '5');
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await runAttributionPatching(model, dataset, options);
    times.push((performance.now() - t0) / 1000);
  }
  const peak = memoryStatus().hwm;
  process.stdout.write(
    `${JSON.stringify({ variant, firstWall, sessionSeconds, builds, sessionCpuSeconds, firstRun: first.timings!.runSeconds, times, rssAfterFirst: afterFirst.rss, firstPeak: afterFirst.hwm, runPeak: peak })}\n`,
  );
}

/**
 * Run time only, in one process: one attribution session per variant, then their runs alternated round by round
 * (the machine's noise falls on all alike); medians and each variant's ratio to the first.
 */
async function abRuns(dir: string, shape: string, rounds: number, variants: string[]): Promise<void> {
  const model = loadModel(dir);
  const [batch, tokens] = shape.split('x').map(Number);
  const graphDir = prepareGraphDir(model.weightFiles);
  const builder = new GraphBuilder('float32');
  const weights = new GraphWeights(builder, weightLookup(model), graphDir.locations);
  buildAttributionGraph(model.architecture, builder, weights);
  const file = writeGraphFile(graphDir, builder.toBytes(), 'attribution-float32');
  const { feeds } = batchFeeds(prepareExamples(model, promptPairs(model, batch, tokens), []), 'float32');
  const sessions: ort.InferenceSession[] = [];
  for (const variant of variants) {
    const extra = SESSION_VARIANTS[variant];
    sessions.push(await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', logSeverityLevel: 3, ...extra }));
    await sessions.at(-1)!.run(feeds); // first run: arena and caches
  }
  const times = variants.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    for (const [i, session] of sessions.entries()) {
      const t0 = performance.now();
      await session.run(feeds);
      times[i].push((performance.now() - t0) / 1000);
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const base = median(times[0]);
  for (const [i, variant] of variants.entries()) {
    const m = median(times[i]);
    console.log(
      `${variant}: median ${m.toFixed(3)} s over ${rounds} runs (${(m / base).toFixed(2)}× ${variants[0]}); runs ${times[i].map((t) => t.toFixed(2)).join(' ')}`,
    );
  }
}

function abParent(): void {
  const [dir, shape, method, runs, rounds, variants] = process.argv.slice(3);
  const rows: Array<Record<string, unknown>> = [];
  for (let round = 0; round < Number(rounds); round++) {
    for (const variant of variants.split(',')) {
      // "baseline:VARIANT" runs the same child from another checkout (AB_BASELINE_ROOT): the engine before a change.
      const baseline = variant.startsWith('baseline:');
      const script = baseline ? join(process.env.AB_BASELINE_ROOT ?? '', 'bench', 'loadTime.ts') : __filename;
      const name = baseline ? variant.slice('baseline:'.length) : variant;
      const child = spawnSync(process.execPath, ['--import', 'tsx', script, 'ab-child', dir, shape, method, runs, name], { encoding: 'utf8' });
      if (child.status !== 0) throw new Error(`${variant} failed:\n${child.stderr}`);
      const row = { ...(JSON.parse(child.stdout.trim().split('\n').pop()!) as Record<string, unknown>), variant };
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
}

const modelDir = process.argv[3] ?? join(tmpdir(), 'atp-qwen2.5-0.5b-shaped');
const t = () => performance.now() / 1000;
const rss = () => `${(process.memoryUsage.rss() / 1e9).toFixed(2)} GB`;
let last = t();
const lap = (what: string) => {
  const now = t();
  console.log(`${what}: ${(now - last).toFixed(2)} s (rss ${rss()})`);
  last = now;
};
if (mode === 'levels' || mode === 'save')
  void (async () => {
    if (!existsSync(join(modelDir, 'model.safetensors'))) {
      SHAPES.find((shape) => shape.name === 'qwen2.5-0.5b')!.write(modelDir);
      lap(`wrote the model to ${modelDir}`);
    }
    const model = loadModel(modelDir);
    lap('loadModel (config, tokenizer, weight index)');
    const graphDir = prepareGraphDir(model.weightFiles);
    const builder = new GraphBuilder('float32');
    const weights = new GraphWeights(builder, weightLookup(model), graphDir.locations);
    buildAttributionGraph(model.architecture, builder, weights);
    const bytes = builder.toBytes();
    lap(`graph build (${(bytes.length / 1e6).toFixed(1)} MB)`);
    const file = writeGraphFile(graphDir, bytes, 'attribution-float32');
    lap('graph write');
    const options = (
      level: 'disabled' | 'basic' | 'extended' | 'all',
      extra: Partial<ort.InferenceSession.SessionOptions> = {},
    ): ort.InferenceSession.SessionOptions => ({ executionProviders: ['cpu'], graphOptimizationLevel: level, logSeverityLevel: 3, ...extra });
    if (mode === 'levels') {
      // Alternated, twice: the machine is shared, so A/B in one process says more than runs minutes apart.
      const prepacking = { extra: { session: { disable_prepacking: '1' } } } as never;
      for (let round = 0; round < 2; round++) {
        for (const [name, level, extra] of [
          ['all', 'all', {}],
          ['all, no prepacking', 'all', prepacking],
          ['basic', 'basic', {}],
          ['disabled', 'disabled', {}],
        ] as const) {
          last = t();
          const s = await ort.InferenceSession.create(file, options(level, extra));
          lap(`session create, ${name}`);
          await s.release();
        }
      }
    } else if (mode === 'save') {
      const optimized = join(graphDir.dir, 'optimized.onnx');
      const s = await ort.InferenceSession.create(
        file,
        options('all', {
          optimizedModelFilePath: optimized,
          extra: {
            session: { optimized_model_external_initializers_file_name: 'optimized.bin', optimized_model_external_initializers_min_size_in_bytes: '1024' },
          },
        } as never),
      );
      lap('session create, all, saving the optimised graph');
      await s.release();
      console.log(
        'optimized',
        existsSync(optimized) ? statSync(optimized).size : 'missing',
        existsSync(join(graphDir.dir, 'optimized.bin')) ? statSync(join(graphDir.dir, 'optimized.bin')).size : 'no bin',
      );
      for (const level of ['disabled', 'basic', 'all'] as const) {
        const o = await ort.InferenceSession.create(optimized, options(level));
        lap(`session create from the optimised graph, ${level}`);
        await o.release();
      }
    }
  })();
