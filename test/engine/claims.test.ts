import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseResult } from '../../src/shared/result';
import { readClaimsFile } from '../../src/lib/claims/schema';
import { loadModel } from '../../src/engine/model/load';
import { readDataset } from '../../src/lib/dataset';
import { validateHeads } from '../../src/engine/patching/validation';
import { requireBuiltCli, runCli } from '../support/cli';

/**
 * The shipped models' claims (models/tinysql-demo/claims and models/ioi-demo/claims: their model cards' findings,
 * circuits included) run with `atp test` as a user runs it, on copies of the model folders (atp test keeps its
 * Result and pass record beside the claims file).
 */

const root = resolve(__dirname, '../..');
let work: string;
let model: string;
let ioi: string;
let cache: string;

before(() => {
  requireBuiltCli();
  work = mkdtempSync(join(tmpdir(), 'atp-claims-'));
  cache = join(work, 'cache');
  model = join(work, 'tinysql-demo');
  ioi = join(work, 'ioi-demo');
  for (const [name, to] of [
    ['tinysql-demo', model],
    ['ioi-demo', ioi],
  ]) {
    cpSync(join(root, 'models', name), to, { recursive: true, filter: (path) => !/\.atp-(result|passes)\.json$/.test(path) });
  }
});
after(() => rmSync(work, { recursive: true, force: true }));

