// The circuit graph's nodes and edges in one fixed order, shared by the graphs (which output one score per edge
// and take one mask value per edge in this order) and the host (which names and sorts them).
import { type CircuitEdge, type CircuitNode, type EdgeInput, keyValueReceiver } from '../../shared/circuit';

/**
 * Senders in forward order: 'input' (index 0), then per layer l its heads a{l}.h0..h{H−1} and its MLP m{l}.
 * A receiver in layer l's attention reads the first 1 + l·(H+1) senders; layer l's MLP reads those and the
 * layer's own heads (every family here runs attention then MLP in sequence); the logits read all.
 */
export interface ReceiverGroup {
  layer: number;
  /** 'q', 'k', 'v' (one receiver per query head, or per key/value head for k and v), 'mlp' or 'logits' (one). */
  input: 'q' | 'k' | 'v' | 'mlp' | 'logits';
  receivers: number;
  /** How many senders each receiver reads: the first `senders` in sender order. */
  senders: number;
  /** Index of the group's first edge; edge (r, s) is offset + r·senders + s. */
  offset: number;
}

export interface CircuitLayout {
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  nodes: CircuitNode[];
  senderIds: string[];
  groups: ReceiverGroup[];
  edgeCount: number;
}

export function circuitLayout(spec: { nLayers: number; nHeads: number; llama?: { nKvHeads: number } | null }): CircuitLayout {
  const { nLayers, nHeads } = spec;
  const nKvHeads = spec.llama?.nKvHeads ?? nHeads;
  const nodes: CircuitNode[] = [{ id: 'input', kind: 'input', layer: -1 }];
  const senderIds = ['input'];
  const groups: ReceiverGroup[] = [];
  let offset = 0;
  const group = (layer: number, input: ReceiverGroup['input'], receivers: number, senders: number) => {
    groups.push({ layer, input, receivers, senders, offset });
    offset += receivers * senders;
  };
  for (let l = 0; l < nLayers; l++) {
    const before = senderIds.length;
    for (let h = 0; h < nHeads; h++) nodes.push({ id: `a${l}.h${h}`, kind: 'head', layer: l, head: h });
    if (nKvHeads !== nHeads) for (let g = 0; g < nKvHeads; g++) nodes.push({ id: `a${l}.kv${g}`, kind: 'kv-head', layer: l, head: g });
    nodes.push({ id: `m${l}`, kind: 'mlp', layer: l });
    group(l, 'q', nHeads, before);
    group(l, 'k', nKvHeads, before);
    group(l, 'v', nKvHeads, before);
    for (let h = 0; h < nHeads; h++) senderIds.push(`a${l}.h${h}`);
    group(l, 'mlp', 1, senderIds.length);
    senderIds.push(`m${l}`);
  }
  nodes.push({ id: 'logits', kind: 'logits', layer: nLayers });
  group(nLayers, 'logits', 1, senderIds.length);
  return { nLayers, nHeads, nKvHeads, nodes, senderIds, groups, edgeCount: offset };
}

/** The receiver node of a group's r-th receiver. */
export function receiverId(layout: CircuitLayout, group: ReceiverGroup, r: number): string {
  if (group.input === 'mlp') return `m${group.layer}`;
  if (group.input === 'logits') return 'logits';
  if (group.input === 'q') return `a${group.layer}.h${r}`;
  // keyValueReceiver names the kv-head of query head h; with kvHeads < heads, kv head r serves query heads r·group…
  return keyValueReceiver(group.layer, r * (layout.nHeads / layout.nKvHeads), layout.nHeads, layout.nKvHeads);
}

/** Every edge in layout order, with its score. */
export function layoutEdges(layout: CircuitLayout, scores: ArrayLike<number>): CircuitEdge[] {
  if (scores.length !== layout.edgeCount) throw new Error(`expected ${layout.edgeCount} edge scores, got ${scores.length}`);
  const edges: CircuitEdge[] = [];
  for (const group of layout.groups) {
    const input: EdgeInput = group.input === 'mlp' || group.input === 'logits' ? null : group.input;
    for (let r = 0; r < group.receivers; r++) {
      const to = receiverId(layout, group, r);
      for (let s = 0; s < group.senders; s++) edges.push({ from: layout.senderIds[s], to, input, score: scores[group.offset + r * group.senders + s] });
    }
  }
  return edges;
}
