// A circuit run: the usual attribution-patching Result (so the editor's views are all there), then edge scores
// (EAP / EAP-IG), the circuit chosen from them and its measured faithfulness, the curve over circuit sizes.
import * as ort from 'onnxruntime-node';
import type { LoadedModel } from '../model/load';
import type { Dataset } from '../../lib/dataset/jsonl';
import type { Result } from '../../shared/result';
import {
  type Circuit,
  type CircuitEdge,
  type CircuitMethod,
  CIRCUIT_METHODS,
  type CircuitOptions,
  type CircuitSelection,
  type CircuitSelectionRequest,
  edgesAbove,
  pruneDangling,
  topEdges,
} from '../../shared/circuit';
import { InputError } from '../../shared/errors';
import { runAttributionPatching } from '../patching/run';
import { activationBytes, formatBytes } from '../model/memory';
import { asNumbers, batchFeeds, longestPrompt, makeBatches, feedType } from '../patching/feeds';
import { checkCancelled, type PatchingOptions, type RunOptions } from '../patching/options';
import { type PreparedExample, prepareExamples } from '../patching/examples';
import { sessionFor } from '../patching/sessions';
import { checkPrecisionFor, type Precision } from '../patching/precision';
import { CIRCUIT_INPUTS, CIRCUIT_OUTPUTS, senderGroups } from './graph';
import { type CircuitLayout, circuitLayout, layoutEdges } from './layout';
import { faithfulnessCurve } from './curve';

/** Edge scores summed over the dataset, in layout order, normalised as the Result's attributions are. */
export interface EdgeScores {
  layout: CircuitLayout;
  /** Per edge in layout order, in units of the normalised metric. */
  scores: Float64Array;
  cleanLogitDiffs: number[];
  corruptedLogitDiffs: number[];
}

const floatTensor = (precision: Precision, values: readonly number[], dims = [values.length]) =>
  new ort.Tensor(feedType(precision), precision === 'float64' ? Float64Array.from(values) : Float32Array.from(values), dims);

/**
 * The interpolation points k/m, k = 0…m−1, from the graph's anchor run (α 0) toward the other prompt: EAP-IG-inputs'
 * own points (anchored at the corrupted input); for the clean-anchored methods (prompts swapped, see edgeScores)
 * α_clean = 1 − k/m, which is EAP-IG's k = 1…m of get_scores_ig_activations, and one point is EAP at the clean run.
 */
export function interpolationPoints(steps: number): number[] {
  return Array.from({ length: steps }, (_, k) => k / steps);
}

export function checkSteps(method: CircuitMethod, steps: number): number {
  if (CIRCUIT_METHODS[method].oneGradient) return 1;
  if (!Number.isInteger(steps) || steps < 1 || steps > 1000) throw InputError.about('steps', `must be an integer from 1 to 1000, got ${steps}`);
  return steps;
}

/** The example with its clean and corrupted prompts exchanged (answers kept: the metric is the same LD). */
const swapPrompts = (p: PreparedExample): PreparedExample => ({ ...p, tokens: p.corruptedTokens, corruptedTokens: p.tokens });

/**
 * Σ over examples of grad·(clean − corrupted) per edge (raw LD units; divide by n·(LD_clean − LD_corrupted) to
 * normalise), and each example's clean and corrupted LD, batch by batch. The edge graphs anchor their runs at the
 * corrupted prompt; a method anchored at the clean run (EAP-IG's eap and ig-activations) runs them with the prompts
 * swapped, which gives grad_clean·(corrupted − clean): negated, it is in the same sign as the others.
 */
