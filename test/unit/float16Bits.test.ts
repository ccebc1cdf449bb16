import { test } from 'node:test';
import assert from 'node:assert/strict';
import { float16Bits } from '../../src/engine/graph/builder';

/** The value of float16 bits by the format's definition (independent of float16Bits' rounding). */
function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

test('float16Bits: every finite float16 value maps to its own bits, ±0 and ±infinity included', () => {
  for (let bits = 0; bits <= 0xffff; bits++) {
    const value = float16Value(bits);
    if (Number.isNaN(value)) continue;
    assert.equal(float16Bits(value), bits, `${value} (0x${bits.toString(16)})`);
  }
  assert.equal(float16Bits(NaN) & 0x7c00, 0x7c00, 'NaN has the all-ones exponent');
  assert.notEqual(float16Bits(NaN) & 0x3ff, 0, 'and a non-zero mantissa');
});

test('float16Bits rounds to nearest, ties to even, and overflows to infinity past 65504 + half an ulp', () => {
  // Between each pair of neighbouring positive values (the last pair is 65504 and infinity, at 65520).
  for (let bits = 0; bits < 0x7c00; bits++) {
    const low = float16Value(bits);
    const high = float16Value(bits + 1);
    // Exact in double precision; past 65504 the "next value" is 65536 (float16's exponent range continued).
    const gap = high === Infinity ? 32 : high - low;
    const middle = low + gap / 2;
    const even = bits % 2 === 0 ? bits : bits + 1;
    assert.equal(float16Bits(middle), even, `tie between 0x${bits.toString(16)} and 0x${(bits + 1).toString(16)}`);
    assert.equal(float16Bits(-middle), 0x8000 | even, 'negative ties too');
    assert.equal(float16Bits(middle - gap / 8), bits, 'below the tie: down');
    assert.equal(float16Bits(middle + gap / 8), bits + 1, 'above the tie: up');
  }
  assert.equal(float16Bits(65519.99), 0x7bff);
  assert.equal(float16Bits(1e9), 0x7c00);
  assert.equal(float16Bits(-1e9), 0xfc00);
  assert.equal(float16Bits(1e-9), 0, 'below half the smallest subnormal: zero');
  assert.equal(float16Bits(0.1), 0x2e66);
  assert.equal(float16Bits(1 / 3), 0x3555);
});
