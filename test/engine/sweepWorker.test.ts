// A sweep in the extension's engine child process, driven through EngineClient as the editor drives it: progress
// per cell (done/total count cells), the summary written in the output folder; cancelling after the first cell
// keeps that cell and its summary, and answers 'cancelled'.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseSweepSummary } from '../../src/shared/sweep';
import { parseResult } from '../../src/shared/result';
import { EngineClient, type Logger } from '../../src/services/engineClient';
import { renderFieldText } from '../../src/shared/fields';

const DEMO = resolve(__dirname, '../../models/tinysql-demo');
let root: string;
let client: EngineClient;
const log: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-sweep-worker-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
  client = new EngineClient({ workerPath: resolve(__dirname, '../../src/engine/process/worker.ts'), execArgv: ['--import', 'tsx'], log });
});
after(() => {
  client.dispose();
  rmSync(root, { recursive: true, force: true });
});

const spec = (models: string[]) => ({ models, features: ['EngTableName', 'DefTableName'], count: 2, seed: 0, method: 'atp' });

test('a sweep in the worker reports each cell and writes its Results and summary', async () => {
  const out = join(root, 'sweep');
  const cells: Array<[number | undefined, number | undefined, string]> = [];
  const outcome = await client.sweep(
    { spec: spec([DEMO]), outDir: out, device: 'cpu', batchSize: 8 },
    { onProgress: (message, step) => (step?.unit === 'cell' ? cells.push([step.done, step.total, message]) : undefined) },
  );
  assert.deepEqual(outcome, { kind: 'done', summaryFile: join(out, 'summary.json'), ran: 2, kept: 0, failed: 0 });
  // Start and end of each cell: 0/2, 1/2, 1/2, 2/2.
  assert.deepEqual(
    cells.map(([done, total]) => `${done}/${total}`),
    ['0/2', '1/2', '1/2', '2/2'],
  );
  assert.match(cells[1][2], /tinysql-demo · EngTableName CS1: ran/);
  const summary = parseSweepSummary(readFileSync(join(out, 'summary.json'), 'utf8'), 'summary.json');
  assert.deepEqual(
    summary.cells.map((c) => c.status),
    ['ran', 'ran'],
  );
  const result = join(out, summary.cells[1].result);
  assert.equal(parseResult(readFileSync(result, 'utf8'), result).dataset.examples, 2);
  assert.ok(existsSync(join(out, 'summary.html')));

  // Again: both kept.
  const again = await client.sweep({ spec: spec([DEMO]), outDir: out, device: 'cpu', batchSize: 8 });
  assert.deepEqual(again, { kind: 'done', summaryFile: join(out, 'summary.json'), ran: 0, kept: 2, failed: 0 });
});

test('cancelling a sweep in the worker keeps the finished cells and their summary', async () => {
  // A second model folder (a copy of the demo) so that the sweep has cells left to cancel.
  const copy = join(root, 'demo-copy');
  mkdirSync(copy);
  // The model's files only (its claims/ folder is not part of the model).
  for (const file of readdirSync(DEMO, { withFileTypes: true })) if (file.isFile()) copyFileSync(join(DEMO, file.name), join(copy, file.name));
  const out = join(root, 'cancelled');
  const controller = new AbortController();
  const outcome = await client.sweep(
    { spec: spec([DEMO, copy]), outDir: out, device: 'cpu', batchSize: 8 },
    {
      signal: controller.signal,
      onProgress: (message) => {
        if (/: ran$/.test(message)) controller.abort();
      },
    },
  );
  assert.deepEqual(outcome, { kind: 'cancelled' });
  // The worker stops at its next check; the host does not wait for it, so give the summary a moment to land.
  const deadline = Date.now() + 5000;
  while (!existsSync(join(out, 'summary.json')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const summary = parseSweepSummary(readFileSync(join(out, 'summary.json'), 'utf8'), 'summary.json');
  assert.equal(summary.plannedCells, 4);
  assert.ok(summary.cells.length >= 1 && summary.cells.length < 4, `${summary.cells.length} cells done`);
  assert.ok(summary.cells.every((c) => c.status === 'ran'));
});

test('a sweep refused as a whole reaches the host with its field, for the editor to word', async () => {
  const outcome = await client.sweep({ spec: spec([]), outDir: join(root, 'none'), device: 'cpu', batchSize: 8 });
  assert.deepEqual(outcome, {
    kind: 'failed',
    reason: 'input',
    message: '--models: give at least one model',
    input: { field: 'models', detail: '{{models}}: give at least one model' },
  });
  assert.equal(renderFieldText(outcome.kind === 'failed' ? outcome.input!.detail : '', 'editor'), 'the models: give at least one model');
});
