// What logging to W&B costs on this side of the network (docs/BENCHMARKS.md): against the fake W&B server on
// 127.0.0.1 (test/support/fakeWandb.ts, so no network time at all), in one process,
//   small: a run of the built-in IOI model over examples/ioi.jsonl, then logResultToWandb of its Result;
//   large: a synthetic Result of 8,000 examples of a 16-layer × 32-head map (a sidecar of tens of MB), written with
//          writeResultAtomically, then logged (tables, PNG, MD5s, the artefact upload of JSON and sidecar).
// It prints times, their ratios and the number of sequential HTTP requests (each costs one round trip to a real
// server, which this cannot measure). Dev-time only:
//   flock /tmp/s4-bench.lock node --import tsx bench/wandbOverhead.ts
import { mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../src/engine/model/load';
import { readDataset } from '../src/lib/dataset';
import { runAttributionPatching } from '../src/engine/patching/run';
import { releaseSessions } from '../src/engine/process/runtime';
import { writeResultAtomically } from '../src/lib/files/resultFile';
import { logResultToWandb } from '../src/engine/logging/logToWandb';
import type { Result } from '../src/shared/result';
import { comparisonResult } from '../test/support/comparisonResults';
import { startFakeWandb } from '../test/support/fakeWandb';

const root = join(__dirname, '..');
const KEY = 'bench-key';
const seconds = (start: number) => (performance.now() - start) / 1000;
const best = (values: number[]) => Math.min(...values);

function largeResult(examples: number, layers: number, heads: number): Result {
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const map = Array.from({ length: layers }, () => Array.from({ length: heads }, random));
  const result = comparisonResult(map, null, 'bench/llama-1b-shaped');
  const [example] = result.examples;
  result.examples = Array.from({ length: examples }, (_, i) => ({
    ...example,
    line: i + 1,
    attributions: {
      z: map.map((row) => [row.map((v) => v + random() * 1e-3)]),
      residPre: map.map(() => [random()]),
      attnOut: map.map(() => [random()]),
      mlpOut: map.map(() => [random()]),
    },
  }));
  result.dataset = { file: 'bench.jsonl', examples };
  return result;
}

(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atp-bench-wandb-'));
  process.env.ATP_CACHE_DIR ??= join(root, '.atp-cache', 'graphs');
  const server = await startFakeWandb(KEY);
  const target = { project: 'bench', apiKey: KEY, keySource: 'bench', baseUrl: server.url };
  try {
    // small: a real run, then its logging.
    const model = loadModel(join(root, 'models', 'ioi-demo'));
    const dataset = readDataset(join(root, 'examples', 'ioi.jsonl'));
    const runs: number[] = [];
    const logs: number[] = [];
    let requests = 0;
    for (let repeat = 0; repeat < 3; repeat++) {
      const start = performance.now();
      const result = await runAttributionPatching(model, dataset, { device: 'cpu', batchSize: 8, method: 'atp' });
      const file = join(dir, 'small.json');
      writeResultAtomically(file, result);
      runs.push(seconds(start));
      const before = server.requests.length;
      const logStart = performance.now();
      const outcome = await logResultToWandb(target, result, file, { displayName: 'small', jobType: 'patch' });
      logs.push(seconds(logStart));
      requests = server.requests.length - before;
      if (outcome.warnings.length) throw new Error(outcome.warnings.join('\n'));
    }
    console.log(
      `small (ioi-demo, ${dataset.examples.length} examples): run+write ${best(runs).toFixed(3)} s, W&B logging ${best(logs).toFixed(3)} s ` +
        `(${((100 * best(logs)) / best(runs)).toFixed(0)}% of the run), ${requests} sequential HTTP requests`,
    );
    await releaseSessions();

    // large: writing the Result (as every run does) against logging it.
    const result = largeResult(8000, 16, 32);
    const writes: number[] = [];
    const largeLogs: number[] = [];
    const file = join(dir, 'large.json');
    for (let repeat = 0; repeat < 3; repeat++) {
      const start = performance.now();
      writeResultAtomically(file, result, { layout: 'sidecar' });
      writes.push(seconds(start));
      // A new artefact digest each time would need new bytes; the fake server deduplicates a known digest, so the
      // artefact is forgotten between repeats to measure the full upload every time.
      server.artifacts.length = 0;
      server.storage.clear();
      const before = server.requests.length;
      const logStart = performance.now();
      const outcome = await logResultToWandb(target, result, file, { displayName: 'large', jobType: 'patch' });
      largeLogs.push(seconds(logStart));
      requests = server.requests.length - before;
      if (outcome.warnings.length) throw new Error(outcome.warnings.join('\n'));
    }
    const bytes = readdirSync(dir)
      .filter((name) => name.startsWith('large.'))
      .reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
    console.log(
      `large (8000 examples, 16×32 heads, Result + sidecar ${(bytes / 2 ** 20).toFixed(1)} MiB): write ${best(writes).toFixed(3)} s, ` +
        `W&B logging ${best(largeLogs).toFixed(3)} s (${(best(largeLogs) / best(writes)).toFixed(2)}× the write), ${requests} sequential HTTP requests`,
    );
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
