import type { GraphBuilder, Value } from '../graph/builder';
import { Ops, raw } from '../graph/ops';
import { gradients } from '../graph/autodiff';
import type { GraphWeights } from '../graph/weights';
import { type Architecture, HOOK_KINDS, type Hook, type HookKind } from '../architectures/types';
import { HOOKS } from '../../shared/hooks';

/**
 * The two graphs the engine runs. Both take a batch of examples, right-padded to one length:
 *   clean_ids, corrupted_ids  int64 [batch, seq]
 *   last_position             float [batch, seq]  one-hot at each example's last real token (its answer position)
 *   correct_ids, incorrect_ids int64 [batch]
 * Right padding needs no attention mask: with causal attention a real token never attends to a later pad.
 */

export const ATTRIBUTION_OUTPUTS = {
  cleanLogitDiff: 'clean_logit_diff',
  corruptedLogitDiff: 'corrupted_logit_diff',
  /** Per hook kind: grad·(clean − corrupted) summed over the hidden axis, [batch, layer, seq(, head)]. */
  attribution: (kind: HookKind) => `attribution_${kind}`,
} as const;

export const PATCHING_INPUT = (kind: HookKind) => `patch_${kind}`;
/**
 * float16 attribution graphs only: the loss scale S, a float32 scalar. The backward is seeded with S instead of 1,
 * so that gradients too small for float16 (below 6e-8, or below 6e-5 with full precision) are carried S times
 * larger; the attributions are divided by S in float32 before they leave the graph.
 */
export const LOSS_SCALE_INPUT = 'loss_scale';
/** float16 attribution graphs only: max |S·gradient| over every hook, float32 — how much of float16's range the backward used. */
export const GRADIENT_PEAK_OUTPUT = 'gradient_peak';
export const PATCHED_LOGIT_DIFF = 'patched_logit_diff';
/** The forward-only graph: one prompt per row, its logit difference. */
export const LOGIT_DIFF_INPUT = 'ids';
export const LOGIT_DIFF_OUTPUT = 'logit_diff';

/** The batch inputs' names: declareInputs declares them, batchFeeds and promptFeeds feed them. */
export const BATCH_INPUTS = {
  cleanIds: 'clean_ids',
  corruptedIds: 'corrupted_ids',
  lastPosition: 'last_position',
  correctIds: 'correct_ids',
  incorrectIds: 'incorrect_ids',
} as const;

/**
 * The names a graph takes and gives: the contract between its builder and the code that feeds and reads it.
 * sessionFor checks every new session against it, so a name changed on one side only fails at once, by name,
 * instead of as ONNX Runtime's "input not found" or an undefined output deep in a run.
 */
export interface GraphNames {
  inputs: readonly string[];
  outputs: readonly string[];
}

export const ATTRIBUTION_GRAPH_NAMES: GraphNames = {
  inputs: Object.values(BATCH_INPUTS),
  outputs: [ATTRIBUTION_OUTPUTS.cleanLogitDiff, ATTRIBUTION_OUTPUTS.corruptedLogitDiff, ...HOOK_KINDS.map(ATTRIBUTION_OUTPUTS.attribution)],
};

/** The attribution graph built for float16 compute: the loss scale in, the gradients' peak out. */
export const FLOAT16_ATTRIBUTION_GRAPH_NAMES: GraphNames = {
  inputs: [...ATTRIBUTION_GRAPH_NAMES.inputs, LOSS_SCALE_INPUT],
  outputs: [...ATTRIBUTION_GRAPH_NAMES.outputs, GRADIENT_PEAK_OUTPUT],
};

export const ACTIVATION_PATCHING_GRAPH_NAMES: GraphNames = {
  inputs: [...Object.values(BATCH_INPUTS), ...HOOK_KINDS.map(PATCHING_INPUT)],
  outputs: [ATTRIBUTION_OUTPUTS.cleanLogitDiff, PATCHED_LOGIT_DIFF],
};

export const LOGIT_DIFF_GRAPH_NAMES: GraphNames = {
  inputs: [LOGIT_DIFF_INPUT, BATCH_INPUTS.lastPosition, BATCH_INPUTS.correctIds, BATCH_INPUTS.incorrectIds],
  outputs: [LOGIT_DIFF_OUTPUT],
};

