import type { LoadedModel } from '../model/load';
import type { Dataset } from '../../lib/dataset/types';
import { runAttributionPatching } from './run';
import { runActivationPatching } from './activationPatching';
import type { RunOptions } from './options';
import type { Result } from '../../shared/result';
import { pearson, spearman } from '../../shared/statistics';

export { pearson, spearman };

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

export function rankHeads(matrix: number[][], k: number): RankedHead[] {
  return matrix
    .flatMap((row, layer) => row.map((value, head) => ({ layer, head, value })))
    .sort((p, q) => Math.abs(q.value) - Math.abs(p.value) || p.layer - q.layer || p.head - q.head)
    .slice(0, k);
}

/** AtP against exact patching for one heatmap: both matrices and how well they agree. */
export interface MapValidation {
  atp: number[][];
  exact: number[][];
  spearman: number;
  pearson: number;
}

/** The position map (resid_pre at every layer and position, summed over examples), exactly: prompts of one length only. */
export async function validatePositions(model: LoadedModel, dataset: Dataset, result: Result, options: RunOptions): Promise<MapValidation | null> {
  if (!result.positions) return null;
  const patched = await runActivationPatching(model, dataset, { ...options, components: 'resid-pre' });
  const exact = result.positions.map((row, layer) => row.map((_, pos) => patched.examples.reduce((sum, example) => sum + example.residPre[layer][pos], 0)));
  return { atp: result.positions, exact, spearman: spearman(result.positions.flat(), exact.flat()), pearson: pearson(result.positions.flat(), exact.flat()) };
}

/**
 * `method`: 'atp' (default), or 'atpstar' for AtP* with GradDrop (models of 2 or more layers), whose Result also
 * holds the query/key nodes and GradDrop of every head and position cell. Either way heads and positions are AtP:
 * the QK fix concerns query and key nodes.
 */
export async function validateHeads(
  model: LoadedModel,
  dataset: Dataset,
  options: RunOptions & { method?: 'atp' | 'atpstar' },
  k = 3,
): Promise<HeadValidation> {
  const method = options.method ?? 'atp';
  const result = await runAttributionPatching(model, dataset, { ...options, method, gradDrop: method === 'atpstar' && model.spec.nLayers >= 2 });
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
