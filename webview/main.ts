// The heatmap panel's app: baselines, an example picker (all examples summed, or one), the layer × head heatmap at
// the answer position and the layer × position heatmap, exports. Clicking a row or a cell tells the host what the
// editor's inline colours should show. View state survives hiding and reloads through getState/setState.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import type { ExampleResult, MapKind, MapMethod, Result } from '../src/shared/result';
import { agreementsOf, describeAgreement } from '../src/shared/checkAgreement';
import { isExactRow, mapMethodLabel, mapMethodsOf, METHOD_NAMES, methodsOf, suspectCells } from '../src/shared/resultMethods';
import { formatValue, type ThemeKind } from '../src/shared/colorScale';
import {
  parsePanelState,
  selectionLabel,
  type Aggregate,
  type ExampleScope,
  type HostMessage,
  type PanelResult,
  type PanelState,
  type ValueSelection,
} from '../src/shared/panelProtocol';
import {
  aggregateLabel,
  aggregateMatrix,
  checkedCell,
  checkedValuesInPlace,
  firstNonZeroColumn,
  headMatrix,
  mapsCsv,
  positionLabels,
  positionHook,
  positionMatrix,
  positionMatrixLabel,
  tokenCsv,
} from '../src/shared/resultViews';
import { exportPng, exportSvg } from './exportView';
import { drawChecks } from './checksView';
import { element } from './chart';
import { drawCircuitView } from './circuitView';
import { initialEdgeCount } from '../src/shared/circuitView';
import { modelLabel } from '../src/shared/modelNames';
import { drawHeatmap } from './heatmap';
import { drawComparison, drawSweep } from './compareView';
import { vscode } from './vscodeApi';

interface View {
  /** Show the position map's leading all-zero positions too (collapsed by default). */
  allPositions?: boolean;
  /** The host's PanelResult: summaries, example labels, and the example in scope (never every example's arrays). */
  data?: PanelResult;
  resultFile?: string;
  stale: boolean;
  selection: ValueSelection;
  scope: ExampleScope;
  /** Maps over all examples: the Result's sums (the default) or their mean. */
  aggregate: Aggregate;
  /** Numbers written in the heatmap cells. */
  numbers?: boolean;
  /** Checked cells show their exact value (the default: the truth where the run has it) or their estimate. */
  checkedShow?: 'exact' | 'estimate';
  /** The circuit view's slider: top n edges (absent: the circuit's own size). */
  circuitEdges?: number;
  /** The Compare view's Result files (A first) or sweep folder, kept in the state for a reload. */
  comparedFiles?: string[];
  sweepFolder?: string;
}

/** Components per pick for "Check top K". */
const CHECK_K = 5;

/** GradDrop of a heatmap's cells and the cells it flags (GradDrop ≫ |AtP|); sums over examples, so 'all' only. */
type Summary = PanelResult['summary'];

function gradDropMarks(result: Summary, count: number, scope: ExampleScope, map: 'heads' | 'positions'): { gradDrop?: number[][]; suspects?: Set<string> } {
  const drop = result.atpStar?.gradDrop?.[map];
  const atp = map === 'heads' ? result.heads : result.positions;
  if (!drop || !atp || scope.kind !== 'all') return {};
  // An exact row needs no flag: its value is the truth, not an estimate that may hide a cancellation.
  const rows = mapMethodsOf(result)[map === 'heads' ? 'heads' : 'residPre'];
  const suspects = suspectCells(atp, drop).filter((c) => !isExactRow(rows, c.layer));
  // Which cells are suspect does not depend on the aggregate (a ratio); the numbers shown follow it.
  return { gradDrop: aggregateMatrix(drop, count, view.aggregate), suspects: new Set(suspects.map((c) => `${c.layer}:${c.column}`)) };
}