/** Throws (an internal error: the engine's own graph and its caller disagree) unless a session has exactly these names. */
export function checkGraphNames(
  graph: string,
  expected: GraphNames,
  session: { readonly inputNames: readonly string[]; readonly outputNames: readonly string[] },
): void {
  const problems: string[] = [];
  for (const [what, want, have] of [
    ['inputs', expected.inputs, session.inputNames],
    ['outputs', expected.outputs, session.outputNames],
  ] as const) {
    const missing = want.filter((name) => !have.includes(name));
    const unexpected = have.filter((name) => !want.includes(name));
    if (missing.length > 0) problems.push(`its caller expects ${what} ${missing.join(', ')} that the graph does not have`);
    if (unexpected.length > 0) problems.push(`the graph has ${what} ${unexpected.join(', ')} that its caller does not know`);
  }
  if (problems.length > 0) throw new Error(`the ${graph} graph and its caller disagree on names: ${problems.join('; ')}`);
}

export interface BatchInputs {
  cleanIds: Value;
  corruptedIds: Value;
  lastPosition: Value;
  correctIds: Value;
  incorrectIds: Value;
}

export function declareInputs(b: GraphBuilder): BatchInputs {
  return {
    cleanIds: b.input(BATCH_INPUTS.cleanIds, 'int64', ['batch', 'seq']),
    corruptedIds: b.input(BATCH_INPUTS.corruptedIds, 'int64', ['batch', 'seq']),
    lastPosition: b.input(BATCH_INPUTS.lastPosition, b.wideType, ['batch', 'seq']),
    correctIds: b.input(BATCH_INPUTS.correctIds, 'int64', ['batch']),
    incorrectIds: b.input(BATCH_INPUTS.incorrectIds, 'int64', ['batch']),
  };
}

/**
 * logit(correct) − logit(incorrect) at each example's last position, [batch]; logits are formed for those two tokens
 * only. In the graph's wide type: under float16 compute the metric, the final norm included, is float32.
 */
export function logitDiff(arch: Architecture, ops: Ops, w: GraphWeights, residual: Value, inputs: BatchInputs): Value {
  const b = ops.b;
  const selector = raw.unsqueeze(b, inputs.lastPosition, [1]); // [batch, 1, seq]
  const last = arch.finalNorm(ops, w, ops.matmul(selector, ops.cast(residual, b.wideType))); // [batch, 1, dModel]
  const direction = raw.sub(b, arch.unembeddingRows(ops, w, inputs.correctIds), arch.unembeddingRows(ops, w, inputs.incorrectIds));
  return ops.reduceSum(ops.mul(last, raw.unsqueeze(b, direction, [1])), [1, 2], false);
}

/**
 * One plain forward pass per row: ids [batch, seq] (right-padded), last_position, correct_ids, incorrect_ids →
 * logit_diff [batch]. Patching a token is a forward pass on the corrupted ids with that token taken from the clean
 * prompt: layer 0's resid_pre depends on nothing but the token and its position, so this is exact activation
 * patching of resid_pre at layer 0, at the cost of one forward pass instead of two.
 */
export function buildLogitDiffGraph(arch: Architecture, b: GraphBuilder, w: GraphWeights): void {
  const ops = new Ops(b);
  const ids = b.input(LOGIT_DIFF_INPUT, 'int64', ['batch', 'seq']);
  const inputs = {
    cleanIds: ids,
    corruptedIds: ids,
    lastPosition: b.input(BATCH_INPUTS.lastPosition, b.wideType, ['batch', 'seq']),
    correctIds: b.input(BATCH_INPUTS.correctIds, 'int64', ['batch']),
    incorrectIds: b.input(BATCH_INPUTS.incorrectIds, 'int64', ['batch']),
  };
  const residual = arch.forward(ops, w, ids, (_kind, _layer, value) => value);
  b.output(logitDiff(arch, ops, w, residual, inputs), LOGIT_DIFF_OUTPUT);
}

export type Activations = Record<HookKind, Value[]>;
export const emptyActivations = (): Activations => ({ resid_pre: [], z: [], attn_out: [], mlp_out: [] });
/** A hook that keeps every activation of a pass in `into` (by kind, in layer order) and leaves the pass as it is. */
export const recordInto =
  (into: Activations): Hook =>
  (kind, _layer, value) => {
    into[kind].push(value);
    return value;
  };

/** Stacks per-layer tensors [batch, ...] into [batch, layer, ...]. */
export function stackLayers(b: GraphBuilder, perLayer: Value[]): Value {
  const expanded = perLayer.map((v) => raw.unsqueeze(b, v, [1]));
  const [first] = expanded;
  return b.node('Concat', expanded, { axis: 1 }, { dtype: first.dtype, shape: [first.shape[0], perLayer.length, ...first.shape.slice(2)] });
}

