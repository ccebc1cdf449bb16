// What the panel's circuit view shows, as pure functions (no DOM, unit-tested without a browser): which edges at a
// given size, where every node sits, how wide and which colour each edge is, what the faithfulness reading says,
// and what clicking a node colours the editor by.
import { faithfulnessReading, topEdges, type Circuit, type CircuitEdge, type CircuitNode } from './circuit';
import { colorFor, formatValue, normalise, type ThemeKind } from './colorScale';
import type { ValueSelection } from './panelProtocol';

/**
 * The size the view opens at: the circuit's own when it was chosen top-n (then topEdges gives back its edges), else
 * its number of edges after pruning (a threshold or greedy circuit is shown as stored until the slider moves).
 */
export function initialEdgeCount(circuit: Circuit): number {
  return circuit.selection.rule === 'top-n' ? Math.min(circuit.selection.requested, circuit.edges.length) : circuit.inCircuit.length;
}

/** The edges shown at slider value n: the stored circuit at its own size (any rule), else the pruned top-n. */
export function shownEdges(circuit: Circuit, n: number): number[] {
  return n === initialEdgeCount(circuit) ? circuit.inCircuit : topEdges(circuit, n);
}

export interface NodePlacement {
  node: CircuitNode;
  x: number;
  y: number;
  /** Row index from the top: input 0, then per layer its attention row and its MLP row, logits last. */
  row: number;
  /** Sends or receives a shown edge. */
  active: boolean;
}

export interface EdgeDrawing {
  index: number;
  edge: CircuitEdge;
  from: { x: number; y: number };
  to: { x: number; y: number };
  width: number;
  color: string;
}

export interface CircuitLayout {
  /** Shown edges not drawn (beyond MAX_DRAWN_EDGES, the weakest): the view says how many. */
  undrawn: number;
  width: number;
  height: number;
  nodes: NodePlacement[];
  edges: EdgeDrawing[];
  /** Largest |score| among the shown edges: the colour scale's end and the widest edge. */
  maxAbs: number;
  rowLabels: Array<{ row: number; y: number; label: string }>;
}

/** At most this many edges are drawn (the strongest of those shown). */
export const MAX_DRAWN_EDGES = 1500;

/** How far apart a head's q, k and v inputs end (px). */
const INPUT_OFFSET = 5;

export const LAYOUT = { rowHeight: 54, left: 64, right: 24, top: 24, bottom: 24, nodeGap: 34, minWidth: 320, maxEdgeWidth: 7, minEdgeWidth: 0.75 };

/**
 * Top to bottom in the order the model computes: the input at the top, each layer's attention heads, then its MLP
 * (which reads those heads), the logits at the bottom; a kv-head sits right after the query heads of its group.
 * Edges are drawn as the shown ones only, width ∝ |score| / the largest shown |score|, coloured by sign on the
 * product's diverging scale.
 */
