// The circuit exports (src/shared/circuitFormats.ts): EAP-IG graph JSON out and back in, circuit-tracer /
// Neuronpedia graph JSON decoded back to our edges by the documented conventions, QuantaMechInterp useful nodes
// against hand-computed sums. (test/engine/circuitFormatsReference.test.ts runs EAP-IG's and QMI's own Python on them.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { circuitNodeIds, edgeName, type Circuit } from '../../src/shared/circuit';
import { eapIgGraph, parseEapIgJson, pythonFloat, qmiUsefulNodes, toEapIgJson, toNeuronpediaJson, toQmiJson } from '../../src/shared/circuitFormats';
import { InputError } from '../../src/shared/errors';
import { fullCircuitGraph, resultWithCircuit, syntheticCircuit } from '../support/circuitFixture';

test("pythonFloat writes what Python's repr (and so json.dump) writes", () => {
  const cases: Array<[number, string]> = [
    [0, '0.0'],
    [-0, '-0.0'],
    [1, '1.0'],
    [0.1, '0.1'],
    [-0.25, '-0.25'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [-1.5e-5, '-1.5e-05'],
    [123.456, '123.456'],
    [1e15, '1000000000000000.0'],
    [9999999999999998, '9999999999999998.0'],
    [1e16, '1e+16'],
    [1.2345678901234568e17, '1.2345678901234568e+17'],
    [1e100, '1e+100'],
    [5e-324, '5e-324'],
    [Math.fround(0.1), '0.10000000149011612'],
  ];
  for (const [value, python] of cases) assert.equal(pythonFloat(value), python, String(value));
  assert.throws(() => pythonFloat(NaN), RangeError);
});

test("eapIgGraph enumerates EAP-IG's graph: its node and edge counts, and the same edges as the fixture's enumeration", () => {
  for (const [layers, heads] of [
    [1, 1],
    [2, 3],
    [4, 4],
  ]) {
    const graph = eapIgGraph(layers, heads);
    // Graph.from_model: n_forward = 1 + L(H+1) nodes sending, plus the logits.
    assert.equal(graph.nodes.length, 1 + layers * (heads + 1) + 1);
    // Senders before layer l: 1 + l(H+1); each feeds 3H head inputs and the MLP (with this layer's H heads too); all feed the logits.
    let expected = 1 + layers * (heads + 1);
    for (let l = 0; l < layers; l++) expected += (1 + l * (heads + 1)) * 3 * heads + (1 + l * (heads + 1) + heads);
    assert.equal(graph.edges.length, expected);
    assert.deepEqual(graph.edges.map(edgeName), fullCircuitGraph(layers, heads).edges.map(edgeName));
  }
});

const LAYERS = 3;
const HEADS = 2;

test('EAP-IG export → import gives back the circuit: nodes, edges (float32 scores, as EAP-IG holds them), kept edges', () => {
  const circuit = syntheticCircuit({ layers: LAYERS, heads: HEADS, keep: 9 });
  const result = resultWithCircuit(circuit, { layers: LAYERS, heads: HEADS });
  const text = toEapIgJson(result);
  assert.match(
    text,
    /^\{"cfg": \{"n_layers": 3, "n_heads": 2, "parallel_attn_mlp": false, "d_model": 16\}, "nodes": \{"input": \{"in_graph": true\}, "a0\.h0": \{"in_graph": (true|false)\}/,
  );
  const back = parseEapIgJson(text, 'graph.json');
  assert.equal(back.layers, LAYERS);
  assert.equal(back.heads, HEADS);
  assert.equal(back.dModel, 16);
  assert.deepEqual(back.nodes, circuit.nodes);
  assert.deepEqual(
    back.edges,
    circuit.edges.map((edge) => ({ ...edge, score: Math.fround(edge.score) })),
  );
  assert.deepEqual(back.inCircuit, circuit.inCircuit);
  // Node in_graph: touched by a circuit edge (and the logits always).
  const nodes = JSON.parse(text).nodes as Record<string, { in_graph: boolean }>;
  const used = new Set(circuitNodeIds(circuit));
  for (const node of circuit.nodes) assert.equal(nodes[node.id].in_graph, node.id === 'logits' || used.has(node.id), node.id);
  // Exported twice (after import), the same bytes.
  const again = toEapIgJson(resultWithCircuit({ ...circuit, edges: back.edges, inCircuit: back.inCircuit }, { layers: LAYERS, heads: HEADS }));
  assert.equal(again, text);
});

test('EAP-IG export refuses grouped-query circuits, the corrupted-anchored variants and Results without a circuit; import names file and field', () => {
  const grouped = resultWithCircuit(syntheticCircuit({ layers: 2, heads: 4, kvHeads: 2 }), { layers: 2, heads: 4 });
  assert.throws(() => toEapIgJson(grouped), /key\/value-head nodes \("a0\.kv0", grouped-query attention\)/);
  assert.throws(() => toEapIgJson(resultWithCircuit(undefined, { layers: 2, heads: 2 })), /has no circuit \(field "circuit"\)/);
  // The corrupted-anchored variants are scores EAP-IG never computes: refused, naming the method to run instead.
  for (const [method, instead] of [
    ['eap-corrupted', 'eap'],
    ['eap-ig-activations-corrupted', 'eap-ig-activations'],
  ] as const) {
    const variant = resultWithCircuit(
      { ...syntheticCircuit({ layers: 2, heads: 2 }), method, steps: method === 'eap-corrupted' ? 1 : 5 },
      { layers: 2, heads: 2 },
    );
    assert.throws(
      () => toEapIgJson(variant),
      (error: Error) => error instanceof InputError && error.message.includes(`scored by ${method}`) && error.message.includes(`--method ${instead}`),
      method,
    );
  }
  for (const method of ['eap', 'eap-ig-activations'] as const)
    assert.doesNotThrow(() =>
      toEapIgJson(resultWithCircuit({ ...syntheticCircuit({ layers: 2, heads: 2 }), method, steps: method === 'eap' ? 1 : 5 }, { layers: 2, heads: 2 })),
    );
  const good = JSON.parse(toEapIgJson(resultWithCircuit(syntheticCircuit({ layers: 2, heads: 2 }), { layers: 2, heads: 2 })));
  const hostile: Array<[string, (g: any) => void, RegExp]> = [
    ['not JSON', () => undefined, /g\.json: not valid JSON/],
    ['no cfg', (g) => delete g.cfg, /g\.json: field "cfg": must be an object/],
    ['bad layers', (g) => (g.cfg.n_layers = 0), /field "cfg\.n_layers": must be a positive integer/],
    ['parallel', (g) => (g.cfg.parallel_attn_mlp = true), /"cfg\.parallel_attn_mlp": true \(parallel attention and MLP\) is not supported/],
    ['unknown edge', (g) => (g.edges['a1.h0->a0.h1<q>'] = { score: 1, in_graph: false }), /"edges\.a1\.h0->a0\.h1<q>": not an edge of a 2-layer, 2-head graph/],
    ['bad score', (g) => (g.edges['input->m0'].score = 'x'), /"edges\.input->m0\.score": must be a number/],
    ['bad in_graph', (g) => (g.edges['input->m0'].in_graph = 1), /"edges\.input->m0\.in_graph": must be a boolean/],
    ['unknown node', (g) => (g.nodes['a7.h0'] = { in_graph: true }), /"nodes\.a7\.h0": not a node/],
  ];
  for (const [name, mutate, message] of hostile) {
    const copy = structuredClone(good);
    mutate(copy);
    const text = name === 'not JSON' ? '{"cfg": ' : JSON.stringify(copy);
    assert.throws(
      () => parseEapIgJson(text, 'g.json'),
      (error: Error) => error instanceof InputError && message.test(error.message),
      name,
    );
  }
});

test("Neuronpedia export: nodes by the documented layer/feature/ctx_idx conventions, links decode back to the circuit's edges", () => {
  const circuit: Circuit = syntheticCircuit({ layers: LAYERS, heads: HEADS, keep: 9 });
  const result = resultWithCircuit(circuit, { layers: LAYERS, heads: HEADS, positions: 4 });
  const graph = JSON.parse(toNeuronpediaJson(result, 'tiny-slug'));
  assert.deepEqual(Object.keys(graph), ['metadata', 'qParams', 'nodes', 'links']);
  assert.equal(graph.metadata.slug, 'tiny-slug');
  assert.deepEqual(graph.metadata.prompt_tokens, [' w0', ' w1', ' w2', ' w3']);
  assert.deepEqual(graph.qParams, { pinnedIds: [], supernodes: [], linkType: 'both', clickedId: '', sg_pos: '' });
  // Every node at the answer position (3); ids unique; field order as graph_models.Node declares it.
  const ids = graph.nodes.map((n: any) => n.node_id);
  assert.equal(new Set(ids).size, ids.length);
  for (const node of graph.nodes) {
    assert.equal(node.ctx_idx, 3);
    assert.deepEqual(Object.keys(node), [
      'node_id',
      'feature',
      'layer',
      'ctx_idx',
      'feature_type',
      'token_prob',
      'is_target_logit',
      'run_idx',
      'reverse_ctx_idx',
      'jsNodeId',
      'clerp',
      'influence',
      'activation',
    ]);
  }
  // Decode each node back to our id by the conventions: E → input; layer L+1 → logits; feature f of layer l: head f, or the MLP at f = H.
  const decode = (node: any): string => {
    if (node.feature_type === 'embedding') return 'input';
    if (node.feature_type === 'logit') return 'logits';
    const layer = Number(node.layer);
    const feature = node.feature - 10 * layer; // 3 features per layer (2 heads + MLP) → offset 10
    return feature < HEADS ? `a${layer}.h${feature}` : `m${layer}`;
  };
  const byNodeId = new Map(graph.nodes.map((node: any) => [node.node_id, decode(node)]));
  assert.equal(graph.nodes.find((n: any) => n.feature_type === 'logit').layer, String(LAYERS + 1));
  // Expected links: the circuit's edges, q/k/v into one head summed.
  const expected = new Map<string, number>();
  for (const index of circuit.inCircuit) {
    const edge = circuit.edges[index];
    expected.set(`${edge.from} ${edge.to}`, (expected.get(`${edge.from} ${edge.to}`) ?? 0) + edge.score);
  }
  const links = new Map(graph.links.map((link: any) => [`${byNodeId.get(link.source)} ${byNodeId.get(link.target)}`, link.weight]));
  assert.deepEqual([...links.keys()].sort(), [...expected.keys()].sort());
  for (const [key, weight] of expected) assert.ok(Math.abs((links.get(key) as number) - weight) < 1e-12, key);
  // Nodes: those on a link, plus the embedding and the logits.
  assert.deepEqual(new Set(byNodeId.values()), new Set([...circuitNodeIds(circuit), 'input', 'logits']));
});

test('QMI useful nodes: circuit heads and MLPs at positions whose summed attribution reaches the share, tagged, sorted as QMI sorts', () => {
  const circuit = syntheticCircuit({ layers: LAYERS, heads: HEADS, keep: 9 });
  const used = circuitNodeIds(circuit);
  assert.ok(used.includes('a0.h1') && used.includes('m0') && used.includes(`a${LAYERS - 1}.h1`) === false);
  // Example e adds (e + 1) × a planted value: sums over the two examples are 3× it.
  const planted = (l: number, p: number, h: number): number =>
    l === 0 && h === 1 && p === 2 ? 1 : l === 0 && h === HEADS && p === 0 ? -0.5 : l === 0 && h === HEADS && p === 1 ? 0.05 : l === 1 && h === 1 ? 0.9 : 0.001;
  const result = resultWithCircuit(circuit, { layers: LAYERS, heads: HEADS, positions: 3, value: (e, l, p, h) => (e + 1) * planted(l, p, h) });
  // Largest among circuit components: a0.h1 at P2 = 3 (a1.h1's 0.9 is not in the circuit). Share 0.1 → |sum| ≥ 0.3.
  assert.deepEqual(qmiUsefulNodes(result, 'EngTableName', 0.1), [
    { position: 0, layer: 0, is_head: false, num: 0, tags: ['Attribution:EngTableName'] },
    { position: 2, layer: 0, is_head: true, num: 1, tags: ['Attribution:EngTableName'] },
  ]);
  assert.equal(
    toQmiJson(result, 'EngTableName', 0.1),
    '[{"position": 0, "layer": 0, "is_head": false, "num": 0, "tags": ["Attribution:EngTableName"]}, {"position": 2, "layer": 0, "is_head": true, "num": 1, "tags": ["Attribution:EngTableName"]}]',
  );
  // A lower share takes in m0 at P1 (0.15) too.
  assert.equal(qmiUsefulNodes(result, 'X', 0.04).length, 3);
  assert.throws(() => qmiUsefulNodes(result, 'Eng:Table'), /must be non-empty without ":"/);
  const uneven = structuredClone(result);
  uneven.examples[1].tokens = uneven.examples[1].tokens.slice(0, 2);
  assert.throws(() => qmiUsefulNodes(uneven, 'X'), /example on line 2 has 2 tokens and the first 3/);
});
