// Exact activation patching that recomputes only what a patch can change. With causal attention, patching a
// component at layer l and position p changes nothing before p and nothing below l: a patched run is the corrupted
// run up to there. So one pass per example records what every patch needs (the record graph), and each patch then
// runs only the positions from p on, from layer l up, its attention reading the recorded keys and values of the
// positions before p (the suffix-patch graph). The numbers are those of buildActivationPatchingGraph's full passes.
import type { GraphBuilder, Value } from '../graph/builder';
import { Ops, raw } from '../graph/ops';
import type { GraphWeights } from '../graph/weights';
import { type Architecture, HOOK_KINDS, type HookKind, type KeyValues } from '../architectures/types';
import { HOOKS } from '../../shared/hooks';
import { keyValueHeads } from '../model/config';
import {
  ATTRIBUTION_OUTPUTS,
  BATCH_INPUTS,
  declareInputs,
  emptyActivations,
  type GraphNames,
  logitDiff,
  PATCHED_LOGIT_DIFF,
  PATCHING_INPUT,
  recordInto,
  sharedPrefixLength,
  stackLayers,
} from './graphs';

/**
 * The record graph's outputs, each [batch, layer, seq, ...] in the graph's wide type (right-padded like its inputs):
 * the clean run's activation at every hook, and the corrupted run's resid_pre and its keys and values as attention
 * reads them ([.., kvHeads, dHead], after rotary, before grouped-query repetition); with both logit differences.
 */
export const RECORD_OUTPUTS = {
  clean: (kind: HookKind) => `clean_${kind}`,
  corruptedResidPre: 'corrupted_resid_pre',
  corruptedKeys: 'corrupted_keys',
  corruptedValues: 'corrupted_values',
} as const;

export const PATCH_RECORD_GRAPH_NAMES: GraphNames = {
  inputs: Object.values(BATCH_INPUTS),
  outputs: [
    ATTRIBUTION_OUTPUTS.cleanLogitDiff,
    ATTRIBUTION_OUTPUTS.corruptedLogitDiff,
    ...HOOK_KINDS.map(RECORD_OUTPUTS.clean),
    RECORD_OUTPUTS.corruptedResidPre,
    RECORD_OUTPUTS.corruptedKeys,
    RECORD_OUTPUTS.corruptedValues,
  ],
};

/**
 * The suffix-patch graph's inputs. A session run is a batch of rows that share `start` (s) and a suffix length n:
 * each row is one example's corrupted prompt at positions s…s+n−1 (right-padded) with a patch set, and enters the
 * decoder at a layer at or below its lowest patch, rows sorted by that layer.
 *   start                 int64 []              s
 *   entered               int64 [layer]         rows entering at or below each layer (cumulative; rows of layer l are
 *                                               entered[l−1]…entered[l]−1)
 *   suffix_ids            int64 [rows0, n]      the corrupted ids from s of the rows entering at layer 0
 *   example_index         int64 [rows]          each row's example among the run's examples (the tensors below)
 *   corrupted_resid_pre   [examples, layer, n, dModel]              where rows entering above layer 0 start
 *   corrupted_keys/values [examples, layer, s, kvHeads, dHead]      the positions before s
 *   clean_<kind>          [examples, layer, n, dModel] (z: [.., heads, dHead])  the values patches take
 *   patch_<kind>          [rows, layer, n] (z: [.., heads])         1 where a row patches, as the activation-patching graph's
 *   last_position [rows, n], correct_ids, incorrect_ids [rows]
 * Output: patched_logit_diff [rows].
 */
export const SUFFIX_INPUTS = {
  start: 'start',
  entered: 'entered',
  suffixIds: 'suffix_ids',
  exampleIndex: 'example_index',
} as const;

export const SUFFIX_PATCH_GRAPH_NAMES: GraphNames = {
  inputs: [
    ...Object.values(SUFFIX_INPUTS),
    RECORD_OUTPUTS.corruptedResidPre,
    RECORD_OUTPUTS.corruptedKeys,
    RECORD_OUTPUTS.corruptedValues,
    ...HOOK_KINDS.map(RECORD_OUTPUTS.clean),
    ...HOOK_KINDS.map(PATCHING_INPUT),
    BATCH_INPUTS.lastPosition,
    BATCH_INPUTS.correctIds,
    BATCH_INPUTS.incorrectIds,
  ],
  outputs: [PATCHED_LOGIT_DIFF],
};

