// The panel's message protocol (run-time checks of what the webview sends, restored state) and the Result views
// that both the editor and the panel show.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isValueSelection, parsePanelState, parseWebviewMessage, selectionLabel } from '../../src/panel/protocol';
import {
  corruptedPositions,
  exampleLensText,
  headMatrix,
  layerBreakdown,
  methodAt,
  positionMatrix,
  selectionExactness,
  tokenValues,
  topHeadsAt,
  totalAt,
  valueAt,
} from '../../src/panel/resultViews';
import { suspectCells } from '../../src/shared/resultMethods';
import { RESULT_SCHEMA, summarizeHeads, summarizePositions, type ExampleResult, type Result } from '../../src/engine/result';
import { seededRandom } from '../support/random';
import { formatValue } from '../../src/panel/colorScale';

function syntheticResult(lengths: number[], layers = 2, heads = 3): Result {
  const random = seededRandom(7);
  const value = () => random() * 2 - 1;
  const examples: ExampleResult[] = lengths.map((length, i) => ({
    line: i + 1,
    clean: 'x'.repeat(length),
    corrupted: 'x'.repeat(length),
    correct: ' a',
    incorrect: ' b',
    cleanIds: Array.from({ length }, (_, p) => p),
    corruptedIds: Array.from({ length }, (_, p) => (p === 1 ? 99 : p)),
    correctId: 1,
    incorrectId: 2,
    tokens: Array.from({ length }, (_, p) => ({ id: p, text: 'x', start: p, end: p + 1 })),
    corruptedTokens: Array.from({ length }, (_, p) => ({ id: p === 1 ? 99 : p, text: 'x', start: p, end: p + 1 })),
    cleanLogitDiff: 1,
    corruptedLogitDiff: 0,
    attributions: {
      z: Array.from({ length: layers }, () => Array.from({ length }, () => Array.from({ length: heads }, value))),
      residPre: Array.from({ length: layers }, () => Array.from({ length }, value)),
      attnOut: Array.from({ length: layers }, () => Array.from({ length }, value)),
      mlpOut: Array.from({ length: layers }, () => Array.from({ length }, value)),
    },
  }));
  return {
    schema: RESULT_SCHEMA,
    createdAt: new Date(0).toISOString(),
    dataset: { file: 'x.jsonl', examples: examples.length },
    model: { source: 'm', architecture: 'gpt2', modelType: 'gpt2', layers, heads, dModel: 8, dHead: 4, dtype: 'F32' },
    device: 'cpu',
    metric: { name: 'normalized-logit-diff', cleanLogitDiff: 1, corruptedLogitDiff: 0 },
    heads: summarizeHeads(examples),
    positions: summarizePositions(examples),
    examples,
    warnings: [],
  };
}

test('webview messages are checked at run time; malformed ones are refused', () => {
  assert.deepEqual(parseWebviewMessage({ type: 'ready' }), { type: 'ready' });
  assert.deepEqual(parseWebviewMessage({ type: 'select', selection: { kind: 'head', layer: 1, head: 2 } }), { type: 'select', selection: { kind: 'head', layer: 1, head: 2 } });
  assert.deepEqual(parseWebviewMessage({ type: 'selectScope', scope: { kind: 'example', index: 3 } }), { type: 'selectScope', scope: { kind: 'example', index: 3 } });
  assert.equal(parseWebviewMessage({ type: 'select', selection: { kind: 'head', layer: 1 } }), undefined);
  assert.equal(parseWebviewMessage({ type: 'select', selection: { kind: 'residPre', layer: -1 } }), undefined);
  assert.equal(parseWebviewMessage({ type: 'selectScope', scope: { kind: 'example', index: 1.5 } }), undefined);
  assert.equal(parseWebviewMessage({ type: 'exportImage', format: 'gif', data: '', suggestedName: 'x' }), undefined);
  assert.equal(parseWebviewMessage({ type: 'nope' }), undefined);
  assert.equal(parseWebviewMessage(null), undefined);
  // Extra fields do not pass through to the host.
  assert.deepEqual(parseWebviewMessage({ type: 'exportResult', path: '/etc/passwd' }), { type: 'exportResult' });
});

