// A standalone HTML report of one or more Results: baselines, top heads, and the layer × head and
// layer × position heatmaps of the seed notebook, as inline SVG. No script and no remote resource: it opens
// anywhere, offline, and can be attached to a paper draft or an issue.
import { colorFor, normalise, signedFixed, symmetricMax } from '../shared/colorScale';
import { type MapMethod, type Result, topHeads } from '../shared/result';
import { isExactRow, mapMethodLabel, mapMethodsOf } from '../shared/resultMethods';
import { firstNonZeroColumn } from '../shared/resultViews';
import { escapeXml as escapeHtml } from '../shared/markup';
import { agreementsOf, describeAgreement, MAP_TITLES } from '../shared/checkAgreement';

const CELL = 28;
const LEFT = 64;
const TOP = 24;

/**
 * One heatmap: rows are layers; every cell carries its value in a tooltip and a data attribute. `firstColumn` is
 * the first column's index in the full map when leading columns are folded away (data-pos keeps full indices).
 */
function heatmap(matrix: number[][], columnLabels: string[], columnKind: 'head' | 'pos', map: MapMethod, firstColumn = 0): string {
  const maxAbs = symmetricMax(matrix.flat());
  const labelHeight = columnKind === 'pos' ? 90 : 20;
  const width = Math.max(LEFT + columnLabels.length * CELL + 8, LEFT + 320); // room for the legend
  const height = TOP + matrix.length * CELL + labelHeight;
  const cells = matrix.flatMap((row, layer) =>
    row.map((value, column) => {
      const x = LEFT + column * CELL;
      const y = TOP + layer * CELL;
      const index = column + firstColumn;
      const exact = isExactRow(map, layer);
      const title = `layer ${layer}, ${columnKind === 'head' ? `head ${index}` : `position ${index} (${columnLabels[column]})`}: ${signedFixed(value)}${exact ? ' (exact)' : ''}`;
      return `<rect x="${x}" y="${y}" width="${CELL - 1}" height="${CELL - 1}" fill="${colorFor(normalise(value, maxAbs), 'light')}" stroke="#ddd" data-layer="${layer}" data-${columnKind}="${index}" data-value="${value}" data-exact-row="${exact}"><title>${escapeHtml(title)}</title></rect>`;
    }),
  );
  // An exact row of an estimated map says so at its label: the reader must not take it for an estimate, nor the rest for exact.
  const rowLabel = (layer: number) => (map.method !== 'exact' && isExactRow(map, layer) ? `L${layer} exact` : `L${layer}`);
  const rows = matrix.map(
    (_, layer) => `<text x="${LEFT - 8}" y="${TOP + layer * CELL + CELL / 2 + 4}" text-anchor="end" data-layer="${layer}">${rowLabel(layer)}</text>`,
  );
  const columns = columnLabels.map((label, column) => {
    const x = LEFT + column * CELL + CELL / 2;
    const y = TOP + matrix.length * CELL + 12;
    return columnKind === 'pos'
      ? `<text x="${x}" y="${y}" transform="rotate(60 ${x} ${y})">${escapeHtml(label)}</text>`
      : `<text x="${x}" y="${y}" text-anchor="middle">H${column}</text>`;
  });
  const legend = `<text x="${LEFT}" y="14" class="legend">colour scale: ±${maxAbs.toPrecision(3)} (blue positive, red negative)</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img">${legend}${cells.join('')}${rows.join('')}${columns.join('')}</svg>`;
}

/** Token strings of the first example, shown so that whitespace is visible. */
function positionLabels(result: Result): string[] {
  return result.examples[0].tokens.map((t) => t.text.replace(/ /g, '·').replace(/\n/g, '⏎'));
}

/** The position map as the panel shows it: the leading positions where every value is exactly 0 folded away, with a note. */
function positionMap(matrix: number[][], labels: string[], map: MapMethod): string {
  const first = firstNonZeroColumn(matrix);
  // Folding a single column saves nothing and would need a note longer than the column.
  const fold = first >= 2 ? Math.min(first, labels.length) : 0;
  const note =
    fold > 0
      ? `<p class="folded" id="folded-positions">${fold === labels.length ? `All ${fold} positions are hidden` : `Positions 0–${fold - 1} (${fold} of ${labels.length}) are hidden`}: every value there is exactly 0 (they come before the first token the prompts differ in).</p>`
      : '';
  return `${note}${heatmap(
    matrix.map((row) => row.slice(fold)),
    labels.slice(fold),
    'pos',
    map,
    fold,
  )}`;
}