/**
 * One clean forward pass and one corrupted pass from the prompts' first difference (SharedPrefix: before it the two
 * runs are the same), keeping what the suffix-patch graph needs. Positions before the shared prefix's end take the
 * clean pass's corrupted values, which are the same.
 */
export function buildPatchRecordGraph(arch: Architecture, b: GraphBuilder, w: GraphWeights): void {
  const ops = new Ops(b);
  const inputs = declareInputs(b);
  const start = sharedPrefixLength(b, inputs);
  const suffix = b.globalDim('suffix');
  const fromStart = (x: Value) => raw.sliceFrom(b, x, start, 1, suffix);
  const wide = (x: Value) => raw.cast(b, x, b.wideType);

  const clean = emptyActivations();
  const cleanKv: KeyValues = { keys: [], values: [] };
  const cleanResidual = arch.forward(ops, w, inputs.cleanIds, recordInto(clean), undefined, undefined, { record: cleanKv });
  const corrupted = emptyActivations();
  const corruptedKv: KeyValues = { keys: [], values: [] };
  const corruptedResidual = arch.forward(ops, w, fromStart(inputs.corruptedIds), recordInto(corrupted), undefined, undefined, {
    reuse: cleanKv,
    start,
    record: corruptedKv,
  });

  b.output(logitDiff(arch, ops, w, cleanResidual, inputs), ATTRIBUTION_OUTPUTS.cleanLogitDiff);
  b.output(logitDiff(arch, ops, w, corruptedResidual, { ...inputs, lastPosition: fromStart(inputs.lastPosition) }), ATTRIBUTION_OUTPUTS.corruptedLogitDiff);
  for (const kind of HOOK_KINDS) b.output(wide(stackLayers(b, clean[kind])), RECORD_OUTPUTS.clean(kind));
  const seq = inputs.cleanIds.shape[1];
  const residPre = corrupted.resid_pre.map((own, l) => {
    const prefix = raw.sliceTo(b, clean.resid_pre[l], start, 1, 'start');
    return b.node('Concat', [prefix, own], { axis: 1 }, { dtype: own.dtype, shape: [own.shape[0], seq, ...own.shape.slice(2)] });
  });
  b.output(wide(stackLayers(b, residPre)), RECORD_OUTPUTS.corruptedResidPre);
  b.output(wide(stackLayers(b, corruptedKv.keys)), RECORD_OUTPUTS.corruptedKeys);
  b.output(wide(stackLayers(b, corruptedKv.values)), RECORD_OUTPUTS.corruptedValues);
}

/**
 * Patched passes over suffixes (see SUFFIX_PATCH_GRAPH_NAMES for the inputs). The batch grows with depth: layer l
 * runs the rows that entered at or below it, those entering at l joining with the corrupted run's resid_pre there,
 * so a row patched at layer l costs its n positions through L − l layers. Each layer's attention reads the recorded
 * corrupted keys and values before s and the row's own from s on (SharedPrefix). At each hook the patch is applied
 * as the activation-patching graph applies it, x ← x + m·(clean − x), with the recorded clean value.
 */
