// Read-only views of a Result that the editor (colours, hovers) and the heatmap panel both show: the value at each
// token position under a ValueSelection, per-layer breakdowns, top heads, and the heatmap matrices. Nothing here
// recomputes attributions; it only selects and sums what the engine wrote. No DOM and no 'vscode' import.
import type { CheckItem, Checks, ExampleResult, MapKind, Result } from './result';
import { mapOfComponent } from './checkAgreement';
import { formatValue } from './colorScale';
import { isExactRow, mapMethodsOf, METHOD_NAMES, type Method, methodsOf } from './resultMethods';
import { selectionLabel, type Aggregate, type ExampleScope, type PanelResult, type ScopedExample, type ValueSelection } from './panelProtocol';
import { HOOKS, hookOfFieldName, type PositionHookRow } from './hooks';

/** The embedding plus every layer's attention and MLP outputs at one position (see ValueSelection 'total'). */
export function totalAt(example: ExampleResult, pos: number): number {
  const a = example.attributions;
  let sum = a.residPre[0]?.[pos] ?? 0;
  for (let layer = 0; layer < a.attnOut.length; layer++) sum += a.attnOut[layer][pos] + a.mlpOut[layer][pos];
  return sum;
}

export function valueAt(example: ExampleResult, pos: number, selection: ValueSelection): number {
  const a = example.attributions;
  switch (selection.kind) {
    case 'token':
      // A @1 result has no token scores: its closest meaning is the total.
      return example.tokenScores ? (example.tokenScores.values[pos] ?? 0) : totalAt(example, pos);
    case 'total':
      return totalAt(example, pos);
    case 'residPre':
    case 'attnOut':
    case 'mlpOut':
      return a[selection.kind][selection.layer]?.[pos] ?? 0;
    case 'head':
      return a.z[selection.layer]?.[pos]?.[selection.head] ?? 0;
    case 'query':
    case 'key':
    case 'value': {
      const nodes = example.atpStar;
      const values = selection.kind === 'query' ? nodes?.q : selection.kind === 'key' ? nodes?.k : nodes?.v;
      return values?.[selection.layer]?.[pos]?.[selection.head] ?? 0;
    }
  }
}

/**
 * How the value at a position was computed. Token scores say it per token; a total adds AtP estimates even
 * when the arrays are exact sums of separate patches, so it is never called exact unless the arrays are.
 */
export function methodAt(result: Result, example: ExampleResult, pos: number, selection: ValueSelection): { method: Method; exact: boolean } {
  if (selection.kind === 'token' && example.tokenScores) {
    return { method: example.tokenScores.method, exact: example.tokenScores.exact[pos] ?? false };
  }
  // Queries and keys are AtP* (the QK fix); values are AtP, first-order exact through their own head.
  if (selection.kind === 'query' || selection.kind === 'key') return { method: 'atpstar', exact: false };
  if (selection.kind === 'value') return { method: 'atp', exact: false };
  // A hook at one layer: its map's method, exact in the map's exact rows (resid_pre at layer 0: the token effect).
  if (selection.kind === 'residPre' || selection.kind === 'attnOut' || selection.kind === 'mlpOut' || selection.kind === 'head') {
    const map = mapMethodsOf(result)[selection.kind === 'head' ? 'heads' : selection.kind];
    const exact = isExactRow(map, selection.layer);
    return { method: exact ? 'exact' : map.method, exact };
  }
  const method = methodsOf(result).attributions;
  return { method, exact: method === 'exact' };
}

/** "exact" or "AtP estimate", for hovers and legends. */
export function exactnessLabel(exact: boolean, method: Method = 'atp'): string {
  return exact ? 'exact' : METHOD_NAMES[method === 'exact' ? 'atp' : method];
}

/** What the colours of a selection show over a whole result: exact everywhere, an estimate everywhere, or both. */
export function selectionExactness(result: Result, selection: ValueSelection): 'exact' | 'estimate' | 'mixed' {
  let exact = 0;
  let estimate = 0;
  for (const example of result.examples) {
    example.tokens.forEach((_, pos) => {
      if (methodAt(result, example, pos, selection).exact) exact++;
      else estimate++;
    });
  }
  return estimate === 0 ? 'exact' : exact === 0 ? 'estimate' : 'mixed';
}

/** Values below this fraction of the largest |value| shown stay uncoloured in the editor: too small to matter. */
export const VISIBLE_FRACTION = 0.01;

/** One value per clean token of the example. */
export function tokenValues(example: ExampleResult, selection: ValueSelection): number[] {
  return example.tokens.map((_, pos) => valueAt(example, pos, selection));
}

