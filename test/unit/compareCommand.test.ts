// atp compare over Result files: the printed table, the JSON, HTML and SVG exports, and its refusals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareCommand } from '../../src/cli/compare';
import { serializeResult } from '../../src/shared/result';
import { compareRuns } from '../../src/shared/compare';
import { differenceHeatmap } from '../../src/shared/compareSvg';
import type { Circuit } from '../../src/shared/circuit';
import { comparisonResult } from '../support/comparisonResults';

let root: string;
let a: string;
let b: string;
let deep: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-compare-'));
  a = join(root, 'a.json');
  b = join(root, 'b.json');
  deep = join(root, 'deep.json');
  writeFileSync(
    a,
    serializeResult(
      comparisonResult(
        [
          [0.5, 0.1],
          [0.05, -0.4],
        ],
        null,
        'model-a',
      ),
    ),
  );
  const withCircuit = comparisonResult(
    [
      [0.5, 0.3],
      [-0.9, 0],
    ],
    null,
    'model-b',
  );
  writeFileSync(b, serializeResult(withCircuit));
  writeFileSync(
    deep,
    serializeResult(
      comparisonResult(
        [
          [0.2, 0.1],
          [0.1, 0.1],
          [0, 0],
          [0.4, 0],
        ],
        null,
        'model-deep',
      ),
    ),
  );
});
after(() => rmSync(root, { recursive: true, force: true }));

function run(args: string[]): { stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  compareCommand(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { stdout, stderr };
}

test('prints runs and pairs; --json holds the comparison, --html and --svg the B − A map on one scale', () => {
  const json = join(root, 'out', 'comparison.json');
  const html = join(root, 'out', 'comparison.html');
  const svg = join(root, 'out', 'comparison.svg');
  const { stdout, stderr } = run([a, b, deep, '--top', '2', '--json', json, '--html', html, '--svg', svg]);
  // Runs: concentration of A over its top 2 (|0.5| + |−0.4|) / 1.05.
  assert.match(stdout, new RegExp(`${a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+2×2\\s+1\\s+\\+2\\.0000\\s+-1\\.0000\\s+${(0.9 / 1.05).toFixed(3)}`));
  // Pairs: B has the same shape (max |B − A| = 0.95), the deep run does not (overlap by depth).
  assert.match(stdout, /b\.json\s+yes\s+0\.9500\s+-1\.000\s+0\.333 \(heads: L0H0\)\s+—/);
  assert.match(stdout, /deep\.json\s+no\s+—\s+\S+\s+\d\.\d{3} \(depth: depth 0\.00–0\.50, depth 0\.50–1\.00\)/);
  assert.match(stderr, /wrote .*comparison\.json/);

  const written = JSON.parse(readFileSync(json, 'utf8'));
  const expected = compareRuns(
    [a, b, deep].map((file) => ({ label: file, result: JSON.parse(readFileSync(file, 'utf8')) })),
    2,
  );
  assert.deepEqual(written, JSON.parse(JSON.stringify(expected)));

  const report = readFileSync(html, 'utf8');
  assert.match(report, /Content-Security-Policy" content="default-src 'none'/);
  assert.doesNotMatch(report, /(src|href)=["']?https?:/, 'nothing remote');
  assert.doesNotMatch(report, /<script/);
  // The one same-shape pair's head difference: four cells, B − A.
  const cells = [...report.matchAll(/data-layer="(\d)" data-head="(\d)" data-value="([^"]+)"/g)].map((m) => Number(m[3]));
  assert.deepEqual(
    cells.map((v) => Math.round(v * 1e9) / 1e9),
    [0, 0.2, -0.95, 0.4],
  );
  assert.match(report, /Different shapes: no cell-by-cell difference/);

  const drawing = readFileSync(svg, 'utf8');
  assert.match(drawing, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.equal((drawing.match(/<rect [^>]*data-value=/g) ?? []).length, 4);
  assert.equal((drawing.match(/<polyline /g) ?? []).length, 3, 'one depth profile per run');
});

test('one scale: a cell at the scale is fully coloured, half of it half as opaque, zero transparent', () => {
  const { svg } = differenceHeatmap([[1, 0.5, 0, -1]], 1, 'x');
  const fills = [...svg.matchAll(/fill="(rgba\([^)]+\))" stroke="#ddd" data-layer/g)].map((m) => m[1]);
  const alpha = (css: string) => Number(/, ([\d.]+)\)$/.exec(css)![1]);
  assert.equal(fills.length, 4);
  assert.equal(alpha(fills[1]) * 2, alpha(fills[0]));
  assert.equal(alpha(fills[2]), 0);
  assert.equal(alpha(fills[3]), alpha(fills[0]));
  assert.notEqual(fills[3], fills[0], 'negative and positive differ in hue');
});

test('circuits: edges added and removed are listed when both results have one', () => {
  // The graph of a 1-layer, 1-head model; an edge into the head feeds its query.
  const circuit = (edges: Array<[string, string]>): Circuit => ({
    method: 'eap',
    steps: 1,
    nodes: [
      { id: 'input', kind: 'input', layer: -1 },
      { id: 'a0.h0', kind: 'head', layer: 0, head: 0 },
      { id: 'm0', kind: 'mlp', layer: 0 },
      { id: 'logits', kind: 'logits', layer: 1 },
    ],
    edges: edges.map(([from, to], i) => ({ from, to, input: to === 'a0.h0' ? 'q' : null, score: 1 - i / 10 })),
    inCircuit: edges.map((_, i) => i),
    selection: { rule: 'top-n', requested: edges.length, edges: edges.length },
    faithfulness: { circuit: 0.9, full: 1, empty: 0 },
  });
  const left = comparisonResult([[1]], null, 'x');
  left.circuit = circuit([
    ['input', 'm0'],
    ['m0', 'logits'],
  ]);
  const right = comparisonResult([[1]], null, 'y');
  right.circuit = circuit([
    ['input', 'a0.h0'],
    ['m0', 'logits'],
  ]);
  const one = join(root, 'c1.json');
  const two = join(root, 'c2.json');
  writeFileSync(one, serializeResult(left));
  writeFileSync(two, serializeResult(right));
  const html = join(root, 'circuits.html');
  const { stdout } = run([one, two, '--html', html]);
  assert.match(stdout, /c2\.json\s+yes\s+0\.0000\s+—\s+1\.000 \(heads: L0H0\)\s+\+1 −1 \(1 kept\)/);
  assert.match(
    readFileSync(html, 'utf8'),
    /Circuit edges added: <code>input-&gt;a0\.h0&lt;q&gt;<\/code>\.<br>Circuit edges removed: <code>input-&gt;m0<\/code>/,
  );
});

test('refusals name the file and field, and write nothing', () => {
  assert.throws(() => run([a]), /atp compare needs at least two result files \(got 1\)/);
  assert.throws(() => run([a, b, '--json', a]), /--json .*a\.json is the same file as the result file/);
  const broken = join(root, 'broken.json');
  writeFileSync(broken, JSON.stringify({ ...JSON.parse(readFileSync(a, 'utf8')), heads: 'none' }));
  const out = join(root, 'never.json');
  assert.throws(() => run([a, broken, '--json', out]), /broken\.json: field "heads" must be an array of arrays of finite numbers/);
  assert.equal(existsSync(out), false);
  assert.throws(() => run([a, join(root, 'missing.json')]), /missing\.json: file not found/);
  assert.throws(() => run([a, b, '--top', '0']), /--top/);
});
