import type { Value } from '../graph/builder';
import { type Ops, raw } from '../graph/ops';

/**
 * RoPE's cos and sin of position·frequency, [seq, 1, dHead] (the frequencies repeated for both halves),
 * broadcasting over heads, WITHOUT evaluating Sin or Cos on the device.
 *
 * Why: Vulkan only requires sin/cos to be within 2^-11 absolute on [-π, π] (and nothing outside), and WebGPU
 * inherits that; SwiftShader's are off by 1.9e-4 even on [0, 3], which put a random Llama's attributions 1.5e-4
 * (relative to the largest) away from the CPU's; with these tables they are 2.5e-6 away, as for GPT-2. A float32 angle p·f is also itself off by ~p·6e-8 rad before any sine is taken (5e-4 rad at
 * position 10⁴). So the angles and their sines are computed on the host in float64, and the device only
 * combines them: with p = q·B + r (B = ⌈√maxPositions⌉, so both tables stay small: 2·363 rows for 131072
 * positions), cos(pf) = cos(qBf)cos(rf) − sin(qBf)sin(rf) and sin(pf) = sin(qBf)cos(rf) + cos(qBf)sin(rf).
 * Each table entry is correctly rounded to the graph's wide type (float32 under float16 compute, which rounds cos and sin once at the end), so the result is within a few ulp
 * (≤ 3·2^-24 ≈ 2e-7 absolute in float32) at every position on every device.
 */
export function rotaryTables(ops: Ops, positions: Value, inverseFrequencies: readonly number[], maxPositions: number): { cos: Value; sin: Value } {
  const b = ops.b;
  const half = inverseFrequencies.length;
  const seq = positions.shape[0];
  const { block, blocks } = rotaryBlocks(maxPositions);
  const tables = hostTables(inverseFrequencies, block, blocks);
  // Combined in the wide type and rounded to the compute type once, at the end (float16: one rounding, not four).
  const type = b.wideType;
  const constant = (values: number[], rows: number, hint: string) => b.constant(type, [rows, half], values, hint);
  const lowCos = constant(tables.lowCos, block, 'rope_cos_low');
  const lowSin = constant(tables.lowSin, block, 'rope_sin_low');
  const highCos = constant(tables.highCos, blocks, 'rope_cos_high');
  const highSin = constant(tables.highSin, blocks, 'rope_sin_high');

  // Integer Div truncates, which is floor for the non-negative positions.
  const blockSize = b.constant('int64', [], [block]);
  const q = b.node('Div', [positions, blockSize], {}, { dtype: 'int64', shape: [seq] });
  const r = raw.sub(b, positions, raw.mul(b, q, blockSize));
  const rows = (table: Value, index: Value) => b.node('Gather', [table, index], { axis: 0 }, { dtype: type, shape: [seq, half] });
  const [cq, sq, cr, sr] = [rows(highCos, q), rows(highSin, q), rows(lowCos, r), rows(lowSin, r)];
  const cos = raw.sub(b, raw.mul(b, cq, cr), raw.mul(b, sq, sr));
  const sin = raw.add(b, raw.mul(b, sq, cr), raw.mul(b, cq, sr));
  const both = (x: Value) => raw.cast(b, raw.unsqueeze(b, b.node('Concat', [x, x], { axis: 1 }, { dtype: type, shape: [seq, 2 * half] }), [1]), b.floatType);
  return { cos: both(cos), sin: both(sin) };
}

/** Block size B and number of blocks so that every position below maxPositions is q·B + r with q < blocks. */
export function rotaryBlocks(maxPositions: number): { block: number; blocks: number } {
  const block = Math.max(1, Math.ceil(Math.sqrt(maxPositions)));
  return { block, blocks: Math.ceil(maxPositions / block) };
}

/** The four [rows, half] tables in float64, row-major: cos/sin of r·f for r < block and of q·block·f for q < blocks. */
export function hostTables(inverseFrequencies: readonly number[], block: number, blocks: number) {
  const table = (rows: number, step: number, fn: (x: number) => number) => {
    const values: number[] = [];
    for (let i = 0; i < rows; i++) for (const f of inverseFrequencies) values.push(fn(i * step * f));
    return values;
  };
  return {
    lowCos: table(block, 1, Math.cos),
    lowSin: table(block, 1, Math.sin),
    highCos: table(blocks, block, Math.cos),
    highSin: table(blocks, block, Math.sin),
  };
}