export async function edgeScores(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  method: CircuitMethod,
  steps: number,
  options: RunOptions,
): Promise<EdgeScores> {
  const precision = options.precision ?? 'float32';
  const layout = circuitLayout(model.spec);
  const { interpolation, fromClean } = CIRCUIT_METHODS[method];
  const rows = fromClean ? prepared.map(swapPrompts) : prepared;
  const sign = fromClean ? -1 : 1;
  const points = interpolationPoints(checkSteps(method, steps));
  let feed: Record<string, ort.Tensor>;
  let runs: number;
  if (interpolation === 'activations') {
    // One sender group per run, each at every point; group 0 (the input) at α = 0 first: the plain corrupted run.
    const groups = senderGroups(model.spec.nLayers);
    runs = groups * points.length;
    const alpha = new Array<number>(runs * groups).fill(0);
    const select = new Array<number>(runs * groups).fill(0);
    for (let g = 0; g < groups; g++) {
      points.forEach((point, k) => {
        alpha[(g * points.length + k) * groups + g] = point;
        select[(g * points.length + k) * groups + g] = 1;
      });
    }
    const matrix = (values: number[]) => floatTensor(precision, values, [runs, groups]);
    feed = { [CIRCUIT_INPUTS.groupAlpha]: matrix(alpha), [CIRCUIT_INPUTS.groupSelect]: matrix(select) };
  } else {
    runs = points.length;
    feed = { [CIRCUIT_INPUTS.alpha]: floatTensor(precision, points) };
  }
  const handle = await sessionFor(model, interpolation === 'activations' ? 'edge-attribution-activations' : 'edge-attribution', options);
  const scores = new Float64Array(layout.edgeCount);
  const cleanLogitDiffs = new Array<number>(prepared.length);
  const corruptedLogitDiffs = new Array<number>(prepared.length);
  const batches = makeBatches(prepared, options.batchSize);
  for (const [b, indices] of batches.entries()) {
    checkCancelled(options.signal);
    options.onProgress?.(`edge scores: batch ${b + 1}/${batches.length} (${indices.length} examples × ${runs} runs)`);
    const { feeds } = batchFeeds(
      indices.map((i) => rows[i]),
      precision,
    );
    const out = await handle.session.run({ ...feeds, ...feed });
    const batchScores = out[CIRCUIT_OUTPUTS.edgeScores].data as Float32Array | Float64Array;
    for (let e = 0; e < scores.length; e++) scores[e] += (sign * batchScores[e]) / runs;
    const [cleanOutput, corruptedOutput] = fromClean
      ? [CIRCUIT_OUTPUTS.corruptedLogitDiff, CIRCUIT_OUTPUTS.cleanLogitDiff]
      : [CIRCUIT_OUTPUTS.cleanLogitDiff, CIRCUIT_OUTPUTS.corruptedLogitDiff];
    const clean = asNumbers(out[cleanOutput]);
    const corrupted = asNumbers(out[corruptedOutput]);
    indices.forEach((i, row) => ((cleanLogitDiffs[i] = clean[row]), (corruptedLogitDiffs[i] = corrupted[row])));
  }
  return { layout, scores, cleanLogitDiffs, corruptedLogitDiffs };
}

/**
 * A forward pass over the dataset with every edge moved by edgePatch[e] (layout order) from the clean run toward
 * the corrupted one (see buildFaithfulnessGraph); the patched LD of each example.
 */
export async function patchedLogitDiffs(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  edgePatch: readonly number[],
  options: RunOptions,
): Promise<number[]> {
  const precision = options.precision ?? 'float32';
  const handle = await sessionFor(model, 'faithfulness', options);
  const patch = floatTensor(precision, edgePatch);
  const lds = new Array<number>(prepared.length);
  for (const indices of makeBatches(prepared, options.batchSize)) {
    checkCancelled(options.signal);
    const { feeds } = batchFeeds(
      indices.map((i) => prepared[i]),
      precision,
    );
    const out = await handle.session.run({ ...feeds, [CIRCUIT_INPUTS.edgePatch]: patch });
    const patched = asNumbers(out[CIRCUIT_OUTPUTS.patchedLogitDiff]);
    indices.forEach((i, row) => (lds[i] = patched[row]));
  }
  return lds;
}

/** The Result's normalised metric of a run: (mean LD − LD_corrupted) / (LD_clean − LD_corrupted). */
export function normalisedMetric(lds: readonly number[], metric: Result['metric']): number {
  const mean = lds.reduce((a, b) => a + b, 0) / lds.length;
  return (mean - metric.corruptedLogitDiff) / (metric.cleanLogitDiff - metric.corruptedLogitDiff);
}

