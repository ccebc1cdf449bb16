// The extension's engine child process, driven through EngineClient as the extension host drives it: a run writes
// its Result to the pending file only; input problems come back as diagnostics at exact columns; cancelling stops
// within a second and leaves nothing behind; a crash of the process fails the run without hurting the caller.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseResult } from '../../src/shared/result';
import { formatProgress } from '../../src/shared/progress';
import type { ProgressEvent } from '../../src/shared/workerProtocol';
import { contentHash } from '../../src/lib/files/contentHash';
import { EngineClient, type Logger } from '../../src/services/engineClient';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { adviseFailure } from '../../src/commands/runFailure';

const IOI = readFileSync(resolve(__dirname, '../../examples/ioi.jsonl'), 'utf8');
let root: string;
let model: string;
let client: EngineClient;
const logged: string[] = [];
const log: Logger = { info: (m) => logged.push(m), warn: (m) => logged.push(m), error: (m) => logged.push(m) };

before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-worker-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 2, nHeads: 4, dModel: 32, seed: 1 });
  process.env.ATP_CACHE_DIR = join(root, 'cache');
  client = new EngineClient({ workerPath: resolve(__dirname, '../../src/engine/process/worker.ts'), execArgv: ['--import', 'tsx'], log });
});
after(() => {
  client.dispose();
  rmSync(root, { recursive: true, force: true });
});

const request = (datasetText: string, name: string) => ({
  model,
  datasetFile: join(root, `${name}.jsonl`),
  datasetText,
  device: 'cpu' as const,
  batchSize: 3,
  pendingFile: join(root, `.${name}.pending`),
});

test('a run writes the Result (with the content hash) to the pending file and reports progress', async () => {
  const progress: string[] = [];
  const steps: ProgressEvent[] = [];
  const outcome = await client.run(request(IOI, 'ioi'), {
    onProgress: (message, step) => {
      progress.push(message);
      if (step) {
        steps.push(step);
        assert.equal(message, formatProgress(step), "a step's message is its formatted event");
      }
    },
  });
  assert.equal(outcome.kind, 'done', JSON.stringify(outcome));
  if (outcome.kind !== 'done') return;
  const result = parseResult(readFileSync(outcome.pendingFile, 'utf8'), outcome.pendingFile);
  assert.equal(result.examples.length, 8);
  assert.equal(result.dataset.contentHash, contentHash(IOI));
  assert.equal(outcome.summary.contentHash, contentHash(IOI));
  assert.equal(result.model.source, model);
  // Typed steps: every batch of the attribution pass, counted, with the time left after the first.
  const batches = steps.filter((s) => s.unit === 'batch');
  assert.deepEqual(
    batches.map((s) => [s.done, s.total]),
    [
      [0, 3],
      [1, 3],
      [2, 3],
      [3, 3],
    ],
    progress.join('\n'),
  );
  assert.equal(batches[0].etaSeconds, undefined);
  assert.ok(batches.slice(1).every((s) => typeof s.etaSeconds === 'number' && s.etaSeconds >= 0));
  assert.equal(batches.at(-1)!.etaSeconds, 0);
});

test('a circuit run writes a Result holding the circuit to the pending file', async () => {
  const text = IOI.split('\n').slice(0, 3).join('\n');
  const outcome = await client.run(request(text, 'circuit'), {}, { method: 'eap', selection: { rule: 'top-n', edges: 10 }, curvePoints: 0 });
  assert.equal(outcome.kind, 'done', JSON.stringify(outcome));
  if (outcome.kind !== 'done') return;
  const circuit = parseResult(readFileSync(outcome.pendingFile, 'utf8'), outcome.pendingFile).circuit;
  assert.ok(circuit && circuit.method === 'eap' && circuit.selection.rule === 'top-n' && circuit.inCircuit.length <= 10, JSON.stringify(circuit?.selection));
});

test('a token-count mismatch fails the run with a diagnostic at the corrupted prompt; nothing is written', async () => {
  const bad = IOI.split('\n')[0].replace('Mary gave the bag', 'Mary-Ann gave the bag');
  const text = `${IOI.split('\n')[1]}\n${bad}\n`;
  const outcome = await client.run(request(text, 'mismatch'));
  assert.equal(outcome.kind, 'failed');
  if (outcome.kind !== 'failed') return;
  assert.equal(outcome.reason, 'input');
  const [diagnostic] = outcome.diagnostics;
  assert.equal(diagnostic.line, 2);
  assert.equal(diagnostic.severity, 'error');
  assert.match(diagnostic.message, /token/);
  const corruptedLiteral = JSON.stringify(JSON.parse(bad).corrupted);
  assert.equal(bad.slice(diagnostic.startColumn, diagnostic.endColumn), corruptedLiteral);
  assert.ok(!existsSync(join(root, '.mismatch.pending')));
});

