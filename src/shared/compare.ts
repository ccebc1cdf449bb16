// Comparing Results: the seed notebook's real use (the same TinySQL feature across base models and command sets,
// IOI across models). Pure functions over Result values, shared by `atp compare`, `atp sweep`'s summary and the
// panel's Compare view, so this file imports nothing at run time but src/shared/.
//
// Runs of the same shape (layers × heads) are compared cell by cell: B − A on one diverging scale. Runs of different
// shapes have no common cells, so they are compared by where along the model's depth the attribution sits (each
// per-layer profile resampled to one grid of normalised depths, ranked by Spearman) and by which heads, or which
// depth bins for different shapes, carry the largest |attribution| (Jaccard of the top k).
import { edgeName, type Circuit } from './circuit';
import type { Result } from './result';
import { symmetricMax } from './colorScale';

/** Points of the common depth grid that layer profiles are resampled to. */
export const DEPTH_POINTS = 10;

/** How many heads count as "top" in overlaps and concentration, unless the caller says otherwise. */
export const DEFAULT_TOP_K = 5;

/** B − A cell by cell; throws when the shapes differ (the caller checks sameShape first). */
export function differenceMap(a: readonly (readonly number[])[], b: readonly (readonly number[])[]): number[][] {
  if (!sameShape(a, b)) throw new Error(`differenceMap: shapes differ (${shapeOf(a).join('×')} and ${shapeOf(b).join('×')})`);
  return b.map((row, i) => row.map((value, j) => value - a[i][j]));
}

/** [rows, columns of the first row]. */
export function shapeOf(matrix: readonly (readonly number[])[]): [number, number] {
  return [matrix.length, matrix[0]?.length ?? 0];
}

export function sameShape(a: readonly (readonly number[])[], b: readonly (readonly number[])[]): boolean {
  return a.length === b.length && a.every((row, i) => row.length === b[i].length);
}

/** Σ|value| per layer (row): where along the model the attribution sits, whatever its sign. */
export function layerProfile(heads: readonly (readonly number[])[]): number[] {
  return heads.map((row) => row.reduce((sum, value) => sum + Math.abs(value), 0));
}

/**
 * A per-layer profile on a common grid of normalised depths: layer ℓ of L sits at depth (ℓ + ½)/L (the middle of its
 * slice of the model), grid point i of n at (i + ½)/n; values between layer centres are interpolated linearly, and
 * beyond the first or last centre held at that layer's value. A 2-layer and a 24-layer model then line up by depth.
 */
export function resampleProfile(profile: readonly number[], points = DEPTH_POINTS): number[] {
  const layers = profile.length;
  if (layers === 0) return new Array<number>(points).fill(0);
  return Array.from({ length: points }, (_, i) => {
    // The grid point in layer units: depth·L − ½, so that layer centres fall on integers.
    const x = ((i + 0.5) / points) * layers - 0.5;
    if (x <= 0) return profile[0];
    if (x >= layers - 1) return profile[layers - 1];
    const below = Math.floor(x);
    const t = x - below;
    return profile[below] * (1 - t) + profile[below + 1] * t;
  });
}

/** Ranks from 1, ties sharing their mean rank (so Spearman is Pearson of these). */
export function ranks(values: readonly number[]): number[] {
  const order = values.map((value, index) => ({ value, index })).sort((a, b) => a.value - b.value);
  const result = new Array<number>(values.length);
  for (let start = 0; start < order.length;) {
    let end = start;
    while (end + 1 < order.length && order[end + 1].value === order[start].value) end++;
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) result[order[k].index] = rank;
    start = end + 1;
  }
  return result;
}

/** Pearson correlation; null when either side is constant (no ranking to agree with) or the lengths differ or are < 2. */
export function pearson(a: readonly number[], b: readonly number[]): number | null {
  if (a.length !== b.length || a.length < 2) return null;
  const mean = (values: readonly number[]) => values.reduce((s, v) => s + v, 0) / values.length;
  const ma = mean(a);
  const mb = mean(b);
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  if (saa === 0 || sbb === 0) return null;
  return sab / Math.sqrt(saa * sbb);
}

/** Spearman rank correlation with tied ranks averaged; null where Pearson is. */
export function spearman(a: readonly number[], b: readonly number[]): number | null {
  return pearson(ranks(a), ranks(b));
}

export interface HeadCell {
  layer: number;
  head: number;
  value: number;
}

/** The k cells of largest |value|; ties keep layer, then head order (as topHeads in result.ts). */
export function topCells(heads: readonly (readonly number[])[], k: number): HeadCell[] {
  const all = heads.flatMap((row, layer) => row.map((value, head) => ({ layer, head, value })));
  all.sort((a, b) => Math.abs(b.value) - Math.abs(a.value) || a.layer - b.layer || a.head - b.head);
  return all.slice(0, Math.max(0, Math.floor(k)));
}

