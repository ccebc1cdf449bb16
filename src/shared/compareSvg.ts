// A Comparison drawn as SVG text: the B − A head heatmaps on one diverging scale (blue: B larger, red: B smaller)
// and the runs' depth profiles on one chart. Plain strings with no DOM and no script, so the same drawing serves
// `atp compare --svg`, its HTML report and the panel's Compare view (which shows it inside its strict CSP).
import { colorFor, normalise, signedFixed } from './colorScale';
import type { Comparison } from './compare';
import { escapeXml } from './markup';

const CELL = 24;
const LEFT = 44;
const LEGEND_HEIGHT = 40;
/** Distinct line colours for the runs' profiles (Okabe–Ito, readable by colour-blind readers). */
const RUN_COLOURS = ['#000000', '#E69F00', '#56B4E9', '#009E73', '#D55E00', '#0072B2', '#CC79A7', '#F0E442'];

/** A generous width for a line of 11px text (titles must not be clipped by the SVG's edge). */
const textWidth = (text: string) => Math.ceil(text.length * 6.6) + 8;

export interface SvgPiece {
  svg: string;
  width: number;
  height: number;
}

/** The diverging legend: −scale … 0 … +scale, in the heatmap's own colours. */
function legend(scale: number, y: number): string {
  const steps = 11;
  const width = 16;
  const cells = Array.from({ length: steps }, (_, i) => {
    const t = (i / (steps - 1)) * 2 - 1;
    return `<rect x="${LEFT + i * width}" y="${y}" width="${width}" height="10" fill="${colorFor(t, 'light')}" stroke="#ddd"/>`;
  }).join('');
  const label = (x: number, text: string, anchor: string) => `<text x="${x}" y="${y + 24}" text-anchor="${anchor}">${text}</text>`;
  return (
    cells +
    label(LEFT, (-scale).toPrecision(3), 'start') +
    label(LEFT + (steps * width) / 2, '0', 'middle') +
    label(LEFT + steps * width, `+${scale.toPrecision(3)}`, 'end')
  );
}

/**
 * One difference heatmap (rows: layers, columns: heads or positions) coloured on the given symmetric scale, with
 * its title and legend. Every cell carries its value in a tooltip and in data attributes (tests and exports read them).
 */
export function differenceHeatmap(matrix: readonly (readonly number[])[], scale: number, title: string, columnKind: 'head' | 'pos' = 'head'): SvgPiece {
  const columns = matrix[0]?.length ?? 0;
  const top = 22;
  const width = Math.max(LEFT + columns * CELL + 8, LEFT + 200, textWidth(title));
  const height = top + matrix.length * CELL + 18 + LEGEND_HEIGHT;
  const cells = matrix.flatMap((row, layer) =>
    row.map((value, column) => {
      const name = `layer ${layer}, ${columnKind === 'head' ? 'head' : 'position'} ${column}: B − A = ${signedFixed(value)}`;
      return (
        `<rect x="${LEFT + column * CELL}" y="${top + layer * CELL}" width="${CELL - 1}" height="${CELL - 1}" fill="${colorFor(normalise(value, scale), 'light')}" stroke="#ddd" ` +
        `data-layer="${layer}" data-${columnKind}="${column}" data-value="${value}"><title>${escapeXml(name)}</title></rect>`
      );
    }),
  );
  const rowLabels = matrix.map((_, layer) => `<text x="${LEFT - 6}" y="${top + layer * CELL + CELL / 2 + 4}" text-anchor="end">L${layer}</text>`);
  const columnLabels = Array.from(
    { length: columns },
    (_, column) =>
      `<text x="${LEFT + column * CELL + CELL / 2}" y="${top + matrix.length * CELL + 12}" text-anchor="middle">${columnKind === 'head' ? 'H' : ''}${column}</text>`,
  );
  const heading = `<text x="0" y="14" font-weight="600">${escapeXml(title)}</text>`;
  const svg = `${heading}${cells.join('')}${rowLabels.join('')}${columnLabels.join('')}${legend(scale, top + matrix.length * CELL + 22)}`;
  return { svg, width, height };
}

