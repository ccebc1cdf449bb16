// The circuit contract (src/shared/circuit.ts): its pure functions against hand-worked cases and an independent
// pruning (iterated removal of dangling edges, which on a layered DAG must keep exactly what reachability keeps),
// and Result.circuit's validation by parseResult, including hostile files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  circuitNodeIds,
  edgeName,
  edgesAbove,
  faithfulnessAt,
  faithfulnessReading,
  keyValueReceiver,
  pruneDangling,
  topEdges,
  type Circuit,
  type CircuitEdge,
  type CircuitNode,
  type FaithfulnessCurve,
} from '../../src/shared/circuit';
import { InputError } from '../../src/shared/errors';
import { parseResult, serializeResult } from '../../src/shared/result';
import { fullCircuitGraph, resultWithCircuit, syntheticCircuit } from '../support/circuitFixture';
import { seededRandom } from '../support/random';

const edge = (from: string, to: string, input: CircuitEdge['input'] = null, score = 1): CircuitEdge => ({ from, to, input, score });

test("edgeName writes EAP-IG's edge names", () => {
  assert.equal(edgeName(edge('a0.h1', 'a2.h3', 'q')), 'a0.h1->a2.h3<q>');
  assert.equal(edgeName(edge('input', 'm0')), 'input->m0');
  assert.equal(edgeName(edge('m3', 'logits')), 'm3->logits');
});

test('keyValueReceiver: the head itself without grouping, the kv-head of its consecutive group with it, errors otherwise', () => {
  assert.equal(keyValueReceiver(2, 3, 4, 4), 'a2.h3');
  // 8 query heads over 2 kv-heads (Hugging Face's repeat_kv): heads 0-3 read kv0, heads 4-7 read kv1.
  assert.equal(keyValueReceiver(1, 3, 8, 2), 'a1.kv0');
  assert.equal(keyValueReceiver(1, 4, 8, 2), 'a1.kv1');
  assert.equal(keyValueReceiver(0, 7, 8, 1), 'a0.kv0');
  assert.throws(() => keyValueReceiver(0, 0, 6, 4), /cannot share 4 key\/value heads/);
  assert.throws(() => keyValueReceiver(0, 0, 4, 0), RangeError);
  assert.throws(() => keyValueReceiver(0, 4, 4, 2), /head 4 is not one of 4/);
});

// A two-layer, two-head graph (no MLP edges needed for these cases).
const smallNodes: CircuitNode[] = fullCircuitGraph(2, 2).nodes;

test('pruneDangling keeps chains from the input to the logits and drops edges hanging off either end', () => {
  const edges = [
    edge('input', 'a0.h0', 'q'), // 0: on the chain
    edge('a0.h0', 'logits'), // 1: on the chain
    edge('a0.h1', 'logits'), // 2: a0.h1 gets nothing from the input
    edge('input', 'a1.h0', 'v'), // 3: a1.h0 reaches nothing
    edge('a0.h0', 'a1.h1', 'k'), // 4: a1.h1 reaches nothing
    edge('input', 'm1'), // 5: with 6, a second chain
    edge('m1', 'logits'), // 6
  ];
  assert.deepEqual(pruneDangling(edges, [0, 1, 2, 3, 4, 5, 6], smallNodes), [0, 1, 5, 6]);
  // Order and repeats of the kept list do not matter: ascending, each once.
  assert.deepEqual(pruneDangling(edges, [6, 1, 0, 1, 5, 0], smallNodes), [0, 1, 5, 6]);
  assert.deepEqual(pruneDangling(edges, [], smallNodes), []);
  // Without an input or logits node nothing can be kept.
  assert.deepEqual(
    pruneDangling(
      edges,
      [0, 1],
      smallNodes.filter((n) => n.id !== 'logits'),
    ),
    [],
  );
});

