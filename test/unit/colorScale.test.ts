import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allBins, cellNumber, binColor, binOf, BINS_PER_SIDE, colorFor, formatValue, MAX_ALPHA, normalise, symmetricMax } from '../../src/shared/colorScale';

const parse = (css: string) => {
  const match = /^rgba\((\d+), (\d+), (\d+), ([\d.]+)\)$/.exec(css);
  assert.ok(match, css);
  return match.slice(1).map(Number);
};

test('zero-centred: zero is transparent, the sign picks the hue, |t| the opacity', () => {
  for (const theme of ['light', 'dark'] as const) {
    assert.equal(parse(colorFor(0, theme))[3], 0);
    const [r1, , b1, a1] = parse(colorFor(1, theme));
    const [r2, , b2, a2] = parse(colorFor(-1, theme));
    assert.ok(b1 > r1, 'positive is blue (RdBu, as the seed notebook)');
    assert.ok(r2 > b2, 'negative is red');
    assert.equal(a1, MAX_ALPHA);
    assert.equal(a2, MAX_ALPHA);
    assert.ok(parse(colorFor(0.25, theme))[3] < parse(colorFor(0.5, theme))[3]);
    assert.deepEqual(parse(colorFor(2, theme)), parse(colorFor(1, theme)), 'clamped');
    assert.equal(parse(colorFor(Number.NaN, theme))[3], 0);
  }
  // Dark themes get lighter hues, so strong colours stand out from a dark background.
  const sum = (css: string) =>
    parse(css)
      .slice(0, 3)
      .reduce((a, b) => a + b, 0);
  assert.ok(sum(colorFor(1, 'dark')) > sum(colorFor(1, 'light')));
  assert.ok(sum(colorFor(-1, 'dark')) > sum(colorFor(-1, 'light')));
});

test('symmetric domain and normalisation', () => {
  assert.equal(symmetricMax([0.1, -0.5, 0.3, Number.NaN]), 0.5);
  assert.equal(symmetricMax([]), 0);
  assert.equal(normalise(0.25, 0.5), 0.5);
  assert.equal(normalise(-1, 0.5), -1);
  assert.equal(normalise(3, 0), 0, 'an all-zero domain colours nothing');
});

test('decoration bins: one per step each side, symmetric, monotone, exact zero only at zero', () => {
  assert.equal(allBins().length, 2 * BINS_PER_SIDE);
  assert.ok(!allBins().includes(0));
  assert.equal(binOf(0, 1), 0);
  assert.equal(binOf(1e-12, 1), 1, 'a tiny non-zero value still gets the faintest colour');
  assert.equal(binOf(1, 1), BINS_PER_SIDE);
  assert.equal(binOf(-1, 1), -BINS_PER_SIDE);
  assert.equal(binOf(0.5, 1), BINS_PER_SIDE / 2);
  assert.equal(binOf(-0.3, 1), -binOf(0.3, 1));
  let previous = 0;
  for (let v = 0.01; v <= 1; v += 0.01) {
    const bin = binOf(v, 1);
    assert.ok(bin >= previous);
    previous = bin;
  }
  assert.equal(binColor(BINS_PER_SIDE, 'light'), colorFor(1, 'light'));
});

test('formatValue: signed, compact', () => {
  assert.equal(formatValue(0.12345), '+0.1235');
  assert.equal(formatValue(-0.5), '−0.5000');
  assert.equal(formatValue(0), '0');
  assert.equal(formatValue(1.5e-5), '+1.50e-5');
});

test('cellNumber writes a heatmap cell in at most five characters', () => {
  assert.deepEqual([0, 0.4653, -1.289, 1.0258, 0.0121, -0.005, 123.4, 0.00001].map(cellNumber), ['0', '.47', '−1.3', '1', '.012', '−5e-3', '1e2', '1e-5']);
  for (const v of [0.4653, -1.289, 0.0121, -0.005, 123.4, -99.9]) assert.ok(cellNumber(v).length <= 5, cellNumber(v));
});
