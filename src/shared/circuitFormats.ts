// A Result's circuit in the formats researchers' tools read, built as text here (no Node: the CLI writes the file,
// the panel's host too):
// - EAP-IG's graph JSON (hannamw/EAP-IG, eap/graph.py Graph.to_json / Graph.from_json): {cfg, nodes {name:
//   {in_graph}}, edges {name: {score, in_graph}}}, byte for byte as Python's json.dump writes it; also read back.
// - circuit-tracer's attribution-graph JSON, which the Neuronpedia graph frontend loads (safety-research/circuit-tracer,
//   frontend/graph_models.py: metadata, qParams, nodes, links).
// - QuantaMechInterp's useful-nodes JSON (PhilipQuirke/quanta_mech_interp, useful_node.py UsefulNodeList.save_nodes):
//   [{position, layer, is_head, num, tags ["Major:minor"]}].
import { CIRCUIT_METHODS, circuitNodeIds, edgeName, type Circuit, type CircuitEdge, type CircuitNode, type EdgeInput } from './circuit';
import { InputError } from './errors';
import type { Result } from './result';

export type CircuitFormat = 'eap-ig' | 'neuronpedia' | 'qmi';
export const CIRCUIT_FORMATS: readonly CircuitFormat[] = ['eap-ig', 'neuronpedia', 'qmi'];

/** What each format is, for usage text and the panel's buttons. */
export const CIRCUIT_FORMAT_NAMES: Record<CircuitFormat, string> = {
  'eap-ig': 'EAP-IG graph JSON (Graph.from_json)',
  neuronpedia: 'circuit-tracer / Neuronpedia attribution graph JSON',
  qmi: 'QuantaMechInterp useful nodes JSON (UsefulNodeList.load_nodes)',
};

/** The file name ending each format gets by default. */
export const CIRCUIT_FORMAT_SUFFIX: Record<CircuitFormat, string> = { 'eap-ig': '.eap-ig.json', neuronpedia: '.neuronpedia.json', qmi: '.qmi-nodes.json' };

function requireCircuit(result: Result, where: string): Circuit {
  if (!result.circuit) throw new InputError(`${where}: this Result has no circuit (field "circuit"); run \`atp circuit\` first`);
  return result.circuit;
}

/**
 * Python's repr of a float (what json.dump writes): the shortest round-trip digits, as JavaScript's, but fixed
 * notation only for exponents −4 … 15, an exponent of at least two digits with its sign, and '.0' on whole numbers.
 */
export function pythonFloat(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`pythonFloat: ${value} is not finite (JSON cannot hold it)`);
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const [mantissa, exponentText] = value.toExponential().split('e');
  const exponent = Number(exponentText);
  const sign = value < 0 ? '-' : '';
  const digits = mantissa.replace(/^-/, '').replace('.', '');
  if (exponent < -4 || exponent >= 16) {
    const body = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${body}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0');
  const fraction = digits.slice(exponent + 1);
  return `${sign}${whole}.${fraction || '0'}`;
}

