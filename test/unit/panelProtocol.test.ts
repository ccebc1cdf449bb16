// The panel's message protocol (run-time checks of what the webview sends, restored state) and the Result views
// that both the editor and the panel show.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isValueSelection, parsePanelState, parseWebviewMessage, selectionLabel } from '../../src/shared/panelProtocol';
import {
  aggregateLabel,
  aggregateMatrix,
  corruptedPositions,
  csvField,
  firstNonZeroColumn,
  mapsCsv,
  positionLabels,
  tokenCsv,
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
} from '../../src/shared/resultViews';
import { suspectCells } from '../../src/shared/resultMethods';
import { RESULT_SCHEMA, summarizeHeads, summarizePositions, type ExampleResult, type Result } from '../../src/shared/result';
import { seededRandom } from '../support/random';
import { formatValue } from '../../src/shared/colorScale';

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
  assert.deepEqual(parseWebviewMessage({ type: 'select', selection: { kind: 'head', layer: 1, head: 2 } }), {
    type: 'select',
    selection: { kind: 'head', layer: 1, head: 2 },
  });
  assert.deepEqual(parseWebviewMessage({ type: 'selectScope', scope: { kind: 'example', index: 3 } }), {
    type: 'selectScope',
    scope: { kind: 'example', index: 3 },
  });
  assert.equal(parseWebviewMessage({ type: 'select', selection: { kind: 'head', layer: 1 } }), undefined);
  assert.equal(parseWebviewMessage({ type: 'select', selection: { kind: 'residPre', layer: -1 } }), undefined);
  assert.equal(parseWebviewMessage({ type: 'selectScope', scope: { kind: 'example', index: 1.5 } }), undefined);
  assert.equal(parseWebviewMessage({ type: 'exportImage', format: 'gif', data: '', suggestedName: 'x' }), undefined);
  assert.equal(parseWebviewMessage({ type: 'nope' }), undefined);
  // The CSVs over all examples, which the host builds: a name only, never a path.
  const csvAll = { type: 'exportCsvAll', kind: 'maps', selection: { kind: 'attnOut', layer: 1 }, aggregate: 'mean', suggestedName: 'd.maps.all.csv' };
  assert.deepEqual(parseWebviewMessage({ ...csvAll, extra: 1 }), csvAll);
  assert.equal(parseWebviewMessage({ ...csvAll, suggestedName: '../d.csv' }), undefined);
  assert.equal(parseWebviewMessage({ ...csvAll, aggregate: 'max' }), undefined);
  assert.equal(parseWebviewMessage({ ...csvAll, selection: { kind: 'head', layer: 0 } }), undefined);
  assert.equal(parseWebviewMessage(null), undefined);
  // Extra fields do not pass through to the host.
  assert.deepEqual(parseWebviewMessage({ type: 'exportResult', path: '/etc/passwd' }), { type: 'exportResult' });
  assert.deepEqual(parseWebviewMessage({ type: 'rerun', dataset: '/elsewhere.jsonl' }), { type: 'rerun' });
  assert.deepEqual(parseWebviewMessage({ type: 'exportCsv', kind: 'tokens', data: 'a,b\r\n', suggestedName: 'x.tokens.all.csv' }), {
    type: 'exportCsv',
    kind: 'tokens',
    data: 'a,b\r\n',
    suggestedName: 'x.tokens.all.csv',
  });
  assert.equal(parseWebviewMessage({ type: 'exportCsv', kind: 'maps', data: 'a', suggestedName: 'x.csv' })?.type, 'exportCsv');
  // Unknown kinds, missing data, and names that are paths (the host joins the name to the dataset's folder) are refused.
  for (const bad of [
    { kind: 'json', data: 'a', suggestedName: 'x.csv' },
    { kind: 'tokens', data: 3, suggestedName: 'x.csv' },
    { kind: 'tokens', data: 'a' },
    { kind: 'tokens', data: 'a', suggestedName: '../x.csv' },
    { kind: 'maps', data: 'a', suggestedName: 'C:\\x.csv' },
  ]) {
    assert.equal(parseWebviewMessage({ type: 'exportCsv', ...bad }), undefined, JSON.stringify(bad));
  }
  // The Compare view asks the host to save what it holds: a format, never a path or data.
  for (const format of ['svg', 'html', 'json'])
    assert.deepEqual(parseWebviewMessage({ type: 'exportComparison', format, file: '/tmp/x' }), { type: 'exportComparison', format });
  assert.equal(parseWebviewMessage({ type: 'exportComparison', format: 'png' }), undefined);
  assert.equal(parseWebviewMessage({ type: 'exportComparison' }), undefined);
});

