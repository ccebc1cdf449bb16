// The circuit graphs: edge attribution (EAP, EAP-IG) and faithfulness (a run with edges patched), for every
// family through Architecture.forward's CircuitHooks, the edges in circuitLayout's order.
import type { GraphBuilder, Value } from '../graph/builder';
import { Ops, raw } from '../graph/ops';
import { gradients } from '../graph/autodiff';
import type { GraphWeights } from '../graph/weights';
import type { Architecture, CircuitHooks } from '../architectures/types';
import { BATCH_INPUTS, type BatchInputs, declareInputs, type GraphNames, logitDiff } from '../patching/graphs';
import { type CircuitLayout, circuitLayout, type ReceiverGroup } from './layout';

export const CIRCUIT_INPUTS = {
  /** Interpolation points α [runs] between the corrupted (0) and clean (1) input embeddings; the first must be 0. */
  alpha: 'ig_alpha',
  /** Per edge, in layout order, how far the edge is moved to the other run: 1 for an edge outside the circuit. */
  edgePatch: 'edge_patch',
  /** eap-ig-activations: α of the group each run interpolates [runs, groups] (0 elsewhere). */
  groupAlpha: 'group_alpha',
  /** eap-ig-activations: which group each run interpolates, one-hot [runs, groups]; run 0 must interpolate at α = 0. */
  groupSelect: 'group_select',
} as const;

export const CIRCUIT_OUTPUTS = {
  cleanLogitDiff: 'clean_logit_diff',
  corruptedLogitDiff: 'corrupted_logit_diff',
  /** Σ over the batch, positions and runs of grad·(clean − corrupted), [edges] in layout order (divide by the runs). */
  edgeScores: 'edge_scores',
  patchedLogitDiff: 'patched_logit_diff',
} as const;

const EDGE_SCORE_OUTPUTS = [CIRCUIT_OUTPUTS.cleanLogitDiff, CIRCUIT_OUTPUTS.corruptedLogitDiff, CIRCUIT_OUTPUTS.edgeScores];
/** Each graph's input and output names, checked against its session when it is created (sessions.ts sessionFor). */
export const EDGE_ATTRIBUTION_GRAPH_NAMES: GraphNames = { inputs: [...Object.values(BATCH_INPUTS), CIRCUIT_INPUTS.alpha], outputs: EDGE_SCORE_OUTPUTS };
export const ACTIVATION_EDGE_ATTRIBUTION_GRAPH_NAMES: GraphNames = {
  inputs: [...Object.values(BATCH_INPUTS), CIRCUIT_INPUTS.groupAlpha, CIRCUIT_INPUTS.groupSelect],
  outputs: EDGE_SCORE_OUTPUTS,
};
export const FAITHFULNESS_GRAPH_NAMES: GraphNames = {
  inputs: [...Object.values(BATCH_INPUTS), CIRCUIT_INPUTS.edgePatch],
  outputs: [CIRCUIT_OUTPUTS.patchedLogitDiff],
};

/**
 * Sender outputs of one run as chunks in sender order, each [batch, seq, C, dModel]: the input embedding (C = 1),
 * then per layer its heads (C = heads) and its MLP (C = 1). A receiver group reads a prefix of these chunks.
 */
interface SenderChunks {
  chunks: Value[];
  residual: Value;
}

function unsqueezeSender(b: GraphBuilder, x: Value): Value {
  return raw.unsqueeze(b, x, [2]);
}

/** The chunks a group's receivers read (their sizes add up to group.senders). */
function chunksFor(chunks: readonly Value[], group: ReceiverGroup): Value[] {
  const picked: Value[] = [];
  let count = 0;
  for (const chunk of chunks) {
    if (count >= group.senders) break;
    picked.push(chunk);
    count += chunk.shape[2] as number;
  }
  if (count !== group.senders) throw new Error(`circuit graph: group ${group.input}${group.layer} reads ${group.senders} senders, chunks give ${count}`);
  return picked;
}

/**
 * A forward pass that records its senders; `extra` adds receiver hooks, and `transform` may replace each sender
 * group's output (group 0 the input embedding [rows, seq, dModel], 1 + 2l layer l's heads [rows, seq, heads,
 * dModel], 2 + 2l layer l's MLP [rows, seq, dModel]) before the rest of the pass reads it.
 */