/** Python's json.dumps of a string (ensure_ascii: non-ASCII as \uXXXX). */
function pythonString(text: string): string {
  return JSON.stringify(text).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * EAP-IG's graph of a sequential (not parallel attention/MLP) model as Graph.from_model builds it: node names in its
 * order, and edge names in the order add_edge adds them (into each layer's heads through q, k, v, then its MLP, then
 * the logits), which is the order of Graph.to_json's "edges".
 */
export function eapIgGraph(layers: number, heads: number): { nodes: CircuitNode[]; edges: Array<Omit<CircuitEdge, 'score'>> } {
  const nodes: CircuitNode[] = [{ id: 'input', kind: 'input', layer: -1 }];
  const edges: Array<Omit<CircuitEdge, 'score'>> = [];
  const residual = ['input'];
  for (let layer = 0; layer < layers; layer++) {
    const headIds = Array.from({ length: heads }, (_, head) => `a${layer}.h${head}`);
    headIds.forEach((id, head) => nodes.push({ id, kind: 'head', layer, head }));
    for (const from of residual) for (const to of headIds) for (const input of ['q', 'k', 'v'] as const) edges.push({ from, to, input });
    residual.push(...headIds);
    nodes.push({ id: `m${layer}`, kind: 'mlp', layer });
    for (const from of residual) edges.push({ from, to: `m${layer}`, input: null });
    residual.push(`m${layer}`);
  }
  nodes.push({ id: 'logits', kind: 'logits', layer: layers });
  for (const from of residual) edges.push({ from, to: 'logits', input: null });
  return { nodes, edges };
}

/**
 * The circuit as EAP-IG's Graph.to_json writes it: cfg (n_layers, n_heads, parallel_attn_mlp false: every supported
 * architecture runs attention then MLP, d_model), every node with in_graph (a node is in the graph when a circuit
 * edge touches it; the logits always, as in EAP-IG), every edge in EAP-IG's order with its score and in_graph.
 * Scores are written as float32, as EAP-IG holds them (so Graph.from_json → to_json gives back the same bytes).
 * Grouped-query circuits are refused: EAP-IG scores each query head's key and value inputs, where ours has one
 * kv-head receiver per group, which cannot be split back into per-head scores. So are the corrupted-anchored
 * methods: EAP-IG never computes their scores, and its JSON has no field that could say so.
 */
export function toEapIgJson(result: Result): string {
  const circuit = requireCircuit(result, 'eap-ig export');
  if (!CIRCUIT_METHODS[circuit.method].eapIg) {
    const asEapIg = circuit.method === 'eap-corrupted' ? 'eap' : 'eap-ig-activations';
    throw new InputError(
      `eap-ig export: the circuit was scored by ${circuit.method} (${CIRCUIT_METHODS[circuit.method].label}), a variant EAP-IG does not compute; ` +
        `its graph JSON cannot say so, so EAP-IG would read the scores as its own. Run atp circuit --method ${asEapIg} for EAP-IG's definition`,
    );
  }
  const grouped = circuit.nodes.find((node) => node.kind === 'kv-head');
  if (grouped) {
    throw new InputError(
      `eap-ig export: the circuit has key/value-head nodes ("${grouped.id}", grouped-query attention); EAP-IG's graph has no such nodes and scores every query head's key and value inputs separately, which a kv-head's summed score cannot be split into`,
    );
  }
  const { layers, heads, dModel } = result.model;
  const graph = eapIgGraph(layers, heads);
  const known = new Set(graph.nodes.map((node) => node.id));
  const stray = circuit.nodes.find((node) => !known.has(node.id));
  if (stray) throw new InputError(`eap-ig export: node "${stray.id}" is not a node of a ${layers}-layer, ${heads}-head model's graph`);
  const inGraph = new Set(circuitNodeIds(circuit));
  const byName = new Map(circuit.edges.map((edge, index) => [edgeName(edge), index]));
  const kept = new Set(circuit.inCircuit);
  const nodes = graph.nodes.map((node) => `${pythonString(node.id)}: {"in_graph": ${node.kind === 'logits' || inGraph.has(node.id) ? 'true' : 'false'}}`);
  const edges: string[] = [];
  for (const edge of graph.edges) {
    const index = byName.get(edgeName(edge));
    if (index === undefined) continue; // not scored: Graph.from_json leaves it at score 0, outside the graph
    edges.push(
      `${pythonString(edgeName(edge))}: {"score": ${pythonFloat(Math.fround(circuit.edges[index].score))}, "in_graph": ${kept.has(index) ? 'true' : 'false'}}`,
    );
  }
  const cfg = `{"n_layers": ${layers}, "n_heads": ${heads}, "parallel_attn_mlp": false, "d_model": ${dModel}}`;
  return `{"cfg": ${cfg}, "nodes": {${nodes.join(', ')}}, "edges": {${edges.join(', ')}}}`;
}

/** A graph read from EAP-IG's JSON: the model's size, and our circuit's nodes, edges (sorted by |score|) and kept edges. */
export interface ImportedEapIgGraph extends Pick<Circuit, 'nodes' | 'edges' | 'inCircuit'> {
  layers: number;
  heads: number;
  dModel?: number;
}

/** Reads EAP-IG's graph JSON (Graph.to_json); errors name the file and the field. */
export function parseEapIgJson(text: string, file: string): ImportedEapIgGraph {
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new InputError(`${file}: not valid JSON: ${(error as Error).message}`);
  }
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
  const fail = (field: string, why: string): never => {
    throw new InputError(`${file}: field "${field}": ${why}`);
  };
  if (!isObject(raw)) throw new InputError(`${file}: not an EAP-IG graph (expected a JSON object with "cfg", "nodes" and "edges")`);
  for (const key of ['cfg', 'nodes', 'edges']) if (!isObject(raw[key])) fail(key, 'must be an object (EAP-IG graph JSON has "cfg", "nodes" and "edges")');
  const cfg = raw.cfg as Record<string, unknown>;
  const count = (key: string): number => {
    const value = cfg[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) fail(`cfg.${key}`, 'must be a positive integer');
    return value as number;
  };
  const layers = count('n_layers');
  const heads = count('n_heads');
  if (cfg.parallel_attn_mlp === true)
    fail('cfg.parallel_attn_mlp', "true (parallel attention and MLP) is not supported: the circuit contract has every MLP read its own layer's heads");
  const dModel = typeof cfg.d_model === 'number' ? cfg.d_model : undefined;
  const graph = eapIgGraph(layers, heads);
  const nodeIds = new Set(graph.nodes.map((node) => node.id));
  for (const [name, value] of Object.entries(raw.nodes as Record<string, unknown>)) {
    if (!nodeIds.has(name)) fail(`nodes.${name}`, `not a node of a ${layers}-layer, ${heads}-head graph`);
    if (!isObject(value) || typeof value.in_graph !== 'boolean') fail(`nodes.${name}.in_graph`, 'must be a boolean');
  }
  const order = new Map(graph.edges.map((edge, index) => [edgeName(edge), index]));
  const read: Array<{ edge: CircuitEdge; inGraph: boolean; order: number }> = [];
  for (const [name, value] of Object.entries(raw.edges as Record<string, unknown>)) {
    const position = order.get(name);
    if (position === undefined)
      fail(`edges.${name}`, `not an edge of a ${layers}-layer, ${heads}-head graph (names look like "a0.h1->a2.h3<q>", "input->m0", "m3->logits")`);
    if (!isObject(value)) fail(`edges.${name}`, 'must be an object with "score" and "in_graph"');
    const { score, in_graph: inGraph } = value as Record<string, unknown>;
    if (typeof score !== 'number') fail(`edges.${name}.score`, 'must be a number');
    if (typeof inGraph !== 'boolean') fail(`edges.${name}.in_graph`, 'must be a boolean');
    const shape = graph.edges[position!];
    read.push({
      edge: { from: shape.from, to: shape.to, input: shape.input as EdgeInput, score: score as number },
      inGraph: inGraph as boolean,
      order: position!,
    });
  }
  // Largest |score| first, as the contract stores edges; ties keep EAP-IG's order.
  read.sort((a, b) => Math.abs(b.edge.score) - Math.abs(a.edge.score) || a.order - b.order);
  const inCircuit = read.flatMap((entry, index) => (entry.inGraph ? [index] : []));
  return { layers, heads, dModel, nodes: graph.nodes, edges: read.map((entry) => entry.edge), inCircuit };
}

