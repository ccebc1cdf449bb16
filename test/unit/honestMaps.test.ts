import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResult, RESULT_SCHEMA, serializeResult, summarizePositions, type CheckItem, type ExampleResult, type Result } from '../../src/shared/result';
import { describeAgreement, flagSigns, mapAgreements, mapOfComponent } from '../../src/shared/checkAgreement';
import { isExactRow, mapMethodLabel, mapMethodsOf } from '../../src/shared/resultMethods';
import { checkedCell, checkedValuesInPlace, mapsCsv, methodAt, panelResult } from '../../src/shared/resultViews';
import { renderHtmlReport } from '../../src/report/htmlReport';
import { methodsOfMaps, putExactTokenEffects } from '../../src/engine/patching/exactRows';

// Layer 0's resid_pre row holds the exact token effects (src/engine/patching/exactRows.ts), and every reader says so.

const LAYERS = 2;

/** One example of 3 tokens, differing at position 1; AtP put `estimate` at L0 there, the exact token effect is `exact`. */
function example(estimate: number, exact: number, exactFlags = [true, true, true]): ExampleResult {
  const tokens = ['a', 'b', 'c'].map((text, pos) => ({ id: pos, text, start: pos, end: pos + 1 }));
  const rows = (fill: (layer: number, pos: number) => number) => Array.from({ length: LAYERS }, (_, l) => [0, 1, 2].map((p) => fill(l, p)));
  return {
    line: 1,
    clean: 'abc',
    corrupted: 'axc',
    correct: ' A',
    incorrect: ' B',
    cleanIds: [0, 1, 2],
    corruptedIds: [0, 9, 2],
    correctId: 5,
    incorrectId: 6,
    tokens,
    corruptedTokens: tokens,
    cleanLogitDiff: 2,
    corruptedLogitDiff: -1,
    tokenScores: { kind: 'token-patch', method: exactFlags.every(Boolean) ? 'exact' : 'atp', values: [0, exact, 0], exact: exactFlags, joint: 1 },
    attributions: {
      z: Array.from({ length: LAYERS }, () => [0, 1, 2].map(() => [0.1, 0.2])),
      // A small non-zero AtP value at an unchanged position: what float noise leaves where the exact value is 0.
      residPre: rows((l, p) => (l === 0 ? [1e-9, estimate, 0][p] : 0.5)),
      attnOut: rows(() => 0.25),
      mlpOut: rows(() => 0.125),
    },
  };
}

function result(examples: ExampleResult[]): Result {
  const tokenRowExact = putExactTokenEffects(
    examples.map((e) => e.attributions),
    examples.map((e) => e.tokenScores!),
  );
  return {
    schema: RESULT_SCHEMA,
    createdAt: '2026-01-01T00:00:00.000Z',
    dataset: { file: 'd.jsonl', examples: examples.length },
    model: { source: 'm', architecture: 'gpt2', modelType: 'gpt2', layers: LAYERS, heads: 2, dModel: 4, dHead: 2, dtype: 'F32' },
    device: 'cpu',
    metric: { name: 'normalized-logit-diff', cleanLogitDiff: 2, corruptedLogitDiff: -1 },
    run: { requested: 'atp', method: 'atp', passes: { forward: 2, backward: 1 }, reason: 'test' },
    methods: { attributions: 'atp', heads: 'atp', positions: 'atp', tokenScores: 'exact', maps: methodsOfMaps('atp', tokenRowExact) },
    heads: [
      [0.2, 0.4],
      [0.2, 0.4],
    ],
    positions: summarizePositions(examples),
    examples,
    warnings: [],
  };
}

test('exact token effects replace the resid_pre row at layer 0, every position, and the row is called exact', () => {
  const r = result([example(-1.8, 0.6), example(-0.2, 0.4)]);
  assert.deepEqual(r.examples[0].attributions.residPre[0], [0, 0.6, 0]);
  assert.deepEqual(r.examples[1].attributions.residPre[0], [0, 0.4, 0]);
  assert.deepEqual(r.positions![0], [0, 1, 0]);
  // Other layers keep the estimate.
  assert.deepEqual(r.positions![1], [1, 1, 1]);
  assert.deepEqual(mapMethodsOf(r).residPre, { method: 'atp', exactLayers: [0] });
  assert.equal(mapMethodLabel(mapMethodsOf(r).residPre), 'AtP estimate, L0 exact');
  assert.equal(mapMethodLabel(mapMethodsOf(r).attnOut), 'AtP estimate');
});