function senderRun(
  arch: Architecture,
  ops: Ops,
  w: GraphWeights,
  ids: Value,
  extra: CircuitHooks = {},
  transform: (group: number, value: Value) => Value = (_group, value) => value,
  /** Filled as the pass is built, so that receiver hooks can read the senders before them. */
  chunks: Value[] = [],
): SenderChunks {
  const b = ops.b;
  const residual = arch.forward(
    ops,
    w,
    ids,
    (kind, layer, value) => {
      if (kind === 'resid_pre' && layer === 0) {
        const used = transform(0, value);
        chunks.push(unsqueezeSender(b, used));
        return used;
      }
      if (kind === 'mlp_out') {
        const used = transform(2 + 2 * layer, value);
        chunks.push(unsqueezeSender(b, used));
        return used;
      }
      return value;
    },
    undefined,
    {
      ...extra,
      headOutputs: (layer, perHead) => {
        const used = transform(1 + 2 * layer, perHead);
        chunks.push(used);
        return used;
      },
    },
  );
  return { chunks, residual };
}

/** One copy of the residual stream per receiver: [batch, seq, dModel] → [batch, seq, n, dModel] (differentiable). */
function copies(ops: Ops, residual: Value, n: number): Value {
  const d = residual.shape[2] as number;
  return ops.repeatHeads(ops.reshape(residual, [0, 0, 1, d]), n);
}

/** Rows 0..rows−1 of x along axis 0, rows an int64 [1]. */
function firstRows(b: GraphBuilder, x: Value, rows: Value, rowDim: string | number): Value {
  return b.node('Slice', [x, b.ints([0]), rows, b.ints([0])], {}, { dtype: x.dtype, shape: [rowDim, ...x.shape.slice(1)] });
}

/** x repeated `times` (int64 [1]) along axis 0: row k·n + i is x[i]. */
function tileRows(b: GraphBuilder, x: Value, times: Value, rowDim: string): Value {
  const repeats = b.node('Concat', [times, b.ints(Array(x.shape.length - 1).fill(1))], { axis: 0 }, { dtype: 'int64', shape: [x.shape.length] });
  return b.node('Tile', [x, repeats], {}, { dtype: x.dtype, shape: [rowDim, ...x.shape.slice(1)] });
}

function tiledInputs(b: GraphBuilder, inputs: BatchInputs, times: Value): BatchInputs {
  return {
    cleanIds: tileRows(b, inputs.cleanIds, times, 'rows'),
    corruptedIds: tileRows(b, inputs.corruptedIds, times, 'rows'),
    lastPosition: tileRows(b, inputs.lastPosition, times, 'rows'),
    correctIds: tileRows(b, inputs.correctIds, times, 'rows'),
    incorrectIds: tileRows(b, inputs.incorrectIds, times, 'rows'),
  };
}

const countOf = (b: GraphBuilder, x: Value) => b.node('Slice', [raw.shapeOf(b, x), b.ints([0]), b.ints([1])], {}, { dtype: 'int64', shape: [1] });

/**
 * Receiver taps of a run, in group order: every head's q, every key/value head's k and v (copies of the residual
 * stream, one per head), every MLP's input and the final residual stream, each an identity whose gradient is
 * ∂LD/∂(that receiver's input) alone.
 */
function receiverTaps(ops: Ops, layout: CircuitLayout, taps: Value[]): CircuitHooks {
  return {
    attentionInputs: (layer, residual) => {
      const q = ops.tap(copies(ops, residual, layout.nHeads), `receiver_q_${layer}`);
      const k = ops.tap(copies(ops, residual, layout.nKvHeads), `receiver_k_${layer}`);
      const v = ops.tap(copies(ops, residual, layout.nKvHeads), `receiver_v_${layer}`);
      taps.push(q, k, v);
      return { q, k, v };
    },
    mlpInput: (layer, residual) => {
      const tapped = ops.tap(residual, `receiver_mlp_${layer}`);
      taps.push(tapped);
      return tapped;
    },
  };
}

/**
 * Edge scores of one group: Σ over rows, positions and the hidden axis of G[row, pos, r, :]·Δ[row, pos, s, :],
 * with G [runs·batch, seq, R, dModel] the receivers' gradients (summed over the runs here) and Δ the senders'
 * clean − corrupted chunks [batch, seq, C, dModel] → [R, senders].
 */
function groupScores(b: GraphBuilder, gradient: Value, deltas: readonly Value[], runs: Value, group: ReceiverGroup): Value {
  const R = group.receivers;
  const g4 = gradient.shape.length === 3 ? raw.unsqueeze(b, gradient, [2]) : gradient;
  const shape = b.node('Concat', [runs, b.ints([-1, R])], { axis: 0 }, { dtype: 'int64', shape: [3] });
  const perStep = b.node('Reshape', [raw.transpose(b, g4, [0, 1, 3, 2]), shape], {}, { dtype: g4.dtype, shape: ['runs', 'rows', R] });
  const summed = raw.reduce(b, 'ReduceSum', perStep, [0], false); // [batch·seq·dModel, R]
  const receiverRows = raw.transpose(b, summed, [1, 0]); // [R, batch·seq·dModel]
  const blocks = deltas.map((delta) => {
    const C = delta.shape[2] as number;
    const senderColumns = raw.reshape(b, raw.transpose(b, delta, [0, 1, 3, 2]), [-1, C], ['rows', C]);
    return raw.matmul(b, receiverRows, senderColumns); // [R, C]
  });
  const all = blocks.length === 1 ? blocks[0] : b.node('Concat', blocks, { axis: 1 }, { dtype: gradient.dtype, shape: [R, group.senders] });
  return raw.reshape(b, all, [R * group.senders], [R * group.senders]);
}