export interface LayerBreakdown {
  layer: number;
  residPre: number;
  attnOut: number;
  mlpOut: number;
  /** Σ over heads of hook_z at this position (equal to attn_out: the output projection is linear). */
  heads: number;
  /** The head with the largest |hook_z| value here. */
  topHead: { head: number; value: number };
}

export function layerBreakdown(example: ExampleResult, pos: number): LayerBreakdown[] {
  const a = example.attributions;
  return a.residPre.map((_, layer) => ({
    layer,
    residPre: a.residPre[layer][pos],
    attnOut: a.attnOut[layer][pos],
    mlpOut: a.mlpOut[layer][pos],
    heads: a.z[layer][pos].reduce((sum, value) => sum + value, 0),
    topHead: a.z[layer][pos].reduce((best, value, head) => (Math.abs(value) > Math.abs(best.value) ? { head, value } : best), {
      head: 0,
      value: a.z[layer][pos][0] ?? 0,
    }),
  }));
}

/** The k heads with the largest |hook_z attribution| at one position of one example. */
export function topHeadsAt(example: ExampleResult, pos: number, k: number): Array<{ layer: number; head: number; value: number }> {
  const all = example.attributions.z.flatMap((layer, l) => (layer[pos] ?? []).map((value, head) => ({ layer: l, head, value })));
  all.sort((a, b) => Math.abs(b.value) - Math.abs(a.value) || a.layer - b.layer || a.head - b.head);
  return all.slice(0, k);
}

/** Layer × head at the answer (last) position: the Result's summary for all examples, or one example's. */
export function headMatrix(result: Result, scope: ExampleScope): number[][] {
  if (scope.kind === 'all') return result.heads;
  const z = result.examples[scope.index].attributions.z;
  return z.map((layer) => [...layer[layer.length - 1]]);
}

/**
 * Layer × position for the selected hook kind (resid_pre unless the selection names another): one example's, or
 * summed over examples when all prompts have one length; null otherwise (positions would not line up).
 */
export function positionMatrix(result: Result, scope: ExampleScope, selection: ValueSelection): number[][] | null {
  const examples = scope.kind === 'all' ? result.examples : [result.examples[scope.index]];
  if (examples.length === 0) return null;
  const length = examples[0].tokens.length;
  if (examples.some((example) => example.tokens.length !== length)) return null;
  const layers = result.model.layers;
  const kind = positionHook(selection).field;
  const sums = Array.from({ length: layers }, () => new Array<number>(length).fill(0));
  for (const example of examples) {
    for (let layer = 0; layer < layers; layer++) {
      for (let pos = 0; pos < length; pos++) {
        sums[layer][pos] += example.attributions[kind][layer][pos];
      }
    }
  }
  return sums;
}

/** Which hook the position heatmap shows for a selection: the selected per-position hook, resid_pre otherwise. */
export function positionHook(selection: ValueSelection): PositionHookRow {
  const hook = hookOfFieldName(selection.kind);
  return (hook && !hook.perHead ? hook : HOOKS.resid_pre) as PositionHookRow;
}

/** Which hook the position heatmap shows for a selection, in TransformerLens words. */
export function positionMatrixLabel(selection: ValueSelection): string {
  return positionHook(selection).label;
}

/** Tokens differing between the clean and corrupted prompts: the corrupted span, marked apart from the colours. */
export function corruptedPositions(example: ExampleResult): number[] {
  return example.cleanIds.flatMap((id, pos) => (id !== example.corruptedIds[pos] ? [pos] : []));
}

/** The CodeLens text above one example: its LDs, the effect of its changed tokens, the top head at its answer position. */
export function exampleLensText(result: Result, example: ExampleResult): string {
  const parts = [`LD clean ${formatValue(example.cleanLogitDiff)} · corrupted ${formatValue(example.corruptedLogitDiff)}`];
  for (const pos of corruptedPositions(example).slice(0, 3)) {
    const value = example.tokenScores ? example.tokenScores.values[pos] : undefined;
    if (value === undefined) continue;
    const exact = methodAt(result, example, pos, { kind: 'token' }).exact;
    const change = `${JSON.stringify(example.tokens[pos].text)}→${JSON.stringify(example.corruptedTokens[pos]?.text ?? '')}`;
    parts.push(`${change} ${formatValue(value)} ${exactnessLabel(exact)}`);
  }
  const last = example.attributions.z.map((layer) => layer[layer.length - 1] ?? []);
  let top: { layer: number; head: number; value: number } | undefined;
  last.forEach((heads, layer) =>
    heads.forEach((value, head) => {
      if (!top || Math.abs(value) > Math.abs(top.value)) top = { layer, head, value };
    }),
  );
  if (top) parts.push(`top head at the answer L${top.layer}H${top.head} ${formatValue(top.value)} ${methodsOf(result).heads === 'exact' ? 'exact' : 'AtP'}`);
  return parts.join(' · ');
}

