// Hand-made circuits for tests of everything that reads Result.circuit (validation, exports, the circuit view):
// the full graph of a small model enumerated as EAP-IG's Graph.from_model enumerates it (nodes and edges in its
// order, sequential attention then MLP), seeded random edge scores, the top-n circuit pruned by the contract's
// own topEdges, and a synthetic faithfulness curve. Synthetic numbers, labelled as such: no engine computed them.
import { topEdges, type Circuit, type CircuitEdge, type CircuitNode } from '../../src/shared/circuit';
import { RESULT_SCHEMA, summarizeHeads, summarizePositions, type ExampleResult, type Result } from '../../src/shared/result';
import { seededNormal } from './random';

/** Every node and edge of a `layers` × `heads` model, in EAP-IG's order; kvHeads < heads adds kv-head receivers. */
export function fullCircuitGraph(layers: number, heads: number, kvHeads = heads): { nodes: CircuitNode[]; edges: Array<Omit<CircuitEdge, 'score'>> } {
  const grouped = kvHeads !== heads;
  const nodes: CircuitNode[] = [{ id: 'input', kind: 'input', layer: -1 }];
  const edges: Array<Omit<CircuitEdge, 'score'>> = [];
  const residual = ['input'];
  for (let layer = 0; layer < layers; layer++) {
    const headIds = Array.from({ length: heads }, (_, head) => `a${layer}.h${head}`);
    headIds.forEach((id, head) => nodes.push({ id, kind: 'head', layer, head }));
    const kvIds = grouped ? Array.from({ length: kvHeads }, (_, kv) => `a${layer}.kv${kv}`) : [];
    kvIds.forEach((id, kv) => nodes.push({ id, kind: 'kv-head', layer, head: kv }));
    for (const from of residual) {
      for (const to of headIds) {
        edges.push({ from, to, input: 'q' });
        if (!grouped) edges.push({ from, to, input: 'k' }, { from, to, input: 'v' });
      }
      for (const to of kvIds) edges.push({ from, to, input: 'k' }, { from, to, input: 'v' });
    }
    residual.push(...headIds);
    nodes.push({ id: `m${layer}`, kind: 'mlp', layer });
    for (const from of residual) edges.push({ from, to: `m${layer}`, input: null });
    residual.push(`m${layer}`);
  }
  nodes.push({ id: 'logits', kind: 'logits', layer: layers });
  for (const from of residual) edges.push({ from, to: 'logits', input: null });
  return { nodes, edges };
}

export interface SyntheticCircuitOptions {
  layers: number;
  heads: number;
  kvHeads?: number;
  seed?: number;
  /** Edges asked for (top-n before pruning). */
  keep?: number;
}

/** A complete Circuit over the full graph: random scores (a few large, most small), the pruned top-n, a curve. */
export function syntheticCircuit(options: SyntheticCircuitOptions): Circuit {
  const { layers, heads, kvHeads = heads, seed = 7, keep = 12 } = options;
  const { nodes, edges: unscored } = fullCircuitGraph(layers, heads, kvHeads);
  const normal = seededNormal(seed);
  // A planted circuit (large scores, one negative path) over heavy-tailed noise (a cube of a normal, small), so that
  // the top edges connect the input to the logits as a real circuit's do.
  const last = layers - 1;
  const kvOf = (layer: number, head: number) => (kvHeads === heads ? `a${layer}.h${head}` : `a${layer}.kv${Math.floor(head / (heads / kvHeads))}`);
  // Heads of the planted paths: a0.h1 → m0 → a{last}.h{p}; a negative path through a0.h{n}.
  const p = 2 % heads;
  const n = heads > 3 ? 3 : 0;
  const planted = new Map<string, number>([
    [`input->a0.h1<q>`, 0.41],
    [`input->${kvOf(0, 1)}<v>`, 0.33],
    [`a0.h1->m0`, 0.3],
    [`m0->a${last}.h${p}<q>`, 0.27],
    [`a${last}.h${p}->logits`, 0.24],
    [`input->m0`, 0.18],
    [`input->${kvOf(0, n)}<k>`, -0.16],
    [`input->a0.h${n}<q>`, -0.14],
    [`a0.h${n}->logits`, -0.13],
    [`m${last}->logits`, 0.11],
    [`a0.h1->m${last}`, 0.09],
  ]);
  const name = (edge: Omit<CircuitEdge, 'score'>) => `${edge.from}->${edge.to}${edge.input ? `<${edge.input}>` : ''}`;
  const edges = unscored
    .map((edge) => ({ ...edge, score: planted.get(name(edge)) ?? Math.round(normal() ** 3 * 0.002 * 1e6) / 1e6 }))
    .sort((a, b) => Math.abs(b.score) - Math.abs(a.score));
  const inCircuit = topEdges({ nodes, edges }, keep);
  const total = edges.length;
  const sizes = [0, 1, 2, 5, 10, 20, 50, 100, 200, total].filter((n, i, all) => n <= total && all.indexOf(n) === i);
  const faithfulness = sizes.map((n) => (n === 0 ? 0 : n === total ? 1 : Math.round((1 - Math.exp(-n / 8)) * 1e4) / 1e4));
  const random = sizes.map((n) => Math.round((n / total) * 1e4) / 1e4);
  return {
    method: 'eap-ig',
    methodNames: 'eap-ig',
    steps: 5,
    nodes,
    edges,
    inCircuit,
    selection: { rule: 'top-n', requested: keep, edges: inCircuit.length },
    // The pruned circuit's own measurement: near the curve at its size (the curve is before pruning), as a run's is.
    faithfulness: { circuit: 0.7321, full: 1, empty: 0 },
    curve: { edges: sizes, faithfulness, random, randomDraws: 5, randomSeed: 1, area: 0.9, randomArea: 0.5 },
  };
}