test('restored panel state falls back to the defaults field by field', () => {
  assert.deepEqual(parsePanelState(undefined), { selection: { kind: 'token' }, scope: { kind: 'all' } });
  assert.deepEqual(parsePanelState({ resultFile: '/r.json', selection: { kind: 'mlpOut', layer: 2 }, scope: { kind: 'bogus' } }), {
    resultFile: '/r.json',
    selection: { kind: 'mlpOut', layer: 2 },
    scope: { kind: 'all' },
  });
  assert.ok(isValueSelection({ kind: 'total' }));
  assert.ok(isValueSelection({ kind: 'token' }));
  assert.deepEqual(parseWebviewMessage({ type: 'checkTopK', k: 5 }), { type: 'checkTopK', k: 5 });
  for (const k of [0, -1, 2.5, 101, '5']) assert.equal(parseWebviewMessage({ type: 'checkTopK', k }), undefined, `k = ${k}`);
  assert.equal(selectionLabel({ kind: 'head', layer: 3, head: 1 }), 'L3H1');
});

test('heatmap matrices: all examples give the Result summaries exactly; one example gives its own values', () => {
  const result = syntheticResult([5, 5, 5]);
  assert.deepEqual(headMatrix(result, { kind: 'all' }), result.heads);
  assert.deepEqual(positionMatrix(result, { kind: 'all' }, { kind: 'total' }), result.positions);
  const one = result.examples[1].attributions;
  assert.deepEqual(headMatrix(result, { kind: 'example', index: 1 }), one.z.map((layer) => layer[4]));
  assert.deepEqual(positionMatrix(result, { kind: 'example', index: 1 }, { kind: 'total' }), one.residPre);
  assert.deepEqual(positionMatrix(result, { kind: 'example', index: 1 }, { kind: 'mlpOut', layer: 0 }), one.mlpOut);
  // Different lengths: no position summary over all examples, as in the Result.
  const ragged = syntheticResult([4, 5]);
  assert.equal(ragged.positions, null);
  assert.equal(positionMatrix(ragged, { kind: 'all' }, { kind: 'total' }), null);
});

test('token values under each selection; total = embedding + every attn_out and mlp_out', () => {
  const result = syntheticResult([4]);
  const example = result.examples[0];
  const a = example.attributions;
  const expected = a.residPre[0][2] + a.attnOut[0][2] + a.mlpOut[0][2] + a.attnOut[1][2] + a.mlpOut[1][2];
  assert.ok(Math.abs(totalAt(example, 2) - expected) < 1e-12);
  assert.equal(valueAt(example, 2, { kind: 'head', layer: 1, head: 2 }), a.z[1][2][2]);
  assert.equal(valueAt(example, 3, { kind: 'attnOut', layer: 1 }), a.attnOut[1][3]);
  assert.deepEqual(tokenValues(example, { kind: 'residPre', layer: 1 }), a.residPre[1]);
  const breakdown = layerBreakdown(example, 1);
  assert.equal(breakdown.length, 2);
  assert.ok(Math.abs(breakdown[1].heads - a.z[1][1].reduce((s, v) => s + v, 0)) < 1e-12);
  const largest = a.z[1][1].reduce((best, v, h) => (Math.abs(v) > Math.abs(a.z[1][1][best]) ? h : best), 0);
  assert.deepEqual(breakdown[1].topHead, { head: largest, value: a.z[1][1][largest] });
  const top = topHeadsAt(example, 1, 3);
  assert.equal(top.length, 3);
  assert.ok(Math.abs(top[0].value) >= Math.abs(top[1].value) && Math.abs(top[1].value) >= Math.abs(top[2].value));
  assert.deepEqual(corruptedPositions(example), [1]);
});

