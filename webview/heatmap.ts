// One heatmap (layer rows × head or position columns) drawn with d3 as SVG: a cell per value carrying
// data-layer, data-head or data-pos, and data-value; row labels; a legend on the shared diverging scale; tooltips;
// keyboard navigation (arrow keys move a roving focus, Enter or Space selects, Home/End jump within a row).
import { scaleBand, select } from 'd3';
import { cellNumber, colorFor, formatValue, normalise, symmetricMax, type ThemeKind } from '../src/shared/colorScale';

export interface HeatmapSpec {
  /** 'head' or 'pos': the name of the column attribute (data-head / data-pos). */
  column: 'head' | 'pos';
  values: number[][];
  columnLabels: string[];
  /** Long column names for tooltips (e.g. the token string and position). */
  columnTitles: string[];
  title: string;
  theme: ThemeKind;
  /** Selected cell or whole row (column undefined), outlined. */
  selected?: { layer: number; column?: number };
  /** The first column's index in the full map (data-head/data-pos and callbacks use full-map indices); default 0. */
  firstColumn?: number;
  /** Cells checked against exact activation patching: exact value by `${layer}:${column}`; outlined, both numbers in the tooltip. */
  checked?: ReadonlyMap<string, number>;
  /** The checked cells' estimates, by the same keys (for the tooltip). */
  checkedEstimates?: ReadonlyMap<string, number>;
  /** Checked cells whose estimate has the opposite sign of the exact value: flagged in the cell (≠) and the tooltip. */
  signDiffers?: ReadonlySet<string>;
  /** GradDrop of every cell [layer][column] (full-map indices); in the tooltip, and cells it flags are outlined. */
  gradDrop?: number[][];
  /** Cells where GradDrop ≫ |AtP|, by `${layer}:${column}`. */
  suspects?: ReadonlySet<string>;
  /** Rows (layers) whose every cell is exact although the map estimates: marked "exact" at the row's end, and in each tooltip. */
  exactRows?: ReadonlySet<number>;
  /** Write each cell's value in it (two significant figures), for reading a map without hovering. */
  showNumbers?: boolean;
  onSelectCell(layer: number, column: number): void;
  onSelectRow(layer: number): void;
  tooltip: HTMLElement;
}

const CELL = { width: 34, height: 24 };
const MARGIN = { top: 30, right: 16, left: 44 };
/** Room under the grid for column labels: rotated token strings need more than head numbers. */
const LABEL_ROOM = { head: 30, pos: 78 };
const LEGEND = { width: 180, height: 10 };
const EXACT_MARK_WIDTH = 44;

let gradientCounter = 0;

