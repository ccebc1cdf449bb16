import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel, type LoadedModel } from '../../src/engine/model/load';
import { readDataset, type Dataset } from '../../src/lib/dataset/jsonl';
import { runAttributionPatching } from '../../src/engine/patching/run';
import { batchFeeds } from '../../src/engine/patching/feeds';
import { type PreparedExample, prepareExamples } from '../../src/engine/patching/examples';
import type { RunOptions } from '../../src/engine/patching/options';
import { sessionFor } from '../../src/engine/patching/sessions';
import { PATCHED_LOGIT_DIFF, PATCHING_INPUT } from '../../src/engine/patching/graphs';
import { edgeScores, greedyEdges, patchedLogitDiffs, runCircuit } from '../../src/engine/circuits/run';
import { topEdges } from '../../src/shared/circuit';
import { type CircuitLayout, layoutEdges } from '../../src/engine/circuits/layout';
import { curveSizes, trapezoidArea } from '../../src/engine/circuits/curve';
import { seededRandom } from '../../src/lib/dataset/random';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { handleRun } from '../../src/engine/process/worker';
import type { WorkerResponse } from '../../src/shared/workerProtocol';
import { parseResult } from '../../src/shared/result';
import { writeRandomGptNeo, writeRandomLlamaFamily } from '../support/randomModels';

/**
 * Edge attribution (EAP, EAP-IG) and the patched forward pass behind faithfulness, against independent
 * computations: exact patching of one edge by ε (first-order agreement), node attribution patching (the edges out
 * of a node sum to its AtP), activation patching of a whole head or MLP (= removing all its outgoing edges), and
 * integrated gradients' completeness at the input.
 */

const IOI = join(__dirname, '../../examples/ioi.jsonl');
let root: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-circuits-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

const FAMILIES: Array<{ name: string; write: (dir: string) => void }> = [
  { name: 'gpt2', write: (dir) => writeRandomGpt2(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 3 }) },
  {
    name: 'llama (GQA)',
    write: (dir) => writeRandomLlamaFamily(dir, { modelType: 'llama', nLayers: 2, nHeads: 4, nKvHeads: 2, dModel: 32, dMlp: 64, seed: 5, tied: false }),
  },
  {
    name: 'qwen2 (q/k/v bias, GQA)',
    write: (dir) => writeRandomLlamaFamily(dir, { modelType: 'qwen2', nLayers: 2, nHeads: 4, nKvHeads: 2, dModel: 32, dMlp: 64, seed: 6, tied: true }),
  },
  {
    name: 'granite (multipliers)',
    write: (dir) =>
      writeRandomLlamaFamily(dir, {
        modelType: 'granite',
        nLayers: 2,
        nHeads: 4,
        nKvHeads: 4,
        dModel: 32,
        dMlp: 64,
        seed: 7,
        tied: true,
        multipliers: { embedding: 4.0, attention: 0.2, residual: 0.6, logitsScaling: 2.5 },
      }),
  },
  {
    name: 'granitemoe (experts, GQA)',
    write: (dir) =>
      writeRandomLlamaFamily(dir, {
        modelType: 'granitemoe',
        nLayers: 2,
        nHeads: 4,
        nKvHeads: 2,
        dModel: 32,
        dMlp: 24,
        seed: 35,
        tied: true,
        multipliers: { embedding: 4.0, attention: 0.2, residual: 0.6, logitsScaling: 2.5 },
        experts: { count: 4, topK: 2 },
      }),
  },
  { name: 'gpt_neo (local attention)', write: (dir) => writeRandomGptNeo(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 31, windowSize: 4 }) },
];

function setup(name: string, write: (dir: string) => void, examples = 3): { model: LoadedModel; dataset: Dataset; prepared: PreparedExample[] } {
  const dir = join(root, name.replace(/\W+/g, '-'));
  write(dir);
  const model = loadModel(dir);
  const full = readDataset(IOI);
  const dataset: Dataset = { file: full.file, examples: full.examples.slice(0, examples) };
  return { model, dataset, prepared: prepareExamples(model, dataset, []) };
}

/** The same examples with the clean and corrupted prompts exchanged: the patched run then starts from the corrupted one. */
const swapped = (prepared: readonly PreparedExample[]) => prepared.map((p) => ({ ...p, tokens: p.corruptedTokens, corruptedTokens: p.tokens }));
const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
const float64: RunOptions = { device: 'cpu', batchSize: 8, precision: 'float64' };

