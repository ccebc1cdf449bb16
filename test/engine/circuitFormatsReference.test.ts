// The exports read by the researchers' own code: EAP-IG's Graph.from_json → to_json (vendored graph.py, run by
// Python with torch) and QuantaMechInterp's load_nodes → sort_nodes → save_nodes (vendored useful_node.py) must
// give back our files byte for byte; Python's repr agrees with pythonFloat on random floats. Also `atp export`
// end to end on a Result with a circuit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseEapIgJson, pythonFloat, toEapIgJson, toQmiJson } from '../../src/shared/circuitFormats';
import { serializeResult } from '../../src/shared/result';
import { resultWithCircuit, syntheticCircuit } from '../support/circuitFixture';
import { requireBuiltCli, runCli } from '../support/cli';
import { seededNormal } from '../support/random';
import { REFERENCE_PYTHON, requireTorchReference, torchReferenceSkip } from '../support/reference';

const REFERENCE = resolve(__dirname, '../reference');
let root: string;
before(() => (root = mkdtempSync(join(tmpdir(), 'atp-circuit-formats-'))));
after(() => rmSync(root, { recursive: true, force: true }));

function python(script: string, ...args: string[]): string {
  const run = spawnSync(REFERENCE_PYTHON, [join(REFERENCE, script), ...args], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, `${script} failed: ${run.stderr}`);
  return run.stdout;
}

test("EAP-IG's own from_json → to_json writes our export back byte for byte", { skip: torchReferenceSkip() }, () => {
  requireTorchReference();
  for (const [layers, heads, keep] of [
    [2, 2, 6],
    [4, 4, 25],
  ]) {
    const circuit = syntheticCircuit({ layers, heads, keep, seed: layers });
    const ours = toEapIgJson(resultWithCircuit(circuit, { layers, heads }));
    const input = join(root, `graph-${layers}.json`);
    const output = join(root, `graph-${layers}.back.json`);
    writeFileSync(input, ours);
    const stdout = python('eap_ig_roundtrip.py', input, output);
    assert.equal(readFileSync(output, 'utf8'), ours);
    // EAP-IG counts what we say: every edge of the graph, the circuit's edges in it.
    assert.match(stdout, new RegExp(`edges ${circuit.edges.length} in_graph ${circuit.inCircuit.length} `));
    assert.deepEqual(parseEapIgJson(readFileSync(output, 'utf8'), output).inCircuit, circuit.inCircuit);
  }
});

test("Python's repr agrees with pythonFloat on float32 and float64 values of every magnitude", () => {
  const normal = seededNormal(5);
  const values = Array.from({ length: 400 }, (_, i) => normal() * 10 ** ((i % 48) - 24)).map((v, i) => (i % 2 ? Math.fround(v) : v));
  values.push(1e16, 1e15, 1e-4, 1e-5, 0.5, 100);
  const run = spawnSync(REFERENCE_PYTHON, ['-c', 'import json,sys; print("\\n".join(repr(float(v)) for v in json.load(sys.stdin)))'], {
    input: JSON.stringify(values),
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(values.map(pythonFloat), run.stdout.trim().split('\n'));
});

test("QuantaMechInterp's own load_nodes → save_nodes writes our useful nodes back byte for byte", () => {
  const circuit = syntheticCircuit({ layers: 3, heads: 2, keep: 9 });
  const result = resultWithCircuit(circuit, { layers: 3, heads: 2, positions: 12 });
  const ours = toQmiJson(result, 'EngTableName', 0.05);
  assert.ok(JSON.parse(ours).length >= 3, ours);
  const input = join(root, 'nodes.json');
  const output = join(root, 'nodes.back.json');
  writeFileSync(input, ours);
  const stdout = python('qmi_roundtrip.py', input, output);
  assert.equal(readFileSync(output, 'utf8'), ours);
  assert.match(stdout, /P\d\dL0H1 \['Attribution:EngTableName'\]/);
});

test('atp export writes each format atomically and refuses bad requests with a sentence', () => {
  requireBuiltCli();
  const circuit = syntheticCircuit({ layers: 2, heads: 2, keep: 6 });
  const resultFile = join(root, 'result.json');
  writeFileSync(resultFile, serializeResult(resultWithCircuit(circuit, { layers: 2, heads: 2 })));
  const atp = (...args: string[]) => runCli(join(root, 'cache'), args);
  for (const format of ['eap-ig', 'neuronpedia', 'qmi']) {
    const out = join(root, `out.${format}.json`);
    const run = atp('export', resultFile, '--format', format, '--out', out, '--name', 'EngTableName');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`wrote .*out\\.${format}\\.json`));
    assert.doesNotThrow(() => JSON.parse(readFileSync(out, 'utf8')));
  }
  assert.equal(readFileSync(join(root, 'out.eap-ig.json'), 'utf8'), toEapIgJson(resultWithCircuit(circuit, { layers: 2, heads: 2 })));
  const noCircuit = join(root, 'plain.json');
  writeFileSync(noCircuit, serializeResult(resultWithCircuit(undefined, { layers: 2, heads: 2 })));
  const cases: Array<[string[], RegExp]> = [
    [['export', noCircuit, '--format', 'qmi', '--out', join(root, 'x.json')], /plain\.json: this Result has no circuit \(field "circuit"\)/],
    [['export', resultFile, '--format', 'dot', '--out', join(root, 'x.json')], /--format: expected eap-ig, neuronpedia, qmi or tensors, got "dot"/],
    [['export', resultFile, '--format', 'qmi'], /atp export needs one RESULT\.json, --format and --out/],
    [['export', resultFile, '--format', 'qmi', '--out', resultFile], /--out/],
    [['export', resultFile, '--format', 'eap-ig', '--out', join(root, 'x.json'), '--min-share', '0.2'], /--min-share: only for --format qmi/],
  ];
  for (const [args, message] of cases) {
    const run = atp(...args);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
    assert.doesNotMatch(run.stderr, /internal error|    at /);
  }
});