export function buildSuffixPatchGraph(arch: Architecture, b: GraphBuilder, w: GraphWeights): void {
  const ops = new Ops(b);
  const { nLayers, nHeads, dModel, dHead } = arch.spec;
  const wide = b.wideType;
  const start = b.input(SUFFIX_INPUTS.start, 'int64', []);
  const entered = b.input(SUFFIX_INPUTS.entered, 'int64', [nLayers]);
  // Each layer's batch has its own size: a dim per layer, the same wherever it appears in that layer.
  const rows = (l: number) => b.globalDim(`rows_${l}`);
  const ids = b.input(SUFFIX_INPUTS.suffixIds, 'int64', [rows(0), 'n']);
  const exampleIndex = b.input(SUFFIX_INPUTS.exampleIndex, 'int64', [rows(nLayers - 1)]);
  const kvHeads = keyValueHeads(arch.spec);
  const corruptedResidPre = b.input(RECORD_OUTPUTS.corruptedResidPre, wide, ['examples', nLayers, 'n', dModel]);
  const corruptedKeys = b.input(RECORD_OUTPUTS.corruptedKeys, wide, ['examples', nLayers, 'start', kvHeads, dHead]);
  const corruptedValues = b.input(RECORD_OUTPUTS.corruptedValues, wide, ['examples', nLayers, 'start', kvHeads, dHead]);
  const perHead = (kind: HookKind) => HOOKS[kind].perHead;
  const clean = Object.fromEntries(
    HOOK_KINDS.map((kind) => [
      kind,
      b.input(RECORD_OUTPUTS.clean(kind), wide, perHead(kind) ? ['examples', nLayers, 'n', nHeads, dHead] : ['examples', nLayers, 'n', dModel]),
    ]),
  ) as Record<HookKind, Value>;
  const masks = Object.fromEntries(
    HOOK_KINDS.map((kind) => [
      kind,
      b.input(PATCHING_INPUT(kind), wide, perHead(kind) ? [rows(nLayers - 1), nLayers, 'n', nHeads] : [rows(nLayers - 1), nLayers, 'n']),
    ]),
  ) as Record<HookKind, Value>;
  const lastPosition = b.input(BATCH_INPUTS.lastPosition, wide, [rows(nLayers - 1), 'n']);
  const correctIds = b.input(BATCH_INPUTS.correctIds, 'int64', [rows(nLayers - 1)]);
  const incorrectIds = b.input(BATCH_INPUTS.incorrectIds, 'int64', [rows(nLayers - 1)]);

  const scalarAt = (x: Value, i: number) => b.node('Gather', [x, b.constant('int64', [], [i])], { axis: 0 }, { dtype: 'int64', shape: [] });
  const slice = (x: Value, from: Value | null, to: Value, dim: string) => {
    const begin = from ? raw.unsqueeze(b, from, [0]) : b.ints([0]);
    return b.node('Slice', [x, begin, raw.unsqueeze(b, to, [0]), b.ints([0])], {}, { dtype: x.dtype, shape: [dim, ...x.shape.slice(1)] });
  };
  /** x [examples, layer, ...] at layer l for the examples `index` names → [index, ...], in the compute type. */
  const atLayer = (x: Value, l: number, index: Value) => {
    const layer = b.node('Gather', [x, b.constant('int64', [], [l])], { axis: 1 }, { dtype: x.dtype, shape: [x.shape[0], ...x.shape.slice(2)] });
    const picked = b.node('Gather', [layer, index], { axis: 0 }, { dtype: x.dtype, shape: [index.shape[0], ...layer.shape.slice(1)] });
    return raw.cast(b, picked, b.floatType);
  };
  // The rows of each layer's batch: the first entered[l]; those entering there are entered[l−1]…entered[l]−1.
  const activeIndex: Value[] = [];
  const joining: Array<Value | null> = [];
  for (let l = 0; l < nLayers; l++) {
    const end = scalarAt(entered, l);
    activeIndex.push(slice(exampleIndex, null, end, rows(l)));
    joining.push(l === 0 ? null : slice(exampleIndex, scalarAt(entered, l - 1), end, `joining_${l}`));
  }
  const prefix: KeyValues = {
    keys: activeIndex.map((index, l) => atLayer(corruptedKeys, l, index)),
    values: activeIndex.map((index, l) => atLayer(corruptedValues, l, index)),
  };

  const residual = arch.forward(
    ops,
    w,
    ids,
    (kind, l, value) => {
      let x = value;
      if (kind === 'resid_pre' && l > 0) {
        const joined = atLayer(corruptedResidPre, l, joining[l]!);
        x = b.node('Concat', [x, joined], { axis: 0 }, { dtype: x.dtype, shape: [rows(l), ...x.shape.slice(1)] });
      }
      const active = scalarAt(entered, l);
      const mask = masks[kind];
      const layerMask = b.node(
        'Gather',
        [slice(mask, null, active, rows(l)), b.constant('int64', [], [l])],
        { axis: 1 },
        { dtype: mask.dtype, shape: [rows(l), ...mask.shape.slice(2)] },
      );
      const m = raw.cast(b, raw.unsqueeze(b, layerMask, [layerMask.shape.length]), x.dtype);
      return raw.add(b, x, raw.mul(b, m, raw.sub(b, atLayer(clean[kind], l, activeIndex[l]), x)));
    },
    undefined,
    undefined,
    { reuse: prefix, start },
  );
  b.output(logitDiff(arch, ops, w, residual, { cleanIds: ids, corruptedIds: ids, lastPosition, correctIds, incorrectIds }), PATCHED_LOGIT_DIFF);
}
