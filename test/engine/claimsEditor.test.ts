import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EngineClient } from '../../src/services/engineClient';
import { runClaimsFile } from '../../src/testing/claimsRunner';
import { parseResult } from '../../src/shared/result';
import { requireBuiltCli, runCli } from '../support/cli';

/**
 * The editor's path for claims (src/testing/claimsRunner.ts, what the Test Explorer and the CodeLenses run): the run
 * goes through the real engine child process, the stored Result is reused when current, and the verdicts are the
 * ones `atp test` gives on the same files.
 */

const root = resolve(__dirname, '../..');
let work: string;
let model: string;
let client: EngineClient;
const runs: string[] = [];
const log = { info: () => {}, warn: () => {}, error: () => {} };

before(() => {
  requireBuiltCli();
  work = mkdtempSync(join(tmpdir(), 'atp-claims-editor-'));
  process.env.ATP_CACHE_DIR = join(work, 'cache');
  model = join(work, 'tinysql-demo');
  cpSync(join(root, 'models', 'tinysql-demo'), model, { recursive: true, filter: (path) => !/\.atp-(result|passes)\.json$/.test(path) });
  client = new EngineClient({ workerPath: resolve(root, 'src/engine/process/worker.ts'), execArgv: ['--import', 'tsx'], log });
});
after(() => {
  client.dispose();
  rmSync(work, { recursive: true, force: true });
});

/** The engine client, counting the runs that reach the worker. */
const engine = {
  run: (request: Parameters<EngineClient['run']>[0], handlers?: Parameters<EngineClient['run']>[1], circuit?: Parameters<EngineClient['run']>[2]) => {
    runs.push(request.datasetFile);
    return client.run(request, handlers, circuit);
  },
};
const settings = { device: 'cpu' as const, batchSize: 16 };

test('a claims file runs in the worker once, is reused while current, and a false claim fails with expected and actual at its line', async () => {
  const file = join(model, 'claims', 'tables.claims.yaml');
  const text = readFileSync(file, 'utf8');
  const first = await runClaimsFile(file, text, engine, settings);
  assert.equal(first.kind, 'checked', JSON.stringify(first));
  if (first.kind !== 'checked') return;
  assert.equal(first.reused, false);
  assert.deepEqual(first.why, ['no stored Result yet']);
  assert.deepEqual(
    first.reports.map((r) => r.outcome.status),
    ['passed', 'passed', 'passed', 'passed', 'passed', 'passed', 'passed'],
  );
  assert.equal(runs.length, 1);
  const result = parseResult(readFileSync(first.resultFile, 'utf8'), first.resultFile);
  assert.equal(result.checks?.items.length, 16, 'every head checked for the agreement claim');
  // The faithfulness claims made the worker's run a circuit run, measured at exactly the claimed sizes.
  assert.deepEqual([result.circuit?.method, result.circuit?.steps, result.circuit?.curve?.edges], ['eap-ig', 5, [0, 23, 34, 479]]);
  assert.ok(result.provenance?.modelFiles['model.safetensors']?.startsWith('sha256:'));

  // Nothing changed: the stored Result answers, no run.
  const again = await runClaimsFile(file, text, engine, settings);
  assert.equal(again.kind === 'checked' && again.reused, true);
  assert.equal(runs.length, 1);

  // A false claim (edited in the editor, not saved): checked against the same current Result, failed at its line.
  const edited = text.replace('include: [L0H3, L0H1]', 'include: [L0H3, L3H3]');
  const failed = await runClaimsFile(file, edited, engine, settings);
  assert.equal(runs.length, 1, 'the claims changed, not the inputs: the Result is still current');
  assert.equal(failed.kind, 'checked');
  if (failed.kind !== 'checked') return;
  const report = failed.reports[0];
  assert.equal(report.outcome.status, 'failed');
  assert.equal(report.entry.line, edited.split('\n').findIndex((l) => l.includes('carry the table name')) + 1);
  assert.equal(report.outcome.expected, 'L0H3, L3H3 in the top 3 heads');
  assert.match(report.outcome.actual, /^top 3 by \|attribution\|: L0H3 \+0\.\d{4}, L0H1 \+0\.\d{4}, L0H2 \+0\.\d{4} \(missing L3H3\)$/);
  assert.equal(report.lastPass?.claimWas, 'L0H3, L0H1 in the top 3 heads');

  // The CLI agrees on the file as saved, from the Result the editor stored (reused, not rerun).
  writeFileSync(file, edited);
  // CI unset: under CI the CLI never reuses a stored Result.
  const cli = runCli(join(work, 'cache'), ['test', file, '--device', 'cpu'], undefined, { CI: '' });
  assert.equal(cli.code, 1);
  assert.match(cli.stdout, /reused .*tables\.claims\.atp-result\.json/);
  assert.match(cli.stdout, /✗ L0H3 and L0H1 carry the table name/);
});

test('a claims file with problems is reported with their lines, without a run', async () => {
  const file = join(model, 'claims', 'broken.claims.yaml');
  const outcome = await runClaimsFile(file, 'model: ..\ndataset: tables.jsonl\nclaims:\n  - baselines: {clean: {above: 1}}\n', engine, settings);
  assert.deepEqual(outcome, {
    kind: 'invalid',
    message: `${file}:4:25: claims[0].baselines.clean.above: unknown field; expected greater_than, less_than, at_least, at_most`,
  });
  const missing = await runClaimsFile(file, 'model: ..\ndataset: nowhere.jsonl\nclaims:\n  - baselines: {clean: {greater_than: 1}}\n', engine, settings);
  assert.equal(missing.kind, 'failed');
  assert.match(missing.kind === 'failed' ? missing.message : '', /nowhere\.jsonl cannot be read/);
});
