// A standalone HTML report of a Comparison (atp compare --html): the runs side by side (baselines, top heads,
// concentration), each run against the first (B − A heatmaps on one scale, depth-profile rank correlation, top-k
// overlap, circuit edges added and removed), and the depth profiles. Inline SVG, no script, no remote resource.
import type { Comparison, PairComparison, RunDigest } from '../shared/compare';
import { depthProfileChart, differenceHeatmap, stackSvg } from '../shared/compareSvg';
import { escapeXml as escapeHtml } from '../shared/markup';
import { comparisonTables, tableCells, type ComparisonTable } from '../shared/compareTable';

/** How many circuit edges to list by name before "… and N more". */
const EDGES_LISTED = 20;

/** A table of the comparison as HTML, every cell escaped. */
function htmlTable(table: ComparisonTable<RunDigest> | ComparisonTable<PairComparison>): string {
  const { header, numeric, rows } = tableCells(table as ComparisonTable<unknown>);
  const cell = (tag: 'td' | 'th', text: string, i: number) => `<${tag}${numeric[i] ? ' class="num"' : ''}>${escapeHtml(text)}</${tag}>`;
  return `<table><tr>${header.map((h, i) => cell('th', h, i)).join('')}</tr>\n${rows.map((row) => `<tr>${row.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('\n')}</table>`;
}

function edgeList(names: string[]): string {
  if (names.length === 0) return 'none';
  const shown = names
    .slice(0, EDGES_LISTED)
    .map((name) => `<code>${escapeHtml(name)}</code>`)
    .join(', ');
  return names.length > EDGES_LISTED ? `${shown} … and ${names.length - EDGES_LISTED} more` : shown;
}

function pairSection(pair: PairComparison, comparison: Comparison): string {
  const parts: string[] = [`<h3>${escapeHtml(pair.b)} − ${escapeHtml(pair.a)}</h3>`];
  if (pair.headDifference)
    parts.push(stackSvg([differenceHeatmap(pair.headDifference, comparison.headScale, 'head attribution, B − A (hook_z at the answer position)')]));
  else parts.push('<p>Different shapes: no cell-by-cell difference. Compare the depth profiles and the top-k overlap above.</p>');
  if (pair.positionDifference)
    parts.push(stackSvg([differenceHeatmap(pair.positionDifference, comparison.positionScale, 'position attribution, B − A (resid_pre)', 'pos')]));
  if (pair.circuit) parts.push(`<p>Circuit edges added: ${edgeList(pair.circuit.added)}.<br>Circuit edges removed: ${edgeList(pair.circuit.removed)}.</p>`);
  return parts.join('\n');
}

export function renderCompareReport(comparison: Comparison, heading = 'Attribution patching: comparison'): string {
  const tables = comparisonTables(comparison);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${escapeHtml(heading)}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
svg text { fill: #333; }
table { border-collapse: collapse; margin-bottom: 16px; } th, td { padding: 2px 10px; border-bottom: 1px solid #eee; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f4f4f4; padding: 1px 3px; } .note { color: #666; font-size: 0.92em; }
</style></head>
<body><h1>${escapeHtml(heading)}</h1>
<p class="note">Values are attributions to the normalised logit difference (LD − LD<sub>corrupted</sub>) / (LD<sub>clean</sub> − LD<sub>corrupted</sub>),
summed over examples. Concentration over the ${comparison.k} largest |head attributions|: their share of Σ|attribution|, the normalised entropy
(0: one head holds everything, 1: spread evenly) and the effective number of heads (e<sup>entropy</sup>).</p>
<h2>Runs</h2>
${htmlTable(tables.runs)}
<h2>Against ${escapeHtml(comparison.runs[0].label)}</h2>
<p class="note">Difference maps share one scale (±${comparison.headScale.toPrecision(3)} for heads), so equal colours mean equal changes. Depth profiles: Σ|attribution| per layer
resampled to ${comparison.depthPoints} points of normalised depth; ρ is their Spearman rank correlation. Top-${comparison.k} overlap is the Jaccard index of the heads
(one shape) or of the depth slices they sit in (different shapes).</p>
${htmlTable(tables.pairs)}
${comparison.pairs.map((pair) => pairSection(pair, comparison)).join('\n')}
<h2>Depth profiles</h2>
${stackSvg([depthProfileChart(comparison)])}
</body></html>
`;
}
