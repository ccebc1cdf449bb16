// A circuit: edge attribution (EAP, EAP-IG) over the graph of a transformer's components, and how faithful a
// small part of that graph is. Stored in Result.circuit, so one Result still flows from the engine to every view;
// shared by the engine (which computes it), the CLI, the extension host and the webview, so it imports nothing
// at run time (checkCircuit gets parseResult's field checker passed in).
import type { ShapeChecker } from './shapeChecker';

/**
 * The computational graph's nodes, named as EAP-IG names them (hannamw/EAP-IG, Graph.from_model):
 * - 'input': the token and position embeddings (layer −1 for ordering: it writes before every layer),
 * - 'a{layer}.h{head}': an attention head's output (one query head: its slice of the output projection),
 * - 'm{layer}': an MLP's output,
 * - 'logits': the unembedding's input (the final residual stream; layer = number of layers).
 * With grouped-query attention (fewer key/value heads than query heads) the key and value inputs belong to a
 * key/value head, named 'a{layer}.kv{kvHead}' (kind 'kv-head'): it receives edges through 'k' and 'v' only and sends none.
 */
export type CircuitNodeKind = 'input' | 'head' | 'kv-head' | 'mlp' | 'logits';

export interface CircuitNode {
  id: string;
  kind: CircuitNodeKind;
  /** −1 for the input, the number of layers for the logits. */
  layer: number;
  /** Query head for 'head', key/value head for 'kv-head'. */
  head?: number;
}

/**
 * Which input of the receiver an edge feeds: a head reads the residual stream three times (its query, key and
 * value inputs), separately as EAP-IG scores them; an MLP and the logits read it once (null).
 */
export type EdgeInput = 'q' | 'k' | 'v' | null;

/**
 * An edge from a sender (input, head, MLP) to a receiver in a later layer (head, kv-head, MLP, logits) — an MLP
 * receives from heads of its own layer too, as it reads the residual stream after the attention. Its score is the
 * EAP estimate of the effect on the normalised metric of patching that edge alone to its corrupted value:
 * (clean − corrupted output of the sender) · ∂metric/∂(receiver's input), summed over positions, and over examples
 * divided by n·(LD_clean − LD_corrupted) as every attribution of the Result is (see Result.metric).
 */
export interface CircuitEdge {
  from: string;
  to: string;
  input: EdgeInput;
  score: number;
}

/** EAP-IG's name of an edge: "a0.h1->a2.h3<q>", "input->m0", "m3->logits". */
export function edgeName(edge: Pick<CircuitEdge, 'from' | 'to' | 'input'>): string {
  return `${edge.from}->${edge.to}${edge.input ? `<${edge.input}>` : ''}`;
}

/**
 * How edges are scored. The plain names are EAP-IG's own definitions (hannamw/EAP-IG, attribute.py), so a circuit
 * exported to EAP-IG is what EAP-IG would compute; the `-corrupted` names are this product's variants anchored at the
 * corrupted run instead (AtP's linearisation point), which EAP-IG does not produce.
 *   eap: one gradient at the clean run (EAP-IG's get_scores_eap; Syed et al.'s EAP).
 *   eap-corrupted: one gradient at the corrupted run.
 *   eap-ig: gradients averaged over the input embeddings corrupted + (k/m)(clean − corrupted), k = 0…m−1
 *     (EAP-IG-inputs, as its code steps: the first point is the corrupted input, the clean one is never reached).
 *   eap-ig-activations: each sender group's output in turn set to α·clean + (1 − α)·corrupted, α = k/m, k = 1…m,
 *     the rest of the clean run as it is (EAP-IG's get_scores_ig_activations, 'clean-corrupted' in its terms).
 *   eap-ig-activations-corrupted: the same from the corrupted run, α = k/m toward clean, k = 0…m−1.
 * Scores are in this product's sign: positive when the edge carries the clean behaviour (EAP-IG's, with its loss
 * metric −LD, are the same numbers).
 */
export type CircuitMethod = 'eap' | 'eap-corrupted' | 'eap-ig' | 'eap-ig-activations' | 'eap-ig-activations-corrupted';