test('pruneDangling under grouped-query attention: a kv-head carries on through the query heads of its group only', () => {
  // 1 layer, 4 query heads, 2 kv-heads: kv0 serves h0, h1; kv1 serves h2, h3.
  const { nodes } = fullCircuitGraph(1, 4, 2);
  const edges = [
    edge('input', 'a0.kv0', 'k'), // 0
    edge('a0.h1', 'logits'), // 1: h1 is in kv0's group
    edge('input', 'a0.kv1', 'v'), // 2: kv1 serves h2/h3, neither reaches the logits
    edge('a0.h3', 'm0'), // 3: h3 reaches m0, which reaches nothing
  ];
  // h1 gets the input through kv0, so h1 -> logits is kept; kv0's edge is kept because h1 reaches the logits.
  assert.deepEqual(pruneDangling(edges, [0, 1, 2, 3], nodes), [0, 1]);
  // Without kv0's input, h1 has no path from the input.
  assert.deepEqual(pruneDangling(edges, [1, 2, 3], nodes), []);
  // h3 -> m0 -> logits with kv1 feeding h3: all three kept.
  assert.deepEqual(pruneDangling([...edges, edge('m0', 'logits')], [2, 3, 4], nodes), [2, 3, 4]);
});

/** Independent pruning: remove dangling edges until none is left (a layered graph has no cycles, so this is reachability). */
function pruneByRemoval(edges: readonly CircuitEdge[], kept: readonly number[], nodes: readonly CircuitNode[]): number[] {
  const group = (kv: CircuitNode) => {
    const heads = nodes.filter((n) => n.kind === 'head' && n.layer === kv.layer);
    const kvs = nodes.filter((n) => n.kind === 'kv-head' && n.layer === kv.layer).length;
    return heads.filter((h) => Math.floor(h.head! / (heads.length / kvs)) === kv.head).map((h) => h.id);
  };
  const kvOf = new Map<string, string>();
  for (const kv of nodes.filter((n) => n.kind === 'kv-head')) for (const head of group(kv)) kvOf.set(head, kv.id);
  let live = [...new Set(kept)];
  for (;;) {
    const hasInput = (id: string): boolean => id === 'input' || live.some((i) => edges[i].to === id) || (kvOf.has(id) && hasInput(kvOf.get(id)!));
    const hasOutput = (id: string): boolean =>
      id === 'logits' ||
      live.some((i) => edges[i].from === id) ||
      (nodes.find((n) => n.id === id)?.kind === 'kv-head' && group(nodes.find((n) => n.id === id)!).some(hasOutput));
    const next = live.filter((i) => hasInput(edges[i].from) && hasOutput(edges[i].to));
    if (next.length === live.length) return next.sort((a, b) => a - b);
    live = next;
  }
}

test('pruneDangling agrees with iterated removal of dangling edges on random subsets, with and without grouped-query attention', () => {
  const random = seededRandom(11);
  for (const [layers, heads, kvHeads] of [
    [3, 2, 2],
    [2, 4, 2],
    [2, 4, 1],
  ]) {
    const { nodes, edges: unscored } = fullCircuitGraph(layers, heads, kvHeads);
    const edges = unscored.map((e) => ({ ...e, score: 1 }));
    for (let trial = 0; trial < 40; trial++) {
      const density = 0.05 + 0.3 * random();
      const kept = edges.map((_, i) => i).filter(() => random() < density);
      assert.deepEqual(pruneDangling(edges, kept, nodes), pruneByRemoval(edges, kept, nodes), `${layers}×${heads}/${kvHeads}, trial ${trial}`);
    }
  }
});