/** The rows of an estimated map that are exact (an exact map needs no marks: its title says so). */
function exactRowsOf(map: MapMethod, layers: number): Set<number> {
  if (map.method === 'exact') return new Set();
  return new Set(Array.from({ length: layers }, (_, layer) => layer).filter((layer) => isExactRow(map, layer)));
}

/** AtP*'s query, key and value nodes, summed over positions and examples; a cell colours the editor by that node. */
function drawNodeMaps(container: HTMLElement, result: Summary, count: number, theme: ThemeKind, tooltip: HTMLElement): void {
  const star = result.atpStar!;
  const maps = [
    { kind: 'query' as const, values: star.maps.q, heads: result.model.heads, prefix: 'H', title: 'Queries (AtP*, QK fix)' },
    { kind: 'key' as const, values: star.maps.k, heads: star.kvHeads, prefix: 'KV', title: 'Keys (AtP*, QK fix)' },
    { kind: 'value' as const, values: star.maps.v, heads: star.kvHeads, prefix: 'KV', title: 'Values (AtP)' },
  ].map((map) => ({ ...map, values: aggregateMatrix(map.values, count, view.aggregate) }));
  const over = view.aggregate === 'sum' ? 'summed over positions and examples' : `summed over positions, ${aggregateLabel(count, 'mean')}`;
  const heading = element('h2', {}, `Attention heads by input: query, key and value nodes, ${over}`);
  const note = element(
    'p',
    { className: 'hint' },
    'AtP* recomputes the attention softmax exactly for a patched query or key (the QK fix), where AtP linearises it and can miss saturated heads. ' +
      'Click a cell to colour the editor by that node at every token.',
  );
  const row = element('div', { className: 'node-maps' });
  container.replaceChildren(heading, note, row);
  const selection = view.selection;
  for (const map of maps) {
    const holder = element('div', { id: `atpstar-${map.kind}` });
    row.append(holder);
    drawHeatmap(holder, {
      showNumbers: view.numbers,
      column: 'head',
      values: map.values,
      columnLabels: Array.from({ length: map.heads }, (_, h) => `${map.prefix}${h}`),
      columnTitles: Array.from({ length: map.heads }, (_, h) => `${map.kind} ${map.prefix === 'H' ? 'head' : 'key/value head'} ${h}`),
      title: map.title,
      theme,
      selected: selection.kind === map.kind ? { layer: selection.layer, column: selection.head } : undefined,
      onSelectCell: (layer, head) => select({ kind: map.kind, layer, head }),
      onSelectRow: () => undefined,
      tooltip,
    });
  }
}

/** Exact values of the checked cells of one heatmap, by `${layer}:${column}`; checks are sums over examples. */
function checkedCells(
  result: Summary,
  count: number,
  scope: ExampleScope,
  map: MapKind,
): { exact: Map<string, number>; estimate: Map<string, number>; signDiffers: Set<string> } {
  const exact = new Map<string, number>();
  const estimate = new Map<string, number>();
  const signDiffers = new Set<string>();
  if (scope.kind !== 'all') return { exact, estimate, signDiffers };
  // Shown beside the cell's value, so in the same aggregate.
  const divisor = view.aggregate === 'mean' ? count : 1;
  for (const item of result.checks?.items ?? []) {
    const cell = checkedCell(item, map);
    if (!cell) continue;
    const key = `${cell[0]}:${cell[1]}`;
    exact.set(key, item.exact / divisor);
    estimate.set(key, item.attribution / divisor);
    if (item.signDiffers) signDiffers.add(key);
  }
  return { exact, estimate, signDiffers };
}

/** A map's title tail: its method, and for an estimate the measured agreement of its checked cells. */
function mapTitleTail(result: Summary, map: MapKind, method: MapMethod): string {
  const agreement = result.checks && method.method !== 'exact' ? agreementsOf(result.checks).find((a) => a.map === map) : undefined;
  const shows = agreement ? `; checked cells show ${view.checkedShow === 'estimate' ? 'their estimate' : 'exact values'}` : '';
  return ` — ${mapMethodLabel(method)}${agreement ? ` · checked: ${describeAgreement(agreement)}${shows}` : ''}`;
}

