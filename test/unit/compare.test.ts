// The comparison logic of `atp compare`, the sweep summary and the panel's Compare view, against values worked out
// by hand (each expected number is derived in the comment beside it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  circuitDifference,
  compareRuns,
  concentration,
  depthSlice,
  differenceMap,
  jaccard,
  layerProfile,
  ranks,
  resampleProfile,
  spearman,
  topKOverlap,
} from '../../src/shared/compare';
import { comparisonResult } from '../support/comparisonResults';
import type { Circuit, CircuitEdge } from '../../src/shared/circuit';

const close = (actual: number | null, expected: number, tolerance = 1e-12) =>
  assert.ok(actual !== null && Math.abs(actual - expected) <= tolerance, `${actual} ≉ ${expected}`);

test('difference map is B − A; different shapes are refused', () => {
  assert.deepEqual(
    differenceMap(
      [
        [1, 2],
        [3, 4],
      ],
      [
        [1.5, 0],
        [3, 10],
      ],
    ),
    [
      [0.5, -2],
      [0, 6],
    ],
  );
  assert.throws(() => differenceMap([[1, 2]], [[1, 2, 3]]), /shapes differ \(1×2 and 1×3\)/);
});

test('layer profile is Σ|value| per layer; resampling puts layer ℓ of L at depth (ℓ+½)/L', () => {
  assert.deepEqual(
    layerProfile([
      [1, -2],
      [0.5, 0.5],
    ]),
    [3, 1],
  );
  // L = 2, 4 points: depths 0.125, 0.375, 0.625, 0.875 → layer units x = 2·depth − ½ = −0.25, 0.25, 0.75, 1.25:
  // held at 1, then 1·0.75 + 3·0.25 = 1.5, 1·0.25 + 3·0.75 = 2.5, held at 3.
  assert.deepEqual(resampleProfile([1, 3], 4), [1, 1.5, 2.5, 3]);
  // L = n: every grid point is a layer centre, so the profile comes back unchanged.
  assert.deepEqual(resampleProfile([4, 1, 3, 2], 4), [4, 1, 3, 2]);
  // One layer: constant over depth.
  assert.deepEqual(resampleProfile([7], 3), [7, 7, 7]);
  // L = 4 onto 2 points: x = 4·0.25 − ½ = 0.5 and 4·0.75 − ½ = 2.5: midpoints of layers 0–1 and 2–3.
  assert.deepEqual(resampleProfile([4, 2, 6, 0], 2), [3, 3]);
});

test('Spearman: ranks with ties averaged', () => {
  assert.deepEqual(ranks([10, 30, 20, 30]), [1, 3.5, 2, 3.5]);
  // Ranks 1 2 3 4 and 1 2 4 3: Σd² = 2, ρ = 1 − 6·2/(4·15) = 0.8.
  close(spearman([1, 2, 3, 4], [10, 20, 40, 30]), 0.8);
  // Ranks 1.5 1.5 3 and 1 2 3: deviations (−.5, −.5, 1) and (−1, 0, 1): 1.5 / √(1.5·2) = √3/2.
  close(spearman([1, 1, 2], [1, 2, 3]), Math.sqrt(3) / 2);
  close(spearman([1, 2, 3], [3, 2, 1]), -1);
  assert.equal(spearman([1, 1, 1], [1, 2, 3]), null, 'a flat profile has no ranking');
  assert.equal(spearman([1], [1]), null);
});

test('top-k overlap: Jaccard of the heads for one shape, of depth slices across shapes', () => {
  assert.equal(jaccard(['a', 'b'], ['b', 'c']), 1 / 3);
  assert.equal(jaccard([], []), 1);
  // Top 2 of A: L0H0 (0.5), L1H1 (0.4); of B: L1H0 (0.9), L0H0 (0.5): one shared of three.
  const same = topKOverlap(
    [
      [0.5, 0.1],
      [0.05, -0.4],
    ],
    [
      [0.5, 0.3],
      [-0.9, 0],
    ],
    2,
  );
  assert.deepEqual(same, { k: 2, by: 'heads', jaccard: 1 / 3, shared: ['L0H0'] });
  // Two layers against four: slices are the shallower model's two halves. Layer centres of the 4-layer model
  // (0.125, 0.375, 0.625, 0.875) put layers 0–1 in the first half, 2–3 in the second.
  assert.deepEqual(
    [0, 1, 2, 3].map((l) => depthSlice(l, 4, 2)),
    [0, 0, 1, 1],
  );
  // A's top head L1H0 is in the second half; B's (L0H1, L1H0) both in the first: no overlap.
  const across = topKOverlap(
    [
      [0, 0.1],
      [0.9, 0],
    ],
    [
      [0, 1],
      [0.8, 0],
      [0, 0],
      [0.1, 0],
    ],
    1,
  );
  assert.deepEqual(across, { k: 1, by: 'depth', jaccard: 0, shared: [] });
  // B's top head at layer 3 (second half): shared.
  const shared = topKOverlap(
    [
      [0, 0.1],
      [0.9, 0],
    ],
    [
      [0, 0],
      [0, 0],
      [0, 0],
      [0.7, 0],
    ],
    1,
  );
  assert.deepEqual(shared, { k: 1, by: 'depth', jaccard: 1, shared: ['depth 0.50–1.00'] });
});