/** The runs' Σ|attribution| per layer on the common depth grid, one line per run, each scaled to its own maximum. */
export function depthProfileChart(comparison: Pick<Comparison, 'runs'>): SvgPiece {
  const plotWidth = 320;
  const plotHeight = 140;
  const top = 22;
  const keyTop = top + plotHeight + 30;
  const title = 'Σ|attribution| per layer by depth (each run scaled to its maximum)';
  const keyWidth = Math.max(0, ...comparison.runs.map((run) => LEFT + 24 + textWidth(`${run.label} (${run.layers} layers)`)));
  const width = Math.max(LEFT + plotWidth + 16, textWidth(title), keyWidth);
  const height = keyTop + comparison.runs.length * 16 + 4;
  const x = (depth: number) => LEFT + depth * plotWidth;
  const y = (share: number) => top + (1 - share) * plotHeight;
  const lines = comparison.runs.map((run, index) => {
    const points = run.depthProfile.length;
    const max = Math.max(0, ...run.depthProfile);
    const coordinates = run.depthProfile.map((value, i) => `${x((i + 0.5) / points).toFixed(1)},${y(max > 0 ? value / max : 0).toFixed(1)}`);
    const colour = RUN_COLOURS[index % RUN_COLOURS.length];
    return `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${coordinates.join(' ')}" data-run="${index}"><title>${escapeXml(run.label)}</title></polyline>`;
  });
  const key = comparison.runs.map((run, index) => {
    const colour = RUN_COLOURS[index % RUN_COLOURS.length];
    const ky = keyTop + index * 16;
    return `<line x1="${LEFT}" x2="${LEFT + 18}" y1="${ky - 4}" y2="${ky - 4}" stroke="${colour}" stroke-width="2"/><text x="${LEFT + 24}" y="${ky}">${escapeXml(run.label)} (${run.layers} layers)</text>`;
  });
  const axes =
    `<line x1="${LEFT}" y1="${top + plotHeight}" x2="${LEFT + plotWidth}" y2="${top + plotHeight}" stroke="#888"/>` +
    `<line x1="${LEFT}" y1="${top}" x2="${LEFT}" y2="${top + plotHeight}" stroke="#888"/>` +
    `<text x="${LEFT}" y="${top + plotHeight + 14}" text-anchor="middle">0</text><text x="${LEFT + plotWidth}" y="${top + plotHeight + 14}" text-anchor="middle">1</text>` +
    `<text x="${LEFT + plotWidth / 2}" y="${top + plotHeight + 14}" text-anchor="middle">normalised depth</text>` +
    `<text x="${LEFT - 6}" y="${top + 4}" text-anchor="end">max</text><text x="${LEFT - 6}" y="${top + plotHeight}" text-anchor="end">0</text>`;
  const heading = `<text x="0" y="14" font-weight="600">${escapeXml(title)}</text>`;
  return { svg: heading + axes + lines.join('') + key.join(''), width, height };
}

/** Pieces stacked top to bottom in one standalone SVG document. */
export function stackSvg(pieces: readonly SvgPiece[], gap = 24): string {
  const width = Math.max(0, ...pieces.map((p) => p.width));
  let y = 0;
  const groups = pieces.map((piece) => {
    const group = `<g transform="translate(0 ${y})">${piece.svg}</g>`;
    y += piece.height + gap;
    return group;
  });
  const height = Math.max(0, y - gap);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" font-family="system-ui, sans-serif" font-size="11">` +
    `${groups.join('')}</svg>`
  );
}

/** The head difference maps of every pair that has one (one scale for all), then the depth profiles. */
export function comparisonPieces(comparison: Comparison): SvgPiece[] {
  const maps = comparison.pairs.flatMap((pair) =>
    pair.headDifference ? [differenceHeatmap(pair.headDifference, comparison.headScale, `${pair.b} − ${pair.a}: head attribution (hook_z at the answer)`)] : [],
  );
  return [...maps, depthProfileChart(comparison)];
}

/** The whole comparison as one standalone SVG document (atp compare --svg, the panel's SVG export). */
export function comparisonSvg(comparison: Comparison): string {
  return stackSvg(comparisonPieces(comparison));
}
