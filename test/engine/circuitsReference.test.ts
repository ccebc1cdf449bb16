import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadModel } from '../../src/engine/model/load';
import { readDataset } from '../../src/lib/dataset/jsonl';
import { prepareExamples } from '../../src/engine/patching/examples';
import type { RunOptions } from '../../src/engine/patching/options';
import { edgeScores, patchedLogitDiffs } from '../../src/engine/circuits/run';
import { layoutEdges } from '../../src/engine/circuits/layout';
import { type CircuitEdge, type CircuitMethod, edgeName } from '../../src/shared/circuit';
import { REFERENCE_PYTHON, requireTorchReference } from '../support/reference';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { seededRandom } from '../support/random';

/**
 * Edge scores (EAP, EAP-IG, EAP-IG over activations) and patched-edge runs against an independent float64 PyTorch
 * reference (test/reference/circuit_reference.py: one example at a time, a separate leaf per receiver input,
 * written from EAP-IG's definitions). Both sides float64, so they agree to ~1e-12 of the values' scale; 1e-9 allows
 * for summation order.
 */

const SCRIPT = resolve(__dirname, '../reference/circuit_reference.py');
const IOI = join(__dirname, '../../examples/ioi.jsonl');
let root: string;

before(() => {
  requireTorchReference();
  root = mkdtempSync(join(tmpdir(), 'atp-circuit-reference-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

interface CircuitReference {
  scores: Array<Record<string, number>>;
  patchedLogitDiffs: number[][];
}

function runReference(request: object): CircuitReference {
  const run = spawnSync(REFERENCE_PYTHON, [SCRIPT], { input: JSON.stringify(request), encoding: 'utf8', maxBuffer: 1 << 28, timeout: 600_000 });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as CircuitReference;
}

test('GPT-2: edge scores of every circuit method (as EAP-IG defines them, and the corrupted-anchored variants), and runs with patched edges, equal the float64 PyTorch reference', async () => {
  const dir = join(root, 'model');
  writeRandomGpt2(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 3 });
  const model = loadModel(dir);
  const full = readDataset(IOI);
  const dataset = { file: full.file, examples: full.examples.slice(0, 3) };
  const prepared = prepareExamples(model, dataset, []);
  const options: RunOptions = { device: 'cpu', batchSize: 2, precision: 'float64' };
  const methods: Array<{ method: CircuitMethod; steps: number }> = [
    { method: 'eap', steps: 1 },
    { method: 'eap-ig', steps: 3 },
    { method: 'eap-ig-activations', steps: 2 },
    { method: 'eap-corrupted', steps: 1 },
    { method: 'eap-ig-activations-corrupted', steps: 2 },
  ];
  const ours: CircuitEdge[][] = [];
  for (const { method, steps } of methods) {
    const { layout, scores } = await edgeScores(model, prepared, method, steps, options);
    ours.push(layoutEdges(layout, scores));
  }
  const names = ours[0].map(edgeName);
  // Patches: a circuit (the 40 largest |EAP| edges kept, the rest patched) and arbitrary weights in [0, 1] per edge.
  const byScore = ours[0].map((_, i) => i).sort((a, b) => Math.abs(ours[0][b].score) - Math.abs(ours[0][a].score));
  const circuitPatch = ours[0].map(() => 1);
  for (const i of byScore.slice(0, 40)) circuitPatch[i] = 0;
  const random = seededRandom(17);
  const mixedPatch = ours[0].map(() => random());
  const patches = [circuitPatch, mixedPatch];
  const reference = runReference({
    modelDir: dir,
    examples: prepared.map((p) => ({
      cleanIds: p.tokens.map((t) => t.id),
      corruptedIds: p.corruptedTokens.map((t) => t.id),
      correctId: p.correctId,
      incorrectId: p.incorrectId,
    })),
    methods,
    patches: patches.map((patch) => Object.fromEntries(names.map((name, i) => [name, patch[i]]))),
  });
  methods.forEach(({ method }, m) => {
    const expected = reference.scores[m];
    assert.deepEqual(Object.keys(expected).sort(), [...names].sort(), `${method}: the same edges`);
    let scale = 0;
    for (const value of Object.values(expected)) scale = Math.max(scale, Math.abs(value));
    let worst = 0;
    for (const edge of ours[m]) worst = Math.max(worst, Math.abs(edge.score - expected[edgeName(edge)]));
    console.log(`${method}: max |ours − reference| ${worst.toExponential(2)} of scale ${scale.toExponential(2)}`);
    assert.ok(scale > 1e-3 && worst <= 1e-9 * scale, `${method}: error ${worst} vs scale ${scale}`);
  });
  for (const [p, patch] of patches.entries()) {
    const lds = await patchedLogitDiffs(model, prepared, patch, options);
    lds.forEach((ld, i) =>
      assert.ok(
        Math.abs(ld - reference.patchedLogitDiffs[p][i]) <= 1e-9 * (1 + Math.abs(ld)),
        `patch ${p}, example ${i}: ${ld} vs ${reference.patchedLogitDiffs[p][i]}`,
      ),
    );
  }
  // The methods differ pairwise (a reference that ignored the method would have been caught above; this guards ours).
  for (let a = 0; a < ours.length; a++)
    for (let b = a + 1; b < ours.length; b++)
      assert.notDeepEqual(
        ours[a].map((e) => e.score),
        ours[b].map((e) => e.score),
        `${methods[a].method} vs ${methods[b].method}`,
      );
});