export function circuitLayout(circuit: Circuit, shown: readonly number[], theme: ThemeKind, maxDrawn = MAX_DRAWN_EDGES): CircuitLayout {
  const layers = Math.max(0, ...circuit.nodes.map((node) => (node.kind === 'logits' ? node.layer : node.layer + 1)));
  const rowOf = (node: CircuitNode): number => {
    if (node.kind === 'input') return 0;
    if (node.kind === 'logits') return 2 * layers + 1;
    return 1 + 2 * node.layer + (node.kind === 'mlp' ? 1 : 0);
  };
  const rows = new Map<number, CircuitNode[]>();
  for (const node of circuit.nodes) rows.set(rowOf(node), [...(rows.get(rowOf(node)) ?? []), node]);
  // Attention rows: each kv-head right after the last query head of its group.
  for (const [row, members] of rows) {
    const kvs = members.filter((node) => node.kind === 'kv-head');
    if (kvs.length === 0) continue;
    const heads = members.filter((node) => node.kind === 'head').sort((a, b) => a.head! - b.head!);
    const group = heads.length / kvs.length;
    rows.set(
      row,
      heads.flatMap((head) => ((head.head! + 1) % group === 0 ? [head, ...kvs.filter((kv) => kv.head === Math.floor(head.head! / group))] : [head])),
    );
  }
  const widest = Math.max(1, ...[...rows.values()].map((members) => members.length));
  const width = Math.max(LAYOUT.minWidth, LAYOUT.left + LAYOUT.right + widest * LAYOUT.nodeGap);
  const inner = width - LAYOUT.left - LAYOUT.right;
  const used = new Set(shown.flatMap((index) => [circuit.edges[index].from, circuit.edges[index].to]));
  const placements = new Map<string, NodePlacement>();
  for (const [row, members] of rows) {
    members.forEach((node, i) => {
      const x = LAYOUT.left + (inner * (i + 0.5)) / members.length;
      placements.set(node.id, { node, x, y: LAYOUT.top + row * LAYOUT.rowHeight, row, active: used.has(node.id) });
    });
  }
  const maxAbs = Math.max(0, ...shown.map((index) => Math.abs(circuit.edges[index].score)));
  // Thousands of SVG paths would stall the panel and hide the circuit anyway: the strongest maxDrawn are drawn.
  const drawn =
    shown.length > maxDrawn ? [...shown].sort((a, b) => Math.abs(circuit.edges[b].score) - Math.abs(circuit.edges[a].score)).slice(0, maxDrawn) : shown;
  const edges = drawn.map((index): EdgeDrawing => {
    const edge = circuit.edges[index];
    const t = normalise(edge.score, maxAbs);
    const to = placements.get(edge.to)!;
    // A head's query, key and value inputs end side by side, so that three edges from one sender stay apart.
    const offset = edge.input === 'q' ? -INPUT_OFFSET : edge.input === 'v' ? INPUT_OFFSET : 0;
    return {
      index,
      edge,
      from: placements.get(edge.from)!,
      to: { x: to.x + (to.node.kind === 'kv-head' ? offset / 2 : offset), y: to.y },
      width: LAYOUT.minEdgeWidth + Math.abs(t) * (LAYOUT.maxEdgeWidth - LAYOUT.minEdgeWidth),
      // At least a faint line for the smallest edge: an edge in the circuit must stay visible.
      color: colorFor(Math.sign(t) * Math.max(Math.abs(t), 0.25), theme),
    };
  });
  // Draw the strongest last, on top.
  edges.sort((a, b) => a.width - b.width);
  const rowLabels = [...rows.keys()]
    .sort((a, b) => a - b)
    .map((row) => ({
      row,
      y: LAYOUT.top + row * LAYOUT.rowHeight,
      label: row === 0 ? 'input' : row === 2 * layers + 1 ? 'logits' : `L${Math.floor((row - 1) / 2)} ${row % 2 === 1 ? 'attn' : 'MLP'}`,
    }));
  return {
    undrawn: shown.length - drawn.length,
    width,
    height: LAYOUT.top + (2 * layers + 1) * LAYOUT.rowHeight + LAYOUT.bottom,
    nodes: [...placements.values()],
    edges,
    maxAbs,
    rowLabels,
  };
}

/**
 * The edges kept after pruning at each measured size of the curve: the one axis every view shows sizes on. Recorded
 * by runs since it was; for older Results the top-n counts are recomputed (pruning is deterministic), the random
 * draws' are unknown (undefined: the view says those are edges drawn).
 */
export function keptEdgeCounts(circuit: Circuit): { kept: number[]; randomKept: number[] | undefined } {
  const curve = circuit.curve;
  if (!curve) return { kept: [], randomKept: undefined };
  return { kept: curve.kept ?? curve.edges.map((n) => topEdges(circuit, n).length), randomKept: curve.randomKept };
}

/** How the slider's position n reads: the edges kept, and how they were chosen. */
export function edgeCountText(circuit: Circuit, n: number): string {
  const kept = shownEdges(circuit, n).length;
  const chosen =
    n === initialEdgeCount(circuit) && circuit.selection.rule !== 'top-n'
      ? `the circuit as selected (${circuit.selection.rule} ${circuit.selection.requested})`
      : `top ${n} of ${circuit.edges.length} by |score|`;
  return `${kept} edge${kept === 1 ? '' : 's'} kept (${chosen}, pruned)`;
}

/**
 * What the faithfulness line says at slider position n, in edges kept after pruning: the circuit's own measured
 * value at its own size (the number the heading and status bar give, never an interpolation), a measured point of
 * the curve, a labelled interpolation between two, or "not measured".
 */