test('token selection: the token scores where the Result has them, marked exact or estimate per token; the total for @1 results', () => {
  const result = syntheticResult([4, 4]);
  const [first, second] = result.examples;
  // A @1 result: no token scores, so 'token' shows the total, as an AtP estimate.
  assert.deepEqual(tokenValues(first, { kind: 'token' }), first.tokens.map((_, pos) => totalAt(first, pos)));
  assert.deepEqual(methodAt(result, first, 1, { kind: 'token' }), { method: 'atp', exact: false });
  assert.equal(selectionExactness(result, { kind: 'token' }), 'estimate');

  first.tokenScores = { kind: 'token-patch', method: 'exact', values: [0, 0.5, 0, 0], exact: [true, true, true, true], joint: 0.5 };
  second.tokenScores = { kind: 'token-patch', method: 'exact', values: [0, -0.25, 0, 0], exact: [true, true, true, true], joint: 0.5 };
  result.methods = { attributions: 'atp', heads: 'atp', positions: 'atp', tokenScores: 'exact' };
  assert.deepEqual(tokenValues(first, { kind: 'token' }), [0, 0.5, 0, 0]);
  assert.equal(selectionExactness(result, { kind: 'token' }), 'exact');
  assert.equal(selectionExactness(result, { kind: 'total' }), 'estimate', 'a sum of AtP estimates is an estimate');
  assert.deepEqual(methodAt(result, first, 2, { kind: 'head', layer: 0, head: 1 }), { method: 'atp', exact: false });
  // Past the budget the differing tokens are AtP estimates, the rest still exactly 0.
  second.tokenScores = { kind: 'token-patch', method: 'atp', values: [0, -0.25, 0, 0], exact: [true, false, true, true], joint: 0.5 };
  assert.equal(selectionExactness(result, { kind: 'token' }), 'mixed');
  assert.deepEqual(methodAt(result, second, 1, { kind: 'token' }), { method: 'atp', exact: false });
  // An exact sweep makes every array exact.
  result.methods = { attributions: 'exact', heads: 'exact', positions: 'exact', tokenScores: 'exact' };
  assert.equal(selectionExactness(result, { kind: 'mlpOut', layer: 1 }), 'exact');
});

test('the CodeLens above an example: its LDs, the changed token\'s effect and whether it is exact, the top head at the answer', () => {
  const result = syntheticResult([4]);
  const example = result.examples[0];
  example.tokenScores = { kind: 'token-patch', method: 'exact', values: [0, 0.25, 0, 0], exact: [true, true, true, true], joint: 0.25 };
  const text = exampleLensText(result, example);
  const last = example.attributions.z.map((layer) => layer[3]);
  const flat = last.flatMap((heads, layer) => heads.map((value, head) => ({ layer, head, value })));
  const top = flat.reduce((best, cell) => (Math.abs(cell.value) > Math.abs(best.value) ? cell : best));
  assert.equal(text, `LD clean +1.0000 · corrupted 0 · "x"→"x" +0.2500 exact · top head at the answer L${top.layer}H${top.head} ${formatValue(top.value)} AtP`);
});

test('AtP* node selections read the Result\'s query, key and value nodes and say they are estimates', () => {
  const result = syntheticResult([3]);
  const example = result.examples[0];
  const nodes = (seed: number, heads: number) => Array.from({ length: 2 }, (_, l) => Array.from({ length: 3 }, (_, p) => Array.from({ length: heads }, (_, h) => seed + 100 * l + 10 * p + h)));
  example.atpStar = { q: nodes(1000, 3), qLinear: nodes(2000, 3), k: nodes(3000, 1), kLinear: nodes(4000, 1), v: nodes(5000, 1) };
  assert.ok(isValueSelection({ kind: 'query', layer: 1, head: 2 }));
  assert.equal(valueAt(example, 2, { kind: 'query', layer: 1, head: 2 }), 1000 + 100 + 20 + 2);
  assert.equal(valueAt(example, 1, { kind: 'key', layer: 0, head: 0 }), 3000 + 10);
  assert.equal(valueAt(example, 1, { kind: 'value', layer: 1, head: 0 }), 5000 + 110);
  assert.deepEqual(methodAt(result, example, 1, { kind: 'key', layer: 0, head: 0 }), { method: 'atpstar', exact: false });
  assert.equal(selectionLabel({ kind: 'key', layer: 0, head: 1 }), 'L0 key KV1');
  // A result without AtP* nodes colours nothing for them.
  assert.equal(valueAt(syntheticResult([3]).examples[0], 1, { kind: 'query', layer: 0, head: 0 }), 0);
});

test('GradDrop flags the cells where it is at least twice |AtP| and 5% of the largest |AtP|', () => {
  const atp = [
    [1.0, 0.01, -0.2],
    [0.0, 0.3, 0.001],
  ];
  const drop = [
    [1.1, 0.5, 0.3],
    [0.04, 0.6, 0.002],
  ];
  assert.deepEqual(
    suspectCells(atp, drop).map((c) => [c.layer, c.column]),
    [
      [0, 1],
      [1, 1],
    ],
  );
});