/** An example as the researcher knows it: its line and what the corruption changes, e.g. line 3: " price" → " code". */
export function exampleLabel(example: ExampleResult): string {
  const positions = corruptedPositions(example);
  if (positions.length === 0) return `line ${example.line}: the prompts are the same`;
  const join = (tokens: ExampleResult['tokens']) => positions.map((pos) => tokens[pos]?.text ?? '').join('…');
  return `line ${example.line}: ${JSON.stringify(join(example.tokens))} → ${JSON.stringify(join(example.corruptedTokens))}`;
}

/** The first column holding a non-zero value in any row (the row length when all are 0). Before the first token
 * the prompts differ in, a causal model computes the same in both runs, so those positions are exactly 0. */
export function firstNonZeroColumn(matrix: number[][]): number {
  let first = matrix[0]?.length ?? 0;
  for (const row of matrix) {
    const found = row.findIndex((value) => value !== 0);
    if (found >= 0) first = Math.min(first, found);
  }
  return first;
}

/** A matrix of sums over `count` examples, as the aggregate asks (a copy for the mean, the same matrix for the sum). */
export function aggregateMatrix(matrix: number[][], count: number, aggregate: Aggregate): number[][] {
  if (aggregate === 'sum' || count <= 0) return matrix;
  return matrix.map((row) => row.map((value) => value / count));
}

/** "summed over examples" or "mean over N examples", for titles and captions. */
export function aggregateLabel(count: number, aggregate: Aggregate): string {
  return aggregate === 'sum' ? 'summed over examples' : `mean over ${count} examples`;
}

/**
 * Position labels for the examples in scope: the first example's whole token at each position; where other
 * examples have another token there, the tooltip lists those too.
 */
export function positionLabels(result: Result, scope: ExampleScope): { labels: string[]; titles: string[] } {
  const examples = scope.kind === 'all' ? result.examples : [result.examples[scope.index]];
  const show = (text: string) => JSON.stringify(text).slice(1, -1);
  const labels = examples[0].tokens.map((token) => show(token.text));
  const titles = examples[0].tokens.map((token, pos) => {
    const others = [
      ...new Set(examples.map((example) => example.tokens[pos]?.text).filter((text): text is string => text !== undefined && text !== token.text)),
    ];
    return `pos ${pos} "${show(token.text)}"` + (others.length > 0 ? `; other examples: ${others.map((text) => `"${show(text)}"`).join(', ')}` : '');
  });
  return { labels, titles };
}

/** One CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180). */
export function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

const csvRows = (rows: Array<Array<string | number>>) => rows.map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';

/**
 * The per-token values the editor colours show under a selection, one row per clean token of each example in
 * scope, with whether each value is exact.
 */
export function tokenCsv(result: Result, selection: ValueSelection, scope: ExampleScope): string {
  const examples = scope.kind === 'all' ? result.examples : [result.examples[scope.index]];
  const rows: Array<Array<string | number>> = [['line', 'position', 'token', 'token_id', 'corrupted_token', 'selection', 'value', 'method', 'exact']];
  for (const example of examples) {
    example.tokens.forEach((token, pos) => {
      const { method, exact } = methodAt(result, example, pos, selection);
      rows.push([
        example.line,
        pos,
        token.text,
        token.id,
        example.corruptedTokens[pos]?.text ?? '',
        selectionLabel(selection),
        valueAt(example, pos, selection),
        method,
        exact ? 'true' : 'false',
      ]);
    });
  }
  return csvRows(rows);
}

/**
 * The head map and the position map as the panel shows them (scope and aggregate), in long form: one row per
 * cell. The position map is left out when the prompts differ in length (its positions would not line up).
 */