const sha256 = (file: string) => `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;

test("the shipped models' claims pass, are written as JUnit, and the Result records its provenance", () => {
  const junit = join(work, 'junit.xml');
  const run = runCli(cache, ['test', join(model, 'claims'), join(ioi, 'claims'), '--device', 'cpu', '--junit', junit]);
  console.log(run.stdout);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /19 passed, 0 failed, 0 not settled \(3 claims files\)/);
  assert.match(run.stdout, /✓ L0H3 and L0H1 carry the table name/);
  assert.match(run.stdout, /✓ the top 23 edges \(5% of 479\) keep at least 0\.9 of the metric/);
  assert.match(readFileSync(junit, 'utf8'), /<testsuites name="atp test" tests="19" failures="0" errors="0"/);
  const result = parseResult(readFileSync(join(model, 'claims', 'tables.claims.atp-result.json'), 'utf8'), 'tables');
  const provenance = result.provenance!;
  assert.equal(provenance.modelFiles['model.safetensors'], sha256(join(model, 'model.safetensors')), 'the hash of the weights as sha256sum computes it');
  assert.equal(provenance.tokenizerHash, sha256(join(model, 'tokenizer.json')));
  assert.equal(provenance.modelFiles['config.json'], sha256(join(model, 'config.json')));
  assert.equal(provenance.engineVersion, JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
  assert.deepEqual([provenance.method, provenance.device, provenance.seed], ['atp', 'cpu', 0]);
  assert.equal(
    result.dataset.contentHash,
    `sha256:${createHash('sha256')
      .update(readFileSync(join(model, 'claims', 'tables.jsonl'), 'utf8'))
      .digest('hex')}`,
  );
});

test('the agreement claim reads checks of every head that match exact activation patching computed by another path', async () => {
  // The checks come from exact.ts's patchComponents (one row per check, over every example); validateHeads patches
  // every head with runActivationPatching's sweep. Both run suffix passes (suffixPatching.ts), which
  // test/engine/suffixPatching.test.ts checks against full forward passes.
  const result = parseResult(readFileSync(join(model, 'claims', 'tables.claims.atp-result.json'), 'utf8'), 'tables');
  const claims = readClaimsFile(join(model, 'claims', 'tables.claims.yaml'));
  const v = await validateHeads(loadModel(model), readDataset(claims.dataset), { device: 'cpu', batchSize: 64 });
  const checks = result.checks!;
  assert.deepEqual(checks.candidates, ['heads']);
  assert.equal(checks.items.length, 16, 'every head of the 4 × 4 model');
  for (const item of checks.items) {
    // float32 runs of two graphs, values of order 0.1–1: agreement to 1e-4 is float noise, not a different number.
    assert.ok(
      Math.abs(item.exact - v.exact[item.layer][item.head!]) < 1e-4,
      `L${item.layer}H${item.head}: ${item.exact} vs ${v.exact[item.layer][item.head!]}`,
    );
  }
  assert.ok(Math.abs(checks.spearman - v.spearman) < 1e-9, `Spearman ${checks.spearman} vs ${v.spearman}`);
  assert.ok(Math.abs(checks.pearson - v.pearson) < 1e-4, `Pearson ${checks.pearson} vs ${v.pearson}`);
});

test('a second run reuses the current Result; a changed model file reruns and says so', () => {
  // CI unset: under CI a stored Result is never reused (the lead's CI sets CI=true).
  const again = runCli(cache, ['test', join(model, 'claims', 'tables.claims.yaml'), '--device', 'cpu'], undefined, { CI: '' });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /reused .*tables\.claims\.atp-result\.json \(inputs unchanged\)/);
  // config.json with one more newline: same model, other bytes: its hash differs, so the Result is no longer current.
  appendFileSync(join(model, 'config.json'), '\n');
  const changed = runCli(cache, ['test', join(model, 'claims', 'tables.claims.yaml'), '--device', 'cpu'], undefined, { CI: '' });
  assert.equal(changed.code, 0, changed.stderr);
  assert.match(changed.stdout, /ran the model \(model file config\.json changed \(sha256 [0-9a-f]{12}… → [0-9a-f]{12}…\)\)/);
});

test('faithfulness claims are read from circuit runs measured at exactly the claimed sizes, as atp circuit measures that circuit', () => {
  for (const [file, sizes] of [
    [join(model, 'claims', 'tables.claims.atp-result.json'), [0, 23, 34, 479]],
    [join(model, 'claims', 'fields.claims.atp-result.json'), [0, 23, 34, 479]],
    [join(ioi, 'claims', 'ioi.claims.atp-result.json'), [0, 14, 23, 479]],
  ] as const) {
    const circuit = parseResult(readFileSync(file, 'utf8'), file).circuit!;
    assert.deepEqual([circuit.method, circuit.steps, circuit.curve!.edges], ['eap-ig', 5, sizes]);
    // The patched forward pass's own checks: the whole graph is the clean run, the empty one the corrupted run.
    assert.ok(Math.abs(circuit.faithfulness.full - 1) < 1e-5 && Math.abs(circuit.faithfulness.empty) < 1e-5, JSON.stringify(circuit.faithfulness));
  }
  // atp circuit's own run of the top-23 circuit (another run, selection instead of the curve) measures the same value.
  const out = join(work, 'tables-circuit.json');
  const cli = runCli(cache, [
    'circuit',
    '--model',
    model,
    '--data',
    join(model, 'claims', 'tables.jsonl'),
    '--out',
    out,
    '--method',
    'eap-ig',
    '--edges',
    '23',
    '--curve-points',
    '0',
    '--device',
    'cpu',
  ]);
  assert.equal(cli.code, 0, cli.stderr);
  const claimed = parseResult(readFileSync(join(model, 'claims', 'tables.claims.atp-result.json'), 'utf8'), 'tables').circuit!;
  const measured = parseResult(readFileSync(out, 'utf8'), out).circuit!.faithfulness.circuit;
  // Same float32 graphs and edges: equal up to float noise (measured at 1e-7; float64 agrees to 1e-6 as well).
  assert.ok(Math.abs(claimed.curve!.faithfulness[1] - measured) < 1e-5, `${claimed.curve!.faithfulness[1]} vs ${measured}`);
});

test('changed circuit options rerun the circuit and say what changed', () => {
  const claimsFile = join(model, 'claims', 'fields.claims.yaml');
  const original = readFileSync(claimsFile, 'utf8');
  writeFileSync(claimsFile, original.replace('circuit: {method: eap-ig, steps: 5}', 'circuit: {method: eap-ig, steps: 3, sizes: [50]}'));
  // CI unset: the reasons for a rerun are said only where a stored Result could have been reused.
  const run = runCli(cache, ['test', claimsFile, '--device', 'cpu'], undefined, { CI: '' });
  assert.equal(run.code, 0, run.stdout + run.stderr);
  // (config.json changed too: the test before this one added a newline.)
  assert.match(run.stdout, /ran the model \(.*circuit eap-ig, 5 steps → eap-ig, 3 steps; the stored circuit did not measure 50 edges\)/);
  const circuit = parseResult(readFileSync(join(model, 'claims', 'fields.claims.atp-result.json'), 'utf8'), 'fields').circuit!;
  assert.deepEqual([circuit.steps, circuit.curve!.edges], [3, [0, 23, 34, 50, 479]]);
  writeFileSync(claimsFile, original);
});

test('a false claim fails atp test with exit 1, expected and actual at its line, when it last passed, and a JUnit failure', () => {
  const claimsFile = join(model, 'claims', 'tables.claims.yaml');
  // The same claim (same name), now false: L2H0 is not among the top heads. And the dataset loses its last line.
  writeFileSync(claimsFile, readFileSync(claimsFile, 'utf8').replace('include: [L0H3, L0H1]', 'include: [L0H3, L2H0]'));
  const dataset = join(model, 'claims', 'tables.jsonl');
  writeFileSync(dataset, readFileSync(dataset, 'utf8').trimEnd().split('\n').slice(0, -1).join('\n') + '\n');
  const junit = join(work, 'false.xml');
  const run = runCli(cache, ['test', claimsFile, '--device', 'cpu', '--junit', junit]);
  console.log(run.stdout);
  assert.equal(run.code, 1, run.stderr);
  const line =
    readFileSync(claimsFile, 'utf8')
      .split('\n')
      .findIndex((l) => l.includes('carry the table name')) + 1;
  assert.match(run.stdout, new RegExp(`✗ L0H3 and L0H1 carry the table name {2}\\(.*tables\\.claims\\.yaml:${line}\\)`));
  assert.match(
    run.stdout,
    /expected: L0H3, L2H0 in the top 3 heads\n {6}actual: {3}top 3 by \|attribution\|: L0H3 \+0\.\d{4}, L0H1 \+0\.\d{4}, L0H2 \+0\.\d{4} \(missing L2H0\)/,
  );
  assert.match(run.stdout, /last passed \S+ on other inputs: dataset changed \(when the claim said: L0H3, L0H1 in the top 3 heads\)/);
  assert.match(run.stdout, /6 passed, 1 failed, 0 not settled/);
  const xml = readFileSync(junit, 'utf8');
  assert.match(xml, /tests="7" failures="1" errors="0"/);
  assert.match(xml, new RegExp(`<testcase name="L0H3 and L0H1 carry the table name" [^>]*line="${line}"[^>]*>\\n\\s*<failure type="claim"`));
});

test('a malformed claims file is reported at its line and field; a too-strong faithfulness claim fails with expected and actual', () => {
  const bad = join(model, 'claims', 'bad.claims.yaml');
  writeFileSync(bad, 'model: ..\ndataset: tables.jsonl\nclaims:\n  - top_heads: {k: 3, include: [L0H3, H1]}\n');
  const run = runCli(cache, ['test', bad, '--device', 'cpu']);
  assert.equal(run.code, 1);
  assert.match(run.stdout, /bad\.claims\.yaml:4:39: claims\[0\]\.top_heads\.include\[1\]: expected a head such as L0H3 or L2H\*, got "H1"/);
  // The top 23 edges keep about 0.9 of the table-name effect (the shipped claim says ≥ 0.85): 0.99 is too strong.
  writeFileSync(
    bad,
    'model: ..\ndataset: tables.jsonl\nclaims:\n  - faithfulness: {edges: 23, at_least: 0.99}\n  - faithfulness: {edges: 1000, at_least: 0.5}\n',
  );
  const strong = runCli(cache, ['test', bad, '--device', 'cpu']);
  console.log(strong.stdout);
  assert.equal(strong.code, 1);
  assert.match(
    strong.stdout,
    /✗ the top 23 edges keep ≥ 0\.99 of the metric {2}\(.*bad\.claims\.yaml:4\)\n {6}expected: the top 23 edges keep ≥ 0\.99 of the metric\n {6}actual: {3}faithfulness 0\.(8[5-9]|9[0-8])\d at 23 edges \(measured, eap-ig\)/,
  );
  assert.match(
    strong.stdout,
    /\? the top 1000 edges keep ≥ 0\.5 of the metric {2}\(.*bad\.claims\.yaml:5, unverified\)\n {6}expected: .*\n {6}actual: {3}the graph has 479 edges, fewer than 1000/,
  );
  assert.match(strong.stdout, /0 passed, 1 failed, 1 not settled/);
  assert.equal(runCli(cache, ['test', join(work, 'nothing-here.yaml')]).code, 2, 'a path that does not exist is a usage error');
});

test('claims naming a built-in model by its name reuse their stored Result, and the Result names the model, not where it is installed', () => {
  const folder = join(work, 'by-name');
  cpSync(join(root, 'models', 'ioi-demo', 'claims', 'ioi.jsonl'), join(folder, 'ioi.jsonl'), { recursive: true });
  const file = join(folder, 'named.claims.yaml');
  writeFileSync(file, 'model: ioi-demo\ndataset: ioi.jsonl\nmethod: atp\nclaims:\n  - baselines: {clean: {greater_than: 0}}\n');
  // CI unset: under CI a stored Result is never reused.
  const first = runCli(cache, ['test', file, '--device', 'cpu'], undefined, { CI: '' });
  assert.equal(first.code, 0, first.stdout + first.stderr);
  assert.match(first.stdout, /ran the model \(no stored Result yet\)/);
  const stored = parseResult(readFileSync(join(folder, 'named.claims.atp-result.json'), 'utf8'), 'named');
  assert.equal(stored.model.source, 'ioi-demo');
  // Before: "the model ioi-demo is not a folder, so its files cannot be compared", and a rerun every time.
  const again = runCli(cache, ['test', file, '--device', 'cpu'], undefined, { CI: '' });
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /reused .*named\.claims\.atp-result\.json \(inputs unchanged\)/);
});