/** circuit-tracer's process_token: control characters the graph frontend would otherwise lay out badly. */
function processToken(token: string): string {
  return token.replace(/\n/g, '⏎').replace(/\t/g, '→').replace(/\r/g, '↵');
}

/**
 * The circuit as circuit-tracer's attribution-graph JSON (the Neuronpedia graph frontend's format). Its nodes are
 * (layer, feature, position) triples of one prompt; ours are whole components summed over positions and examples,
 * so the conventions are:
 * - the prompt is the first example's clean prompt, and every node sits at its last position (the answer position);
 * - input → an "embedding" node (layer "E", feature = that position, the token there);
 * - head a{l}.h{h} → feature h of layer l, MLP m{l} → feature H (the number of heads), kv-head a{l}.kv{k} →
 *   feature H + 1 + k, all with feature_type "cross layer transcoder" (the type the frontend draws as a feature) and
 *   clerp naming our node; feature ids follow feature_node: feature + 10^⌈log10 F⌉ · layer, F features per layer;
 * - logits → a "logit" node (layer = layers + 1) on the correct answer token; it stands for the logit difference,
 *   so its probability is not known: the clerp says "p=nan";
 * - links are the circuit's edges (in inCircuit only, as circuit-tracer writes a pruned graph), weight = score;
 *   a head's q, k and v edges from one sender are one link with their summed score (the frontend draws one link
 *   per pair of nodes).
 */
