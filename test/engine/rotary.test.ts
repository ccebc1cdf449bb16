import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/engine/graph/builder';
import { Ops } from '../../src/engine/graph/ops';
import { rotaryBlocks, rotaryTables } from '../../src/engine/architectures/rotary';
import { ropeInverseFrequencies } from '../../src/engine/architectures/llama';
import { requireWebGpu } from '../support/webgpu';

/**
 * RoPE's cos/sin tables (rotary.ts) against cos/sin of position·frequency taken directly in float64 on the host,
 * at positions across the whole range of a Llama 3.2 (131072 positions, llama3 scaling, θ = 500000, dHead 64).
 * Tolerances, absolute on values in [−1, 1]: float64 graph 1e-10 (the angle p·f itself, up to 1.3e5 rad, is only
 * known to 2^-53 relative, ~1.5e-11 rad, on either side; measured 8.8e-12); float32 graph 3e-7 (each table entry correctly rounded, 2^-24 ≈ 6e-8, two products and a sum: ≤ 3 ulp
 * of 1 ≈ 1.8e-7). The former float32 angle p·f alone was off by up to 131071·6e-8 ≈ 8e-3 rad at the end of the range.
 */

const MAX_POSITIONS = 131072;
const LLAMA3 = { type: 'llama3' as const, factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };
const frequencies = ropeInverseFrequencies(64, 500000, LLAMA3);
// The first and last positions, both sides of block boundaries, and some in between.
const { block } = rotaryBlocks(MAX_POSITIONS);
const POSITIONS = [
  0,
  1,
  2,
  7,
  block - 1,
  block,
  block + 1,
  3 * block + 5,
  1000,
  4095,
  65536,
  100003,
  MAX_POSITIONS - block,
  MAX_POSITIONS - 2,
  MAX_POSITIONS - 1,
];

async function tables(precision: 'float32' | 'float64', provider: 'cpu' | 'webgpu') {
  const b = new GraphBuilder(precision);
  const ops = new Ops(b);
  const positions = b.input('positions', 'int64', ['seq']);
  const { cos, sin } = rotaryTables(ops, positions, frequencies, MAX_POSITIONS);
  b.output(cos, 'cos');
  b.output(sin, 'sin');
  const session = await ort.InferenceSession.create(b.toBytes(), { executionProviders: [provider] });
  const out = await session.run({ positions: new ort.Tensor('int64', BigInt64Array.from(POSITIONS, BigInt), [POSITIONS.length]) });
  await session.release();
  return { cos: out.cos, sin: out.sin };
}

function largestError(out: { cos: ort.Tensor; sin: ort.Tensor }): number {
  const half = frequencies.length;
  assert.deepEqual(out.cos.dims, [POSITIONS.length, half]);
  let worst = 0;
  POSITIONS.forEach((p, row) => {
    for (let j = 0; j < half; j++) {
      const angle = p * frequencies[j];
      worst = Math.max(
        worst,
        Math.abs(Number(out.cos.data[row * half + j]) - Math.cos(angle)),
        Math.abs(Number(out.sin.data[row * half + j]) - Math.sin(angle)),
      );
    }
  });
  return worst;
}

test('the blocks cover every position, with tables of about 2·√maxPositions rows', () => {
  for (const max of [1, 2, 3, 1024, 2048, 32768, 131072, 1000003]) {
    const { block: size, blocks } = rotaryBlocks(max);
    assert.ok(size * blocks >= max, `${max}: ${size}·${blocks}`);
    assert.ok(size + blocks <= 2 * Math.sqrt(max) + 2, `${max}: ${size} + ${blocks} rows`);
  }
});

test('rotary tables equal float64 cos/sin of position·frequency over 131072 positions (CPU, float64 and float32)', async () => {
  const error64 = largestError(await tables('float64', 'cpu'));
  const error32 = largestError(await tables('float32', 'cpu'));
  console.log(`rotary tables on CPU: largest error float64 ${error64.toExponential(2)}, float32 ${error32.toExponential(2)}`);
  assert.ok(error64 <= 1e-10, `float64: ${error64}`);
  assert.ok(error32 <= 3e-7, `float32: ${error32}`);
});

test('rotary tables on WebGPU are as accurate as on the CPU (no Sin/Cos on the device)', async (t) => {
  if (!(await requireWebGpu(t))) return;
  const error = largestError(await tables('float32', 'webgpu'));
  console.log(`rotary tables on WebGPU: largest error ${error.toExponential(2)}`);
  assert.ok(error <= 3e-7, `webgpu: ${error}`);
});