const restored = parsePanelState(vscode.getState());
const view: View = { stale: false, ...restored, aggregate: restored.aggregate ?? 'sum' };
const app = document.getElementById('app')!;

function theme(): ThemeKind {
  const classes = document.body.classList;
  return classes.contains('vscode-light') || classes.contains('vscode-high-contrast-light') ? 'light' : 'dark';
}

function saveState(): void {
  const state: PanelState = {
    resultFile: view.resultFile,
    selection: view.selection,
    scope: view.scope,
    aggregate: view.aggregate,
    circuitEdges: view.circuitEdges,
    comparedFiles: view.comparedFiles,
    sweepFolder: view.sweepFolder,
  };
  vscode.setState(state);
}

function select(selection: ValueSelection): void {
  view.selection = selection;
  saveState();
  vscode.postMessage({ type: 'select', selection });
  render();
}

function setScope(scope: ExampleScope): void {
  view.scope = scope;
  saveState();
  vscode.postMessage({ type: 'selectScope', scope });
  render();
}

function button(label: string, id: string, onClick: () => void, secondary = true): HTMLElement {
  const node = document.createElement('vscode-button');
  node.id = id;
  node.textContent = label;
  if (secondary) node.setAttribute('secondary', '');
  node.addEventListener('click', onClick);
  return node;
}

function exampleOptions(examples: PanelResult['examples']): HTMLElement {
  const picker = document.createElement('vscode-single-select');
  picker.id = 'example-picker';
  picker.setAttribute('aria-label', 'Examples');
  const add = (value: string, label: string) => {
    const option = document.createElement('vscode-option');
    option.setAttribute('value', value);
    option.textContent = label;
    if ((view.scope.kind === 'all' && value === 'all') || (view.scope.kind === 'example' && value === String(view.scope.index)))
      option.setAttribute('selected', '');
    picker.append(option);
  };
  add('all', `All ${examples.count} examples (${view.aggregate})`);
  examples.labels.forEach((label, index) => add(String(index), label));
  picker.addEventListener('change', () => {
    const value = (picker as unknown as { value: string }).value;
    setScope(value === 'all' ? { kind: 'all' } : { kind: 'example', index: Number(value) });
  });
  return picker;
}

/** Sum or mean over the examples; the sum stays the default (the Result's own summaries). */
function aggregateToggle(count: number): HTMLElement {
  const next: Aggregate = view.aggregate === 'sum' ? 'mean' : 'sum';
  return button(next === 'mean' ? `Show the mean over ${count} examples` : 'Show the sum over examples', 'toggle-aggregate', () => {
    view.aggregate = next;
    saveState();
    render();
  });
}

