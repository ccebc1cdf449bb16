// The Compare view: the runs side by side (baselines, concentration, top heads), each run against the first (A):
// same shape → the B − A head map (and position map) on one diverging scale shared by every pair; always the
// depth-profile rank correlation and the top-k overlap; circuit edges added and removed when both have a circuit.
// The drawings are the same SVG as `atp compare --svg` (src/shared/compareSvg.ts), parsed as SVG (never as HTML)
// and coloured by the theme through CSS. Exports are saved by the host, which holds the comparison. The same panel
// shows a sweep's summary after "Run Sweep…".
import type { Comparison, PairComparison } from '../src/shared/compare';
import { comparisonTables, tableCells } from '../src/shared/compareTable';
import { depthProfileChart, differenceHeatmap, stackSvg, type SvgPiece } from '../src/shared/compareSvg';
import { fixedOrDash, formatValue } from '../src/shared/colorScale';
import type { ComparisonExport } from '../src/shared/panelProtocol';
import type { SweepSummary } from '../src/shared/sweep';
import { vscode } from './vscodeApi';
import { element, toolbarButton } from './chart';

/** A drawing from compareSvg.ts as an SVG element (parsed as XML: its text was escaped for XML, and nothing in it runs). */
function svgElement(pieces: SvgPiece[], className: string): Element {
  const parsed = new DOMParser().parseFromString(stackSvg(pieces), 'image/svg+xml');
  const svg = document.importNode(parsed.documentElement, true);
  svg.setAttribute('class', className);
  return svg;
}

function table(id: string, cells: { header: string[]; numeric: boolean[]; rows: string[][] }): HTMLTableElement {
  const head = element('tr', {}, ...cells.header.map((h) => element('th', {}, h)));
  const row = (values: string[]) => element('tr', {}, ...values.map((value, i) => element('td', cells.numeric[i] ? { className: 'num' } : {}, value)));
  return element('table', { id, className: 'compare-table' }, head, ...cells.rows.map(row));
}

function exportButton(label: string, format: ComparisonExport): HTMLElement {
  return toolbarButton(label, `export-comparison-${format}`, () => vscode.postMessage({ type: 'exportComparison', format }));
}

function pairSection(pair: PairComparison, index: number, comparison: Comparison): HTMLElement {
  const section = element('section', { id: `compare-pair-${index}`, className: 'heatmap-section' }, element('h2', {}, `${pair.b} − ${pair.a}`));
  if (pair.headDifference) {
    section.append(
      svgElement(
        [differenceHeatmap(pair.headDifference, comparison.headScale, 'head attribution, B − A (hook_z at the answer position)')],
        'compare-svg compare-heads',
      ),
    );
  } else {
    section.append(
      element(
        'p',
        { className: 'hint' },
        `Different shapes (${comparison.runs[0].layers}×${comparison.runs[0].heads} and ${comparison.runs[index + 1].layers}×${comparison.runs[index + 1].heads}): no cell-by-cell difference; see the depth profiles and the top-${comparison.k} overlap.`,
      ),
    );
  }
  if (pair.positionDifference) {
    section.append(
      svgElement(
        [differenceHeatmap(pair.positionDifference, comparison.positionScale, 'position attribution, B − A (resid_pre)', 'pos')],
        'compare-svg compare-positions',
      ),
    );
  }
  if (pair.circuit) {
    const list = (names: string[]) =>
      names.length === 0 ? 'none' : names.slice(0, 20).join(', ') + (names.length > 20 ? ` … and ${names.length - 20} more` : '');
    section.append(element('p', { className: 'circuit-diff' }, `Circuit edges added: ${list(pair.circuit.added)}. Removed: ${list(pair.circuit.removed)}.`));
  }
  return section;
}

export function drawComparison(app: HTMLElement, comparison: Comparison): void {
  const k = comparison.k;
  const header = element(
    'header',
    {},
    element('h1', { id: 'compare-title' }, `Compare ${comparison.runs.length} runs against ${comparison.runs[0].label}`),
    element(
      'p',
      { className: 'baselines' },
      `Difference maps share one scale (±${comparison.headScale.toPrecision(3)} for heads): equal colours are equal changes (blue: B larger, red: B smaller). ` +
        `Depth ρ: Spearman of Σ|attribution| per layer on ${comparison.depthPoints} points of normalised depth. Top-${k} overlap: Jaccard of the heads (one shape) or of the depth slices they sit in.`,
    ),
  );
  const toolbar = element(
    'div',
    { className: 'toolbar' },
    exportButton('Export SVG', 'svg'),
    exportButton('Export HTML', 'html'),
    exportButton('Export JSON', 'json'),
  );
  const tables = comparisonTables(comparison);
  const runs = table('compare-runs', tableCells(tables.runs));
  const pairs = table('compare-pairs', tableCells(tables.pairs));
  const profiles = element('section', { id: 'compare-profiles', className: 'heatmap-section' }, svgElement([depthProfileChart(comparison)], 'compare-svg'));
  app.replaceChildren(header, toolbar, runs, pairs, ...comparison.pairs.map((pair, i) => pairSection(pair, i, comparison)), profiles);
}

/** A sweep's summary: one row per cell (failed cells with their error), then each feature's depth profiles across models. */
export function drawSweep(app: HTMLElement, summary: SweepSummary, folder: string): void {
  const failed = summary.cells.filter((c) => c.status === 'failed').length;
  const header = element(
    'header',
    {},
    element('h1', { id: 'sweep-title' }, `Sweep: ${summary.cells.length} of ${summary.plannedCells} cells done${failed > 0 ? `, ${failed} failed` : ''}`),
    element(
      'p',
      { className: 'baselines' },
      `${summary.spec.count} examples per dataset (seed ${summary.spec.seed}), method ${summary.spec.method}; files in ${folder} (summary.html there is the standalone report).`,
    ),
  );
  const k = summary.cells.find((c) => c.digest)?.digest?.concentration.k ?? 5;
  const rows = summary.cells.map((cell) => {
    const d = cell.digest;
    // The model's folder name under the sweep (the full path or repo id is in the summary file).
    const where = [cell.folder, cell.feature, cell.commandSet === null ? '—' : String(cell.commandSet), cell.status];
    if (!d) return [...where, '', '', '', '', '', cell.error ?? ''];
    return [
      ...where,
      formatValue(d.cleanLogitDiff),
      formatValue(d.corruptedLogitDiff),
      fixedOrDash(d.concentration.topKShare),
      fixedOrDash(d.concentration.normalisedEntropy),
      d.topHeads
        .slice(0, 3)
        .map((h) => `L${h.layer}H${h.head}`)
        .join(' '),
      '',
    ];
  });
  const columns = ['model', 'feature', 'CS', 'status', 'clean LD', 'corrupted LD', `top-${k} share`, 'entropy', 'top heads', 'error'];
  const cells = table('sweep-cells', { header: columns, numeric: columns.map(() => false), rows });
  const groups = new Map<string, SweepSummary['cells']>();
  for (const cell of summary.cells) {
    if (!cell.digest) continue;
    const key = `${cell.feature}${cell.commandSet === null ? '' : ` CS${cell.commandSet}`}`;
    groups.set(key, [...(groups.get(key) ?? []), cell]);
  }
  const profiles = [...groups.entries()].map(([key, group]) =>
    element(
      'section',
      { className: 'heatmap-section sweep-profile' },
      element('h2', {}, key),
      svgElement([depthProfileChart({ runs: group.map((c) => ({ ...c.digest!, label: c.folder })) })], 'compare-svg'),
    ),
  );
  app.replaceChildren(header, cells, ...profiles);
}