test('where a token effect is an estimate the row keeps the estimate there and is not called exact', () => {
  const r = result([example(-1.8, 0.6), example(-0.2, 0.4, [true, false, true])]);
  assert.deepEqual(r.examples[1].attributions.residPre[0], [0, -0.2, 0]);
  assert.deepEqual(mapMethodsOf(r).residPre.exactLayers, []);
  assert.equal(methodAt(r, r.examples[0], 1, { kind: 'residPre', layer: 0 }).exact, false);
});

test('an exact run has no exact rows to list: the whole map is exact', () => {
  assert.deepEqual(methodsOfMaps('exact', true).residPre, { method: 'exact', exactLayers: [] });
  assert.equal(isExactRow(methodsOfMaps('exact', true).residPre, 1), true);
  assert.equal(isExactRow(methodsOfMaps('atp', true).residPre, 1), false);
  assert.equal(isExactRow(methodsOfMaps('atp', true).residPre, 0), true);
});

test('views: a layer-0 resid_pre value is exact, other layers and hooks estimates; the maps CSV says so per row', () => {
  const r = result([example(-1.8, 0.6)]);
  const e = r.examples[0];
  assert.deepEqual(methodAt(r, e, 1, { kind: 'residPre', layer: 0 }), { method: 'exact', exact: true });
  assert.deepEqual(methodAt(r, e, 1, { kind: 'residPre', layer: 1 }), { method: 'atp', exact: false });
  assert.deepEqual(methodAt(r, e, 1, { kind: 'attnOut', layer: 0 }), { method: 'atp', exact: false });
  assert.deepEqual(methodAt(r, e, 1, { kind: 'head', layer: 0, head: 0 }), { method: 'atp', exact: false });
  const rows = mapsCsv(r, { kind: 'all' }, { kind: 'residPre', layer: 0 }, 'sum')
    .trim()
    .split('\r\n')
    .map((line) => line.split(','));
  const positionRows = rows.filter((row) => row[0] === 'positions');
  assert.deepEqual(
    positionRows.filter((row) => row[2] === '0').map((row) => row[8]),
    ['exact', 'exact', 'exact'],
  );
  assert.deepEqual(
    positionRows.filter((row) => row[2] === '1').map((row) => row[8]),
    ['atp', 'atp', 'atp'],
  );
  // The attn_out map has no exact row.
  const attn = mapsCsv(r, { kind: 'all' }, { kind: 'attnOut', layer: 0 }, 'sum');
  assert.ok(!attn.includes(',exact'), attn);
});

test('the Result keeps methods.maps through a write and a read; a bad one is refused by field', () => {
  const r = result([example(-1.8, 0.6)]);
  const read = parseResult(serializeResult(r), 'r.json');
  assert.deepEqual(read.methods?.maps, r.methods?.maps);
  const bad = JSON.parse(serializeResult(r));
  bad.methods.maps.residPre.exactLayers = [LAYERS];
  assert.throws(() => parseResult(JSON.stringify(bad), 'r.json'), /methods\.maps\.residPre\.exactLayers\[0\]/);
  bad.methods.maps.residPre.exactLayers = [0];
  delete bad.methods.maps.attnOut;
  assert.throws(() => parseResult(JSON.stringify(bad), 'r.json'), /methods\.maps\.attnOut/);
});

test('a Result from before methods.maps reads each map by its method, with no exact rows', () => {
  const r = result([example(-1.8, 0.6)]);
  delete r.methods!.maps;
  const read = parseResult(serializeResult(r), 'r.json');
  assert.deepEqual(mapMethodsOf(read), {
    heads: { method: 'atp', exactLayers: [] },
    residPre: { method: 'atp', exactLayers: [] },
    attnOut: { method: 'atp', exactLayers: [] },
    mlpOut: { method: 'atp', exactLayers: [] },
  });
});

test('the HTML report labels the exact row and its cells', () => {
  const html = renderHtmlReport([{ title: 'run', result: result([example(-1.8, 0.6)]) }]);
  assert.match(html, /Layer × position \(hook_resid_pre, summed over examples\) — AtP estimate, L0 exact/);
  assert.match(html, /data-layer="0">L0 exact<\/text>/);
  assert.match(html, /data-layer="1">L1<\/text>/);
  assert.match(html, /data-layer="0" data-pos="1" data-value="0.6" data-exact-row="true"><title>layer 0, position 1 \(b\): \+0\.6000 \(exact\)/);
});