test('invalid JSON on a line becomes a diagnostic on that line', async () => {
  const outcome = await client.run(request(`${IOI.split('\n')[0]}\n{"clean": oops}\n`, 'invalid'));
  assert.equal(outcome.kind, 'failed');
  if (outcome.kind === 'failed') {
    assert.equal(outcome.reason, 'input');
    assert.equal(outcome.diagnostics[0].line, 2);
    assert.match(outcome.diagnostics[0].message, /invalid JSON/);
  }
});

test('an InputError in the worker reaches the host with its field and detail, for the editor to word and act on', async () => {
  const nowhere = join(root, 'nowhere');
  const missing = await client.run({ ...request(IOI, 'nowhere'), model: nowhere });
  assert.equal(missing.kind, 'failed');
  if (missing.kind !== 'failed') return;
  assert.equal(missing.reason, 'input');
  assert.equal(missing.message, `--model: folder ${nowhere} does not exist`);
  assert.deepEqual(missing.input, { field: 'model', detail: `{{model}}: folder ${nowhere} does not exist` });
  const advice = adviseFailure(missing, missing.diagnostics, join(root, 'nowhere.jsonl'));
  assert.equal(advice.message, `the model (setting attributionPatching.model): folder ${nowhere} does not exist`);
  assert.deepEqual(
    advice.actions.map((a) => a.title),
    ['Select Model', 'Open Settings'],
  );

  // A folder that is no model: the error names config.json, not a flag; the worker knows it is the model's problem.
  mkdirSync(join(root, 'empty'), { recursive: true });
  const empty = await client.run({ ...request(IOI, 'empty'), model: join(root, 'empty') });
  assert.equal(empty.kind, 'failed');
  if (empty.kind !== 'failed') return;
  assert.equal(empty.input?.field, 'model', JSON.stringify(empty));
  assert.doesNotMatch(empty.message, /^--model/);

  const batch = await client.run({ ...request(IOI, 'batch'), batchSize: 0 });
  assert.equal(batch.kind, 'failed');
  if (batch.kind !== 'failed') return;
  assert.equal(batch.input?.field, 'batchSize', JSON.stringify(batch));
  assert.match(batch.message, /^--batch-size must be a positive integer, got 0/);
  assert.match(
    adviseFailure(batch, [], join(root, 'batch.jsonl')).message,
    /^the batch size \(setting attributionPatching\.batchSize\) must be a positive integer/,
  );

  // A dataset problem is the dataset's, shown in Problems.
  const invalid = await client.run(request(`{"clean": oops}\n`, 'invalid-field'));
  assert.equal(invalid.kind === 'failed' && invalid.input?.field, 'data');
});

test('cancel between batches stops within a second and writes nothing', async () => {
  const many = Array.from({ length: 40 }, () => IOI).join('');
  const controller = new AbortController();
  let abortedAt = 0;
  const pending = client.run(
    { ...request(many, 'cancel'), batchSize: 1 },
    {
      signal: controller.signal,
      onProgress: (_message, step) => {
        // One batch done: the second is next.
        if (step?.unit === 'batch' && step.done === 1) {
          abortedAt = Date.now();
          controller.abort();
        }
      },
    },
  );
  const outcome = await pending;
  assert.equal(outcome.kind, 'cancelled');
  // Timed from the cancel, not from the start of the run: the client answers within its grace period (500 ms),
  // whether the engine stops by itself at the next batch or is stopped.
  assert.ok(abortedAt > 0, 'the run reached batch 2 and was cancelled there');
  assert.ok(Date.now() - abortedAt < 1000, `answered ${Date.now() - abortedAt} ms after the cancel`);
  await new Promise((done) => setTimeout(done, 300));
  assert.ok(!existsSync(join(root, '.cancel.pending')), 'no result written');
  // The next run works (on the same process, or on a fresh one if it had to be stopped).
  const again = await client.run(request(IOI, 'again'));
  assert.equal(again.kind, 'done');
});

test('cancellation is answered within a second even while the engine is busy', async () => {
  const many = Array.from({ length: 40 }, () => IOI).join('');
  const controller = new AbortController();
  const pending = client.run(
    { ...request(many, 'busy'), batchSize: 320 },
    {
      signal: controller.signal,
      onProgress: (message) => {
        if (/^running/.test(message)) setTimeout(() => controller.abort(), 50);
      },
    },
  );
  let abortedAt = 0;
  controller.signal.addEventListener('abort', () => (abortedAt = Date.now()));
  const outcome = await pending;
  assert.equal(outcome.kind, 'cancelled');
  assert.ok(Date.now() - abortedAt < 1000, `answered ${Date.now() - abortedAt} ms after the cancel`);
  await new Promise((done) => setTimeout(done, 300));
  assert.ok(!existsSync(join(root, '.busy.pending')));
});