export function faithfulnessText(circuit: Circuit, n: number): { text: string; how: 'measured' | 'interpolated' | 'not-measured' | 'no-curve' } {
  const curve = circuit.curve;
  const count = (k: number) => `${k} edge${k === 1 ? '' : 's'}`;
  const here = count(shownEdges(circuit, n).length);
  if (n === initialEdgeCount(circuit)) {
    const reading = curve && circuit.selection.rule === 'top-n' ? faithfulnessReading(curve, n) : undefined;
    const random = reading?.how === 'measured' ? ` (random ${count(n)} drawn: ${formatFaithfulness(reading.random)})` : '';
    return { text: `Faithfulness of the circuit (${here} kept): ${formatFaithfulness(circuit.faithfulness.circuit)} measured${random}`, how: 'measured' };
  }
  if (!curve) return { text: `Faithfulness at ${here}: not measured (this Result has no faithfulness curve)`, how: 'no-curve' };
  const reading = faithfulnessReading(curve, n);
  if (reading.how === 'measured')
    return {
      text: `Faithfulness at ${here}: ${formatFaithfulness(reading.value)} measured (random ${count(n)} drawn: ${formatFaithfulness(reading.random)})`,
      how: 'measured',
    };
  const { kept } = keptEdgeCounts(circuit);
  if (reading.how === 'interpolated') {
    const above = curve.edges.findIndex((size) => size > n);
    return {
      text: `Faithfulness at ${here}: not measured; ≈${formatFaithfulness(reading.value)} by linear interpolation between the measured ${count(kept[above - 1])} (${formatFaithfulness(curve.faithfulness[above - 1])}) and ${count(kept[above])} (${formatFaithfulness(curve.faithfulness[above])})`,
      how: 'interpolated',
    };
  }
  return {
    text: `Faithfulness at ${here}: not measured (the curve covers ${count(kept[0])} to ${count(kept[kept.length - 1])} kept)`,
    how: 'not-measured',
  };
}

export function formatFaithfulness(value: number): string {
  return Number.isFinite(value) ? value.toFixed(3) : 'n/a';
}

/**
 * What the editor colours by when a node is clicked (the panel's existing 'select' message): a head its hook_z at
 * every token (examples[i].attributions.z[layer][pos][head]), an MLP its mlp_out, the input the token effects; a
 * kv-head its AtP* key node when the Result has AtP* values, else nothing; the logits nothing (no per-token value).
 */
export function nodeSelection(node: CircuitNode, hasAtpStar: boolean): ValueSelection | undefined {
  switch (node.kind) {
    case 'input':
      return { kind: 'token' };
    case 'head':
      return { kind: 'head', layer: node.layer, head: node.head! };
    case 'mlp':
      return { kind: 'mlpOut', layer: node.layer };
    case 'kv-head':
      return hasAtpStar ? { kind: 'key', layer: node.layer, head: node.head! } : undefined;
    case 'logits':
      return undefined;
  }
}

/** Whether a node is the one the editor colours by now. */
export function isSelectedNode(node: CircuitNode, selection: ValueSelection): boolean {
  const own = nodeSelection(node, true);
  return own !== undefined && JSON.stringify(own) === JSON.stringify(selection);
}

/** A node's name for people and screen readers, with the sum of its shown edges in and out. */
export function nodeDescription(node: CircuitNode, circuit: Circuit, shown: readonly number[]): string {
  const name =
    node.kind === 'input'
      ? 'input (embeddings)'
      : node.kind === 'logits'
        ? 'logits'
        : node.kind === 'mlp'
          ? `MLP ${node.layer}`
          : node.kind === 'head'
            ? `head L${node.layer}H${node.head}`
            : `key/value head L${node.layer}KV${node.head}`;
  let into = 0;
  let out = 0;
  let count = 0;
  for (const index of shown) {
    const edge = circuit.edges[index];
    if (edge.to === node.id) ((into += edge.score), count++);
    if (edge.from === node.id) ((out += edge.score), count++);
  }
  return `${node.id}: ${name}; ${count} shown edge${count === 1 ? '' : 's'}${count > 0 ? `, in ${formatValue(into)}, out ${formatValue(out)}` : ''}`;
}