/** Edges (layout indices) of each receiver kind present, the largest |score| of each. */
function edgesToCheck(layout: CircuitLayout, scores: Float64Array): number[] {
  const picks: number[] = [];
  for (const input of ['q', 'k', 'v', 'mlp', 'logits'] as const) {
    let best = -1;
    for (const group of layout.groups.filter((g) => g.input === input)) {
      for (let e = group.offset; e < group.offset + group.receivers * group.senders; e++)
        if (best < 0 || Math.abs(scores[e]) > Math.abs(scores[best])) best = e;
    }
    picks.push(best);
  }
  return picks;
}

for (const family of FAMILIES) {
  // patchedLogitDiffs runs its rows' clean prompt with edges moved toward their corrupted values: on the prompts
  // as given that is EAP's clean run (an edge's score is minus the effect of corrupting it), on the swapped prompts
  // the corrupted run moved toward clean (eap-corrupted's, the effect itself).
  for (const [method, anchoredAtClean] of [
    ['eap', true],
    ['eap-corrupted', false],
  ] as const) {
    test(`${family.name}: an edge's ${method} score is the first-order effect of patching that edge alone at its anchor run (exact patching by ε, float64)`, async () => {
      const { model, prepared } = setup(family.name, family.write);
      const { layout, scores } = await edgeScores(model, prepared, method, 1, float64);
      const rows = anchoredAtClean ? prepared : swapped(prepared);
      const sign = anchoredAtClean ? -1 : 1;
      const anchor = sum(await patchedLogitDiffs(model, rows, new Array(layout.edgeCount).fill(0), float64));
      const edges = layoutEdges(layout, scores);
      for (const e of edgesToCheck(layout, scores)) {
        const errors: number[] = [];
        for (const epsilon of [1e-2, 1e-3]) {
          const patch = new Array<number>(layout.edgeCount).fill(0);
          patch[e] = epsilon;
          const effect = (sign * (sum(await patchedLogitDiffs(model, rows, patch, float64)) - anchor)) / epsilon;
          errors.push(Math.abs(effect - scores[e]) / Math.abs(scores[e]));
        }
        const edge = edges[e];
        assert.ok(Math.abs(scores[e]) > 1e-6, `${edge.from}->${edge.to}<${edge.input}>: score not trivially 0`);
        // First order: the relative error shrinks linearly with ε (10× here; ≥ 5× allowed) and is small at ε = 1e-3.
        assert.ok(errors[1] < errors[0] / 5 || errors[1] < 1e-7, `${edge.from}->${edge.to}<${edge.input}>: errors ${errors}`);
        assert.ok(errors[1] < 1e-2, `${edge.from}->${edge.to}<${edge.input}>: relative error ${errors[1]} at ε = 1e-3`);
      }
    });
  }

  test(`${family.name}: the edges out of every node sum to that node's attribution patching score (eap-corrupted: AtP's gradient, float64)`, async () => {
    const { model, dataset, prepared } = setup(family.name, family.write);
    const { layout, scores } = await edgeScores(model, prepared, 'eap-corrupted', 1, float64);
    const result = await runAttributionPatching(model, dataset, { ...float64, method: 'atp', exactTokens: false });
    const scale = 1 / (prepared.length * (result.metric.cleanLogitDiff - result.metric.corruptedLogitDiff));
    const outgoing = new Map<string, number>();
    for (const edge of layoutEdges(layout, scores)) outgoing.set(edge.from, (outgoing.get(edge.from) ?? 0) + edge.score * scale);
    const node = (id: string): number => {
      const all = result.examples.map((e) => e.attributions);
      if (id === 'input') return sum(all.map((a) => sum(a.residPre[0])));
      const mlp = /^m(\d+)$/.exec(id);
      if (mlp) return sum(all.map((a) => sum(a.mlpOut[Number(mlp[1])])));
      const [, l, h] = /^a(\d+)\.h(\d+)$/.exec(id)!.map(Number);
      return sum(all.map((a) => sum(a.z[l].map((row) => row[h]))));
    };
    let largest = 0;
    for (const id of layout.senderIds) largest = Math.max(largest, Math.abs(node(id)));
    for (const id of layout.senderIds) {
      assert.ok(Math.abs(outgoing.get(id)! - node(id)) <= 1e-9 * largest, `${id}: edges ${outgoing.get(id)} vs node AtP ${node(id)}`);
    }
  });

  test(`${family.name}: removing every edge out of a head or an MLP is activation patching that component (float64)`, async () => {
    const { model, prepared } = setup(family.name, family.write);
    const { layout } = await edgeScores(model, prepared, 'eap-corrupted', 1, float64);
    const edges = layoutEdges(layout, new Float64Array(layout.edgeCount));
    const reversed = swapped(prepared);
    const activation = await sessionFor(model, 'activation-patching', float64);
    const { nLayers, nHeads } = model.spec;
    for (const [kind, layer, head] of [
      ['z', 1, 2],
      ['z', 0, 1],
      ['mlp_out', 0, 0],
    ] as const) {
      const id = kind === 'z' ? `a${layer}.h${head}` : `m${layer}`;
      const patch = edges.map((edge) => (edge.from === id ? 1 : 0));
      const ours = await patchedLogitDiffs(model, reversed, patch, float64);
      // The activation-patching graph: the corrupted run with this component clean at every position.
      const { feeds, seq } = batchFeeds(prepared, 'float64');
      const masks: Record<string, ort.Tensor> = {};
      for (const k of ['resid_pre', 'z', 'attn_out', 'mlp_out'] as const) {
        const width = k === 'z' ? nHeads : 1;
        const data = new Float64Array(prepared.length * nLayers * seq * width);
        if (k === kind)
          for (let r = 0; r < prepared.length; r++) for (let p = 0; p < seq; p++) data[((r * nLayers + layer) * seq + p) * width + (k === 'z' ? head : 0)] = 1;
        masks[PATCHING_INPUT(k)] = new ort.Tensor('float64', data, k === 'z' ? [prepared.length, nLayers, seq, nHeads] : [prepared.length, nLayers, seq]);
      }
      const out = await activation.session.run({ ...feeds, ...masks });
      const exact = Array.from(out[PATCHED_LOGIT_DIFF].data as Float64Array);
      ours.forEach((value, i) => assert.ok(Math.abs(value - exact[i]) <= 1e-9 * (1 + Math.abs(exact[i])), `${id}, example ${i}: ${value} vs ${exact[i]}`));
    }
  });
}