export function mapsCsv(result: Result, scope: ExampleScope, selection: ValueSelection, aggregate: Aggregate): string {
  const count = scope.kind === 'all' ? result.examples.length : 1;
  const how = scope.kind === 'all' ? aggregate : 'example';
  const where = scope.kind === 'all' ? 'all' : `line ${result.examples[scope.index].line}`;
  const maps = mapMethodsOf(result);
  // Per row: an exact row of an estimated map says 'exact'.
  const rowMethod = (map: keyof typeof maps, layer: number) => (isExactRow(maps[map], layer) ? 'exact' : maps[map].method);
  const rows: Array<Array<string | number>> = [['map', 'hook', 'layer', 'column', 'label', 'examples', 'aggregate', 'value', 'method']];
  aggregateMatrix(headMatrix(result, scope), count, aggregate).forEach((row, layer) =>
    row.forEach((value, head) => rows.push(['heads', HOOKS.z.label, layer, head, `H${head}`, where, how, value, rowMethod('heads', layer)])),
  );
  const positions = positionMatrix(result, scope, selection);
  if (positions) {
    const { labels } = positionLabels(result, scope);
    const field = positionHook(selection).field;
    aggregateMatrix(positions, count, aggregate).forEach((row, layer) =>
      row.forEach((value, pos) =>
        rows.push(['positions', positionMatrixLabel(selection), layer, pos, labels[pos], where, how, value, rowMethod(field, layer)]),
      ),
    );
  }
  return csvRows(rows);
}

/** The example of a scope, whole, for the panel (undefined for 'all' or an index past the end). */
export function scopedExample(result: Result, scope: ExampleScope): ScopedExample | undefined {
  return scope.kind === 'example' && scope.index < result.examples.length ? { index: scope.index, data: result.examples[scope.index] } : undefined;
}

/** The checked cell of a map a check item is, as [layer, column], or undefined when that map shows no such cell (an aligned position). */
export function checkedCell(item: CheckItem, map: MapKind): [number, number] | undefined {
  if (mapOfComponent(item) !== map) return undefined;
  if (map === 'heads') return item.position === null && !item.fromEnd ? [item.layer, item.head!] : undefined;
  return item.position !== null ? [item.layer, item.position] : undefined;
}

/**
 * A map over all examples (sums) with each checked cell's exact value in place ('exact', what the panel shows by
 * default: no cell shows an estimate whose exact value the run has) or its estimate ('estimate'). A copy.
 */
export function checkedValuesInPlace(matrix: number[][], checks: Checks | undefined, map: MapKind, show: 'exact' | 'estimate'): number[][] {
  const copy = matrix.map((row) => [...row]);
  for (const item of checks?.items ?? []) {
    const cell = checkedCell(item, map);
    if (cell && copy[cell[0]]?.[cell[1]] !== undefined) copy[cell[0]][cell[1]] = show === 'exact' ? item.exact : item.attribution;
  }
  return copy;
}

/**
 * What the heatmap panel gets of a result in a scope: see PanelResult. Its maps over all examples hold the checked
 * cells' exact values (the estimates stay in checks.items, for the panel's "estimate" view).
 */
export function panelResult(result: Result, scope: ExampleScope): PanelResult {
  const { examples, ...rest } = result;
  const all: ExampleScope = { kind: 'all' };
  const exactWhereChecked = (matrix: number[][], map: MapKind) => checkedValuesInPlace(matrix, result.checks, map, 'exact');
  const summary = {
    ...rest,
    heads: exactWhereChecked(result.heads, 'heads'),
    positions: result.positions && exactWhereChecked(result.positions, 'residPre'),
  };
  const residPre = positionMatrix(result, all, { kind: 'residPre', layer: 0 });
  const allPositions = residPre && {
    residPre: exactWhereChecked(residPre, 'residPre'),
    attnOut: exactWhereChecked(positionMatrix(result, all, { kind: 'attnOut', layer: 0 })!, 'attnOut'),
    mlpOut: exactWhereChecked(positionMatrix(result, all, { kind: 'mlpOut', layer: 0 })!, 'mlpOut'),
    ...positionLabels(result, all),
  };
  return {
    summary,
    examples: { count: examples.length, labels: examples.map(exampleLabel), lines: examples.map((e) => e.line) },
    allPositions,
    example: scopedExample(result, scope),
  };
}

/**
 * Whether the panel's choices made on `previous` still mean the same on `next` (a Result replacing it for the same
 * dataset): the same model (a head or layer is another model's otherwise), the chosen example still there, and AtP*
 * nodes chosen only when the new Result has them. When not, the view starts again from the token effects over all
 * examples.
 */
export function viewCarriesOver(previous: Result | undefined, next: Result, scope: ExampleScope, selection?: ValueSelection): boolean {
  if (!previous) return false;
  const [a, b] = [previous.model, next.model];
  if (a.source !== b.source || a.architecture !== b.architecture || a.layers !== b.layers || a.heads !== b.heads) return false;
  if (scope.kind === 'example' && scope.index >= next.examples.length) return false;
  if (selection && (selection.kind === 'query' || selection.kind === 'key' || selection.kind === 'value') && !next.atpStar) return false;
  return true;
}