/**
 * Attribution patching in one graph: clean forward, corrupted forward with every hook tapped, backward of the
 * per-example logit difference to the hooks only, and grad·(clean − corrupted) reduced over the hidden axis.
 * The gradient is of LD itself; the host divides by n·(LD_clean − LD_corrupted) once all batches are in, which
 * is exactly the gradient of the normalised metric (it is linear in LD) without knowing the baselines up front.
 * Under float16 compute (mixed precision) the backward is seeded with the loss scale S (LOSS_SCALE_INPUT), the
 * products grad·(clean − corrupted) are formed and summed in float32 and divided by S there, and the graph also
 * gives the gradients' peak (GRADIENT_PEAK_OUTPUT), from which the host picks S and detects overflow.
 */
export function buildAttributionGraph(arch: Architecture, b: GraphBuilder, w: GraphWeights): void {
  const ops = new Ops(b);
  const inputs = declareInputs(b);
  // The corrupted pass runs from the first position where a row's prompts differ (SharedPrefix): before it every
  // activation is the clean one, so its difference, and with it its attribution, is exactly 0.
  const start = sharedPrefixLength(b, inputs);
  const suffix = b.globalDim('suffix');
  const fromStart = (x: Value) => raw.sliceFrom(b, x, start, 1, suffix);

  const clean = emptyActivations();
  const cache = { keys: [], values: [] };
  const cleanResidual = arch.forward(ops, w, inputs.cleanIds, recordInto(clean), undefined, undefined, { record: cache });
  const cleanLd = logitDiff(arch, ops, w, cleanResidual, inputs);

  const corrupted = emptyActivations();
  const corruptedResidual = arch.forward(
    ops,
    w,
    fromStart(inputs.corruptedIds),
    (kind, layer, value) => {
      const tapped = ops.tap(value, `corrupted_${kind}_${layer}`);
      corrupted[kind].push(tapped);
      return tapped;
    },
    undefined,
    undefined,
    { reuse: cache, start },
  );
  const corruptedLd = logitDiff(arch, ops, w, corruptedResidual, { ...inputs, lastPosition: fromStart(inputs.lastPosition) });

  const wide = b.wideType;
  const ones = b.node(
    'ConstantOfShape',
    [raw.shapeOf(b, corruptedLd)],
    { value: { scalarTensor: 1, dtype: wide } },
    { dtype: wide, shape: [...corruptedLd.shape] },
  );
  const lossScale = b.floatType === 'float16' ? b.input(LOSS_SCALE_INPUT, wide, []) : undefined;
  const seed = lossScale ? raw.mul(b, ones, lossScale) : ones;
  const taps = HOOK_KINDS.flatMap((kind) => corrupted[kind]);
  const grads = gradients(ops, corruptedLd, seed, taps);

  b.output(cleanLd, ATTRIBUTION_OUTPUTS.cleanLogitDiff);
  b.output(corruptedLd, ATTRIBUTION_OUTPUTS.corruptedLogitDiff);
  const peaks: Value[] = [];
  for (const kind of HOOK_KINDS) {
    const perLayer = corrupted[kind].map((tap, layer) => {
      // No casts unless the compute type is float16: then the difference, product and sum are float32.
      const grad = raw.cast(b, grads.get(tap.name)!, wide);
      if (lossScale)
        peaks.push(b.node('ReduceMax', [b.node('Abs', [grad], {}, { dtype: wide, shape: [...grad.shape] })], { keepdims: 0 }, { dtype: wide, shape: [] }));
      const delta = raw.sub(b, raw.cast(b, fromStart(clean[kind][layer]), wide), raw.cast(b, tap, wide));
      return raw.reduce(b, 'ReduceSum', raw.mul(b, grad, delta), [-1], false);
    });
    const stacked = zerosBefore(b, stackLayers(b, perLayer), start, 2);
    b.output(lossScale ? raw.div(b, stacked, lossScale) : stacked, ATTRIBUTION_OUTPUTS.attribution(kind));
  }
  if (lossScale) {
    const peak = peaks.reduce((p, q) => b.node('Max', [p, q], {}, { dtype: wide, shape: [] }));
    b.output(peak, GRADIENT_PEAK_OUTPUT);
  }
}