test('EAP-IG: one step is eap-corrupted (the point α = 0); the input edges approach completeness as steps grow (Riemann sum, float64)', async () => {
  const { model, dataset, prepared } = setup('gpt2-ig', FAMILIES[0].write, 2);
  const eap = await edgeScores(model, prepared, 'eap-corrupted', 1, float64);
  const one = await edgeScores(model, prepared, 'eap-ig', 1, float64);
  assert.deepEqual(Array.from(one.scores), Array.from(eap.scores));
  const gap = sum(eap.cleanLogitDiffs) - sum(eap.corruptedLogitDiffs);
  const fromInput = async (steps: number) => {
    const { layout, scores } = await edgeScores(model, prepared, 'eap-ig', steps, float64);
    return (
      sum(
        layoutEdges(layout, scores)
          .filter((e) => e.from === 'input')
          .map((e) => e.score),
      ) / gap
    );
  };
  // Σ over the input's edges = Δembedding · mean_k ∂LD/∂embedding(k/m) → (LD_clean − LD_corrupted) as m → ∞,
  // a left Riemann sum, whose error shrinks at least like 1/m (here like 1/m²: 4.4e-2, 1.1e-2, 2.7e-3).
  const errors = [];
  for (const steps of [4, 8, 16]) errors.push(Math.abs((await fromInput(steps)) - 1));
  console.log(`EAP-IG completeness error at the input, m = 4, 8, 16: ${errors.map((e) => e.toExponential(2)).join(', ')}`);
  assert.ok(errors[1] < errors[0] * 0.7 && errors[2] < errors[1] * 0.7, `errors ${errors}`);
  void dataset;
});

