// A sweep's summary.html: every cell (model × feature × command set) with its baselines, top heads and how
// concentrated its attribution is, failed cells with their error; then, per feature, the models' depth profiles
// on one chart (where along the model the attribution sits, models of any depth lined up). Standalone: inline SVG,
// no script, no remote resource; links go to the Result files beside it.
import type { SweepCellRecord, SweepSummary } from '../../shared/sweep';
import { depthProfileChart, stackSvg } from '../../shared/compareSvg';
import { escapeXml as escapeHtml } from '../../shared/markup';
import { fixedOrDash, signedFixed } from '../../shared/colorScale';

function row(cell: SweepCellRecord): string {
  const d = cell.digest;
  const where = `<td>${escapeHtml(cell.model)}</td><td>${escapeHtml(cell.feature)}</td><td class="num">${cell.commandSet ?? '—'}</td>`;
  if (!d) {
    return `<tr class="failed" data-status="failed">${where}<td>failed</td><td colspan="7">${escapeHtml(cell.error ?? 'unknown error')}</td></tr>`;
  }
  const top = d.topHeads
    .slice(0, 3)
    .map((h) => `L${h.layer}H${h.head} ${signedFixed(h.value)}`)
    .join(', ');
  return (
    `<tr data-status="${cell.status}">${where}<td><a href="${escapeHtml(cell.result)}">${cell.status}</a></td><td class="num">${d.layers}×${d.heads}</td><td class="num">${d.examples}</td>` +
    `<td class="num">${signedFixed(d.cleanLogitDiff)}</td><td class="num">${signedFixed(d.corruptedLogitDiff)}</td><td class="num">${fixedOrDash(d.concentration.topKShare)}</td>` +
    `<td class="num">${fixedOrDash(d.concentration.normalisedEntropy)}</td><td class="heads">${escapeHtml(top)}</td></tr>`
  );
}

/** Per feature and command set, the depth profiles of the models that finished it. */
function profiles(summary: SweepSummary): string {
  const groups = new Map<string, SweepCellRecord[]>();
  for (const cell of summary.cells) {
    if (!cell.digest) continue;
    const key = `${cell.feature}${cell.commandSet === null ? '' : ` CS${cell.commandSet}`}`;
    groups.set(key, [...(groups.get(key) ?? []), cell]);
  }
  return [...groups.entries()]
    .map(([key, cells]) => `<h3>${escapeHtml(key)}</h3>${stackSvg([depthProfileChart({ runs: cells.map((c) => ({ ...c.digest!, label: c.model })) })])}`)
    .join('\n');
}

export function renderSweepReport(summary: SweepSummary): string {
  const { spec } = summary;
  const failed = summary.cells.filter((c) => c.status === 'failed').length;
  const k = summary.cells.find((c) => c.digest)?.digest?.concentration.k ?? 5;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Attribution patching sweep</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; } svg text { fill: #333; }
table { border-collapse: collapse; } th, td { padding: 2px 10px; border-bottom: 1px solid #eee; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { color: #a00; } td.heads { white-space: nowrap; } .note { color: #666; font-size: 0.92em; }
</style></head>
<body><h1>Attribution patching sweep</h1>
<p>${summary.cells.length} of ${summary.plannedCells} cells done${failed > 0 ? `, ${failed} failed` : ''}; ${spec.count} examples per dataset (seed ${spec.seed}), method ${escapeHtml(spec.method)}.
Models: ${spec.models.map(escapeHtml).join(', ')}. Features: ${spec.features.map(escapeHtml).join(', ')}.</p>
<p class="note">Values are head attributions (hook_z at the answer position) to the normalised logit difference, summed over examples. Top-${k} share: the part of
Σ|attribution| in the ${k} largest heads; entropy: of |attribution| over heads, normalised (0: one head holds all, 1: spread evenly). "kept": a finished
Result of the same model, dataset and method was already there.</p>
<table><tr><th>model</th><th>feature</th><th>CS</th><th>status</th><th>layers×heads</th><th>examples</th><th>clean LD</th><th>corrupted LD</th><th>top-${k} share</th><th>entropy</th><th>top heads</th></tr>
${summary.cells.map(row).join('\n')}</table>
<h2>Where the attribution sits, by feature</h2>
${profiles(summary)}
</body></html>
`;
}