function render(): void {
  const { data } = view;
  if (!data) return;
  const result = data.summary;
  const count = data.examples.count;
  const checkedShow = view.checkedShow ?? 'exact';
  if (view.scope.kind === 'example' && view.scope.index >= count) view.scope = { kind: 'all' };
  // One example's views come from its arrays, which the host sends with each change of scope: until they are here,
  // the panel keeps what it shows.
  const example: ExampleResult | undefined = view.scope.kind === 'example' && data.example?.index === view.scope.index ? data.example.data : undefined;
  if (view.scope.kind === 'example' && !example) return;
  const one = example && ({ ...result, examples: [example] } as Result);
  const oneScope: ExampleScope = { kind: 'example', index: 0 };
  const exampleText = view.scope.kind === 'example' ? data.examples.labels[view.scope.index] : '';
  const currentTheme = theme();
  const tooltip = element('div', { id: 'tooltip', className: 'tooltip', hidden: true });
  tooltip.setAttribute('role', 'tooltip');

  const cleanLd = example ? example.cleanLogitDiff : result.metric.cleanLogitDiff;
  const corruptedLd = example ? example.corruptedLogitDiff : result.metric.corruptedLogitDiff;

  const over = aggregateLabel(count, view.aggregate);
  const title = `${result.dataset.file.split(/[\\/]/).pop()} · ${modelLabel(result.model.source)} on ${result.device}`;
  const header = element(
    'header',
    {},
    element('h1', { id: 'panel-title' }, title),
    element(
      'p',
      { className: 'baselines', id: 'baselines' },
      `${view.scope.kind === 'example' ? `Example ${exampleText} — l` : 'L'}ogit difference (correct − incorrect) — clean: ${formatValue(cleanLd)} · corrupted: ${formatValue(corruptedLd)}` +
        `${view.scope.kind === 'all' ? ` (means over ${count} examples)` : ''} · ${result.model.layers} layers × ${result.model.heads} heads. ` +
        `Cells: change of the normalised metric (1 = clean run, 0 = corrupted run)${view.scope.kind === 'all' ? `, ${over}` : ", this example's share"}.`,
    ),
  );
  const methods = methodsOf(result);
  const methodLine =
    `Heatmaps: ${methods.heads === methods.positions ? METHOD_NAMES[methods.heads] : `head map ${METHOD_NAMES[methods.heads]}, position maps ${METHOD_NAMES[methods.positions]}`}${mapMethodsOf(result).residPre.exactLayers.length > 0 && methods.positions !== 'exact' ? ' (resid_pre at L0 exact: it is the token effect)' : ''}${result.run ? ` (${result.run.passes.forward} forward + ${result.run.passes.backward} backward passes)` : ''} · token colours: ${METHOD_NAMES[methods.tokenScores]}` +
    (result.checks ? ` · ${result.checks.items.length} components checked (outlined)` : '') +
    (result.merged ? ` · merged from ${result.merged.shards} shard${result.merged.shards === 1 ? '' : 's'} (atp merge)` : '');
  header.append(element('p', { className: 'method', id: 'method-line' }, methodLine));
  if (view.stale) {
    header.append(
      element(
        'p',
        { className: 'stale', id: 'stale-banner' },
        'Stale: the dataset changed since this run; the editor colours are hidden. ',
        button('Re-run', 'rerun', () => vscode.postMessage({ type: 'rerun' }), false),
      ),
    );
  }
  // What an exported image says about itself: a file away from the panel must still name its run and exactly the
  // scope it draws. A circuit (and its faithfulness) covers the whole dataset whatever example the panel shows.
  const exportHeader = (drawn: 'view' | 'circuit' = 'view') => {
    const one = drawn === 'view' && view.scope.kind === 'example';
    return [
      title,
      `Dataset: ${result.dataset.file}`,
      `Model: ${modelLabel(result.model.source)} (${result.model.layers} layers × ${result.model.heads} heads) on ${result.device}`,
      one
        ? `Example: ${exampleText}`
        : drawn === 'circuit'
          ? `Examples: all ${count} examples (the circuit and its faithfulness are computed over the whole dataset)`
          : `Examples: all ${count} examples, ${view.aggregate === 'sum' ? 'summed' : 'mean'}`,
      one
        ? `Baselines: logit difference clean ${formatValue(cleanLd)} · corrupted ${formatValue(corruptedLd)}`
        : `Baselines: logit difference clean ${formatValue(result.metric.cleanLogitDiff)} · corrupted ${formatValue(result.metric.corruptedLogitDiff)} (means over ${count} examples)`,
      ...(drawn === 'view' ? [methodLine] : []),
    ];
  };
  const exportCsv = (kind: 'tokens' | 'maps') => {
    const name = suggestedName('csv').replace(/\.heatmap\./, kind === 'tokens' ? '.tokens.' : '.maps.');
    // Over all examples the host builds it: only it holds every example's arrays.
    if (!one) return vscode.postMessage({ type: 'exportCsvAll', kind, selection: view.selection, aggregate: view.aggregate, suggestedName: name });
    const csv = kind === 'tokens' ? tokenCsv(one, view.selection, oneScope) : mapsCsv(one, oneScope, view.selection, view.aggregate);
    vscode.postMessage({ type: 'exportCsv', kind, data: csv, suggestedName: name });
  };
  const selectionInfo = element('span', { className: 'selection', id: 'selection-label' }, `Editor colours: ${selectionLabel(view.selection)}`);
  const toolbar = element(
    'div',
    { className: 'toolbar' },
    exampleOptions(data.examples),
    selectionInfo,
    button('Show token effects', 'show-token', () => select({ kind: 'token' })),
    button(`Check top ${CHECK_K}`, 'check-top', () => vscode.postMessage({ type: 'checkTopK', k: CHECK_K })),
    ...(view.scope.kind === 'all' ? [aggregateToggle(count)] : []),
    ...(result.checks && result.checks.items.length > 0 && view.scope.kind === 'all'
      ? [
          button(checkedShow === 'exact' ? 'Checked cells: exact (show estimates)' : 'Checked cells: estimates (show exact)', 'toggle-checked', () => {
            view.checkedShow = checkedShow === 'exact' ? 'estimate' : 'exact';
            render();
          }),
        ]
      : []),
    button(view.numbers ? 'Hide numbers' : 'Show numbers', 'toggle-numbers', () => {
      view.numbers = !view.numbers;
      render();
    }),
    element('span', { className: 'spacer' }),
    button(
      'Export SVG',
      'export-svg',
      () =>
        void exportSvg(app, suggestedName('svg'), exportHeader()).then((data) =>
          vscode.postMessage({ type: 'exportImage', format: 'svg', data, suggestedName: suggestedName('svg') }),
        ),
    ),
    button(
      'Export PNG',
      'export-png',
      () =>
        void exportPng(app, suggestedName('png'), exportHeader()).then((data) =>
          vscode.postMessage({ type: 'exportImage', format: 'png', data, suggestedName: suggestedName('png') }),
        ),
    ),
    button('Export token CSV', 'export-tokens-csv', () => exportCsv('tokens')),
    button('Export maps CSV', 'export-maps-csv', () => exportCsv('maps')),
    button('Export Result JSON', 'export-json', () => vscode.postMessage({ type: 'exportResult' })),
  );

  const heads = element('section', { id: 'heads-heatmap', className: 'heatmap-section' });
  const positions = element('section', { id: 'positions-heatmap', className: 'heatmap-section' });
  const checks = element('section', { id: 'checks', className: 'heatmap-section' });
  const nodes = element('section', { id: 'atpstar-maps', className: 'heatmap-section' });
  const hint = element(
    'p',
    { className: 'hint' },
    'Click a cell or a layer label (or use the arrow keys and Enter) to colour the editor by it: a head cell shows that head at every token, a head-map layer its attn_out, a position-map layer or cell that layer of the hook shown.',
  );
  // A redraw (a click on a cell, a theme switch) keeps where the user had scrolled a wide map to.
  const scrolled = new Map(['heads-heatmap', 'positions-heatmap'].map((id) => [id, document.getElementById(id)?.scrollLeft ?? 0]));
  const circuitSection = element('section', { id: 'circuit-view', className: 'heatmap-section' });
  // Before the redraw replaces it: the circuit node the keyboard was on.
  const focusedNode = document.activeElement?.getAttribute('data-node');
  app.replaceChildren(header, toolbar, ...(result.circuit ? [circuitSection] : []), hint, heads, positions, nodes, checks, tooltip);
  if (result.circuit) {
    const circuit = result.circuit;
    const edgeCount = Math.min(view.circuitEdges ?? initialEdgeCount(circuit), circuit.edges.length);
    const circuitName = (extension: string) => suggestedName(extension).replace(/\.heatmap\.[^.]+\./, '.circuit.');
    const circuitHeader = () => [
      ...exportHeader('circuit'),
      `Circuit: ${circuit.method}, ${document.getElementById('circuit-edge-count')?.textContent ?? ''}; ${document.getElementById('circuit-faithfulness')?.textContent ?? ''}`,
    ];
    drawCircuitView(circuitSection, {
      circuit,
      hasAtpStar: result.atpStar !== undefined,
      theme: currentTheme,
      edgeCount,
      selection: view.selection,
      tooltip,
      onEdgeCount: (n) => {
        view.circuitEdges = n;
        saveState();
      },
      onSelectNode: (selection) => select(selection),
      onExportImage: (format) => {
        const name = circuitName(format);
        const image =
          format === 'svg'
            ? exportSvg(circuitSection, name, circuitHeader(), 'svg.circuit-chart')
            : exportPng(circuitSection, name, circuitHeader(), 'svg.circuit-chart');
        void image.then((data) => vscode.postMessage({ type: 'exportImage', format, data, suggestedName: name }));
      },
      onExportCircuit: (format) => vscode.postMessage({ type: 'exportCircuit', format }),
    });
    // A click or Enter on a node redraws the panel: the keyboard stays on that node.
    if (focusedNode) circuitSection.querySelector<SVGGElement>(`g.node[data-node="${CSS.escape(focusedNode)}"]`)?.focus();
  }
  if (result.atpStar && view.scope.kind === 'all') drawNodeMaps(nodes, result, count, currentTheme, tooltip);
  if (result.checks && result.checks.items.length > 0) drawChecks(checks, result.checks);
  const maps = mapMethodsOf(result);
  // The panel's maps hold the checked cells' exact values (panelResult); the estimate view puts the estimates back.
  const asShown = (matrix: number[][], map: MapKind) => (checkedShow === 'exact' ? matrix : checkedValuesInPlace(matrix, result.checks, map, 'estimate'));
  const headChecks = checkedCells(result, count, view.scope, 'heads');

  const selection = view.selection;
  drawHeatmap(heads, {
    showNumbers: view.numbers,
    column: 'head',
    values: aggregateMatrix(one ? headMatrix(one, oneScope) : asShown(result.heads, 'heads'), one ? 1 : count, view.aggregate),
    columnLabels: Array.from({ length: result.model.heads }, (_, h) => `H${h}`),
    columnTitles: Array.from({ length: result.model.heads }, (_, h) => `head ${h}`),
    title: `Heads at the answer position (hook_z)${view.scope.kind === 'all' ? `, ${over}` : ''}${mapTitleTail(result, 'heads', maps.heads)}`,
    exactRows: exactRowsOf(maps.heads, result.model.layers),
    checked: headChecks.exact,
    checkedEstimates: headChecks.estimate,
    signDiffers: headChecks.signDiffers,
    ...gradDropMarks(result, count, view.scope, 'heads'),
    theme: currentTheme,
    selected:
      selection.kind === 'head' ? { layer: selection.layer, column: selection.head } : selection.kind === 'attnOut' ? { layer: selection.layer } : undefined,
    onSelectCell: (layer, head) => select({ kind: 'head', layer, head }),
    onSelectRow: (layer) => select({ kind: 'attnOut', layer }),
    tooltip,
  });

  const kind = positionHook(selection).field;
  const shownPositions = data.allPositions?.[kind];
  const matrix = one ? positionMatrix(one, oneScope, selection) : shownPositions ? asShown(shownPositions, kind) : null;
  const positionChecks = checkedCells(result, count, view.scope, kind);
  if (!matrix) {
    positions.append(element('p', { className: 'empty' }, 'Layer × position needs prompts of one length: pick a single example above.'));
  } else {
    const { labels, titles } = one ? positionLabels(one, oneScope) : data.allPositions!;
    // Before the first differing token every value is exactly 0 (a causal model computes the same there in both
    // runs): long prompts would show a strip of empty cells, so those positions are folded away unless asked for.
    const first = firstNonZeroColumn(matrix);
    const fold = !view.allPositions && first >= 2 ? first : 0;
    const foldNote =
      first >= 2 &&
      element(
        'p',
        { className: 'hint', id: 'folded-positions' },
        fold > 0 ? `Positions 0–${fold - 1} are hidden: every value there is exactly 0 (they come before the first token the prompts differ in). ` : '',
        button(fold > 0 ? `Show all ${matrix[0].length} positions` : 'Hide the zero positions', 'toggle-positions', () => {
          view.allPositions = !view.allPositions;
          render();
        }),
      );
    drawHeatmap(positions, {
      showNumbers: view.numbers,
      column: 'pos',
      values: aggregateMatrix(matrix, one ? 1 : count, view.aggregate).map((row) => row.slice(fold)),
      firstColumn: fold,
      columnLabels: labels.slice(fold),
      columnTitles: titles.slice(fold),
      title: `Layer × position (${positionMatrixLabel(selection)})${view.scope.kind === 'all' ? `, ${over}` : ''}${mapTitleTail(result, kind, maps[kind])}`,
      exactRows: exactRowsOf(maps[kind], result.model.layers),
      checked: positionChecks.exact,
      checkedEstimates: positionChecks.estimate,
      signDiffers: positionChecks.signDiffers,
      ...(kind === 'residPre' ? gradDropMarks(result, count, view.scope, 'positions') : {}),
      theme: currentTheme,
      selected: selection.kind === kind ? { layer: selection.layer } : undefined,
      onSelectCell: (layer) => select({ kind, layer }),
      onSelectRow: (layer) => select({ kind, layer }),
      tooltip,
    });
    if (foldNote) positions.prepend(foldNote);
  }
  for (const section of [heads, positions]) {
    const left = scrolled.get(section.id) ?? 0;
    if (left > 0) {
      section.scrollLeft = left;
      section.dispatchEvent(new Event('scroll'));
    }
  }
}