test('full graph = clean run (1), empty graph = corrupted run (0); scores do not depend on the batch size (float32)', async () => {
  for (const family of [FAMILIES[0], FAMILIES[1]]) {
    const { model, dataset, prepared } = setup(`${family.name}-f32`, family.write, 4);
    const options: RunOptions = { device: 'cpu', batchSize: 4 };
    const { layout, scores, cleanLogitDiffs, corruptedLogitDiffs } = await edgeScores(model, prepared, 'eap-ig', 3, options);
    const single = await edgeScores(model, prepared, 'eap-ig', 3, { ...options, batchSize: 1 });
    let largest = 0;
    for (const s of scores) largest = Math.max(largest, Math.abs(s));
    scores.forEach((s, e) =>
      assert.ok(Math.abs(s - single.scores[e]) <= 1e-5 * largest, `${family.name} edge ${e}: batch 4 ${s} vs batch 1 ${single.scores[e]}`),
    );
    // The patched pass computes each receiver's input separately (per-head copies, per-head output projections),
    // so in float32 it matches the plain clean and corrupted passes to rounding: 1e-5 of the logit difference.
    const full = await patchedLogitDiffs(model, prepared, new Array(layout.edgeCount).fill(0), options);
    const empty = await patchedLogitDiffs(model, prepared, new Array(layout.edgeCount).fill(1), options);
    full.forEach((ld, i) =>
      assert.ok(
        Math.abs(ld - cleanLogitDiffs[i]) <= 1e-5 * (1 + Math.abs(cleanLogitDiffs[i])),
        `${family.name} full, example ${i}: ${ld} vs clean ${cleanLogitDiffs[i]}`,
      ),
    );
    empty.forEach((ld, i) =>
      assert.ok(
        Math.abs(ld - corruptedLogitDiffs[i]) <= 1e-5 * (1 + Math.abs(corruptedLogitDiffs[i])),
        `${family.name} empty, example ${i}: ${ld} vs corrupted ${corruptedLogitDiffs[i]}`,
      ),
    );
    // Normalised by the Result's baselines (the AtP graph's own clean and corrupted passes): 1 and 0, in float64 to 1e-9.
    const result = await runAttributionPatching(model, dataset, { ...float64, method: 'atp', exactTokens: false });
    const normalised = async (value: number) =>
      (sum(await patchedLogitDiffs(model, prepared, new Array(layout.edgeCount).fill(value), float64)) / prepared.length - result.metric.corruptedLogitDiff) /
      (result.metric.cleanLogitDiff - result.metric.corruptedLogitDiff);
    const [fullMetric, emptyMetric] = [await normalised(0), await normalised(1)];
    assert.ok(Math.abs(fullMetric - 1) < 1e-9 && Math.abs(emptyMetric) < 1e-9, `${family.name}: full ${fullMetric}, empty ${emptyMetric}`);
  }
});

test('curve sizes, trapezoids and EAP-IG greedy growth', () => {
  assert.deepEqual(curveSizes(100, 5), [0, 1, 5, 22, 100]);
  assert.deepEqual(curveSizes(3, 16), [0, 1, 2, 3]);
  assert.equal(trapezoidArea([0, 0.5, 1], [0, 1, 1]), 0.75);
  const edges = [
    { from: 'a0.h0', to: 'logits', input: null, score: 0.5 },
    { from: 'input', to: 'a1.h0', input: 'q' as const, score: 0.9 },
    { from: 'input', to: 'a0.h0', input: 'v' as const, score: 0.1 },
    { from: 'input', to: 'logits', input: null, score: -0.3 },
  ];
  // a1.h0's edge is the largest but a1.h0 never joins the graph: it is never a candidate.
  assert.deepEqual(
    greedyEdges(edges, 3, () => undefined),
    [0, 3, 2],
  );
});

test("the curve measures the circuit at its own size (its point is the circuit's own faithfulness) and records the edges kept after pruning at every size (float64)", async () => {
  const { model, dataset } = setup('gpt2-curve', FAMILIES[0].write, 2);
  const result = await runCircuit(
    model,
    dataset,
    { ...float64, method: 'atp', exactTokens: false },
    {
      method: 'eap',
      selection: { rule: 'top-n', edges: 7 },
      curvePoints: 4,
      randomDraws: 2,
    },
  );
  const circuit = result.circuit!;
  const curve = circuit.curve!;
  const own = curve.edges.indexOf(7);
  assert.ok(own > 0, `the circuit's size 7 is a point of the curve: ${curve.edges}`);
  assert.ok(Math.abs(curve.faithfulness[own] - circuit.faithfulness.circuit) <= 1e-12, `${curve.faithfulness[own]} vs ${circuit.faithfulness.circuit}`);
  assert.deepEqual(
    curve.kept,
    curve.edges.map((n) => topEdges(circuit, n).length),
  );
  assert.equal(curve.kept![own], circuit.inCircuit.length);
  assert.equal(curve.randomKept!.length, curve.edges.length);
  curve.randomKept!.forEach((k, i) => assert.ok(k >= 0 && k <= curve.edges[i], `random draws keep at most what they drew: ${k} of ${curve.edges[i]}`));
});