test('restored panel state falls back to the defaults field by field', () => {
  assert.deepEqual(parsePanelState(undefined), { selection: { kind: 'token' }, scope: { kind: 'all' } });
  assert.deepEqual(parsePanelState({ resultFile: '/r.json', selection: { kind: 'mlpOut', layer: 2 }, scope: { kind: 'bogus' } }), {
    resultFile: '/r.json',
    selection: { kind: 'mlpOut', layer: 2 },
    scope: { kind: 'all' },
  });
  assert.equal(parsePanelState({ aggregate: 'mean' }).aggregate, 'mean');
  assert.equal(parsePanelState({ aggregate: 'median' }).aggregate, undefined);
  // The Compare view's state: two or more result files, or a sweep folder; anything else is dropped.
  assert.deepEqual(parsePanelState({ comparedFiles: ['/a.json', '/b.json'] }).comparedFiles, ['/a.json', '/b.json']);
  for (const comparedFiles of [['/a.json'], ['/a.json', 3], '/a.json']) assert.equal(parsePanelState({ comparedFiles }).comparedFiles, undefined);
  assert.equal(parsePanelState({ sweepFolder: '/sweep' }).sweepFolder, '/sweep');
  assert.equal(parsePanelState({ sweepFolder: 7 }).sweepFolder, undefined);
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
  assert.deepEqual(
    headMatrix(result, { kind: 'example', index: 1 }),
    one.z.map((layer) => layer[4]),
  );
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
  assert.deepEqual(
    tokenValues(first, { kind: 'token' }),
    first.tokens.map((_, pos) => totalAt(first, pos)),
  );
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

test("the CodeLens above an example: its LDs, the changed token's effect and whether it is exact, the top head at the answer", () => {
  const result = syntheticResult([4]);
  const example = result.examples[0];
  example.tokenScores = { kind: 'token-patch', method: 'exact', values: [0, 0.25, 0, 0], exact: [true, true, true, true], joint: 0.25 };
  const text = exampleLensText(result, example);
  const last = example.attributions.z.map((layer) => layer[3]);
  const flat = last.flatMap((heads, layer) => heads.map((value, head) => ({ layer, head, value })));
  const top = flat.reduce((best, cell) => (Math.abs(cell.value) > Math.abs(best.value) ? cell : best));
  assert.equal(text, `LD clean +1.0000 · corrupted 0 · "x"→"x" +0.2500 exact · top head at the answer L${top.layer}H${top.head} ${formatValue(top.value)} AtP`);
});

test("AtP* node selections read the Result's query, key and value nodes and say they are estimates", () => {
  const result = syntheticResult([3]);
  const example = result.examples[0];
  const nodes = (seed: number, heads: number) =>
    Array.from({ length: 2 }, (_, l) => Array.from({ length: 3 }, (_, p) => Array.from({ length: heads }, (_, h) => seed + 100 * l + 10 * p + h)));
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

test('sum or mean over examples: the mean is the sum divided by the number of examples; the sum is left as it is', () => {
  const result = syntheticResult([5, 5, 5, 5]);
  assert.equal(aggregateMatrix(result.heads, 4, 'sum'), result.heads);
  const mean = aggregateMatrix(result.heads, 4, 'mean');
  mean.forEach((row, layer) => row.forEach((value, head) => assert.equal(value, result.heads[layer][head] / 4)));
  // The Result's own summaries are untouched.
  assert.notDeepEqual(mean, result.heads);
  assert.equal(aggregateLabel(4, 'sum'), 'summed over examples');
  assert.equal(aggregateLabel(4, 'mean'), 'mean over 4 examples');
});

test('the zero prefix of a position map: the first column with a non-zero value in any row', () => {
  assert.equal(
    firstNonZeroColumn([
      [0, 0, 0, 1],
      [0, 0, 2, 0],
    ]),
    2,
  );
  assert.equal(
    firstNonZeroColumn([
      [0, 0],
      [0, 0],
    ]),
    2,
  );
  assert.equal(firstNonZeroColumn([[3, 0]]), 0);
  assert.equal(firstNonZeroColumn([]), 0);
});

test("position labels: the first example's whole token; the tooltip lists the other examples' tokens there", () => {
  const result = syntheticResult([3, 3, 3]);
  result.examples[0].tokens[0].text = 'When';
  result.examples[1].tokens[0].text = 'After';
  result.examples[2].tokens[0].text = 'After';
  result.examples[2].tokens[2].text = '\n';
  const { labels, titles } = positionLabels(result, { kind: 'all' });
  assert.deepEqual(labels, ['When', 'x', 'x']);
  assert.equal(titles[0], 'pos 0 "When"; other examples: "After"');
  assert.equal(titles[1], 'pos 1 "x"');
  assert.equal(titles[2], 'pos 2 "x"; other examples: "\\n"');
  // One example in scope: its own tokens, nothing else.
  assert.deepEqual(positionLabels(result, { kind: 'example', index: 2 }).labels, ['After', 'x', '\\n']);
  assert.equal(positionLabels(result, { kind: 'example', index: 2 }).titles[0], 'pos 0 "After"');
});

/** A minimal RFC 4180 reader for the tests: quoted fields with doubled quotes, commas and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  return rows;
}

test('CSV fields are quoted when they hold a comma, a quote or a line break', () => {
  assert.equal(csvField('plain'), 'plain');
  assert.equal(csvField(-0.25), '-0.25');
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('\n'), '"\n"');
});

test('token CSV: one row per clean token of each example in scope, with the value the editor shows and whether it is exact', () => {
  const result = syntheticResult([3, 3]);
  result.examples[0].tokens[1].text = ' a, "b"\n';
  result.examples.forEach(
    (example) => (example.tokenScores = { kind: 'token-patch', method: 'exact', values: [0, 0.5, 0], exact: [true, true, false], joint: 0.5 }),
  );
  const rows = parseCsv(tokenCsv(result, { kind: 'token' }, { kind: 'all' }));
  assert.deepEqual(rows[0], ['line', 'position', 'token', 'token_id', 'corrupted_token', 'selection', 'value', 'method', 'exact']);
  assert.equal(rows.length, 1 + 6);
  assert.deepEqual(rows[2], ['1', '1', ' a, "b"\n', '1', 'x', 'token effect', '0.5', 'exact', 'true']);
  assert.equal(rows[3][8], 'false');
  // Another selection: the values of that hook, as the editor would colour them.
  const head = parseCsv(tokenCsv(result, { kind: 'head', layer: 1, head: 2 }, { kind: 'example', index: 1 }));
  assert.equal(head.length, 1 + 3);
  head.slice(1).forEach((row, pos) => {
    assert.equal(row[0], '2');
    assert.equal(Number(row[6]), result.examples[1].attributions.z[1][pos][2]);
    assert.equal(row[5], 'L1H2');
  });
});

test('maps CSV: every head and position cell as the panel shows it, summed or mean', () => {
  const result = syntheticResult([4, 4]);
  const rows = parseCsv(mapsCsv(result, { kind: 'all' }, { kind: 'token' }, 'sum'));
  const heads = rows.filter((row) => row[0] === 'heads');
  const positions = rows.filter((row) => row[0] === 'positions');
  assert.equal(heads.length, 2 * 3);
  assert.equal(positions.length, 2 * 4);
  for (const row of heads) assert.equal(Number(row[7]), result.heads[Number(row[2])][Number(row[3])]);
  for (const row of positions) assert.equal(Number(row[7]), result.positions![Number(row[2])][Number(row[3])]);
  assert.equal(positions[0][1], 'hook_resid_pre');
  const mean = parseCsv(mapsCsv(result, { kind: 'all' }, { kind: 'token' }, 'mean')).filter((row) => row[0] === 'heads');
  for (const row of mean) assert.equal(Number(row[7]), result.heads[Number(row[2])][Number(row[3])] / 2);
  assert.equal(mean[0][6], 'mean');
  // Prompts of different lengths: the heads only, as the panel.
  const ragged = syntheticResult([3, 4]);
  assert.equal(parseCsv(mapsCsv(ragged, { kind: 'all' }, { kind: 'token' }, 'sum')).filter((row) => row[0] === 'positions').length, 0);
  const one = parseCsv(mapsCsv(ragged, { kind: 'example', index: 1 }, { kind: 'mlpOut', layer: 0 }, 'mean')).filter((row) => row[0] === 'positions');
  assert.equal(one.length, 2 * 4);
  // One example: its own values; the aggregate does not apply.
  for (const row of one) assert.equal(Number(row[7]), ragged.examples[1].attributions.mlpOut[Number(row[2])][Number(row[3])]);
  assert.equal(one[0][5], 'line 2');
  assert.equal(one[0][1], 'hook_mlp_out');
});