test('a crashed engine process fails the run; the client starts a new process for the next one', async () => {
  const crashing = new EngineClient({ workerPath: resolve(__dirname, '../../src/engine/process/worker.ts'), execArgv: ['--import', 'tsx'], log });
  try {
    const pending = crashing.run(request(IOI, 'crash'), {
      onProgress: () => {
        const child = (crashing as unknown as { child?: { kill(signal: string): void } }).child;
        child?.kill('SIGKILL');
      },
    });
    const outcome = await pending;
    assert.equal(outcome.kind, 'failed');
    if (outcome.kind === 'failed') {
      assert.equal(outcome.reason, 'crashed');
      assert.match(outcome.message, /SIGKILL/);
    }
    const next = await crashing.run(request(IOI, 'after-crash'));
    assert.equal(next.kind, 'done');
  } finally {
    crashing.dispose();
  }
});

test("diagnose: tokenizer problems of the editor text at exact columns, with the model folder's tokenizer", async () => {
  const text = 'When John and Mary went to the shops, {John|Mary-Ann} gave the bag to => " Mary" | " John and"\n';
  const outcome = await client.diagnose({ model, datasetFile: join(root, 'live.atp'), format: 'atp', datasetText: text });
  assert.equal(outcome.kind, 'diagnosed', JSON.stringify(outcome));
  if (outcome.kind !== 'diagnosed') return;
  assert.equal(outcome.skipped, undefined);
  const mismatch = outcome.diagnostics.find((d) => d.severity === 'error');
  assert.ok(mismatch, JSON.stringify(outcome.diagnostics));
  assert.match(mismatch.message, /clean prompt is \d+ tokens and the corrupted prompt \d+/);
  assert.equal(text.slice(mismatch.startColumn, mismatch.endColumn), '{John|Mary-Ann}');
  const multi = outcome.diagnostics.find((d) => d.severity === 'warning');
  assert.equal(text.slice(multi?.startColumn, multi?.endColumn), '" John and"');
  // Runs go on beside diagnose requests: a diagnose does not make the engine busy.
  assert.equal(client.busy, false);
});

test('diagnose: a hub model that is not in the local cache is skipped, never downloaded', async () => {
  const outcome = await client.diagnose({ model: 'nobody-here/not-downloaded', datasetFile: join(root, 'live.jsonl'), format: 'jsonl', datasetText: IOI });
  assert.equal(outcome.kind, 'diagnosed', JSON.stringify(outcome));
  if (outcome.kind === 'diagnosed') {
    assert.deepEqual(outcome.diagnostics, []);
    assert.ok(outcome.skipped);
  }
});

test("generate: the dataset text for the model's tokenizer, as .atp or JSONL; a bad model fails the request", async () => {
  const spec = { kind: 'tinysql' as const, feature: 'DefTableName' as const, commandSet: 1 as const, count: 5, seed: 3, novel: false, synonyms: false };
  const atp = await client.generate({ model, spec, format: 'atp' });
  assert.equal(atp.kind, 'generated', JSON.stringify(atp));
  if (atp.kind !== 'generated') return;
  assert.equal(atp.examples, 5);
  assert.match(atp.text, /^# TinySQL DefTableName, command set 1: 5 examples, seed 3/);
  const jsonl = await client.generate({ model, spec: { kind: 'ioi', count: 4, seed: 0 }, format: 'jsonl' });
  assert.equal(jsonl.kind === 'generated' && jsonl.text.trim().split('\n').length, 4);
  const failed = await client.generate({ model: join(root, 'no-such-model'), spec, format: 'atp' });
  assert.equal(failed.kind, 'failed');
  if (failed.kind === 'failed') assert.match(failed.message, /does not exist/);
});

test('restart (after a CUDA install): a fresh engine process for the next run, never one cut from under a run in flight', async () => {
  const restarting = new EngineClient({ workerPath: resolve(__dirname, '../../src/engine/process/worker.ts'), execArgv: ['--import', 'tsx'], log });
  const pid = () => (restarting as unknown as { child?: { pid: number } }).child?.pid;
  try {
    const first = await restarting.run(request(IOI, 'before-restart'));
    assert.equal(first.kind, 'done');
    const firstPid = pid();
    assert.ok(firstPid);
    restarting.restart();
    assert.equal(pid(), undefined, 'the idle process is stopped at once');

    let duringRun: number | undefined;
    let restartedDuringRun = false;
    const progress: string[] = [];
    const second = await restarting.run(request(IOI, 'during-restart'), {
      onProgress: (message) => {
        progress.push(message);
        if (!restartedDuringRun) {
          restartedDuringRun = true;
          duringRun = pid();
          restarting.restart();
        }
        assert.equal(pid(), duringRun, 'the process running the run stays until it finishes');
      },
    });
    assert.equal(second.kind, 'done', JSON.stringify(second));
    assert.ok(duringRun && duringRun !== firstPid);
    assert.equal(pid(), undefined, 'stopped once the run finished');
    // Each process says where it loads ONNX Runtime from (the per-user CUDA runtime when installed).
    assert.match(progress[0], /^ONNX Runtime from /);
    assert.equal((await restarting.run(request(IOI, 'after-restart'))).kind, 'done');
  } finally {
    restarting.dispose();
  }
});