/**
 * A small, valid Result (2 examples of `positions` tokens) holding `circuit`: per-example attributions are
 * value(example, layer, pos, head) for heads and value(example, layer, pos, heads) for MLPs, traceable by hand.
 */
export function resultWithCircuit(
  circuit: Circuit | undefined,
  options: { layers: number; heads: number; positions?: number; value?: (example: number, layer: number, pos: number, head: number) => number },
): Result {
  const { layers, heads, positions = 3 } = options;
  const value = options.value ?? ((e, l, p, h) => (e + 1) * (l + 1) * 0.01 * (p - 1) * (h - 1.5));
  const words = Array.from({ length: positions }, (_, pos) => `w${pos}`);
  const tokens = words.map((text, pos) => ({ id: 10 + pos, text: ` ${text}`, start: pos * 3, end: pos * 3 + 3 }));
  const examples: ExampleResult[] = [0, 1].map((e) => ({
    line: e + 1,
    clean: tokens.map((t) => t.text).join(''),
    corrupted: tokens.map((t) => t.text).join(''),
    correct: ' A',
    incorrect: ' B',
    cleanIds: tokens.map((t) => t.id),
    corruptedIds: tokens.map((t) => t.id),
    correctId: 5,
    incorrectId: 6,
    tokens,
    corruptedTokens: tokens,
    cleanLogitDiff: 2,
    corruptedLogitDiff: -1,
    tokenScores: { kind: 'token-patch', method: 'exact', values: words.map((_, p) => (p === 1 ? 0.5 : 0)), exact: words.map(() => true), joint: 0.5 },
    attributions: {
      z: Array.from({ length: layers }, (_, l) => words.map((_, p) => Array.from({ length: heads }, (_, h) => value(e, l, p, h)))),
      residPre: Array.from({ length: layers }, () => words.map(() => 0)),
      attnOut: Array.from({ length: layers }, () => words.map(() => 0)),
      mlpOut: Array.from({ length: layers }, (_, l) => words.map((_, p) => value(e, l, p, heads))),
    },
  }));
  return {
    schema: RESULT_SCHEMA,
    createdAt: '2026-01-02T03:04:05.000Z',
    dataset: { file: '/data/tiny.jsonl', examples: examples.length },
    model: { source: 'models/tiny', architecture: 'gpt2', modelType: 'gpt2', layers, heads, dModel: 16, dHead: 4, dtype: 'F32' },
    device: 'cpu',
    metric: { name: 'normalized-logit-diff', cleanLogitDiff: 2, corruptedLogitDiff: -1 },
    run: { requested: 'auto', method: 'atp', passes: { forward: 4, backward: 2 }, reason: 'test' },
    methods: { attributions: 'atp', heads: 'atp', positions: 'atp', tokenScores: 'exact' },
    circuit,
    heads: summarizeHeads(examples),
    positions: summarizePositions(examples),
    examples,
    warnings: [],
  };
}