test('topEdges takes the first n stored edges (largest |score|) and prunes; edgesAbove takes |score| ≥ threshold', () => {
  const nodes = smallNodes;
  const edges = [
    edge('input', 'a0.h0', 'q', -0.9),
    edge('a0.h0', 'logits', null, 0.8),
    edge('a0.h1', 'logits', null, 0.5),
    edge('input', 'm1', null, -0.2),
    edge('m1', 'logits', null, 0.1),
  ];
  const circuit = { nodes, edges };
  assert.deepEqual(topEdges(circuit, 0), []);
  assert.deepEqual(topEdges(circuit, 1), []); // input -> a0.h0 alone reaches nothing
  assert.deepEqual(topEdges(circuit, 2), [0, 1]);
  assert.deepEqual(topEdges(circuit, 3.7), [0, 1]); // floor, then a0.h1 -> logits is dangling
  assert.deepEqual(topEdges(circuit, 99), [0, 1, 3, 4]);
  assert.deepEqual(topEdges(circuit, -3), []);
  assert.deepEqual(topEdges(circuit, NaN), []);
  assert.deepEqual(edgesAbove(circuit, 0.8), [0, 1]);
  assert.deepEqual(edgesAbove(circuit, 0.1), [0, 1, 3, 4]);
  assert.deepEqual(edgesAbove(circuit, 2), []);
  assert.deepEqual(circuitNodeIds({ nodes, edges, inCircuit: [0, 1] }), ['input', 'a0.h0', 'logits']);
});

test('faithfulnessAt reads measured sizes, interpolates linearly between them and says NaN outside (no extrapolation)', () => {
  const curve: FaithfulnessCurve = {
    edges: [0, 10, 20, 100],
    faithfulness: [0, 0.5, 0.7, 1],
    random: [0, 0.1, 0.2, 1],
    randomDraws: 3,
    randomSeed: 1,
    area: 0.8,
    randomArea: 0.5,
  };
  assert.equal(faithfulnessAt(curve, 10), 0.5);
  assert.equal(faithfulnessAt(curve, 100), 1);
  assert.equal(faithfulnessAt(curve, 15), 0.6);
  assert.ok(Math.abs(faithfulnessAt(curve, 60) - 0.85) < 1e-12);
  assert.ok(Number.isNaN(faithfulnessAt(curve, 101)));
  assert.ok(Number.isNaN(faithfulnessAt(curve, -1)));
  assert.deepEqual(faithfulnessReading(curve, 20), { value: 0.7, random: 0.2, how: 'measured' });
  assert.equal(faithfulnessReading(curve, 5).how, 'interpolated');
  assert.ok(Math.abs(faithfulnessReading(curve, 5).random - 0.05) < 1e-12);
  assert.equal(faithfulnessReading(curve, 150).how, 'not-measured');
  // A curve that starts above 0 does not claim a value below its first size.
  assert.equal(faithfulnessReading({ ...curve, edges: [5, 10, 20, 100] }, 2).how, 'not-measured');
  assert.ok(Number.isNaN(faithfulnessAt({ ...curve, edges: [], faithfulness: [], random: [] }, 0)));
});

// ---- Validation by parseResult ----

const LAYERS = 2;
const HEADS = 4;
const valid = (kvHeads = HEADS): Circuit => syntheticCircuit({ layers: LAYERS, heads: HEADS, kvHeads, keep: 10 });
const parse = (circuit: unknown) => {
  const result = resultWithCircuit(undefined, { layers: LAYERS, heads: HEADS }) as unknown as Record<string, unknown>;
  result.circuit = circuit;
  return parseResult(JSON.stringify(result), 'run.json');
};

test('a valid circuit (full attention and grouped-query) survives serialise → parse unchanged', () => {
  for (const kv of [HEADS, 2]) {
    const circuit = valid(kv);
    assert.ok(circuit.inCircuit.length > 0);
    const result = resultWithCircuit(circuit, { layers: LAYERS, heads: HEADS });
    assert.deepEqual(parseResult(serializeResult(result), 'run.json').circuit, circuit);
  }
});