/**
 * EAP-IG's greedy growth (Graph.apply_greedy): start with the edges into the logits as candidates; repeatedly keep
 * the candidate of largest |score|, and when its sender joins the graph for the first time, add the sender's own
 * incoming edges (for a query head also those into its key/value head) to the candidates. By score, not measured.
 */
export function greedyEdges(edges: readonly CircuitEdge[], count: number, kvOf: (head: string) => string | undefined): number[] {
  const incoming = new Map<string, number[]>();
  edges.forEach((edge, i) => incoming.set(edge.to, [...(incoming.get(edge.to) ?? []), i]));
  const candidates = new Set<number>(incoming.get('logits') ?? []);
  const inGraph = new Set<string>(['logits']);
  const kept: number[] = [];
  while (kept.length < count && candidates.size > 0) {
    let best = -1;
    for (const i of candidates)
      if (best < 0 || Math.abs(edges[i].score) > Math.abs(edges[best].score) || (Math.abs(edges[i].score) === Math.abs(edges[best].score) && i < best))
        best = i;
    candidates.delete(best);
    kept.push(best);
    const sender = edges[best].from;
    if (!inGraph.has(sender)) {
      inGraph.add(sender);
      const kv = kvOf(sender);
      for (const node of kv && kv !== sender ? [sender, kv] : [sender]) for (const i of incoming.get(node) ?? []) if (!kept.includes(i)) candidates.add(i);
    }
  }
  return kept;
}

/** The chosen circuit's edges (indices into the sorted edges), pruned. */
export function selectCircuit(
  circuit: Pick<Circuit, 'nodes' | 'edges'>,
  request: CircuitSelectionRequest,
  layout: CircuitLayout,
): { inCircuit: number[]; selection: CircuitSelection } {
  if (request.rule === 'threshold') {
    if (!Number.isFinite(request.threshold) || request.threshold < 0) throw InputError.about('threshold', `must be a number ≥ 0, got ${request.threshold}`);
    const inCircuit = edgesAbove(circuit, request.threshold);
    return { inCircuit, selection: { rule: 'threshold', requested: request.threshold, edges: inCircuit.length } };
  }
  if (!Number.isInteger(request.edges) || request.edges < 0)
    throw InputError.about(request.rule === 'greedy' ? 'greedy' : 'edges', `must be a whole number ≥ 0, got ${request.edges}`);
  const kvOf = (head: string) => {
    const match = /^a(\d+)\.h(\d+)$/.exec(head);
    if (!match || layout.nKvHeads === layout.nHeads) return undefined;
    return `a${match[1]}.kv${Math.floor(Number(match[2]) / (layout.nHeads / layout.nKvHeads))}`;
  };
  const inCircuit =
    request.rule === 'top-n' ? topEdges(circuit, request.edges) : pruneDangling(circuit.edges, greedyEdges(circuit.edges, request.edges, kvOf), circuit.nodes);
  return { inCircuit, selection: { rule: request.rule, requested: request.edges, edges: inCircuit.length } };
}

/** Interpolation runs per batch: the steps, times the sender groups for the activations methods. */
export function interpolationRuns(method: CircuitMethod, steps: number, nLayers: number): number {
  const { interpolation, oneGradient } = CIRCUIT_METHODS[method];
  return interpolation === 'activations' ? steps * senderGroups(nLayers) : oneGradient ? 1 : steps;
}

/**
 * The plan line: passes, and the edge-attribution graph's activations (the plain estimate for runs × batch rows,
 * plus each receiver's copy of the residual stream, its normalisation and their gradients).
 */
export function describeCircuitCost(
  model: LoadedModel,
  method: CircuitMethod,
  steps: number,
  layout: CircuitLayout,
  batchSize: number,
  seqLen: number,
  curvePoints: number,
  draws: number,
): string {
  const runs = interpolationRuns(method, steps, model.spec.nLayers);
  const rows = (runs + 1) * batchSize;
  const copies = 4 * 4 * layout.nLayers * rows * seqLen * model.spec.dModel * (layout.nHeads + 2 * layout.nKvHeads);
  const bytes = activationBytes(model.spec, { batchSize: rows, seqLen }) + copies;
  const patched = 3 + (curvePoints > 0 ? curvePoints * (1 + draws) : 0);
  return (
    `circuit: ${method}${CIRCUIT_METHODS[method].oneGradient ? '' : ` (${steps} steps)`} over ${layout.edgeCount} edges: per batch of ${batchSize}, one clean and ${runs} interpolated passes ` +
    `with a residual copy per receiver (activations about ${formatBytes(bytes)}); then up to ${patched} patched forward passes over the dataset for faithfulness`
  );
}