export interface CircuitMethodInfo {
  /** The panel's and the CLI's name. */
  label: string;
  /** One gradient: steps is always 1. */
  oneGradient: boolean;
  /** Which graph interpolates: the input embeddings or each sender group's output. */
  interpolation: 'inputs' | 'activations';
  /**
   * The run anchored at the clean prompt (EAP-IG's eap and ig-activations): the engine runs its corrupted-anchored
   * graph with the two prompts swapped and negates the scores (the LD metric is the same for both prompts).
   */
  fromClean: boolean;
  /** EAP-IG computes exactly these scores (its export is refused otherwise). */
  eapIg: boolean;
}

export const CIRCUIT_METHODS: Readonly<Record<CircuitMethod, CircuitMethodInfo>> = {
  eap: { label: 'EAP', oneGradient: true, interpolation: 'inputs', fromClean: true, eapIg: true },
  'eap-corrupted': { label: 'EAP at the corrupted run', oneGradient: true, interpolation: 'inputs', fromClean: false, eapIg: false },
  'eap-ig': { label: 'EAP-IG (inputs)', oneGradient: false, interpolation: 'inputs', fromClean: false, eapIg: true },
  'eap-ig-activations': { label: 'EAP-IG (activations)', oneGradient: false, interpolation: 'activations', fromClean: true, eapIg: true },
  'eap-ig-activations-corrupted': {
    label: 'EAP-IG (activations, from the corrupted run)',
    oneGradient: false,
    interpolation: 'activations',
    fromClean: false,
    eapIg: false,
  },
};

export const CIRCUIT_METHOD_NAMES = Object.keys(CIRCUIT_METHODS) as CircuitMethod[];

/**
 * Results written before the methods were named as EAP-IG names them (no `methodNames` field) meant the
 * corrupted-anchored variants by "eap" and "eap-ig-activations": a circuit read from a file gets its name of today.
 */
export function nameCircuitMethodAsToday(circuit: Circuit): void {
  if (circuit.methodNames === 'eap-ig') return;
  if (circuit.method === 'eap') circuit.method = 'eap-corrupted';
  else if (circuit.method === 'eap-ig-activations') circuit.method = 'eap-ig-activations-corrupted';
  circuit.methodNames = 'eap-ig';
}

/**
 * How the circuit was chosen from the scored edges: the `edges` edges of largest |score| ('top-n'), every edge with
 * |score| ≥ threshold ('threshold'), or grown greedily from the logits by |score| ('greedy', EAP-IG's apply_greedy:
 * each step adds the largest-|score| edge into a node already connected to the logits); then
 * edges that cannot carry anything (from a node no kept edge reaches the logits from, or into a node with no kept
 * input path from the input) were pruned, leaving `edges`.
 */
export interface CircuitSelection {
  rule: 'top-n' | 'threshold' | 'greedy';
  /** What was asked: the number of edges (top-n, greedy) or the threshold. */
  requested: number;
  /** Edges in the circuit, after pruning. */
  edges: number;
}

/**
 * Faithfulness of a circuit: the normalised metric (LD − LD_corrupted)/(LD_clean − LD_corrupted), averaged as the
 * Result's metric is, of a run in which every edge outside the circuit carries its corrupted value (each receiver
 * reads its clean-run input minus the removed senders' clean − corrupted differences, with the senders' values of
 * that same patched run). The full graph gives 1 and the empty graph 0, by construction.
 */
export interface FaithfulnessCurve {
  /** Circuit sizes (number of edges, top-n by |score|, before pruning), ascending, from 0 to every edge. */
  edges: number[];
  /** Measured faithfulness of the top-n circuit at each size. */
  faithfulness: number[];
  /** The same for n edges drawn at random (mean over `randomDraws` draws with seed `randomSeed`). */
  random: number[];
  /**
   * Edges kept after pruning at each size: the top-n circuit's, and the mean over the random draws (pruning never
   * changes a circuit's faithfulness, so these are the sizes views show). Absent in Results made before they were
   * recorded: the top-n counts follow from the edges (keptEdgeCounts), the random ones are unknown.
   */
  kept?: number[];
  randomKept?: number[];
  randomDraws: number;
  randomSeed: number;
  /** Area under each curve over the edge fraction 0…1 (trapezoids): 1 for a circuit that is faithful at once. */
  area: number;
  randomArea: number;
}

