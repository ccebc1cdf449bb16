// atp compare: two or more Results side by side. Every run after the first is compared with the first: B − A maps
// when the shapes match, depth-profile rank correlation and top-k overlap always, circuit edges added and removed
// when both have a circuit. Prints a table; writes the comparison as JSON, a standalone HTML report and SVG.
import { parseArgs } from 'node:util';
import { InputError } from '../shared/errors';
import { parseIntegerFlag } from '../engine/integers';
import { refuseShard, type Result } from '../shared/result';
import { compareRuns, type Comparison, DEFAULT_TOP_K } from '../shared/compare';
import { comparisonSvg } from '../shared/compareSvg';
import { renderCompareReport } from '../report/compareReport';
import { type FileToWrite, writeFilesAtomically } from '../lib/files/atomicWrite';
import { checkCommandOutputs } from '../lib/files/outputPaths';
import type { CommandIo } from './generate';
import { readResultFile } from '../lib/files/resultFile';
import { comparisonTables, tableCells } from '../shared/compareTable';

export const COMPARE_USAGE = `Usage:
  atp compare A.json B.json [C.json ...] [--top K] [--json OUT.json] [--html OUT.html] [--svg OUT.svg]

Compares each result with the first (A). Same shape (layers × heads): the difference B − A of the head maps (and of
the position maps when the prompts have one length), all on one colour scale. Always: the Spearman rank correlation
of the runs' Σ|attribution| per layer resampled to a common normalised depth (so models of different depth line
up), and the Jaccard overlap of the top K heads (K = ${DEFAULT_TOP_K} by default; by depth slice when the shapes differ).
Each run's concentration: the share of Σ|attribution| in its top K heads and the normalised entropy. When both
results hold a circuit (atp circuit), the edges B adds and removes. --json, --html and --svg write the comparison.`;

/** A Result file (with its sidecar, if it has one), read and checked; errors name the file. */
export function readComparedResult(file: string): Result {
  return refuseShard(readResultFile(file), file);
}

/** Aligned columns: numbers right-aligned, text left-aligned. */
function alignedTable({ header, numeric, rows }: { header: string[]; numeric: boolean[]; rows: string[][] }): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** The comparison as the terminal shows it: runs, then each run against the first (without the wide columns). */
export function formatComparison(comparison: Comparison): string {
  const tables = comparisonTables(comparison);
  return [...alignedTable(tableCells(tables.runs, true)), '', ...alignedTable(tableCells(tables.pairs, true))].join('\n');
}

export function compareCommand(args: string[], io: CommandIo): void {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { top: { type: 'string' }, json: { type: 'string' }, html: { type: 'string' }, svg: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new InputError(`${(error as Error).message}\n\n${COMPARE_USAGE}`);
  }
  const { values, positionals } = parsed;
  if (positionals.length < 2) throw new InputError(`atp compare needs at least two result files (got ${positionals.length})\n\n${COMPARE_USAGE}`);
  const k = parseIntegerFlag(values.top, 'top', DEFAULT_TOP_K, 1);
  checkCommandOutputs(
    'compare',
    values,
    positionals.map((file) => ({ path: file, role: 'the result file' })),
  );
  const comparison = compareRuns(
    positionals.map((file) => ({ label: file, result: readComparedResult(file) })),
    k,
  );
  const files: FileToWrite[] = [];
  if (values.json) files.push({ file: values.json, contents: JSON.stringify(comparison, null, 2) + '\n', what: 'the comparison' });
  if (values.html) files.push({ file: values.html, contents: renderCompareReport(comparison), what: 'the report' });
  if (values.svg) files.push({ file: values.svg, contents: comparisonSvg(comparison) + '\n', what: 'the SVG' });
  writeFilesAtomically(files);
  io.stdout(`${formatComparison(comparison)}\n`);
  for (const { file } of files) io.stderr(`wrote ${file}\n`);
}
