// The two tables of a Comparison — the runs, and each run against the first — as text cells: one definition of
// every column for each view of a Comparison (the terminal's `atp compare`, the standalone HTML report and the
// Compare view), so the three show the same numbers in the same words.
import type { Comparison, PairComparison, RunDigest } from './compare';
import { fixedOrDash, signedFixed } from './colorScale';
import { METHOD_NAMES, type Method } from './resultMethods';
import { modelLabel } from './modelNames';

export interface ComparisonColumn<Row> {
  header: string;
  cell(row: Row): string;
  /** Right-aligned in the terminal and the report. */
  numeric: boolean;
  /** Left out of the terminal's table, whose lines must stay readable (the report and the view show it). */
  wide?: boolean;
}

export interface ComparisonTable<Row> {
  columns: ComparisonColumn<Row>[];
  rows: readonly Row[];
}

/** How many of a run's top heads its row names. */
const TOP_HEADS_LISTED = 3;

function runColumns(k: number): ComparisonColumn<RunDigest>[] {
  return [
    { header: 'run', cell: (run) => run.label, numeric: false },
    { header: 'model', cell: (run) => modelLabel(run.model), numeric: false, wide: true },
    { header: 'layers×heads', cell: (run) => `${run.layers}×${run.heads}`, numeric: true },
    { header: 'examples', cell: (run) => String(run.examples), numeric: true },
    { header: 'clean LD', cell: (run) => signedFixed(run.cleanLogitDiff), numeric: true },
    { header: 'corrupted LD', cell: (run) => signedFixed(run.corruptedLogitDiff), numeric: true },
    { header: 'method', cell: (run) => METHOD_NAMES[run.method as Method] ?? run.method, numeric: false, wide: true },
    { header: `top-${k} share`, cell: (run) => fixedOrDash(run.concentration.topKShare), numeric: true },
    { header: 'entropy', cell: (run) => fixedOrDash(run.concentration.normalisedEntropy), numeric: true },
    { header: 'eff. heads', cell: (run) => fixedOrDash(run.concentration.effectiveHeads, 1), numeric: true, wide: true },
    {
      header: 'top heads',
      cell: (run) =>
        run.topHeads
          .slice(0, TOP_HEADS_LISTED)
          .map((h) => `L${h.layer}H${h.head} ${signedFixed(h.value)}`)
          .join(', '),
      numeric: false,
    },
  ];
}

function pairColumns(k: number, baseline: string): ComparisonColumn<PairComparison>[] {
  return [
    { header: `against ${baseline}`, cell: (pair) => pair.b, numeric: false },
    { header: 'same shape', cell: (pair) => (pair.sameShape ? 'yes' : 'no'), numeric: false },
    { header: 'max |B − A|', cell: (pair) => fixedOrDash(pair.maxHeadChange, 4), numeric: true },
    { header: 'depth ρ', cell: (pair) => fixedOrDash(pair.depthSpearman), numeric: true },
    {
      header: `top-${k} overlap`,
      cell: ({ topOverlap }) => `${topOverlap.jaccard.toFixed(3)} (${topOverlap.by}${topOverlap.shared.length > 0 ? `: ${topOverlap.shared.join(', ')}` : ''})`,
      numeric: false,
    },
    {
      header: 'circuit edges',
      cell: ({ circuit }) => (circuit ? `+${circuit.added.length} −${circuit.removed.length} (${circuit.kept} kept)` : '—'),
      numeric: false,
    },
  ];
}

/** The runs side by side, and every run after the first against the first (A). */
export function comparisonTables(comparison: Comparison): { runs: ComparisonTable<RunDigest>; pairs: ComparisonTable<PairComparison> } {
  return {
    runs: { columns: runColumns(comparison.k), rows: comparison.runs },
    pairs: { columns: pairColumns(comparison.k, comparison.runs[0].label), rows: comparison.pairs },
  };
}

/** A table's header and cells as text, without its wide columns when `terminal`. */
export function tableCells<Row>(table: ComparisonTable<Row>, terminal = false): { header: string[]; numeric: boolean[]; rows: string[][] } {
  const columns = terminal ? table.columns.filter((column) => !column.wide) : table.columns;
  return {
    header: columns.map((column) => column.header),
    numeric: columns.map((column) => column.numeric),
    rows: table.rows.map((row) => columns.map((column) => column.cell(row))),
  };
}