export interface Circuit {
  method: CircuitMethod;
  /** 'eap-ig': `method` names the methods as EAP-IG defines them (see CircuitMethod); absent in older Results. */
  methodNames?: 'eap-ig';
  /** Interpolation steps (1 for eap and eap-corrupted). */
  steps: number;
  nodes: CircuitNode[];
  /** Every edge of the graph, sorted by |score|, largest first. */
  edges: CircuitEdge[];
  /** Indices into `edges` of the circuit's edges (after pruning), ascending. */
  inCircuit: number[];
  selection: CircuitSelection;
  /** The circuit's own measured faithfulness, and the full and empty graphs' (1 and 0 up to float error: a check). */
  faithfulness: { circuit: number; full: number; empty: number };
  curve?: FaithfulnessCurve;
}

/** The ids of the nodes that sent or received a kept edge, in `nodes` order. */
export function circuitNodeIds(circuit: Pick<Circuit, 'nodes' | 'edges' | 'inCircuit'>): string[] {
  const used = new Set<string>();
  for (const index of circuit.inCircuit) {
    const edge = circuit.edges[index];
    used.add(edge.from);
    used.add(edge.to);
  }
  return circuit.nodes.filter((node) => used.has(node.id)).map((node) => node.id);
}

/**
 * A query head's key/value receiver: the kv-head node under grouped-query attention, else the head itself.
 * `heads` query heads share `kvHeads` key/value heads in consecutive groups (as Hugging Face's repeat_kv does).
 */
export function keyValueReceiver(layer: number, head: number, heads: number, kvHeads: number): string {
  // A group size that is not a whole number (or a head outside the layer) would name a kv-head that does not exist.
  if (!Number.isInteger(kvHeads) || kvHeads < 1 || heads % kvHeads !== 0)
    throw new RangeError(`keyValueReceiver: ${heads} query heads cannot share ${kvHeads} key/value heads in equal groups`);
  if (!Number.isInteger(head) || head < 0 || head >= heads) throw new RangeError(`keyValueReceiver: head ${head} is not one of ${heads} query heads`);
  return kvHeads === heads ? `a${layer}.h${head}` : `a${layer}.kv${Math.floor(head / (heads / kvHeads))}`;
}

/**
 * Drops edges that cannot affect the logits or carry nothing from the input: an edge is kept when its receiver
 * reaches 'logits' through kept edges and its sender is the input or is reached from it through kept edges. A
 * kv-head forwards to its query heads (it has no outgoing edges of its own: its output is the heads' outputs).
 * Returns the kept indices ascending, each once.
 */
export function pruneDangling(edges: readonly CircuitEdge[], kept: readonly number[], nodes: readonly CircuitNode[]): number[] {
  const ids = new Set(nodes.map((node) => node.id));
  // A kv-head's value flows on through every query head of its layer that it serves: heads/kvHeads consecutive
  // query heads per key/value head (counted once per layer, not per pair of nodes: models have thousands of heads).
  const headsByLayer = new Map<number, CircuitNode[]>();
  const kvByLayer = new Map<number, CircuitNode[]>();
  for (const node of nodes) {
    const byLayer = node.kind === 'head' ? headsByLayer : node.kind === 'kv-head' ? kvByLayer : undefined;
    byLayer?.set(node.layer, [...(byLayer.get(node.layer) ?? []), node]);
  }
  const forward = new Map<string, string[]>();
  const backward = new Map<string, string[]>();
  const link = (from: string, to: string) => {
    forward.set(from, [...(forward.get(from) ?? []), to]);
    backward.set(to, [...(backward.get(to) ?? []), from]);
  };
  for (const [layer, kvHeads] of kvByLayer) {
    const heads = headsByLayer.get(layer) ?? [];
    const group = heads.length / kvHeads.length;
    for (const kv of kvHeads) for (const head of heads) if (Math.floor((head.head ?? 0) / group) === kv.head) link(kv.id, head.id);
  }
  for (const index of new Set(kept)) link(edges[index].from, edges[index].to);
  const reach = (start: string, links: Map<string, string[]>): Set<string> => {
    const seen = new Set<string>([start]);
    const stack = [start];
    while (stack.length > 0) for (const next of links.get(stack.pop()!) ?? []) if (!seen.has(next)) (seen.add(next), stack.push(next));
    return seen;
  };
  const fromInput = ids.has('input') ? reach('input', forward) : new Set<string>();
  const toLogits = ids.has('logits') ? reach('logits', backward) : new Set<string>();
  return [...new Set(kept)].filter((index) => fromInput.has(edges[index].from) && toLogits.has(edges[index].to)).sort((a, b) => a - b);
}

