import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, type Value } from '../../src/engine/graph/builder';
import { Ops } from '../../src/engine/graph/ops';
import { attentionCore } from '../../src/engine/architectures/common';
import { qkFix } from '../../src/engine/patching/atpStarGraph';
import { createSession } from '../../src/engine/process/runtime';
import { seededNormal } from '../support/random';

/**
 * The QK fix on hand-made tensors against a brute-force softmax in JavaScript (float64): attention so saturated
 * that every weight off a row's argmax underflows (score gaps of ~1000), and clean keys that dethrone the
 * argmax (δ ≈ −2000) or crown another key. A closed form that forms 1 − A_tp from exponentials would see no
 * other key at all there and report no change.
 */

const T = 6;
const H = 4;
const K = 2;
const D = 3;
const SCALE = 0.5;

interface Case {
  q: number[]; // [T, H, D]
  k: number[]; // [T, K, D]
  qClean: number[];
  kClean: number[];
  g: number[]; // [H, T, T]
}

function makeCase(): Case {
  const normal = seededNormal(7);
  const q = Array.from({ length: T * H * D }, () => normal());
  const k = Array.from({ length: T * K * D }, () => normal());
  // Huge, well-separated scores along the first component: gaps of ≥ 500 between keys (weights e^−500 and less).
  for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) q[(t * H + h) * D] = 40 * (1 + 0.1 * h);
  for (let p = 0; p < T; p++) for (let g = 0; g < K; g++) k[(p * K + g) * D] = 50 * ((p * 7) % T) + 10 * g;
  const qClean = q.map((x) => x + 0.3 * normal());
  const kClean = k.map((x) => x + 0.3 * normal());
  // Clean queries of odd rows point the other way: their argmax moves to the lowest-scoring key.
  for (let t = 1; t < T; t += 2) for (let h = 0; h < H; h++) qClean[(t * H + h) * D] = -40;
  // Dethrone: key 5's clean first component is very negative; crown: key 1's is the largest of all.
  for (let g = 0; g < K; g++) {
    kClean[(5 * K + g) * D] = -400;
    kClean[(1 * K + g) * D] = 600;
  }
  const g = Array.from({ length: H * T * T }, () => normal());
  return { q, k, qClean, kClean, g };
}

const dot = (a: number[], ai: number, b: number[], bi: number) => Array.from({ length: D }, (_, i) => a[ai + i] * b[bi + i]).reduce((s, x) => s + x, 0);

function softmax(row: number[]): number[] {
  const m = Math.max(...row);
  const e = row.map((x) => Math.exp(x - m));
  const z = e.reduce((s, x) => s + x, 0);
  return e.map((x) => x / z);
}

/** Brute force: rebuild each patched score row, soft-max it, dot the change with G. */
function bruteForce(c: Case): { q: number[]; k: number[] } {
  const rep = H / K;
  const qIndex = (t: number, h: number) => (t * H + h) * D;
  const kIndex = (p: number, g: number) => (p * K + g) * D;
  const row = (qs: number[], t: number, h: number, ks: number[], patchedKey = -1) =>
    Array.from({ length: t + 1 }, (_, s) => SCALE * dot(qs, qIndex(t, h), s === patchedKey ? c.kClean : ks, kIndex(s, Math.floor(h / rep))));
  const G = (h: number, t: number, s: number) => c.g[(h * T + t) * T + s];
  const qFix = new Array<number>(T * H).fill(0);
  const kFix = new Array<number>(T * K).fill(0);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < T; t++) {
      const a = softmax(row(c.q, t, h, c.k));
      const aq = softmax(row(c.qClean, t, h, c.k));
      qFix[t * H + h] = aq.reduce((s, x, j) => s + (x - a[j]) * G(h, t, j), 0);
      for (let p = 0; p <= t; p++) {
        const ak = softmax(row(c.q, t, h, c.k, p));
        kFix[p * K + Math.floor(h / rep)] += ak.reduce((s, x, j) => s + (x - a[j]) * G(h, t, j), 0);
      }
    }
  }
  return { q: qFix, k: kFix };
}

async function engine(c: Case, precision: 'float32' | 'float64'): Promise<{ q: number[]; k: number[] }> {
  const b = new GraphBuilder(precision);
  const ops = new Ops(b);
  const input = (name: string, shape: number[]) => b.input(name, precision, shape);
  const q = input('q', [1, T, H, D]);
  const k = input('k', [1, T, K, D]);
  const qClean = input('q_clean', [1, T, H, D]);
  const kClean = input('k_clean', [1, T, K, D]);
  const g = input('g', [1, H, T, T]);
  const mask = b.constant(
    precision,
    [T, T],
    Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) ? -1e9 : 0)),
  );
  let pattern: Value | undefined;
  attentionCore(ops, q, ops.repeatHeads(k, H / K), ops.repeatHeads(k, H / K), mask, SCALE, (p) => (pattern = p));
  const fix = qkFix(b, { q, k, v: k, mask, scale: SCALE, pattern }, { q: qClean, k: kClean }, g);
  b.output(fix.q, 'q_fix');
  b.output(fix.k, 'k_fix');
  const { session } = await createSession(b.toBytes(), 'cpu', { optimization: 'basic' });
  const Float = precision === 'float64' ? Float64Array : Float32Array;
  const tensor = (values: number[], dims: number[]) => new ort.Tensor(precision, Float.from(values), dims);
  const out = await session.run({
    q: tensor(c.q, [1, T, H, D]),
    k: tensor(c.k, [1, T, K, D]),
    q_clean: tensor(c.qClean, [1, T, H, D]),
    k_clean: tensor(c.kClean, [1, T, K, D]),
    g: tensor(c.g, [1, H, T, T]),
  });
  return { q: Array.from(out.q_fix.data as Float64Array), k: Array.from(out.k_fix.data as Float64Array) };
}

for (const [precision, tolerance] of [
  ['float64', 1e-12],
  ['float32', 1e-5],
] as const) {
  test(`QK fix under total saturation and dethroned argmaxes matches a brute-force softmax (${precision})`, async () => {
    const c = makeCase();
    const expected = bruteForce(c);
    const actual = await engine(c, precision);
    for (const key of ['q', 'k'] as const) {
      const scale = Math.max(...expected[key].map(Math.abs));
      const error = Math.max(...expected[key].map((x, i) => Math.abs(x - actual[key][i])));
      console.log(`${precision} ${key}: max error ${error.toExponential(2)}, largest ${scale.toExponential(2)}`);
      assert.ok(scale > 0.5, `${key}: the case has large effects`);
      assert.ok(actual[key].every(Number.isFinite), `${key}: finite`);
      assert.ok(error <= tolerance * scale, `${precision} ${key}: error ${error} vs ${scale}`);
    }
  });
}