export function toNeuronpediaJson(result: Result, slug: string): string {
  const circuit = requireCircuit(result, 'neuronpedia export');
  const example = result.examples[0];
  if (!example) throw new InputError('neuronpedia export: the Result has no examples (the prompt comes from the first)');
  const position = example.tokens.length - 1;
  const heads = result.model.heads;
  const kvHeads = circuit.nodes.filter((node) => node.kind === 'kv-head' && node.layer === 0).length;
  const featuresPerLayer = heads + 1 + kvHeads;
  const offset = 10 ** Math.ceil(Math.log10(featuresPerLayer));
  const layersPlusOne = String(result.model.layers + 1);
  const asNode = (node: CircuitNode): Record<string, unknown> => {
    const base = { token_prob: 0.0, is_target_logit: false, run_idx: 0, reverse_ctx_idx: 0 };
    if (node.kind === 'input') {
      const tokenId = example.cleanIds[position];
      const id = `E_${tokenId}_${position}`;
      return {
        node_id: id,
        feature: position,
        layer: 'E',
        ctx_idx: position,
        feature_type: 'embedding',
        ...base,
        jsNodeId: `E_${tokenId}-${position}`,
        clerp: 'input (token and position embeddings)',
        influence: null,
        activation: null,
      };
    }
    if (node.kind === 'logits') {
      const tokenId = example.correctId;
      return {
        node_id: `${layersPlusOne}_${tokenId}_${position}`,
        feature: tokenId,
        layer: layersPlusOne,
        ctx_idx: position,
        feature_type: 'logit',
        ...base,
        is_target_logit: true,
        jsNodeId: `L_${tokenId}-${position}`,
        clerp: `Output "${processToken(example.correct)}" (p=nan): logit difference "${processToken(example.correct)}" − "${processToken(example.incorrect)}"`,
        influence: null,
        activation: null,
      };
    }
    const feature = node.kind === 'head' ? node.head! : node.kind === 'mlp' ? heads : heads + 1 + node.head!;
    const kindName = node.kind === 'head' ? 'attention head' : node.kind === 'mlp' ? 'MLP' : 'key/value head';
    return {
      node_id: `${node.layer}_${feature}_${position}`,
      feature: feature + offset * node.layer,
      layer: String(node.layer),
      ctx_idx: position,
      feature_type: 'cross layer transcoder',
      ...base,
      jsNodeId: `${node.layer}_${feature}-0`,
      clerp: `${node.id} (${kindName})`,
      influence: null,
      activation: null,
    };
  };
  const byId = new Map(circuit.nodes.map((node) => [node.id, asNode(node)]));
  const links = new Map<string, { source: string; target: string; weight: number }>();
  for (const index of circuit.inCircuit) {
    const edge = circuit.edges[index];
    const source = byId.get(edge.from)!.node_id as string;
    const target = byId.get(edge.to)!.node_id as string;
    const key = `${source} ${target}`;
    const link = links.get(key) ?? { source, target, weight: 0 };
    link.weight += edge.score;
    links.set(key, link);
  }
  const used = new Set(circuitNodeIds(circuit));
  // As circuit-tracer keeps them: nodes on a link, and always the embeddings and the logits.
  const nodes = circuit.nodes.filter((node) => used.has(node.id) || node.kind === 'input' || node.kind === 'logits').map((node) => byId.get(node.id)!);
  const model = {
    metadata: {
      slug,
      scan: result.model.source,
      transcoder_list: [],
      prompt_tokens: example.tokens.map((token) => processToken(token.text)),
      prompt: example.clean,
      node_threshold: null,
    },
    qParams: { pinnedIds: [], supernodes: [], linkType: 'both', clickedId: '', sg_pos: '' },
    nodes,
    links: [...links.values()],
  };
  return JSON.stringify(model, null, 2) + '\n';
}