test("the worker's circuit request runs a circuit and writes a Result holding it to the pending file", async () => {
  const dir = join(root, 'worker-model');
  FAMILIES[0].write(dir);
  const datasetText = readFileSync(IOI, 'utf8').split('\n').slice(0, 3).join('\n');
  const pendingFile = join(root, 'circuit.pending.json');
  const responses: WorkerResponse[] = [];
  await handleRun(
    {
      type: 'circuit',
      runId: 7,
      model: dir,
      datasetFile: IOI,
      datasetText,
      device: 'cpu',
      batchSize: 4,
      pendingFile,
      circuit: { method: 'eap-ig', steps: 2, selection: { rule: 'threshold', threshold: 0.01 }, curvePoints: 4, randomDraws: 1 },
    },
    (r) => responses.push(r),
  );
  const last = responses.at(-1)!;
  assert.equal(last.type, 'done', JSON.stringify(last));
  assert.ok(existsSync(pendingFile));
  const circuit = parseResult(readFileSync(pendingFile, 'utf8'), pendingFile).circuit!;
  assert.equal(circuit.method, 'eap-ig');
  assert.equal(circuit.steps, 2);
  assert.equal(circuit.selection.rule, 'threshold');
  assert.ok(circuit.inCircuit.every((i) => Math.abs(circuit.edges[i].score) >= 0.01));
  assert.equal(circuit.curve!.edges.length, 4);
  assert.ok(Math.abs(circuit.faithfulness.full - 1) < 1e-3 && Math.abs(circuit.faithfulness.empty) < 1e-3, JSON.stringify(circuit.faithfulness));
});

test('right padding: prompts of different lengths batched together give the scores and patched runs they give alone (float64)', async () => {
  for (const family of [FAMILIES[0], FAMILIES[1]]) {
    const dir = join(root, `${family.name.replace(/\W+/g, '-')}-padding`);
    family.write(dir);
    const model = loadModel(dir);
    const full = readDataset(IOI);
    const short = {
      clean: 'When Tom and James left, Tom gave it to',
      corrupted: 'When Tom and James left, James gave it to',
      correct: ' James',
      incorrect: ' Tom',
      line: 99,
    };
    const dataset: Dataset = { file: full.file, examples: [full.examples[0], short, full.examples[2]] };
    const prepared = prepareExamples(model, dataset, []);
    assert.notEqual(prepared[0].tokens.length, prepared[1].tokens.length, 'the prompts differ in length');
    for (const method of ['eap-ig', 'eap-ig-activations'] as const) {
      const together = await edgeScores(model, prepared, method, 2, { ...float64, batchSize: 3 });
      const alone = await edgeScores(model, prepared, method, 2, { ...float64, batchSize: 1 });
      let largest = 0;
      for (const s of alone.scores) largest = Math.max(largest, Math.abs(s));
      together.scores.forEach((s, e) =>
        assert.ok(Math.abs(s - alone.scores[e]) <= 1e-9 * largest, `${family.name} ${method} edge ${e}: ${s} vs ${alone.scores[e]}`),
      );
    }
    const random = seededRandom(5);
    const { layout } = await edgeScores(model, prepared, 'eap', 1, float64);
    const patch = Array.from({ length: layout.edgeCount }, () => random.next());
    const together = await patchedLogitDiffs(model, prepared, patch, { ...float64, batchSize: 3 });
    const alone = await patchedLogitDiffs(model, prepared, patch, { ...float64, batchSize: 1 });
    together.forEach((ld, i) => assert.ok(Math.abs(ld - alone[i]) <= 1e-9 * (1 + Math.abs(ld)), `${family.name} example ${i}: ${ld} vs ${alone[i]}`));
  }
});