/** |A ∩ B| / |A ∪ B|; 1 for two empty sets (nothing to disagree on). */
export function jaccard<T>(a: Iterable<T>, b: Iterable<T>): number {
  const left = new Set(a);
  const right = new Set(b);
  const union = new Set([...left, ...right]);
  if (union.size === 0) return 1;
  let both = 0;
  for (const item of left) if (right.has(item)) both++;
  return both / union.size;
}

/**
 * The slice of the model's depth that layer ℓ of L sits in, on a grid of `slices` equal slices (the shallower
 * model's layers, when two models are compared): the slice its centre (ℓ + ½)/L falls in.
 */
export function depthSlice(layer: number, layers: number, slices: number): number {
  return Math.min(slices - 1, Math.floor(((layer + 0.5) / layers) * slices));
}

export interface TopOverlap {
  k: number;
  /** 'heads': the same (layer, head) cells, for runs of one shape; 'depth': the depth slices the top heads sit in. */
  by: 'heads' | 'depth';
  jaccard: number;
  /** The shared items: "L1H2" for heads, "depth 0.50–1.00" for slices. */
  shared: string[];
}

/**
 * Jaccard of the k heads of largest |attribution| in each run. With one shape the heads themselves are compared;
 * otherwise head L3H2 of a 4-layer model means nothing in a 24-layer one, so each top head is replaced by the slice
 * of depth it sits in — the shallower model's layers, so that each slice holds at least one layer of each — and
 * the sets of slices are compared.
 */
export function topKOverlap(a: readonly (readonly number[])[], b: readonly (readonly number[])[], k = DEFAULT_TOP_K): TopOverlap {
  const byHeads = sameShape(a, b);
  const slices = Math.max(1, Math.min(a.length, b.length));
  const key = (cell: HeadCell, layers: number): string => {
    if (byHeads) return `L${cell.layer}H${cell.head}`;
    const slice = depthSlice(cell.layer, layers, slices);
    return `depth ${(slice / slices).toFixed(2)}–${((slice + 1) / slices).toFixed(2)}`;
  };
  const left = topCells(a, k).map((cell) => key(cell, a.length));
  const right = topCells(b, k).map((cell) => key(cell, b.length));
  const rightSet = new Set(right);
  return { k, by: byHeads ? 'heads' : 'depth', jaccard: jaccard(left, right), shared: [...new Set(left.filter((item) => rightSet.has(item)))] };
}

export interface Concentration {
  k: number;
  /** Σ|attribution| over all heads (normalised-metric units). */
  total: number;
  /** Share of Σ|attribution| in the k largest heads (k/N when it is spread evenly, 1 when k heads hold it all); null when the total is 0. */
  topKShare: number | null;
  /** Shannon entropy of p = |a|/Σ|a| over heads divided by ln N: 0 when one head holds everything, 1 when spread evenly; null when the total is 0 or N = 1. */
  normalisedEntropy: number | null;
  /** exp(entropy): how many heads the attribution is effectively spread over; null when the total is 0. */
  effectiveHeads: number | null;
}

/** How concentrated a head map's |attribution| is: a few heads (a circuit-like result) or everywhere. */
export function concentration(heads: readonly (readonly number[])[], k = DEFAULT_TOP_K): Concentration {
  const magnitudes = heads.flat().map(Math.abs);
  const total = magnitudes.reduce((s, v) => s + v, 0);
  if (!(total > 0)) return { k, total: 0, topKShare: null, normalisedEntropy: null, effectiveHeads: null };
  const top = [...magnitudes].sort((x, y) => y - x).slice(0, Math.max(0, Math.floor(k)));
  let entropy = 0;
  for (const m of magnitudes) if (m > 0) entropy -= (m / total) * Math.log(m / total);
  return {
    k,
    total,
    topKShare: top.reduce((s, v) => s + v, 0) / total,
    normalisedEntropy: magnitudes.length > 1 ? entropy / Math.log(magnitudes.length) : null,
    effectiveHeads: Math.exp(entropy),
  };
}

export interface CircuitDifference {
  /** Edge names (EAP-IG's "a0.h1->a2.h3<q>") in B's circuit and not in A's, in B's order. */
  added: string[];
  /** In A's circuit and not in B's, in A's order. */
  removed: string[];
  /** In both. */
  kept: number;
}

