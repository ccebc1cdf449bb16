// Faithfulness over circuit sizes: the top-n circuits and random ones, and the area under each curve.
import { type Circuit, type FaithfulnessCurve, pruneDangling, topEdges } from '../../shared/circuit';
import { seededRandom } from '../../lib/dataset/random';

/**
 * Circuit sizes from 0 to every edge: 0, then `points` − 1 sizes spaced evenly in log(n) from 1 to `total`
 * (rounded, duplicates dropped), so the small circuits that matter get most of the points.
 */
export function curveSizes(total: number, points: number): number[] {
  const sizes = new Set<number>([0, total]);
  const steps = Math.max(1, points - 2);
  for (let i = 0; i <= steps; i++) sizes.add(Math.min(total, Math.round(Math.exp((Math.log(Math.max(total, 1)) * i) / steps))));
  return [...sizes].filter((n) => n <= total).sort((a, b) => a - b);
}

/**
 * The curve at exactly the sizes asked (a claims file's claimed sizes: each claim is read from a measured value, never
 * an interpolated one), with 0 and `total` added for the area; sizes above `total` are dropped.
 */
export function exactSizes(total: number, sizes: readonly number[]): number[] {
  return [...new Set([0, total, ...sizes.filter((n) => n <= total)])].sort((a, b) => a - b);
}

/** Area under y over x ∈ [0, 1] by trapezoids. */
export function trapezoidArea(xs: readonly number[], ys: readonly number[]): number {
  let area = 0;
  for (let i = 1; i < xs.length; i++) area += ((xs[i] - xs[i - 1]) * (ys[i] + ys[i - 1])) / 2;
  return area;
}

/**
 * The measured curve: at each size n the top-n circuit (by |score|, pruned as topEdges does) and the mean over
 * `draws` circuits of n edges drawn uniformly at random (pruned the same way), seeded; with the edges each kept.
 * `include` adds sizes to the spaced ones (the circuit's own, so that its size is measured, never interpolated).
 */
export async function faithfulnessCurve(
  circuit: Pick<Circuit, 'nodes' | 'edges'>,
  options: { points: number; draws: number; seed: number; sizes?: readonly number[]; include?: readonly number[] },
  measure: (inCircuit: readonly number[]) => Promise<number>,
): Promise<FaithfulnessCurve> {
  const total = circuit.edges.length;
  const spaced = options.sizes ? exactSizes(total, options.sizes) : curveSizes(total, options.points);
  const edges = [...new Set([...spaced, ...(options.include ?? []).filter((n) => n <= total)])].sort((a, b) => a - b);
  const random = seededRandom(options.seed);
  const all = circuit.edges.map((_, i) => i);
  const faithfulness: number[] = [];
  const randomMeans: number[] = [];
  const kept: number[] = [];
  const randomKept: number[] = [];
  for (const n of edges) {
    const top = topEdges(circuit, n);
    faithfulness.push(await measure(top));
    kept.push(top.length);
    let sum = 0;
    let keptSum = 0;
    for (let d = 0; d < options.draws; d++) {
      const drawn = pruneDangling(circuit.edges, random.sample(all, n), circuit.nodes);
      sum += await measure(drawn);
      keptSum += drawn.length;
    }
    randomMeans.push(options.draws > 0 ? sum / options.draws : NaN);
    randomKept.push(keptSum / Math.max(1, options.draws));
  }
  const xs = edges.map((n) => (total > 0 ? n / total : 0));
  return {
    edges,
    faithfulness,
    random: randomMeans,
    kept,
    ...(options.draws > 0 ? { randomKept } : {}),
    randomDraws: options.draws,
    randomSeed: options.seed,
    area: trapezoidArea(xs, faithfulness),
    randomArea: trapezoidArea(xs, randomMeans),
  };
}
