// Batches of examples and the tensors fed to each graph kind: token ids, answer positions, patch masks, prompts.
import * as ort from 'onnxruntime-node';
import { InputError } from '../../shared/errors';
import { fieldRef } from '../../shared/fields';
import { BATCH_INPUTS, LOGIT_DIFF_INPUT } from './graphs';
import type { HookKind } from '../architectures/types';
import type { Precision } from '../../shared/result';
import type { PreparedExample } from './examples';

export function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new InputError(`${fieldRef('batchSize')} must be a positive integer, got ${batchSize}`, { field: 'batchSize' });
}

/** Groups examples into batches of similar length (less padding); each batch keeps the examples' indices. */
export function makeBatches(prepared: readonly PreparedExample[], batchSize: number): number[][] {
  checkBatchSize(batchSize);
  const order = prepared.map((_, i) => i).sort((a, b) => prepared[a].tokens.length - prepared[b].tokens.length || a - b);
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
  return batches;
}

/** The longest prompt's token count; a loop, since Math.max(...x) overflows the stack for large datasets. */
export function longestPrompt(rows: readonly PreparedExample[]): number {
  return longest(rows.map((row) => row.tokens.length));
}

function longest(lengths: readonly number[]): number {
  let max = 0;
  for (const length of lengths) max = Math.max(max, length);
  return max;
}

/** The type of a graph's float inputs: float32 under float16 compute too (see GraphBuilder.wideType). */
export const feedType = (precision: Precision): 'float32' | 'float64' => (precision === 'float64' ? 'float64' : 'float32');
const floatArray = (precision: Precision, length: number) => (precision === 'float64' ? new Float64Array(length) : new Float32Array(length));
const idTensor = (values: readonly number[]) =>
  new ort.Tensor(
    'int64',
    BigInt64Array.from(values, (v) => BigInt(v)),
    [values.length],
  );

/** The one-hot answer position of each row, [batch, seq]. */
function lastPositions(lengths: readonly number[], seq: number, precision: Precision): ort.Tensor {
  const last = floatArray(precision, lengths.length * seq);
  lengths.forEach((length, i) => (last[i * seq + length - 1] = 1));
  return new ort.Tensor(feedType(precision), last, [lengths.length, seq]);
}

/** Feeds for a batch of rows, right-padded to the longest row (pad id 0 in both runs, so it never differs). */
export function batchFeeds(rows: readonly PreparedExample[], precision: Precision): { feeds: Record<string, ort.Tensor>; seq: number } {
  const batch = rows.length;
  const seq = longest(rows.map((r) => r.tokens.length));
  const clean = new BigInt64Array(batch * seq);
  const corrupted = new BigInt64Array(batch * seq);
  rows.forEach((row, i) => {
    row.tokens.forEach((t, p) => (clean[i * seq + p] = BigInt(t.id)));
    row.corruptedTokens.forEach((t, p) => (corrupted[i * seq + p] = BigInt(t.id)));
  });
  return {
    seq,
    feeds: {
      [BATCH_INPUTS.cleanIds]: new ort.Tensor('int64', clean, [batch, seq]),
      [BATCH_INPUTS.corruptedIds]: new ort.Tensor('int64', corrupted, [batch, seq]),
      [BATCH_INPUTS.lastPosition]: lastPositions(
        rows.map((r) => r.tokens.length),
        seq,
        precision,
      ),
      [BATCH_INPUTS.correctIds]: idTensor(rows.map((r) => r.correctId)),
      [BATCH_INPUTS.incorrectIds]: idTensor(rows.map((r) => r.incorrectId)),
    },
  };
}

/** One patched activation of a row: a hook at a layer and position (and a head for hook_z). */
export interface RowPatch {
  hook: HookKind;
  layer: number;
  pos: number;
  head: number;
}

/** A prompt for the forward-only logit-difference graph. */
export interface PromptRow {
  ids: readonly number[];
  correctId: number;
  incorrectId: number;
}

/** Feeds of the logit-difference graph (see buildLogitDiffGraph), right-padded with id 0. */
export function promptFeeds(rows: readonly PromptRow[], precision: Precision): Record<string, ort.Tensor> {
  const seq = longest(rows.map((r) => r.ids.length));
  const ids = new BigInt64Array(rows.length * seq);
  rows.forEach((row, i) => row.ids.forEach((id, p) => (ids[i * seq + p] = BigInt(id))));
  return {
    [LOGIT_DIFF_INPUT]: new ort.Tensor('int64', ids, [rows.length, seq]),
    [BATCH_INPUTS.lastPosition]: lastPositions(
      rows.map((r) => r.ids.length),
      seq,
      precision,
    ),
    [BATCH_INPUTS.correctIds]: idTensor(rows.map((r) => r.correctId)),
    [BATCH_INPUTS.incorrectIds]: idTensor(rows.map((r) => r.incorrectId)),
  };
}

export const asNumbers = (tensor: ort.Tensor) => Array.from(tensor.data as Float32Array | Float64Array);