test('concentration: top-k share, normalised entropy and effective number of heads', () => {
  // |a| = 3, 1, 0, 0: total 4, top 1 holds 3/4; p = (.75, .25): H = −(.75 ln .75 + .25 ln .25), over ln 4 heads.
  const h = -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25));
  const c = concentration(
    [
      [3, -1],
      [0, 0],
    ],
    1,
  );
  assert.equal(c.total, 4);
  close(c.topKShare, 0.75);
  close(c.normalisedEntropy, h / Math.log(4));
  close(c.effectiveHeads, Math.exp(h));
  // Evenly spread: k/N, entropy 1, every head effective.
  const even = concentration(
    [
      [1, -1],
      [1, 1],
    ],
    1,
  );
  close(even.topKShare, 0.25);
  close(even.normalisedEntropy, 1);
  close(even.effectiveHeads, 4);
  // One head holds all: share 1, entropy 0, one effective head.
  const one = concentration(
    [
      [0, 0],
      [0, -2],
    ],
    2,
  );
  close(one.topKShare, 1);
  close(one.normalisedEntropy, 0);
  close(one.effectiveHeads, 1);
  assert.deepEqual(concentration([[0, 0]], 1), { k: 1, total: 0, topKShare: null, normalisedEntropy: null, effectiveHeads: null });
});

test("circuit difference: edges added and removed by edge name, from each circuit's kept edges", () => {
  const edge = (from: string, to: string, input: CircuitEdge['input'], score: number): CircuitEdge => ({ from, to, input, score });
  const circuit = (edges: CircuitEdge[], inCircuit: number[]): Pick<Circuit, 'edges' | 'inCircuit'> => ({ edges, inCircuit });
  const a = circuit([edge('input', 'a0.h0', 'q', 0.5), edge('a0.h0', 'logits', null, 0.4), edge('input', 'm0', null, 0.1)], [0, 1]);
  // B keeps input->a0.h0<q> (at another index), drops a0.h0->logits, adds m0->logits; its third edge is scored but not kept.
  const b = circuit([edge('m0', 'logits', null, 0.6), edge('input', 'a0.h0', 'q', 0.3), edge('a0.h0', 'logits', null, 0.01)], [0, 1]);
  assert.deepEqual(circuitDifference(a, b), { added: ['m0->logits'], removed: ['a0.h0->logits'], kept: 1 });
  assert.deepEqual(circuitDifference(a, a), { added: [], removed: [], kept: 2 });
});

test('compareRuns: every run against the first, differences on one scale, profiles and overlap across shapes', () => {
  const a = comparisonResult(
    [
      [0.5, 0.1],
      [0.05, -0.4],
    ],
    [
      [0, 1],
      [0, 2],
    ],
    'A',
  );
  const b = comparisonResult(
    [
      [0.5, 0.3],
      [-0.9, 0],
    ],
    [
      [0, 1.5],
      [0, 2],
    ],
    'B',
  );
  const c = comparisonResult(
    [
      [0.2, 0.1],
      [0.1, 0.1],
      [0, 0],
      [0.4, 0],
    ],
    null,
    'C',
  );
  const comparison = compareRuns(
    [
      { label: 'a', result: a },
      { label: 'b', result: b },
      { label: 'c', result: c },
    ],
    2,
  );
  assert.equal(comparison.runs.length, 3);
  assert.deepEqual(
    comparison.runs.map((r) => r.model),
    ['A', 'B', 'C'],
  );
  const [ab, ac] = comparison.pairs;
  assert.equal(ab.sameShape, true);
  assert.deepEqual(
    ab.headDifference!.map((row) => row.map((v) => Math.round(v * 1e12) / 1e12)),
    [
      [0, 0.2],
      [-0.95, 0.4],
    ],
  );
  assert.deepEqual(ab.positionDifference, [
    [0, 0.5],
    [0, 0],
  ]);
  close(ab.maxHeadChange, 0.95);
  assert.equal(ac.sameShape, false);
  assert.equal(ac.headDifference, null);
  assert.equal(ac.positionDifference, null);
  assert.equal(ac.topOverlap.by, 'depth');
  // One scale over every difference map: the largest |B − A| of all pairs.
  close(comparison.headScale, 0.95);
  close(comparison.positionScale, 0.5);
  // Profiles: A = (0.6, 0.45) falls with depth, B = (0.8, 0.9) rises; on the 10-point grid both are held flat over the
  // first and last three points (beyond the layer centres), so their tied ranks mirror each other: ρ = −1 exactly.
  assert.equal(comparison.runs[0].depthProfile.length, 10);
  assert.deepEqual(comparison.runs[0].layerProfile, [0.6, 0.45]);
  close(ab.depthSpearman, -1);
  assert.equal(ab.circuit, undefined, 'no circuits, no circuit difference');
  assert.throws(() => compareRuns([{ label: 'a', result: a }]), /at least two runs/);
});
