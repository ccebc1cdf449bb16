import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseResult } from '../../src/shared/result';
import { edgeName } from '../../src/shared/circuit';
import { requireBuiltCli, runCli } from '../support/cli';

/**
 * `atp circuit` end to end on the shipped demo model (models/tinysql-demo, 4 layers × 4 heads): a TinySQL
 * DefTableName dataset, EAP-IG with 5 steps, a 20-edge circuit and its curve; the Result parses and holds the
 * circuit, and the edges are the ones the model card's head map predicts (L0H3 and L0H1 read the table name).
 */

const modelDir = resolve(__dirname, '../../models/tinysql-demo');
let work: string;
let data: string;

before(() => {
  requireBuiltCli();
  work = mkdtempSync(join(tmpdir(), 'atp-circuit-cli-'));
  data = join(work, 'tables.jsonl');
  const generate = runCli(join(work, 'cache'), [
    'generate',
    'tinysql',
    '--feature',
    'DefTableName',
    '-n',
    '16',
    '--seed',
    '11',
    '--model',
    modelDir,
    '--out',
    data,
  ]);
  assert.equal(generate.code, 0, generate.stderr);
});
after(() => rmSync(work, { recursive: true, force: true }));

test('atp circuit on the demo model: EAP-IG, 20 edges, the curve; a Result with the circuit, faithful and plausible', () => {
  const out = join(work, 'circuit.json');
  const run = runCli(join(work, 'cache'), [
    'circuit',
    '--model',
    modelDir,
    '--data',
    data,
    '--method',
    'eap-ig',
    '--edges',
    '20',
    '--curve-points',
    '12',
    '--device',
    'cpu',
    '--out',
    out,
  ]);
  assert.equal(run.code, 0, run.stderr);
  console.log(run.stdout);
  const result = parseResult(readFileSync(out, 'utf8'), out);
  const circuit = result.circuit!;
  assert.ok(circuit, 'the Result holds the circuit');
  assert.equal(result.heads.length, 4, 'the usual attribution patching is there for the editor');
  assert.equal(circuit.method, 'eap-ig');
  assert.equal(circuit.steps, 5);
  // 1 + 4·5 senders; per layer l: 4 heads × (q, k, v) × (1 + 5l) senders, the MLP 1 + 5l + 4; the logits 21.
  assert.equal(circuit.edges.length, 479);
  for (let i = 1; i < circuit.edges.length; i++) assert.ok(Math.abs(circuit.edges[i - 1].score) >= Math.abs(circuit.edges[i].score), 'sorted by |score|');
  assert.ok(circuit.inCircuit.length > 0 && circuit.inCircuit.length <= 20);
  assert.equal(circuit.selection.edges, circuit.inCircuit.length);
  // float32 on a model whose logit differences are ~13: the patched pass reproduces the clean and corrupted runs to 1e-4.
  assert.ok(Math.abs(circuit.faithfulness.full - 1) < 1e-4, `full ${circuit.faithfulness.full}`);
  assert.ok(Math.abs(circuit.faithfulness.empty) < 1e-4, `empty ${circuit.faithfulness.empty}`);
  assert.ok(circuit.faithfulness.circuit > 0.5, `a 20-edge circuit recovers most of the effect: ${circuit.faithfulness.circuit}`);
  const curve = circuit.curve!;
  assert.equal(curve.edges[0], 0);
  assert.equal(curve.edges.at(-1), 479);
  assert.ok(curve.area > curve.randomArea + 0.3, `top edges ${curve.area} vs random ${curve.randomArea}`);
  const top = circuit.edges.slice(0, 5).map(edgeName);
  assert.ok(
    top.some((name) => /a0\.h[13]/.test(name)),
    `the table-copying heads L0H3/L0H1 lead: ${top.join(', ')}`,
  );
  assert.match(run.stdout, /faithfulness: circuit 0\.\d+; checks: full graph 1\.0000\d\d/);
});

test('atp circuit --greedy grows from the logits; bad selections and methods are refused by name', () => {
  const out = join(work, 'greedy.json');
  const run = runCli(join(work, 'cache'), [
    'circuit',
    '--model',
    modelDir,
    '--data',
    data,
    '--method',
    'eap',
    '--greedy',
    '15',
    '--curve-points',
    '0',
    '--device',
    'cpu',
    '--out',
    out,
  ]);
  assert.equal(run.code, 0, run.stderr);
  const circuit = parseResult(readFileSync(out, 'utf8'), out).circuit!;
  assert.equal(circuit.selection.rule, 'greedy');
  assert.equal(circuit.steps, 1);
  assert.equal(circuit.curve, undefined);
  assert.ok(
    circuit.inCircuit.some((i) => circuit.edges[i].to === 'logits'),
    'the greedy circuit reaches the logits',
  );
  const refuse = (args: string[], message: RegExp) => {
    const bad = runCli(join(work, 'cache'), ['circuit', '--model', modelDir, '--data', data, '--out', join(work, 'never.json'), ...args]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, message);
  };
  refuse(['--method', 'eap'], /exactly one of --edges N, --threshold T or --greedy N/);
  refuse(['--method', 'eap', '--edges', '5', '--greedy', '5'], /got --edges and --greedy/);
  refuse(
    ['--method', 'eap-ig-inputs', '--edges', '5'],
    /--method: expected eap, eap-corrupted, eap-ig, eap-ig-activations, eap-ig-activations-corrupted, got "eap-ig-inputs"/,
  );
  refuse(['--method', 'eap', '--threshold', 'x'], /--threshold: expected a number/);
  refuse(['--method', 'eap-ig', '--steps', '0', '--edges', '3'], /--steps/);
});