/** One QuantaMechInterp useful node (UsefulNode.to_dict). */
export interface QmiUsefulNode {
  position: number;
  layer: number;
  is_head: boolean;
  num: number;
  tags: string[];
}

/**
 * The circuit's heads and MLPs as QuantaMechInterp useful nodes: one node per component and token position where
 * its attribution, summed over examples (heads: attributions.z[layer][pos][head]; MLPs: attributions.mlpOut[layer][pos]),
 * reaches `minShare` of the largest |value| among the circuit's components at any position. Each gets the tag
 * "Attribution:<tag>" (QMI's "Major:minor"; the seed notebook's is the feature name, e.g. EngTableName). MLPs are
 * num 0 (QMI's "L1MLP"); kv-heads are not QMI nodes and are left out. Sorted as UsefulNodeList.sort_nodes sorts
 * (by the name "P05L1H2"), written as json.dump writes a list of dicts.
 */
export function qmiUsefulNodes(result: Result, tag: string, minShare = 0.1): QmiUsefulNode[] {
  const circuit = requireCircuit(result, 'qmi export');
  if (tag === '' || /[:\n]/.test(tag))
    throw new InputError(`qmi export: tag ${JSON.stringify(tag)} must be non-empty without ":" (QMI tags are "Major:minor" and split on the colon)`);
  if (!(minShare >= 0 && minShare <= 1)) throw new InputError(`qmi export: the share ${minShare} must be from 0 to 1`);
  const length = result.examples[0]?.tokens.length ?? 0;
  const uneven = result.examples.find((example) => example.tokens.length !== length);
  if (uneven) {
    throw new InputError(
      `qmi export: QMI positions need prompts of one length, but the example on line ${uneven.line} has ${uneven.tokens.length} tokens and the first ${length}`,
    );
  }
  const inCircuit = new Set(circuitNodeIds(circuit));
  const components = circuit.nodes.filter((node) => inCircuit.has(node.id) && (node.kind === 'head' || node.kind === 'mlp'));
  const values = components.map((node) =>
    Array.from({ length }, (_, pos) =>
      result.examples.reduce(
        (sum, example) => sum + (node.kind === 'head' ? example.attributions.z[node.layer][pos][node.head!] : example.attributions.mlpOut[node.layer][pos]),
        0,
      ),
    ),
  );
  const largest = Math.max(0, ...values.flat().map(Math.abs));
  const nodes: QmiUsefulNode[] = [];
  components.forEach((node, i) =>
    values[i].forEach((value, position) => {
      if (largest > 0 && Math.abs(value) >= minShare * largest) {
        nodes.push({ position, layer: node.layer, is_head: node.kind === 'head', num: node.kind === 'head' ? node.head! : 0, tags: [`Attribution:${tag}`] });
      }
    }),
  );
  const name = (node: QmiUsefulNode) => `P${String(node.position).padStart(2, '0')}L${node.layer}${node.is_head ? `H${node.num}` : 'MLP'}`;
  return nodes.sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));
}

/** The useful nodes as QMI's save_nodes writes them (json.dump: ", " and ": " separators, one line). */
export function toQmiJson(result: Result, tag: string, minShare = 0.1): string {
  const nodes = qmiUsefulNodes(result, tag, minShare);
  const item = (node: QmiUsefulNode) =>
    `{"position": ${node.position}, "layer": ${node.layer}, "is_head": ${node.is_head ? 'true' : 'false'}, "num": ${node.num}, "tags": [${node.tags.map(pythonString).join(', ')}]}`;
  return `[${nodes.map(item).join(', ')}]`;
}

/** The export of `format` as text (for the CLI and the panel); `name` is the slug (Neuronpedia) or tag (QMI). */
export function exportCircuit(result: Result, format: CircuitFormat, name: string): string {
  switch (format) {
    case 'eap-ig':
      return toEapIgJson(result);
    case 'neuronpedia':
      return toNeuronpediaJson(result, name);
    case 'qmi':
      return toQmiJson(result, name);
  }
}
