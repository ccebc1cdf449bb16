import type { LoadedModel } from './model/load';
import type { Dataset } from './dataset/types';
import { runActivationPatching, runAttributionPatching, type RunOptions } from './patching';
import type { Result } from './result';

/**
 * Checking attribution patching against exact activation patching (TransformerLens' habit): both for every head
 * at the answer position, summed over examples — the layer × head heatmap — and how well they agree.
 */

export interface RankedHead {
  layer: number;
  head: number;
  value: number;
}

export interface HeadValidation {
  /** Attribution patching, the full Result. */
  result: Result;
  /** Exact activation patching of each head's z at the answer position, summed over examples [layer][head]. */
  exact: number[][];
  /** Spearman rank correlation and Pearson correlation between the two head matrices. */
  spearman: number;
  pearson: number;
  /** The k heads with the largest |value| by each method, and how many of them both name. */
  topByAttribution: RankedHead[];
  topByActivationPatching: RankedHead[];
  topOverlap: number;
}

/** Ranks with ties sharing their average rank. */
function ranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const result = new Array<number>(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && order[end + 1][0] === order[start][0]) end++;
    for (let k = start; k <= end; k++) result[order[k][1]] = (start + end) / 2;
    start = end + 1;
  }
  return result;
}

export function pearson(a: readonly number[], b: readonly number[]): number {
  const n = a.length;
  const meanA = a.reduce((s, v) => s + v, 0) / n;
  const meanB = b.reduce((s, v) => s + v, 0) / n;
  let cov = 0;
  let varA = 0;
  let varB = 0;
  for (let i = 0; i < n; i++) {
    cov += (a[i] - meanA) * (b[i] - meanB);
    varA += (a[i] - meanA) ** 2;
    varB += (b[i] - meanB) ** 2;
  }
  return varA > 0 && varB > 0 ? cov / Math.sqrt(varA * varB) : 0;
}

export function spearman(a: readonly number[], b: readonly number[]): number {
  return pearson(ranks(a), ranks(b));
}

export function rankHeads(matrix: number[][], k: number): RankedHead[] {
  return matrix
    .flatMap((row, layer) => row.map((value, head) => ({ layer, head, value })))
    .sort((p, q) => Math.abs(q.value) - Math.abs(p.value) || p.layer - q.layer || p.head - q.head)
    .slice(0, k);
}

export async function validateHeads(model: LoadedModel, dataset: Dataset, options: RunOptions, k = 3): Promise<HeadValidation> {
  const result = await runAttributionPatching(model, dataset, options);
  const patched = await runActivationPatching(model, dataset, { ...options, components: 'heads-at-answer' });
  const exact = result.heads.map((row, layer) =>
    row.map((_, head) => patched.examples.reduce((sum, example) => sum + example.z[layer][example.z[layer].length - 1][head], 0)),
  );
  const topByAttribution = rankHeads(result.heads, k);
  const topByActivationPatching = rankHeads(exact, k);
  const key = (h: RankedHead) => `${h.layer}.${h.head}`;
  const exactKeys = new Set(topByActivationPatching.map(key));
  return {
    result,
    exact,
    spearman: spearman(result.heads.flat(), exact.flat()),
    pearson: pearson(result.heads.flat(), exact.flat()),
    topByAttribution,
    topByActivationPatching,
    topOverlap: topByAttribution.filter((h) => exactKeys.has(key(h))).length,
  };
}