/** Sender groups: the input, then per layer its heads (together, as EAP-IG interpolates them) and its MLP. */
export const senderGroups = (nLayers: number) => 1 + 2 * nLayers;

/**
 * EAP and EAP-IG in one graph. Every row of the batch runs once per interpolation run on the corrupted prompt, and
 * the gradient of Σ LD is taken to every receiver's own input and summed over the runs; the edge scores are that
 * gradient · (clean − corrupted sender output), summed over positions and the batch (the host divides by the runs).
 *   'inputs' (eap, eap-ig; EAP-IG's 'EAP-IG-inputs'): input ig_alpha [runs]; run k has the input embedding
 *     corrupted + ig_alpha[k]·(clean − corrupted) (the host feeds EAP-IG's points k/m, k = 0…m−1; [0] for EAP).
 *   'activations' (eap-ig-activations): inputs group_select and group_alpha [runs, groups]; in run j the selected
 *     group's output is replaced by corrupted + group_alpha[j, g]·(clean − corrupted), a value no gradient flows
 *     through (EAP-IG's get_scores_ig_activations, one group per run: the input, a layer's heads together, an MLP;
 *     the host feeds the points k/m, k = 0…m−1, starting from the corrupted run where EAP-IG starts from its clean one).
 * Run 0 must be the plain corrupted run (all α 0): its rows give the corrupted senders and LD.
 */
function buildEdgeGraph(arch: Architecture, b: GraphBuilder, w: GraphWeights, interpolation: 'inputs' | 'activations'): void {
  const ops = new Ops(b);
  const layout = circuitLayout(arch.spec);
  const inputs = declareInputs(b);
  const groups = senderGroups(arch.spec.nLayers);
  const alpha =
    interpolation === 'inputs' ? b.input(CIRCUIT_INPUTS.alpha, b.floatType, ['runs']) : b.input(CIRCUIT_INPUTS.groupAlpha, b.floatType, ['runs', groups]);
  const select = interpolation === 'activations' ? b.input(CIRCUIT_INPUTS.groupSelect, b.floatType, ['runs', groups]) : undefined;
  const runs = countOf(b, alpha);
  const batch = countOf(b, inputs.cleanIds);

  const clean = senderRun(arch, ops, w, inputs.cleanIds);
  b.output(logitDiff(arch, ops, w, clean.residual, inputs), CIRCUIT_OUTPUTS.cleanLogitDiff);

  const tiled = tiledInputs(b, inputs, runs);
  // A per-run value of group g in each row, [rows, 1, 1(, 1)]: rows j·batch … (j+1)·batch − 1 are run j.
  const perRow = (source: Value, group: number, rank: number): Value => {
    const perRun =
      source.shape.length === 1 ? source : b.node('Gather', [source, b.constant('int64', [], [group])], { axis: 1 }, { dtype: b.floatType, shape: ['runs'] });
    const grid = b.node(
      'Expand',
      [raw.unsqueeze(b, perRun, [1]), b.node('Concat', [runs, batch], { axis: 0 }, { dtype: 'int64', shape: [2] })],
      {},
      { dtype: b.floatType, shape: ['runs', 'batch'] },
    );
    return raw.reshape(b, grid, [-1, ...Array(rank - 1).fill(1)], ['rows', ...Array(rank - 1).fill(1)]);
  };
  const cleanTiled = (group: number, like: Value): Value => {
    const chunk = clean.chunks[group];
    const natural = like.shape.length === 3 ? raw.reshape(b, chunk, [0, 0, -1], [chunk.shape[0], chunk.shape[1], chunk.shape[3]]) : chunk;
    return tileRows(b, natural, runs, 'rows');
  };
  // The interpolated value corrupted + α·(clean − corrupted), built from plain nodes: like EAP-IG's hook that
  // returns a new tensor, no gradient flows through it to the receivers before it.
  const interpolated = (group: number, value: Value) =>
    raw.add(b, value, raw.mul(b, perRow(alpha, group, value.shape.length), raw.sub(b, cleanTiled(group, value), value)));
  const transform = (group: number, value: Value): Value => {
    if (!select) return group === 0 ? interpolated(group, value) : value;
    // The selected group of a run takes the interpolated value; the others run on, differentiable.
    const chosen = perRow(select, group, value.shape.length);
    const kept = ops.mul(value, raw.sub(b, b.scalar(1), chosen));
    return ops.add(kept, raw.mul(b, chosen, interpolated(group, value)));
  };
  const taps: Value[] = [];
  const run = senderRun(arch, ops, w, tiled.corruptedIds, receiverTaps(ops, layout, taps), transform);
  const finalTap = ops.tap(run.residual, 'receiver_logits');
  taps.push(finalTap);
  const ld = logitDiff(arch, ops, w, finalTap, tiled);
  b.output(firstRows(b, ld, batch, 'batch'), CIRCUIT_OUTPUTS.corruptedLogitDiff);

  const seed = b.node(
    'ConstantOfShape',
    [raw.shapeOf(b, ld)],
    { value: { scalarTensor: 1, dtype: b.floatType } },
    { dtype: b.floatType, shape: [...ld.shape] },
  );
  const grads = gradients(ops, ld, seed, taps);
  const deltas = clean.chunks.map((chunk, i) => raw.sub(b, chunk, firstRows(b, run.chunks[i], batch, 'batch')));
  if (taps.length !== layout.groups.length) throw new Error(`circuit graph: ${taps.length} receiver taps for ${layout.groups.length} groups`);
  const scores = layout.groups.map((group, i) => groupScores(b, grads.get(taps[i].name)!, chunksFor(deltas, group), runs, group));
  b.output(b.node('Concat', scores, { axis: 0 }, { dtype: b.floatType, shape: [layout.edgeCount] }), CIRCUIT_OUTPUTS.edgeScores);
}