/** Which circuit edges B adds to A's circuit and which it drops, by edge name (the circuits' own kept edges, inCircuit). */
export function circuitDifference(a: Pick<Circuit, 'edges' | 'inCircuit'>, b: Pick<Circuit, 'edges' | 'inCircuit'>): CircuitDifference {
  const names = (c: Pick<Circuit, 'edges' | 'inCircuit'>) => c.inCircuit.map((index) => edgeName(c.edges[index]));
  const left = names(a);
  const right = names(b);
  const leftSet = new Set(left);
  const rightSet = new Set(right);
  return {
    added: right.filter((name) => !leftSet.has(name)),
    removed: left.filter((name) => !rightSet.has(name)),
    kept: left.filter((name) => rightSet.has(name)).length,
  };
}

/** What a sweep summary and a comparison show of one run. */
export interface RunDigest {
  label: string;
  model: string;
  layers: number;
  heads: number;
  dataset: string;
  examples: number;
  cleanLogitDiff: number;
  corruptedLogitDiff: number;
  method: string;
  topHeads: HeadCell[];
  concentration: Concentration;
  /** Σ|attribution| per layer, and resampled to the DEPTH_POINTS grid. */
  layerProfile: number[];
  depthProfile: number[];
}

export function digestRun(label: string, result: Result, k = DEFAULT_TOP_K): RunDigest {
  return {
    label,
    model: result.model.source,
    layers: result.model.layers,
    heads: result.model.heads,
    dataset: result.dataset.file,
    examples: result.dataset.examples,
    cleanLogitDiff: result.metric.cleanLogitDiff,
    corruptedLogitDiff: result.metric.corruptedLogitDiff,
    method: result.run?.method ?? 'atp',
    topHeads: topCells(result.heads, k),
    concentration: concentration(result.heads, k),
    layerProfile: layerProfile(result.heads),
    depthProfile: resampleProfile(layerProfile(result.heads)),
  };
}

/** One run against the first (the baseline A). */
export interface PairComparison {
  /** Labels of A and B. */
  a: string;
  b: string;
  sameShape: boolean;
  /** B − A of the head maps, when the shapes match; null otherwise. */
  headDifference: number[][] | null;
  /** B − A of the position maps, when both exist with one shape (same prompt length); null otherwise. */
  positionDifference: number[][] | null;
  /** Largest |B − A| over the head difference (null without one). */
  maxHeadChange: number | null;
  /** Spearman of the depth profiles (null when either is flat). */
  depthSpearman: number | null;
  topOverlap: TopOverlap;
  /** Present when both Results carry a circuit. */
  circuit?: CircuitDifference;
}

export const COMPARISON_SCHEMA = 'attribution-patching/comparison@1';

export interface Comparison {
  schema: typeof COMPARISON_SCHEMA;
  k: number;
  depthPoints: number;
  runs: RunDigest[];
  /** Every run after the first against the first. */
  pairs: PairComparison[];
  /** One symmetric colour scale ±scale for every head difference map (and another for position maps), so equal colours mean equal changes. */
  headScale: number;
  positionScale: number;
}

/** Compares every run with the first: differences on one scale where shapes match, depth profiles and top-k overlap always. */
export function compareRuns(runs: ReadonlyArray<{ label: string; result: Result }>, k = DEFAULT_TOP_K): Comparison {
  if (runs.length < 2) throw new Error('compareRuns: needs at least two runs');
  const digests = runs.map((run) => digestRun(run.label, run.result, k));
  const [base, ...others] = runs;
  const pairs = others.map((other, index): PairComparison => {
    const a = base.result;
    const b = other.result;
    const same = sameShape(a.heads, b.heads);
    const headDifference = same ? differenceMap(a.heads, b.heads) : null;
    const positionDifference = a.positions && b.positions && sameShape(a.positions, b.positions) ? differenceMap(a.positions, b.positions) : null;
    const pair: PairComparison = {
      a: base.label,
      b: other.label,
      sameShape: same,
      headDifference,
      positionDifference,
      maxHeadChange: headDifference ? symmetricMax(headDifference.flat()) : null,
      depthSpearman: spearman(digests[0].depthProfile, digests[index + 1].depthProfile),
      topOverlap: topKOverlap(a.heads, b.heads, k),
    };
    if (a.circuit && b.circuit) pair.circuit = circuitDifference(a.circuit, b.circuit);
    return pair;
  });
  const maxAbs = (maps: Array<number[][] | null>) => symmetricMax(maps.flatMap((m) => (m ? m.flat() : [])));
  return {
    schema: COMPARISON_SCHEMA,
    k,
    depthPoints: DEPTH_POINTS,
    runs: digests,
    pairs,
    headScale: maxAbs(pairs.map((p) => p.headDifference)),
    positionScale: maxAbs(pairs.map((p) => p.positionDifference)),
  };
}