/**
 * How many leading positions every row's clean and corrupted prompts share, as an int64 scalar: the first position
 * where any row differs, at most the earliest answer position (the corrupted pass must reach every row's answer);
 * prompts that do not differ at all (the token passes' rows) share everything before their answers.
 */
export function sharedPrefixLength(b: GraphBuilder, inputs: BatchInputs): Value {
  const wide = b.wideType;
  const seq = inputs.cleanIds.shape[1];
  const differs = raw.cast(
    b,
    b.node(
      'Not',
      [b.node('Equal', [inputs.cleanIds, inputs.corruptedIds], {}, { dtype: 'bool', shape: [...inputs.cleanIds.shape] })],
      {},
      { dtype: 'bool', shape: [...inputs.cleanIds.shape] },
    ),
    wide,
  );
  const anyRow = b.node('ReduceMax', [differs, b.ints([0])], { keepdims: 0 }, { dtype: wide, shape: [seq] });
  const firstDifference = b.node('ArgMax', [anyRow], { axis: 0, keepdims: 0 }, { dtype: 'int64', shape: [] });
  const answers = b.node('ArgMax', [inputs.lastPosition], { axis: 1, keepdims: 0 }, { dtype: 'int64', shape: [inputs.lastPosition.shape[0]] });
  const earliestAnswer = b.node('ReduceMin', [answers, b.ints([0])], { keepdims: 0 }, { dtype: 'int64', shape: [] });
  const anyDifference = b.node(
    'Greater',
    [b.node('ReduceMax', [anyRow, b.ints([0])], { keepdims: 0 }, { dtype: wide, shape: [] }), b.scalar(0, wide)],
    {},
    { dtype: 'bool', shape: [] },
  );
  const first = b.node('Where', [anyDifference, firstDifference, earliestAnswer], {}, { dtype: 'int64', shape: [] });
  return b.node('Min', [first, earliestAnswer], {}, { dtype: 'int64', shape: [] });
}

/** x [batch, layer, suffix, ...] with `start` zeros before the suffix on `axis` → [batch, layer, seq, ...]. */
function zerosBefore(b: GraphBuilder, x: Value, start: Value, axis: number): Value {
  const rank = x.shape.length;
  const before = Array.from({ length: rank }, (_, i) => (i === axis ? raw.unsqueeze(b, start, [0]) : b.ints([0])));
  const pads = b.node('Concat', [...before, b.ints(new Array<number>(rank).fill(0))], { axis: 0 }, { dtype: 'int64', shape: [2 * rank] });
  const shape = [...x.shape];
  shape[axis] = 'seq';
  return b.node('Pad', [x, pads], {}, { dtype: x.dtype, shape });
}

/**
 * Exact activation patching: each batch row is a corrupted run in which the components selected by the
 * patch_<kind> masks take their clean values, x ← x + m·(clean − x). Masks: z [batch, layer, seq, head],
 * the others [batch, layer, seq]. One patched component per row gives the ground truth that attribution
 * patching approximates.
 */
export function buildActivationPatchingGraph(arch: Architecture, b: GraphBuilder, w: GraphWeights): void {
  const ops = new Ops(b);
  const inputs = declareInputs(b);
  const { nLayers, nHeads } = arch.spec;
  const masks = Object.fromEntries(
    HOOK_KINDS.map((kind) => [
      kind,
      b.input(PATCHING_INPUT(kind), b.wideType, HOOKS[kind].perHead ? ['batch', nLayers, 'seq', nHeads] : ['batch', nLayers, 'seq']),
    ]),
  ) as Record<HookKind, Value>;

  const clean = emptyActivations();
  const cleanResidual = arch.forward(ops, w, inputs.cleanIds, recordInto(clean));
  const patchedResidual = arch.forward(ops, w, inputs.corruptedIds, (kind, layer, value) => {
    const mask = masks[kind];
    const layerMask = b.node(
      'Gather',
      [mask, b.constant('int64', [], [layer])],
      { axis: 1 },
      { dtype: mask.dtype, shape: [mask.shape[0], ...mask.shape.slice(2)] },
    );
    const m = raw.cast(b, raw.unsqueeze(b, layerMask, [layerMask.shape.length]), value.dtype);
    return raw.add(b, value, raw.mul(b, m, raw.sub(b, clean[kind][layer], value)));
  });
  b.output(logitDiff(arch, ops, w, cleanResidual, inputs), ATTRIBUTION_OUTPUTS.cleanLogitDiff);
  b.output(logitDiff(arch, ops, w, patchedResidual, inputs), PATCHED_LOGIT_DIFF);
}