export function drawHeatmap(container: HTMLElement, spec: HeatmapSpec): SVGSVGElement {
  const layers = spec.values.length;
  const columns = spec.columnLabels.length;
  const maxAbs = symmetricMax(spec.values.flat());
  const cellWidth = spec.column === 'pos' ? Math.max(CELL.width, 44) : CELL.width;
  // Rotated (−50°) token labels take about 6.5 px per character times sin 50° downwards: room for the longest.
  const longest = Math.max(0, ...spec.columnLabels.map((label) => label.length));
  const bottom = spec.column === 'pos' ? Math.max(LABEL_ROOM.pos, Math.ceil(longest * 6.5 * 0.77) + 16) : LABEL_ROOM.head;
  // Wide enough for the grid, the legend and the title (about 7 px per character at 12 px).
  const exactRows = spec.exactRows ?? new Set<number>();
  // Room right of the grid for the exact rows' mark.
  const markRoom = exactRows.size > 0 ? EXACT_MARK_WIDTH : 0;
  const width = Math.max(MARGIN.left + columns * cellWidth + MARGIN.right + markRoom, MARGIN.left + LEGEND.width + 40, MARGIN.left + spec.title.length * 7);
  const height = MARGIN.top + layers * CELL.height + bottom + LEGEND.height + 24;
  const x = scaleBand<number>()
    .domain(Array.from({ length: columns }, (_, i) => i))
    .range([MARGIN.left, MARGIN.left + columns * cellWidth])
    .padding(0.06);
  const y = scaleBand<number>()
    .domain(Array.from({ length: layers }, (_, i) => i))
    .range([MARGIN.top, MARGIN.top + layers * CELL.height])
    .padding(0.06);

  container.replaceChildren();
  const svg = select(container)
    .append('svg')
    .attr('xmlns', 'http://www.w3.org/2000/svg')
    .attr('width', width)
    .attr('height', height)
    .attr('viewBox', `0 0 ${width} ${height}`)
    .attr('class', 'heatmap')
    .attr('data-kind', spec.column);
  svg.append('text').attr('class', 'title sticky').attr('x', 0).attr('y', 16).text(spec.title);

  // Column labels: head numbers, or token strings rotated so that long tokens fit.
  svg
    .append('g')
    .attr('class', 'column-labels')
    .selectAll('text')
    .data(spec.columnLabels)
    .join('text')
    .attr('transform', (_, i) => {
      const cx = x(i)! + x.bandwidth() / 2;
      const cy = MARGIN.top + layers * CELL.height + 10;
      return spec.column === 'pos' ? `translate(${cx},${cy}) rotate(-50)` : `translate(${cx},${cy + 4})`;
    })
    .attr('text-anchor', spec.column === 'pos' ? 'end' : 'middle')
    .text((label) => label)
    .append('title')
    .text((_, i) => spec.columnTitles[i]);

  const cells = spec.values.flatMap((row, layer) => row.map((value, column) => ({ layer, column, value })));
  const grid = svg.append('g').attr('class', 'cells').attr('role', 'grid').attr('aria-label', spec.title);
  const offset = spec.firstColumn ?? 0;
  const exactOf = (cell: { layer: number; column: number }) => spec.checked?.get(`${cell.layer}:${cell.column + offset}`);
  const estimateOf = (cell: { layer: number; column: number }) => spec.checkedEstimates?.get(`${cell.layer}:${cell.column + offset}`);
  const signFlag = (cell: { layer: number; column: number }) => spec.signDiffers?.has(`${cell.layer}:${cell.column + offset}`) ?? false;
  const suspect = (cell: { layer: number; column: number }) => spec.suspects?.has(`${cell.layer}:${cell.column + offset}`) ?? false;
  const describe = (cell: { layer: number; column: number; value: number }) => {
    const exact = exactOf(cell);
    const drop = spec.gradDrop?.[cell.layer]?.[cell.column + offset];
    return (
      `L${cell.layer} · ${spec.columnTitles[cell.column]}: ${formatValue(cell.value)}` +
      (exactRows.has(cell.layer) ? ' · exact' : '') +
      (exact === undefined
        ? ''
        : ` · checked: exact ${formatValue(exact)}${estimateOf(cell) === undefined ? '' : `, estimate ${formatValue(estimateOf(cell)!)}`}${signFlag(cell) ? ' — the estimate has the opposite sign' : ''}`) +
      (drop === undefined ? '' : ` · GradDrop ${formatValue(drop).slice(1)}${suspect(cell) ? ' ≫ |AtP|: AtP may hide a cancellation here; check it' : ''}`)
    );
  };
  const showTooltip = (cell: { layer: number; column: number; value: number }, anchor: Element) => {
    const box = anchor.getBoundingClientRect();
    spec.tooltip.textContent = describe(cell);
    spec.tooltip.hidden = false;
    spec.tooltip.style.left = `${box.right + window.scrollX + 6}px`;
    spec.tooltip.style.top = `${box.top + window.scrollY - 4}px`;
  };
  const hideTooltip = () => (spec.tooltip.hidden = true);
  const isSelected = (cell: { layer: number; column: number }) =>
    spec.selected?.layer === cell.layer && (spec.selected.column === undefined || spec.selected.column === cell.column + offset);

  grid
    .selectAll('rect')
    .data(cells)
    .join('rect')
    .attr(
      'class',
      (cell) =>
        `cell${isSelected(cell) ? ' selected' : ''}${exactOf(cell) === undefined ? '' : ' checked'}${suspect(cell) ? ' suspect' : ''}${exactRows.has(cell.layer) ? ' exact-row' : ''}${signFlag(cell) ? ' sign-differs' : ''}`,
    )
    .attr('data-layer', (cell) => cell.layer)
    .attr(`data-${spec.column}`, (cell) => cell.column + offset)
    .attr('data-value', (cell) => String(cell.value))
    .attr('data-exact', (cell) => (exactOf(cell) === undefined ? null : String(exactOf(cell))))
    .attr('data-sign-differs', (cell) => (signFlag(cell) ? 'true' : null))
    .attr('data-grad-drop', (cell) => (spec.gradDrop ? String(spec.gradDrop[cell.layer]?.[cell.column + offset]) : null))
    .attr('x', (cell) => x(cell.column)!)
    .attr('y', (cell) => y(cell.layer)!)
    .attr('width', x.bandwidth())
    .attr('height', y.bandwidth())
    .attr('rx', 2)
    .attr('fill', (cell) => colorFor(normalise(cell.value, maxAbs), spec.theme))
    .attr('role', 'gridcell')
    .attr('tabindex', (cell, i) => (i === 0 ? 0 : -1))
    .attr('aria-label', (cell) => describe(cell))
    .on('mouseenter focus', function (_, cell) {
      showTooltip(cell, this as Element);
    })
    .on('mouseleave blur', hideTooltip)
    .on('click', (_, cell) => spec.onSelectCell(cell.layer, cell.column + offset))
    .on('keydown', function (event: KeyboardEvent, cell) {
      const move: Record<string, [number, number]> = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
      let target: [number, number] | undefined;
      if (move[event.key]) target = [cell.layer + move[event.key][0], cell.column + move[event.key][1]];
      else if (event.key === 'Home') target = [cell.layer, 0];
      else if (event.key === 'End') target = [cell.layer, columns - 1];
      else if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        spec.onSelectCell(cell.layer, cell.column + offset);
        return;
      }
      if (!target) return;
      event.preventDefault();
      const [layer, column] = [Math.max(0, Math.min(layers - 1, target[0])), Math.max(0, Math.min(columns - 1, target[1]))];
      const next = grid.select<SVGRectElement>(`rect[data-layer="${layer}"][data-${spec.column}="${column + offset}"]`).node();
      if (!next) return;
      (this as SVGRectElement).setAttribute('tabindex', '-1');
      next.setAttribute('tabindex', '0');
      next.focus();
    });

  // The flag sits in the cell itself, not only in the tooltip: a sign the reader would take for the truth is wrong.
  grid
    .append('g')
    .attr('class', 'sign-flags')
    .selectAll('text')
    .data(cells.filter(signFlag))
    .join('text')
    .attr('class', 'sign-flag')
    .attr('x', (cell) => x(cell.column)! + x.bandwidth() - 2)
    .attr('y', (cell) => y(cell.layer)! + 9)
    .attr('text-anchor', 'end')
    .text('≠');

  if (spec.showNumbers) {
    grid
      .append('g')
      .attr('class', 'cell-values')
      .selectAll('text')
      .data(cells)
      .join('text')
      .attr('class', 'cell-value')
      .attr('x', (cell) => x(cell.column)! + x.bandwidth() / 2)
      .attr('y', (cell) => y(cell.layer)! + y.bandwidth() / 2)
      .attr('dy', '0.35em')
      .attr('text-anchor', 'middle')
      .text((cell) => cellNumber(cell.value));
  }

  svg
    .append('g')
    .attr('class', 'exact-rows')
    .selectAll('text')
    .data([...exactRows].filter((layer) => layer < layers))
    .join('text')
    .attr('class', 'exact-row-mark')
    .attr('data-layer', (layer) => layer)
    .attr('x', MARGIN.left + columns * cellWidth + 4)
    .attr('y', (layer) => y(layer)! + y.bandwidth() / 2)
    .attr('dy', '0.35em')
    .text('exact')
    .append('title')
    .text((layer) => `Layer ${layer}: every cell exact (activation patching), not an estimate`);

  // Drawn after the cells, over an opaque strip, so that when the map scrolls sideways the labels stay on top.
  const rowLabels = svg.append('g').attr('class', 'row-labels sticky');
  rowLabels
    .append('rect')
    .attr('class', 'sticky-bg')
    .attr('x', 0)
    .attr('y', MARGIN.top - 2)
    .attr('width', MARGIN.left - 2)
    .attr('height', layers * CELL.height + 4);
  rowLabels
    .selectAll('text')
    .data(Array.from({ length: layers }, (_, i) => i))
    .join('text')
    .attr('class', (layer) => `row-label${spec.selected?.layer === layer && spec.selected.column === undefined ? ' selected' : ''}`)
    .attr('data-layer', (layer) => layer)
    .attr('x', MARGIN.left - 6)
    .attr('y', (layer) => y(layer)! + y.bandwidth() / 2)
    .attr('dy', '0.35em')
    .attr('text-anchor', 'end')
    .text((layer) => `L${layer}`)
    .on('click', (_, layer) => spec.onSelectRow(layer))
    .append('title')
    .text((layer) => `Show layer ${layer} in the editor colours`);

  // Legend: the same scale, −max … 0 … +max.
  const legendY = MARGIN.top + layers * CELL.height + bottom;
  const gradientId = `legend-gradient-${++gradientCounter}`;
  const gradient = svg.append('defs').append('linearGradient').attr('id', gradientId);
  for (let i = 0; i <= 10; i++) {
    const t = -1 + i / 5;
    gradient
      .append('stop')
      .attr('offset', `${i * 10}%`)
      .attr('stop-color', colorFor(t, spec.theme).replace(/rgba\((\d+), (\d+), (\d+), [\d.]+\)/, 'rgb($1, $2, $3)'))
      .attr('stop-opacity', Math.abs(t) * 0.8);
  }
  // In a group of its own so that it, too, can follow a sideways scroll.
  const legendHolder = svg.append('g').attr('class', 'sticky');
  const legend = legendHolder.append('g').attr('class', 'legend').attr('transform', `translate(${MARGIN.left},${legendY})`);
  legend.append('rect').attr('width', LEGEND.width).attr('height', LEGEND.height).attr('fill', `url(#${gradientId})`).attr('class', 'legend-bar');
  legend
    .selectAll('text')
    .data([-maxAbs, 0, maxAbs])
    .join('text')
    .attr('x', (_, i) => (i * LEGEND.width) / 2)
    .attr('y', LEGEND.height + 12)
    .attr('text-anchor', (_, i) => (['start', 'middle', 'end'] as const)[i])
    .text((value) => formatValue(value));

  // Row labels, the title and the legend stay in view when the section scrolls a wide map sideways (an SVG cannot be
  // position: sticky, so they follow scrollLeft). Only where this map is the scroller's own child.
  const scroller = container.classList.contains('heatmap-section') ? container : undefined;
  if (scroller) {
    const follow = () => {
      const shift = `translate(${scroller.scrollLeft},0)`;
      svg.selectAll('.sticky').attr('transform', shift);
    };
    scroller.addEventListener('scroll', follow, { passive: true });
    follow();
  }

  return svg.node()!;
}