/**
 * The whole circuit run: atp patch's Result (method auto unless asked), the edge scores, the circuit, its
 * faithfulness and the full and empty graphs' (1 and 0: checks of the patched forward pass), and the curve.
 */
export async function runCircuit(model: LoadedModel, dataset: Dataset, options: PatchingOptions, request: CircuitOptions): Promise<Result> {
  const steps = checkSteps(request.method, request.steps ?? 5);
  const curvePoints = request.curveSizes ? request.curveSizes.length + 2 : (request.curvePoints ?? 16);
  if (!Number.isInteger(curvePoints) || curvePoints < 0 || curvePoints > 200)
    throw InputError.about('curvePoints', `must be an integer from 0 to 200, got ${curvePoints}`);
  const badSize = request.curveSizes?.find((n) => !Number.isInteger(n) || n < 0);
  if (badSize !== undefined) throw new InputError(`circuit curve sizes must be whole numbers ≥ 0, got ${badSize}`);
  if (options.raw) throw new InputError("a circuit needs the whole dataset's baselines: it cannot run on a raw shard");
  checkPrecisionFor(options.precision, 'circuits (edge attribution)');
  const result = await runAttributionPatching(model, dataset, { ...options, method: options.method ?? 'auto' });
  const started = performance.now();
  const prepared = prepareExamples(model, dataset, []);
  const layout = circuitLayout(model.spec);
  options.onProgress?.(
    describeCircuitCost(
      model,
      request.method,
      steps,
      layout,
      Math.min(options.batchSize, prepared.length),
      longestPrompt(prepared),
      curvePoints,
      request.randomDraws ?? 3,
    ),
  );
  const scored = await edgeScores(model, prepared, request.method, steps, options);
  const scale = 1 / (prepared.length * (result.metric.cleanLogitDiff - result.metric.corruptedLogitDiff));
  const unsorted = layoutEdges(
    layout,
    Array.from(scored.scores, (s) => s * scale),
  );
  const order = unsorted.map((_, i) => i).sort((a, b) => Math.abs(unsorted[b].score) - Math.abs(unsorted[a].score) || a - b);
  const edges = order.map((i) => unsorted[i]);
  const base = { nodes: layout.nodes, edges };

  /** Faithfulness of a set of edges (indices into the sorted edges). */
  const measure = async (inCircuit: readonly number[]): Promise<number> => {
    const patch = new Array<number>(layout.edgeCount).fill(1);
    for (const i of inCircuit) patch[order[i]] = 0;
    return normalisedMetric(await patchedLogitDiffs(model, prepared, patch, options), result.metric);
  };
  const { inCircuit, selection } = selectCircuit(base, request.selection, layout);
  const all = edges.map((_, i) => i);
  const faithfulness = { circuit: await measure(inCircuit), full: await measure(all), empty: await measure([]) };
  const curve =
    curvePoints > 0
      ? await faithfulnessCurve(
          base,
          {
            points: curvePoints,
            draws: request.randomDraws ?? 3,
            seed: request.randomSeed ?? 0,
            sizes: request.curveSizes,
            // The circuit's own size is measured, so no view ever reads an interpolation at it.
            include: selection.rule === 'top-n' ? [selection.requested] : [],
          },
          measure,
        )
      : undefined;
  const circuit: Circuit = { method: request.method, methodNames: 'eap-ig', steps, nodes: layout.nodes, edges, inCircuit, selection, faithfulness, curve };
  return {
    ...result,
    circuit,
    timings: { ...result.timings, circuitSeconds: (performance.now() - started) / 1000 },
  };
}