test('a circuit written before the methods were named as EAP-IG names them opens under the variant it was: eap and eap-ig-activations anchored at the corrupted run', () => {
  const renamed: Array<[Circuit['method'], Circuit['method']]> = [
    ['eap', 'eap-corrupted'],
    ['eap-ig-activations', 'eap-ig-activations-corrupted'],
    ['eap-ig', 'eap-ig'],
  ];
  for (const [stored, read] of renamed) {
    const old: Record<string, unknown> = { ...valid(), method: stored, steps: stored === 'eap' ? 1 : 5 };
    delete old.methodNames;
    const circuit = parse(old).circuit!;
    assert.equal(circuit.method, read, stored);
    assert.equal(circuit.methodNames, 'eap-ig');
    // Written again and read back, it keeps its name of today.
    assert.equal(parse(circuit).circuit!.method, read);
  }
  // A Result that names its methods as EAP-IG does keeps them.
  assert.equal(parse({ ...valid(), method: 'eap', steps: 1 }).circuit!.method, 'eap');
});

test('hostile circuits are refused with the file, the field and why', () => {
  const cases: Array<[string, (c: Record<string, any>) => void, RegExp]> = [
    ['not an object', (c) => (c.nodes = 'x'), /run\.json: field "circuit\.nodes" must be an array/],
    [
      'unknown method',
      (c) => (c.method = 'acdc'),
      /field "circuit\.method" must be "eap", "eap-corrupted", "eap-ig", "eap-ig-activations" or "eap-ig-activations-corrupted"/,
    ],
    ['eap-corrupted with steps', (c) => ((c.method = 'eap-corrupted'), (c.steps = 2)), /"circuit\.steps" must be 1 for method "eap-corrupted"/],
    ['unknown method names', (c) => (c.methodNames = 'acdc'), /"circuit\.methodNames" must be "eap-ig" or absent/],
    ['eap with steps', (c) => ((c.method = 'eap'), (c.steps = 5)), /"circuit\.steps" must be 1 for method "eap"/],
    ['unknown receiver', (c) => (c.edges[3].to = 'a9.h0'), /run\.json: field "circuit\.edges\[3\]\.to": unknown node "a9\.h0"/],
    ['unknown sender', (c) => (c.edges[0].from = 42), /field "circuit\.edges\[0\]\.from" must be a string/],
    [
      'backwards edge',
      (c) => Object.assign(c.edges[0], { from: 'a1.h0', to: 'a0.h2', input: 'q' }),
      /"a1\.h0" \(layer 1\) cannot send to "a0\.h2" \(layer 0\)/,
    ],
    ['same-layer heads', (c) => Object.assign(c.edges[0], { from: 'a1.h0', to: 'a1.h2', input: 'q' }), /cannot send to "a1\.h2"/],
    ['qkv into an MLP', (c) => Object.assign(c.edges[0], { from: 'a0.h0', to: 'm1', input: 'q' }), /into an MLP \("m1"\) takes null, not "q"/],
    [
      'no qkv into a head',
      (c) => Object.assign(c.edges[0], { from: 'input', to: 'a1.h1', input: null }),
      /into a head \("a1\.h1"\) takes "q", "k" or "v", not null/,
    ],
    ['logits sends', (c) => Object.assign(c.edges[0], { from: 'logits', to: 'm1' }), /a logits node \("logits"\) sends no edges/],
    ['input receives', (c) => Object.assign(c.edges[0], { from: 'a0.h0', to: 'input' }), /the input receives no edges/],
    ['unsorted', (c) => (c.edges[5].score = 100), /edges must be sorted by \|score\|, largest first/],
    ['duplicate edge', (c) => (c.edges[1] = { ...c.edges[0], score: c.edges[1].score }), /edge ".*" is listed twice/],
    ['non-number score', (c) => (c.edges[2].score = '0.1'), /"circuit\.edges\[2\]\.score" must be a finite number/],
    ['index out of range', (c) => c.inCircuit.push(c.edges.length), /"circuit\.inCircuit\[\d+\]": \d+ is not an index into circuit\.edges/],
    ['descending indices', (c) => c.inCircuit.reverse(), /indices must be ascending, each once/],
    ['repeated index', (c) => c.inCircuit.splice(1, 0, c.inCircuit[0]), /indices must be ascending, each once/],
    ['negative index', (c) => (c.inCircuit[0] = -1), /"circuit\.inCircuit\[0\]" must be a non-negative integer/],
    ['selection count', (c) => (c.selection.edges += 1), /"circuit\.selection\.edges": \d+, but circuit\.inCircuit holds/],
    ['curve lengths', (c) => c.curve.random.pop(), /"circuit\.curve\.random": \d+ values for \d+ sizes/],
    [
      'curve order',
      (c) => ([c.curve.edges[1], c.curve.edges[2]] = [c.curve.edges[2], c.curve.edges[1]]),
      /"circuit\.curve\.edges\[2\]": sizes must be ascending/,
    ],
    ['curve size too large', (c) => (c.curve.edges[c.curve.edges.length - 1] += 1), /is not a number of edges from 0 to/],
    ['node renamed', (c) => (c.nodes[1].id = 'a0.h1'), /"circuit\.nodes\[1\]\.id": a head node at layer 0, head 0 is named "a0\.h0", not "a0\.h1"/],
    ['head out of range', (c) => Object.assign(c.nodes[1], { head: 9, id: 'a0.h9' }), /"circuit\.nodes\[1\]\.head": 9 is not below model\.heads \(4\)/],
    ['layer out of range', (c) => Object.assign(c.nodes[1], { layer: 5, id: 'a5.h0' }), /"circuit\.nodes\[1\]\.layer": 5 is not a layer of the model/],
    ['input layer', (c) => (c.nodes[0].layer = 0), /the input node's layer is -1, not 0/],
    ['logits layer', (c) => (c.nodes[c.nodes.length - 1].layer = 1), /the logits node's layer is 2, not 1/],
    ['duplicate node', (c) => c.nodes.push({ ...c.nodes[1] }), /node "a0\.h0" is listed twice/],
    ['bad kind', (c) => (c.nodes[1].kind = 'neuron'), /"circuit\.nodes\[1\]\.kind" must be "input", "head", "kv-head", "mlp" or "logits"/],
  ];
  for (const [name, mutate, message] of cases) {
    const circuit = structuredClone(valid()) as unknown as Record<string, any>;
    mutate(circuit);
    assert.throws(
      () => parse(circuit),
      (error: Error) => error instanceof InputError && message.test(error.message),
      name,
    );
  }
  // Grouped-query attention: keys and values go to the kv-head, and the kv-heads must split the heads evenly.
  const grouped = structuredClone(valid(2)) as unknown as Record<string, any>;
  const intoHead = grouped.edges.findIndex((e: CircuitEdge) => e.to === 'a1.h0');
  grouped.edges[intoHead].input = 'k';
  assert.throws(() => parse(grouped), /takes "q" \(under grouped-query attention keys and values go to the kv-head\), not "k"/);
  const uneven = structuredClone(valid(2)) as unknown as Record<string, any>;
  uneven.nodes.splice(
    uneven.nodes.findIndex((n: CircuitNode) => n.id === 'a0.kv1'),
    1,
    { id: 'a0.kv1', kind: 'kv-head', layer: 0, head: 1 },
    { id: 'a0.kv2', kind: 'kv-head', layer: 0, head: 2 },
  );
  assert.throws(() => parse(uneven), /layer 0 has 3 kv-heads, which do not split its 4 query heads/);
  const intoKv = structuredClone(valid(2)) as unknown as Record<string, any>;
  intoKv.edges[intoKv.edges.findIndex((e: CircuitEdge) => e.to === 'a1.kv0')].input = 'q';
  assert.throws(() => parse(intoKv), /into a kv-head \("a1\.kv0"\) takes "k" or "v", not "q"/);
});