/** The first n edges by |score| (edges are stored sorted), pruned. */
export function topEdges(circuit: Pick<Circuit, 'nodes' | 'edges'>, n: number): number[] {
  const count = Math.max(0, Math.min(Math.floor(n), circuit.edges.length));
  return pruneDangling(
    circuit.edges,
    Array.from({ length: count }, (_, i) => i),
    circuit.nodes,
  );
}

/** Every edge with |score| ≥ threshold, pruned. */
export function edgesAbove(circuit: Pick<Circuit, 'nodes' | 'edges'>, threshold: number): number[] {
  const kept: number[] = [];
  circuit.edges.forEach((edge, index) => {
    if (Math.abs(edge.score) >= threshold) kept.push(index);
  });
  return pruneDangling(circuit.edges, kept, circuit.nodes);
}

/**
 * Faithfulness at `edges` edges, read from the measured curve: the measured value at a measured size, linear
 * between two measured sizes, NaN outside the measured range (never extrapolated). See faithfulnessReading for
 * which of the three it was.
 */
export function faithfulnessAt(curve: FaithfulnessCurve, edges: number): number {
  return faithfulnessReading(curve, edges).value;
}

/** A value read from the faithfulness curve, and whether it was measured at that size, interpolated, or not measured at all. */
export interface FaithfulnessReading {
  value: number;
  random: number;
  how: 'measured' | 'interpolated' | 'not-measured';
}

export function faithfulnessReading(curve: FaithfulnessCurve, edges: number): FaithfulnessReading {
  const xs = curve.edges;
  const exact = xs.indexOf(edges);
  if (exact >= 0) return { value: curve.faithfulness[exact], random: curve.random[exact], how: 'measured' };
  if (!Number.isFinite(edges) || xs.length === 0 || edges < xs[0] || edges > xs[xs.length - 1]) return { value: NaN, random: NaN, how: 'not-measured' };
  const i = xs.findIndex((x) => x > edges);
  const t = (edges - xs[i - 1]) / (xs[i] - xs[i - 1]);
  const between = (ys: number[]) => ys[i - 1] + t * (ys[i] - ys[i - 1]);
  return { value: between(curve.faithfulness), random: between(curve.random), how: 'interpolated' };
}

const NODE_KINDS: readonly CircuitNodeKind[] = ['input', 'head', 'kv-head', 'mlp', 'logits'];
const RULES: ReadonlyArray<CircuitSelection['rule']> = ['top-n', 'threshold', 'greedy'];

/** The id a node of this kind, layer and head must have (EAP-IG's names). */
function expectedNodeId(kind: CircuitNodeKind, layer: number, head: number | undefined): string {
  switch (kind) {
    case 'input':
      return 'input';
    case 'logits':
      return 'logits';
    case 'mlp':
      return `m${layer}`;
    case 'head':
      return `a${layer}.h${head}`;
    case 'kv-head':
      return `a${layer}.kv${head}`;
  }
}

/**
 * Checks Result.circuit against the contract above and the model's size, naming the field of the first problem:
 * node ids, kinds and layers (input −1, logits = layers); every edge between known nodes, from a sender (input, head,
 * MLP) to a receiver in a later layer (an MLP also from heads of its own layer), through 'q'/'k'/'v' into heads
 * ('k'/'v' into the kv-head under grouped-query attention) and null otherwise, each edge once, sorted by |score|;
 * inCircuit ascending indices; the selection's count; the curve's arrays of one length.
 */
