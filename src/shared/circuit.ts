// A circuit: edge attribution (EAP, EAP-IG) over the graph of a transformer's components, and how faithful a
// small part of that graph is. Stored in Result.circuit, so one Result still flows from the engine to every view;
// shared by the engine (which computes it), the CLI, the extension host and the webview, so it imports nothing
// at run time.

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
 * eap: one gradient at the corrupted input (Syed et al.); eap-ig: gradients averaged over `steps` points between the
 * corrupted and the clean input embeddings (Hanna et al., EAP-IG's 'EAP-IG-inputs'); eap-ig-activations: the
 * interpolation done at every sender's output instead ('clean-corrupted' in EAP-IG's terms).
 */
export type CircuitMethod = 'eap' | 'eap-ig' | 'eap-ig-activations';

/**
 * How the circuit was chosen from the scored edges: the `edges` edges of largest |score| ('top-n'), every edge with
 * |score| ≥ threshold ('threshold'), or grown greedily from the logits by measured faithfulness ('greedy'); then
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
  randomDraws: number;
  randomSeed: number;
  /** Area under each curve over the edge fraction 0…1 (trapezoids): 1 for a circuit that is faithful at once. */
  area: number;
  randomArea: number;
}

export interface Circuit {
  method: CircuitMethod;
  /** Interpolation steps (1 for eap). */
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
  return kvHeads === heads ? `a${layer}.h${head}` : `a${layer}.kv${Math.floor(head / (heads / kvHeads))}`;
}

/**
 * Drops edges that cannot affect the logits or carry nothing from the input: an edge is kept when its receiver
 * reaches 'logits' through kept edges and its sender is the input or is reached from it through kept edges. A
 * kv-head forwards to its query heads (it has no outgoing edges of its own: its output is the heads' outputs).
 */
export function pruneDangling(edges: readonly CircuitEdge[], kept: readonly number[], nodes: readonly CircuitNode[]): number[] {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  // A kv-head's value flows on through every query head of its layer that it serves.
  const kvForward = new Map<string, string[]>();
  for (const node of nodes) {
    if (node.kind !== 'head') continue;
    for (const kv of nodes) {
      if (kv.kind === 'kv-head' && kv.layer === node.layer) {
        const group = nodes.filter((n) => n.kind === 'head' && n.layer === node.layer).length / nodes.filter((n) => n.kind === 'kv-head' && n.layer === node.layer).length;
        if (Math.floor((node.head ?? 0) / group) === kv.head) kvForward.set(kv.id, [...(kvForward.get(kv.id) ?? []), node.id]);
      }
    }
  }
  const forward = new Map<string, string[]>();
  const backward = new Map<string, string[]>();
  for (const index of kept) {
    const { from, to } = edges[index];
    forward.set(from, [...(forward.get(from) ?? []), to]);
    backward.set(to, [...(backward.get(to) ?? []), from]);
  }
  for (const [kv, heads] of kvForward) {
    forward.set(kv, [...(forward.get(kv) ?? []), ...heads]);
    for (const head of heads) backward.set(head, [...(backward.get(head) ?? []), kv]);
  }
  const reach = (start: string, links: Map<string, string[]>): Set<string> => {
    const seen = new Set<string>([start]);
    const stack = [start];
    while (stack.length > 0) for (const next of links.get(stack.pop()!) ?? []) if (!seen.has(next)) (seen.add(next), stack.push(next));
    return seen;
  };
  const fromInput = byId.has('input') ? reach('input', forward) : new Set<string>();
  const toLogits = byId.has('logits') ? reach('logits', backward) : new Set<string>();
  return kept.filter((index) => fromInput.has(edges[index].from) && toLogits.has(edges[index].to)).sort((a, b) => a - b);
}

/** The first n edges by |score| (edges are stored sorted), pruned. */
export function topEdges(circuit: Pick<Circuit, 'nodes' | 'edges'>, n: number): number[] {
  const count = Math.max(0, Math.min(Math.floor(n), circuit.edges.length));
  return pruneDangling(circuit.edges, Array.from({ length: count }, (_, i) => i), circuit.nodes);
}

/** Every edge with |score| ≥ threshold, pruned. */
export function edgesAbove(circuit: Pick<Circuit, 'nodes' | 'edges'>, threshold: number): number[] {
  const kept: number[] = [];
  circuit.edges.forEach((edge, index) => {
    if (Math.abs(edge.score) >= threshold) kept.push(index);
  });
  return pruneDangling(circuit.edges, kept, circuit.nodes);
}

/** Faithfulness at `edges` edges, read from the measured curve (linear between measured sizes; never extrapolated). */
export function faithfulnessAt(curve: FaithfulnessCurve, edges: number): number {
  const xs = curve.edges;
  if (xs.length === 0) return NaN;
  if (edges <= xs[0]) return curve.faithfulness[0];
  for (let i = 1; i < xs.length; i++) {
    if (edges <= xs[i]) {
      const t = (edges - xs[i - 1]) / (xs[i] - xs[i - 1]);
      return curve.faithfulness[i - 1] + t * (curve.faithfulness[i] - curve.faithfulness[i - 1]);
    }
  }
  return curve.faithfulness[xs.length - 1];
}
