// A standalone HTML report of a Comparison (atp compare --html): the runs side by side (baselines, top heads,
// concentration), each run against the first (B − A heatmaps on one scale, depth-profile rank correlation, top-k
// overlap, circuit edges added and removed), and the depth profiles. Inline SVG, no script, no remote resource.
import type { Comparison, PairComparison, RunDigest } from '../shared/compare';
import { depthProfileChart, differenceHeatmap, escapeXml as escapeHtml, stackSvg } from '../shared/compareSvg';
import { METHOD_NAMES, type Method } from '../shared/resultMethods';
import { fixedOrDash, signedFixed } from '../shared/colorScale';

/** How many circuit edges to list by name before "… and N more". */
const EDGES_LISTED = 20;

function runRow(run: RunDigest): string {
  const c = run.concentration;
  const top = run.topHeads.map((h) => `L${h.layer}H${h.head} ${signedFixed(h.value)}`).join(', ');
  return (
    `<tr><td>${escapeHtml(run.label)}</td><td>${escapeHtml(run.model)}</td><td class="num">${run.layers}×${run.heads}</td><td class="num">${run.examples}</td>` +
    `<td class="num">${signedFixed(run.cleanLogitDiff)}</td><td class="num">${signedFixed(run.corruptedLogitDiff)}</td><td>${escapeHtml(METHOD_NAMES[run.method as Method] ?? run.method)}</td>` +
    `<td class="num">${fixedOrDash(c.topKShare)}</td><td class="num">${fixedOrDash(c.normalisedEntropy)}</td><td class="num">${fixedOrDash(c.effectiveHeads, 1)}</td><td>${escapeHtml(top)}</td></tr>`
  );
}

function edgeList(names: string[]): string {
  if (names.length === 0) return 'none';
  const shown = names
    .slice(0, EDGES_LISTED)
    .map((name) => `<code>${escapeHtml(name)}</code>`)
    .join(', ');
  return names.length > EDGES_LISTED ? `${shown} … and ${names.length - EDGES_LISTED} more` : shown;
}

function pairRow(pair: PairComparison): string {
  const overlap = `${pair.topOverlap.jaccard.toFixed(3)} by ${pair.topOverlap.by}${pair.topOverlap.shared.length > 0 ? ` (${pair.topOverlap.shared.join(', ')})` : ''}`;
  const circuit = pair.circuit ? `+${pair.circuit.added.length} / −${pair.circuit.removed.length} (${pair.circuit.kept} kept)` : '—';
  return (
    `<tr><td>${escapeHtml(pair.b)} vs ${escapeHtml(pair.a)}</td><td>${pair.sameShape ? 'yes' : 'no'}</td><td class="num">${fixedOrDash(pair.maxHeadChange, 4)}</td>` +
    `<td class="num">${fixedOrDash(pair.depthSpearman)}</td><td>${escapeHtml(overlap)}</td><td>${circuit}</td></tr>`
  );
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
<table><tr><th>run</th><th>model</th><th>layers×heads</th><th>examples</th><th>clean LD</th><th>corrupted LD</th><th>method</th><th>top-${comparison.k} share</th><th>entropy</th><th>eff. heads</th><th>top heads</th></tr>
${comparison.runs.map(runRow).join('\n')}</table>
<h2>Against ${escapeHtml(comparison.runs[0].label)}</h2>
<p class="note">Difference maps share one scale (±${comparison.headScale.toPrecision(3)} for heads), so equal colours mean equal changes. Depth profiles: Σ|attribution| per layer
resampled to ${comparison.depthPoints} points of normalised depth; ρ is their Spearman rank correlation. Top-${comparison.k} overlap is the Jaccard index of the heads
(one shape) or of the depth slices they sit in (different shapes).</p>
<table><tr><th>pair</th><th>same shape</th><th>max |B − A|</th><th>depth ρ</th><th>top-${comparison.k} overlap</th><th>circuit edges</th></tr>
${comparison.pairs.map(pairRow).join('\n')}</table>
${comparison.pairs.map((pair) => pairSection(pair, comparison)).join('\n')}
<h2>Depth profiles</h2>
${stackSvg([depthProfileChart(comparison)])}
</body></html>
`;
}