export function checkCircuit(value: unknown, check: ShapeChecker, model: { layers: number; heads: number }): void {
  const circuit = check.object(value, 'circuit');
  if (!CIRCUIT_METHOD_NAMES.includes(circuit.method as CircuitMethod))
    check.fail(
      'circuit.method',
      CIRCUIT_METHOD_NAMES.map((m) => `"${m}"`)
        .join(', ')
        .replace(/, ([^,]*)$/, ' or $1'),
    );
  const steps = check.integer(circuit.steps, 'circuit.steps');
  if (steps < 1) check.fail('circuit.steps', 'a positive integer');
  if (CIRCUIT_METHODS[circuit.method as CircuitMethod].oneGradient && steps !== 1)
    check.fail('circuit.steps', `1 for method "${circuit.method as string}" (one gradient)`);
  if (circuit.methodNames !== undefined && circuit.methodNames !== 'eap-ig') check.fail('circuit.methodNames', '"eap-ig" or absent');

  const byId = new Map<string, CircuitNode>();
  const kvHeadsPerLayer = new Map<number, number>();
  check.array(circuit.nodes, 'circuit.nodes').forEach((item, index) => {
    const field = `circuit.nodes[${index}]`;
    const node = check.object(item, field);
    check.string(node.id, `${field}.id`);
    if (!NODE_KINDS.includes(node.kind as CircuitNodeKind)) check.fail(`${field}.kind`, '"input", "head", "kv-head", "mlp" or "logits"');
    const kind = node.kind as CircuitNodeKind;
    if (typeof node.layer !== 'number' || !Number.isInteger(node.layer)) check.fail(`${field}.layer`, 'an integer');
    const layer = node.layer;
    const expectedLayer = kind === 'input' ? -1 : kind === 'logits' ? model.layers : undefined;
    if (expectedLayer !== undefined && layer !== expectedLayer) check.reject(`${field}.layer`, `the ${kind} node's layer is ${expectedLayer}, not ${layer}`);
    if (expectedLayer === undefined && (layer < 0 || layer >= model.layers))
      check.reject(`${field}.layer`, `${layer} is not a layer of the model (0 to ${model.layers - 1})`);
    let head: number | undefined;
    if (kind === 'head' || kind === 'kv-head') {
      head = check.integer(node.head, `${field}.head`);
      if (head >= model.heads) check.reject(`${field}.head`, `${head} is not below model.heads (${model.heads})`);
      if (kind === 'kv-head') kvHeadsPerLayer.set(layer, (kvHeadsPerLayer.get(layer) ?? 0) + 1);
    } else if (node.head !== undefined) check.reject(`${field}.head`, `a ${kind} node has no head`);
    const expected = expectedNodeId(kind, layer, head);
    if (node.id !== expected)
      check.reject(
        `${field}.id`,
        `a ${kind} node at layer ${layer}${head === undefined ? '' : `, head ${head}`} is named "${expected}", not ${JSON.stringify(node.id)}`,
      );
    if (byId.has(expected)) check.reject(`${field}.id`, `node "${expected}" is listed twice`);
    byId.set(expected, { id: expected, kind, layer, head });
  });
  for (const [layer, count] of kvHeadsPerLayer) {
    if (model.heads % count !== 0)
      check.reject('circuit.nodes', `layer ${layer} has ${count} kv-heads, which do not split its ${model.heads} query heads into equal groups`);
  }

  const names = new Set<string>();
  let previous = Infinity;
  const edges = check.array(circuit.edges, 'circuit.edges');
  edges.forEach((item, index) => {
    const field = `circuit.edges[${index}]`;
    const edge = check.object(item, field);
    check.string(edge.from, `${field}.from`);
    check.string(edge.to, `${field}.to`);
    const from = byId.get(edge.from as string);
    const to = byId.get(edge.to as string);
    if (!from) check.reject(`${field}.from`, `unknown node ${JSON.stringify(edge.from)}`);
    if (!to) check.reject(`${field}.to`, `unknown node ${JSON.stringify(edge.to)}`);
    if (from.kind === 'kv-head' || from.kind === 'logits') check.reject(`${field}.from`, `a ${from.kind} node ("${from.id}") sends no edges`);
    if (to.kind === 'input') check.reject(`${field}.to`, 'the input receives no edges');
    const sameLayerMlp = to.kind === 'mlp' && from.kind === 'head' && from.layer === to.layer;
    if (from.layer >= to.layer && !sameLayerMlp) {
      check.reject(
        field,
        `"${from.id}" (layer ${from.layer}) cannot send to "${to.id}" (layer ${to.layer}): a sender must be in an earlier layer (an MLP also reads the heads of its own layer)`,
      );
    }
    const grouped = kvHeadsPerLayer.has(to.layer);
    const allowed: EdgeInput[] = to.kind === 'head' ? (grouped ? ['q'] : ['q', 'k', 'v']) : to.kind === 'kv-head' ? ['k', 'v'] : [null];
    if (!allowed.includes(edge.input as EdgeInput)) {
      const why =
        to.kind === 'head' && grouped
          ? `"q" (under grouped-query attention keys and values go to the kv-head)`
          : allowed
              .map((a) => (a === null ? 'null' : `"${a}"`))
              .join(', ')
              .replace(/, ([^,]*)$/, ' or $1');
      check.reject(
        `${field}.input`,
        `an edge into ${to.kind === 'kv-head' ? 'a kv-head' : `${to.kind === 'mlp' ? 'an MLP' : to.kind === 'head' ? 'a head' : 'the logits'}`} ("${to.id}") takes ${why}, not ${JSON.stringify(edge.input)}`,
      );
    }
    check.number(edge.score, `${field}.score`);
    const name = edgeName({ from: from.id, to: to.id, input: edge.input as EdgeInput });
    if (names.has(name)) check.reject(field, `edge "${name}" is listed twice`);
    names.add(name);
    const magnitude = Math.abs(edge.score as number);
    if (magnitude > previous) check.reject(`${field}.score`, `edges must be sorted by |score|, largest first: |${edge.score}| follows ${previous}`);
    previous = magnitude;
  });

  let last = -1;
  const inCircuit = check.array(circuit.inCircuit, 'circuit.inCircuit');
  inCircuit.forEach((item, i) => {
    const index = check.integer(item, `circuit.inCircuit[${i}]`);
    if (index >= edges.length) check.reject(`circuit.inCircuit[${i}]`, `${index} is not an index into circuit.edges (${edges.length} edges)`);
    if (index <= last) check.reject(`circuit.inCircuit[${i}]`, `indices must be ascending, each once: ${index} follows ${last}`);
    last = index;
  });

  const selection = check.object(circuit.selection, 'circuit.selection');
  if (!RULES.includes(selection.rule as CircuitSelection['rule'])) check.fail('circuit.selection.rule', '"top-n", "threshold" or "greedy"');
  check.number(selection.requested, 'circuit.selection.requested');
  if (check.integer(selection.edges, 'circuit.selection.edges') !== inCircuit.length) {
    check.reject('circuit.selection.edges', `${selection.edges}, but circuit.inCircuit holds ${inCircuit.length} edges`);
  }
  const faithfulness = check.object(circuit.faithfulness, 'circuit.faithfulness');
  for (const key of ['circuit', 'full', 'empty']) check.number(faithfulness[key], `circuit.faithfulness.${key}`);

  if (circuit.curve !== undefined) {
    const curve = check.object(circuit.curve, 'circuit.curve');
    check.numbers(curve.edges, 'circuit.curve.edges', 1);
    const sizes = curve.edges as number[];
    sizes.forEach((size, i) => {
      if (!Number.isInteger(size) || size < 0 || size > edges.length)
        check.reject(`circuit.curve.edges[${i}]`, `${size} is not a number of edges from 0 to ${edges.length}`);
      if (i > 0 && size <= sizes[i - 1]) check.reject(`circuit.curve.edges[${i}]`, `sizes must be ascending: ${size} follows ${sizes[i - 1]}`);
    });
    for (const key of ['faithfulness', 'random', 'kept', 'randomKept']) {
      if ((key === 'kept' || key === 'randomKept') && curve[key] === undefined) continue;
      check.numbers(curve[key], `circuit.curve.${key}`, 1);
      const length = (curve[key] as number[]).length;
      if (length !== sizes.length) check.reject(`circuit.curve.${key}`, `${length} values for ${sizes.length} sizes in circuit.curve.edges (one per size)`);
    }
    check.integer(curve.randomDraws, 'circuit.curve.randomDraws');
    check.number(curve.randomSeed, 'circuit.curve.randomSeed');
    check.number(curve.area, 'circuit.curve.area');
    check.number(curve.randomArea, 'circuit.curve.randomArea');
  }
}

/** Which edges a circuit run keeps: the n largest, those above a threshold, or n chosen greedily. */
export type CircuitSelectionRequest = { rule: 'top-n'; edges: number } | { rule: 'threshold'; threshold: number } | { rule: 'greedy'; edges: number };

/** A circuit run as asked for (atp circuit, the worker's CircuitRequest, a claims file's circuit: block); src/engine/circuits/run.ts runs it. */
export interface CircuitOptions {
  method: CircuitMethod;
  /** Interpolation steps for the EAP-IG methods (default 5); eap and eap-corrupted use 1. */
  steps?: number;
  selection: CircuitSelectionRequest;
  /** Circuit sizes measured for the curve (default 16; 0: no curve). */
  curvePoints?: number;
  /** Measure the curve at exactly these sizes (plus 0 and every edge) instead of curvePoints log-spaced ones. */
  curveSizes?: number[];
  /** Random circuits per curve size (default 3), drawn with randomSeed (default 0). */
  randomDraws?: number;
  randomSeed?: number;
}