/** The components checked against exact activation patching, if any: each map's agreement led by its error, then estimate and exact side by side. */
function checksTable(result: Result): string {
  const checks = result.checks;
  if (!checks || checks.items.length === 0) return '';
  const rows = checks.items
    .map((item) => {
      const name = item.hook === 'z' ? `L${item.layer}H${item.head}` : `L${item.layer} ${item.hook}`;
      const where = item.position !== null ? `position ${item.position}` : item.fromEnd ? `${item.fromEnd} before the answer` : 'answer';
      return `<tr${item.signDiffers ? ' class="sign-differs"' : ''}><td>${name}</td><td>${where}</td><td>${item.pick}</td><td class="num">${signedFixed(item.attribution)}</td><td class="num">${signedFixed(item.exact)}</td><td>${item.signDiffers ? 'sign differs' : ''}</td></tr>`;
    })
    .join('');
  const agreements = agreementsOf(checks)
    .map((agreement) => `<li data-map="${agreement.map}">${escapeHtml(`${MAP_TITLES[agreement.map]}: ${describeAgreement(agreement)}`)}</li>`)
    .join('');
  return `<h3>Checked against exact activation patching</h3>
<ul class="agreement">${agreements}</ul>
<table class="checks"><tr><th>component</th><th>where</th><th>picked</th><th>AtP</th><th>exact</th><th></th></tr>${rows}</table>`;
}

function section(result: Result, title: string): string {
  const m = result.model;
  const top = topHeads(result, 10)
    .map((h) => `<tr><td>L${h.layer}H${h.head}</td><td class="num">${signedFixed(h.value)}</td></tr>`)
    .join('');
  const maps = mapMethodsOf(result);
  const positions = result.positions
    ? `<h3>Layer × position (hook_resid_pre, summed over examples) — ${mapMethodLabel(maps.residPre)}</h3>${positionMap(result.positions, positionLabels(result), maps.residPre)}`
    : '<p>Layer × position: the prompts differ in length, so positions do not line up across examples.</p>';
  const first = result.examples[0];
  return `<section>
<h2>${escapeHtml(title)}</h2>
<p>${escapeHtml(m.source)} (${escapeHtml(m.modelType)}, ${m.layers} layers × ${m.heads} heads, d_model ${m.dModel}) on ${escapeHtml(result.device)};
${result.dataset.examples} examples from ${escapeHtml(result.dataset.file)}.</p>
<p>Clean logit difference <b>${signedFixed(result.metric.cleanLogitDiff)}</b>, corrupted <b>${signedFixed(result.metric.corruptedLogitDiff)}</b>.
Values are attributions to the normalised metric (LD − LD<sub>corrupted</sub>) / (LD<sub>clean</sub> − LD<sub>corrupted</sub>).</p>
<p class="example">Example 1 clean: <code>${escapeHtml(first.clean)}</code> → <code>${escapeHtml(JSON.stringify(first.correct))}</code><br>
corrupted: <code>${escapeHtml(first.corrupted)}</code> → <code>${escapeHtml(JSON.stringify(first.incorrect))}</code></p>
<div class="row"><div><h3>Layer × head (hook_z at the answer position) — ${mapMethodLabel(maps.heads)}</h3>${heatmap(result.heads, result.heads[0]?.map((_, h) => String(h)) ?? [], 'head', maps.heads)}</div>
<div><h3>Top heads</h3><table>${top}</table></div></div>
${positions}
${checksTable(result)}
</section>`;
}

export function renderHtmlReport(results: Array<{ title: string; result: Result }>, heading = 'Attribution patching report'): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${escapeHtml(heading)}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
svg text { font: 11px system-ui, sans-serif; fill: #333; } svg .legend { fill: #666; }
table { border-collapse: collapse; } td { padding: 2px 10px; border-bottom: 1px solid #eee; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.row { display: flex; gap: 32px; align-items: flex-start; flex-wrap: wrap; } code { background: #f4f4f4; padding: 1px 3px; }
section { margin-bottom: 40px; } .folded { color: #666; font-size: 0.92em; } tr.sign-differs td { color: #b00020; font-weight: 600; }
</style></head>
<body><h1>${escapeHtml(heading)}</h1>
${results.map((r) => section(r.result, r.title)).join('\n')}
</body></html>
`;
}