function suggestedName(extension: string): string {
  const base = (view.data?.summary.dataset.file.split(/[\\/]/).pop() ?? 'attribution').replace(/\.[^.]+$/, '');
  const scope = view.scope.kind === 'all' ? 'all' : `line${view.data?.examples.lines[view.scope.index]}`;
  return `${base}.heatmap.${scope}.${extension}`;
}

window.addEventListener('message', (event: MessageEvent<HostMessage>) => {
  const message = event.data;
  switch (message.type) {
    case 'showResult':
      // Another Result (or a rerun) starts its circuit view at the circuit's own size.
      if (message.resultFile !== view.resultFile || message.result.summary.circuit?.edges.length !== view.data?.summary.circuit?.edges.length)
        view.circuitEdges = undefined;
      Object.assign(view, { data: message.result, resultFile: message.resultFile, stale: message.stale, selection: message.selection, scope: message.scope });
      saveState();
      return render();
    case 'setStale':
      view.stale = message.stale;
      return render();
    case 'setScope':
      view.scope = message.scope;
      if (view.data && message.example) view.data.example = message.example;
      saveState();
      return render();
    case 'noResult':
      view.data = undefined;
      app.replaceChildren(element('p', { className: 'empty', id: 'no-result' }, message.message));
      return;
    case 'showComparison':
      // The Compare view's panel: no single result here, so theme redraws (render) leave it alone.
      view.data = undefined;
      view.comparedFiles = message.files;
      view.sweepFolder = undefined;
      saveState();
      return drawComparison(app, message.comparison);
    case 'showSweep':
      view.data = undefined;
      view.sweepFolder = message.folder;
      view.comparedFiles = undefined;
      saveState();
      return drawSweep(app, message.summary, message.folder);
  }
});

// Theme switches change the body's class: redraw with the other palette.
new MutationObserver(() => render()).observe(document.body, { attributes: true, attributeFilter: ['class'] });

vscode.postMessage({ type: 'ready' });