test('checks per map, led by the error: max |estimate − exact| / max |exact|, the top cell ratio, signs flagged above the noise floor', () => {
  const item = (hook: 'z' | 'attn_out', layer: number, attribution: number, exact: number): CheckItem => ({
    hook,
    layer,
    position: hook === 'z' ? null : 1,
    head: hook === 'z' ? 0 : null,
    pick: 'top',
    attribution,
    exact,
  });
  // Heads: AtP at ~12% of exact (the L0H2: +0.117 vs +1.018); one tiny opposite sign below 1% of 1.018 (noise).
  const items = flagSigns([item('z', 0, 0.117, 1.018), item('z', 1, 0.05, 0.4), item('z', 2, 0.001, -0.005), item('attn_out', 1, -0.3, 0.2)]);
  assert.deepEqual(
    items.map((i) => i.signDiffers ?? false),
    [false, false, false, true],
  );
  const [heads, attn] = mapAgreements(items);
  assert.equal(heads.map, 'heads');
  assert.equal(heads.count, 3);
  assert.ok(Math.abs(heads.maxError! - (1.018 - 0.117) / 1.018) < 1e-12);
  assert.ok(Math.abs(heads.topRatio! - 0.117 / 1.018) < 1e-12);
  assert.equal(heads.signDiffers, 0);
  assert.equal(attn.map, 'attnOut');
  assert.equal(attn.signDiffers, 1);
  assert.ok(Math.abs(attn.maxError! - 0.5 / 0.2) < 1e-12);
  assert.match(describeAgreement(heads), /^max error 89% of the largest exact · top cell 0\.11× exact · Pearson \d\.\d{3} · Spearman \d\.\d{3} \(3 checked\)$/);
  assert.match(describeAgreement(attn), /\(1 checked, 1 sign differs\)$/);
});

test("the panel's maps show the checked cells' exact values, never an estimate of the opposite sign there; the estimate view puts them back", () => {
  const r = result([example(-1.8, 0.6)]);
  r.checks = {
    k: 1,
    seed: 0,
    candidates: ['heads', 'positions'],
    pearson: 0,
    spearman: 0,
    items: flagSigns([
      { hook: 'z', layer: 1, position: null, head: 1, pick: 'top', attribution: 0.4, exact: -0.9 },
      { hook: 'attn_out', layer: 1, position: 2, head: null, pick: 'top', attribution: 0.25, exact: -0.5 },
      // An aligned position (prompts of several lengths) is no cell of these maps: left alone.
      { hook: 'mlp_out', layer: 1, position: null, fromEnd: 1, head: null, pick: 'random', attribution: 0.125, exact: 1 },
    ]),
  };
  const panel = panelResult(r, { kind: 'all' });
  assert.equal(panel.summary.heads[1][1], -0.9);
  assert.equal(r.heads[1][1], 0.4, 'the Result itself keeps its estimates');
  assert.equal(panel.allPositions!.attnOut[1][2], -0.5);
  assert.deepEqual(panel.allPositions!.mlpOut, [
    [0.125, 0.125, 0.125],
    [0.125, 0.125, 0.125],
  ]);
  // Every checked cell the panel shows has the exact value's sign.
  for (const item of r.checks.items) {
    const cell = checkedCell(item, mapOfComponent(item));
    if (!cell) continue;
    const shown = mapOfComponent(item) === 'heads' ? panel.summary.heads : panel.allPositions![mapOfComponent(item) as 'attnOut'];
    assert.equal(Math.sign(shown[cell[0]][cell[1]]), Math.sign(item.exact));
  }
  assert.equal(checkedValuesInPlace(panel.summary.heads, r.checks, 'heads', 'estimate')[1][1], 0.4);
});

test('checks.maps, fromEnd and signDiffers survive a write and a read; malformed ones are refused by field', () => {
  const r = result([example(-1.8, 0.6)]);
  const items = flagSigns([
    { hook: 'z', layer: 1, position: null, head: 1, pick: 'top', attribution: 0.4, exact: -0.9 },
    { hook: 'mlp_out', layer: 1, position: null, fromEnd: 1, head: null, pick: 'random', attribution: 0.125, exact: 1 },
  ]);
  r.checks = { k: 1, seed: 0, candidates: ['heads', 'positions'], pearson: 0, spearman: 0, items, maps: mapAgreements(items) };
  const read = parseResult(serializeResult(r), 'r.json');
  assert.deepEqual(read.checks, r.checks);
  const bad = JSON.parse(serializeResult(r));
  bad.checks.items[1].position = 2;
  assert.throws(() => parseResult(JSON.stringify(bad), 'r.json'), /checks\.items\[1\]\.fromEnd/);
  bad.checks.items[1].position = null;
  bad.checks.maps[0].map = 'queries';
  assert.throws(() => parseResult(JSON.stringify(bad), 'r.json'), /checks\.maps\[0\]\.map/);
});