export const buildEdgeAttributionGraph = (arch: Architecture, b: GraphBuilder, w: GraphWeights) => buildEdgeGraph(arch, b, w, 'inputs');
export const buildActivationEdgeAttributionGraph = (arch: Architecture, b: GraphBuilder, w: GraphWeights) => buildEdgeGraph(arch, b, w, 'activations');

/**
 * A run with edges patched (EAP-IG's evaluate_graph): a forward pass on clean_ids in which every receiver reads its
 * own input plus, for each sender s, edge_patch[s→r]·(other_s − this run's s), with other_s the sender's output in
 * a forward pass on corrupted_ids. edge_patch = 1 − (edge in circuit) measures a circuit's faithfulness: all 0 is
 * the clean run, all 1 the corrupted run. Fed with the prompts swapped and one edge at ε it is exact patching of
 * that edge from clean into the corrupted run by ε. Output: patched_logit_diff [batch].
 */
export function buildFaithfulnessGraph(arch: Architecture, b: GraphBuilder, w: GraphWeights): void {
  const ops = new Ops(b);
  const layout = circuitLayout(arch.spec);
  const inputs = declareInputs(b);
  const edgePatch = b.input(CIRCUIT_INPUTS.edgePatch, b.floatType, [layout.edgeCount]);

  const other = senderRun(arch, ops, w, inputs.corruptedIds);
  // The patched run's own senders, collected as it goes: a receiver only reads senders before it.
  const own: Value[] = [];
  let next = 0;
  const patchedInput = (residual: Value): Value => {
    const group = layout.groups[next++];
    const R = group.receivers;
    const weights = raw.reshape(
      b,
      b.node('Slice', [edgePatch, b.ints([group.offset]), b.ints([group.offset + R * group.senders])], {}, { dtype: b.floatType, shape: [R * group.senders] }),
      [R, group.senders],
      [R, group.senders],
    );
    let start = 0;
    const perHead = group.input === 'q' || group.input === 'k' || group.input === 'v';
    let input = perHead ? copies(ops, residual, R) : residual;
    for (const [c, chunk] of chunksFor(own, group).entries()) {
      const C = chunk.shape[2] as number;
      const block = b.node('Slice', [weights, b.ints([start]), b.ints([start + C]), b.ints([1])], {}, { dtype: b.floatType, shape: [R, C] });
      const moved = raw.matmul(b, block, raw.sub(b, other.chunks[c], chunk)); // [batch, seq, R, dModel]
      input = raw.add(
        b,
        input,
        input.shape.length === 3 ? b.node('Squeeze', [moved, b.ints([2])], {}, { dtype: b.floatType, shape: [...input.shape] }) : moved,
      );
      start += C;
    }
    return input;
  };
  const run = senderRun(
    arch,
    ops,
    w,
    inputs.cleanIds,
    {
      attentionInputs: (_layer, residual) => ({ q: patchedInput(residual), k: patchedInput(residual), v: patchedInput(residual) }),
      mlpInput: (_layer, residual) => patchedInput(residual),
    },
    undefined,
    own,
  );
  b.output(logitDiff(arch, ops, w, patchedInput(run.residual), inputs), CIRCUIT_OUTPUTS.patchedLogitDiff);
}
