// The circuit view (Result.circuit): the graph from the input (top) through each layer's heads and MLP to the logits
// (bottom), the top-n edges by |score| drawn by width and sign, a slider for n with the measured faithfulness at that
// size, and the faithfulness curve (circuit vs random edges) beside it. Clicking a node (or Enter on it) colours the
// editor by that node. Layout and wording come from src/shared/circuitView.ts; this file only draws.
import { scaleLinear, scaleSymlog, select } from 'd3';
import { type Circuit, CIRCUIT_METHODS } from '../src/shared/circuit';
import { CIRCUIT_FORMAT_NAMES, CIRCUIT_FORMATS, type CircuitFormat } from '../src/shared/circuitFormats';
import { formatValue, type ThemeKind } from '../src/shared/colorScale';
import type { ValueSelection } from '../src/shared/panelProtocol';
import { chartLabel, chartSvg, element as html, toolbarButton as button } from './chart';
import {
  circuitLayout,
  edgeCountText,
  faithfulnessText,
  formatFaithfulness,
  isSelectedNode,
  keptEdgeCounts,
  nodeDescription,
  nodeSelection,
  shownEdges,
} from '../src/shared/circuitView';

export interface CircuitViewSpec {
  circuit: Circuit;
  hasAtpStar: boolean;
  theme: ThemeKind;
  edgeCount: number;
  selection: ValueSelection;
  tooltip: HTMLElement;
  /** The slider moved (the view redraws itself; the caller keeps the number). */
  onEdgeCount(n: number): void;
  onSelectNode(selection: ValueSelection): void;
  onExportImage(format: 'svg' | 'png'): void;
  onExportCircuit(format: CircuitFormat): void;
}

const NEUTRAL: Record<ThemeKind, string> = { light: '#5a5a5a', dark: '#c8c8c8' };
const CURVE_COLORS = { circuit: '#3794ff', random: '#d18616' };

export function drawCircuitView(container: HTMLElement, spec: CircuitViewSpec): void {
  const { circuit } = spec;
  const total = circuit.edges.length;
  const heading = html(
    'h2',
    { id: 'circuit-heading' },
    `Circuit: ${CIRCUIT_METHODS[circuit.method].label}${CIRCUIT_METHODS[circuit.method].oneGradient ? '' : `, ${circuit.steps} steps`} — ${circuit.selection.edges} of ${total} edges (${circuit.selection.rule} ${circuit.selection.requested}, pruned), ` +
      `faithfulness ${formatFaithfulness(circuit.faithfulness.circuit)} (full graph ${formatFaithfulness(circuit.faithfulness.full)}, empty ${formatFaithfulness(circuit.faithfulness.empty)})`,
  );
  const hint = html(
    'p',
    { className: 'hint' },
    "Input at the top, each layer's heads then its MLP, logits at the bottom. An edge's width is its |score| (the estimated change of the normalised metric when that edge alone is corrupted); blue raises the metric, red lowers it. " +
      'Click a node, or Tab to it and press Enter, to colour the editor by it.',
  );
  const slider = html('input', { type: 'range', id: 'circuit-edges', min: '0', max: String(total), step: '1', value: String(spec.edgeCount) });
  slider.setAttribute('aria-label', 'Circuit size: the top n edges by |score|, then pruned; the edges kept are shown');
  const count = html('span', { id: 'circuit-edge-count', className: 'selection' });
  const faithfulness = html('p', { id: 'circuit-faithfulness', className: 'baselines' });
  faithfulness.setAttribute('aria-live', 'polite');
  const controls = html('div', { className: 'toolbar circuit-controls' }, html('label', { htmlFor: 'circuit-edges' }, 'Edges: '), slider, count);
  const exports = html(
    'div',
    { className: 'toolbar' },
    button('Export circuit SVG', 'circuit-export-svg', () => spec.onExportImage('svg')),
    button('Export circuit PNG', 'circuit-export-png', () => spec.onExportImage('png')),
    ...CIRCUIT_FORMATS.map((format) => {
      const node = button(
        format === 'eap-ig' ? 'Export EAP-IG JSON' : format === 'neuronpedia' ? 'Export Neuronpedia JSON' : 'Export QMI nodes',
        `circuit-export-${format}`,
        () => spec.onExportCircuit(format),
      );
      node.title = CIRCUIT_FORMAT_NAMES[format];
      return node;
    }),
  );
  const graph = html('div', { id: 'circuit-graph-holder', className: 'circuit-graph' });
  const curve = html('div', { id: 'circuit-curve-holder', className: 'circuit-curve' });
  container.replaceChildren(heading, hint, controls, faithfulness, html('div', { className: 'circuit-row' }, graph, curve), exports);

  const update = (n: number) => {
    const shown = shownEdges(circuit, n);
    const undrawn = drawGraph(graph, spec, shown);
    const kept = edgeCountText(circuit, n);
    count.textContent = `${kept}${undrawn > 0 ? ` (the ${shown.length - undrawn} strongest drawn)` : ''}`;
    slider.setAttribute('aria-valuetext', kept);
    const reading = faithfulnessText(circuit, n);
    faithfulness.textContent = reading.text;
    faithfulness.dataset.how = reading.how;
    if (circuit.curve) drawCurve(curve, circuit, shown.length);
  };
  slider.addEventListener('input', () => {
    const n = Number(slider.value);
    update(n);
    spec.onEdgeCount(n);
  });
  update(spec.edgeCount);
}

/** Draws the graph; returns how many shown edges were left undrawn (the weakest, beyond MAX_DRAWN_EDGES). */
function drawGraph(container: HTMLElement, spec: CircuitViewSpec, shown: number[]): number {
  const { circuit, theme, tooltip } = spec;
  const layout = circuitLayout(circuit, shown, theme);
  const focused = (document.activeElement as Element | null)?.getAttribute?.('data-node');
  container.replaceChildren();
  const svg = chartSvg(container, { className: 'heatmap circuit-chart', id: 'circuit-graph', width: layout.width, height: layout.height });
  svg
    .append('g')
    .attr('class', 'row-labels')
    .selectAll('text')
    .data(layout.rowLabels)
    .join('text')
    .attr('x', 4)
    .attr('y', (d) => d.y + 4)
    .text((d) => d.label);
  svg
    .append('g')
    .attr('class', 'edges')
    .selectAll('path')
    .data(layout.edges)
    .join('path')
    .attr('class', 'edge')
    .attr('data-edge', (d) => `${d.edge.from}->${d.edge.to}${d.edge.input ? `<${d.edge.input}>` : ''}`)
    .attr('data-score', (d) => d.edge.score)
    .attr('d', (d) => {
      const middle = (d.from.y + d.to.y) / 2;
      return `M${d.from.x},${d.from.y} C${d.from.x},${middle} ${d.to.x},${middle} ${d.to.x},${d.to.y}`;
    })
    .attr('fill', 'none')
    .attr('stroke', (d) => d.color)
    .attr('stroke-width', (d) => d.width)
    .append('title')
    .text((d) => `${d.edge.from} → ${d.edge.to}${d.edge.input ? ` (${d.edge.input})` : ''}: ${formatValue(d.edge.score)}`);

  const nodes = svg
    .append('g')
    .attr('class', 'nodes')
    .selectAll('g')
    .data(layout.nodes)
    .join('g')
    .attr('class', (d) => `node ${d.node.kind}${d.active ? ' active' : ''}${isSelectedNode(d.node, spec.selection) ? ' selected' : ''}`)
    .attr('data-node', (d) => d.node.id)
    .attr('transform', (d) => `translate(${d.x},${d.y})`)
    .attr('opacity', (d) => (d.active || d.node.kind === 'input' || d.node.kind === 'logits' ? 1 : 0.35))
    .attr('tabindex', 0)
    .attr('role', 'button')
    .attr(
      'aria-label',
      (d) => nodeDescription(d.node, circuit, shown) + (nodeSelection(d.node, spec.hasAtpStar) ? '' : ' (no per-token values to colour the editor by)'),
    )
    .attr('aria-disabled', (d) => (nodeSelection(d.node, spec.hasAtpStar) ? null : 'true'));
  const stroke = NEUTRAL[theme];
  const background = theme === 'dark' ? '#1e1e1e' : '#ffffff';
  nodes.each(function (d) {
    const group = select(this);
    const selected = isSelectedNode(d.node, spec.selection);
    const outline = selected ? '#007fd4' : stroke;
    const outlineWidth = selected ? 3 : d.active ? 1.5 : 0.75;
    if (d.node.kind === 'head') {
      group.append('circle').attr('r', 10).attr('fill', background).attr('stroke', outline).attr('stroke-width', outlineWidth);
      group.append('text').attr('text-anchor', 'middle').attr('y', 4).text(String(d.node.head));
    } else if (d.node.kind === 'kv-head') {
      group
        .append('rect')
        .attr('x', -6)
        .attr('y', -6)
        .attr('width', 12)
        .attr('height', 12)
        .attr('fill', background)
        .attr('stroke', outline)
        .attr('stroke-width', outlineWidth);
      group.append('text').attr('text-anchor', 'middle').attr('y', -9).text(`kv${d.node.head}`);
    } else {
      const label = d.node.kind === 'mlp' ? `MLP ${d.node.layer}` : d.node.id;
      const width = label.length * 7 + 14;
      group
        .append('rect')
        .attr('x', -width / 2)
        .attr('y', -10)
        .attr('rx', 4)
        .attr('width', width)
        .attr('height', 20)
        .attr('fill', background)
        .attr('stroke', outline)
        .attr('stroke-width', outlineWidth);
      group.append('text').attr('text-anchor', 'middle').attr('y', 4).text(label);
    }
  });
  const choose = (d: (typeof layout.nodes)[number]) => {
    const selection = nodeSelection(d.node, spec.hasAtpStar);
    if (selection) spec.onSelectNode(selection);
  };
  nodes
    .on('click', (_, d) => choose(d))
    .on('keydown', (event: KeyboardEvent, d) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        choose(d);
      }
    })
    .on('mouseenter focus', function (_, d) {
      tooltip.textContent = nodeDescription(d.node, circuit, shown);
      const box = (this as SVGGElement).getBoundingClientRect();
      tooltip.style.left = `${box.right + window.scrollX + 6}px`;
      tooltip.style.top = `${box.top + window.scrollY - 4}px`;
      tooltip.hidden = false;
    })
    .on('mouseleave blur', () => (tooltip.hidden = true));
  // A redraw (the slider) keeps the keyboard where it was.
  if (focused) container.querySelector<SVGGElement>(`g.node[data-node="${CSS.escape(focused)}"]`)?.focus();
  return layout.undrawn;
}

const CURVE = { width: 320, height: 230, left: 44, right: 12, top: 26, bottom: 40 };

/** The measured curve over edges kept after pruning, the marker at the `kept` edges shown. */
function drawCurve(container: HTMLElement, circuit: Circuit, kept: number): void {
  const curve = circuit.curve!;
  const sizes = keptEdgeCounts(circuit);
  // Older Results did not record the random draws' kept edges: those are placed at the edges drawn, and said so.
  const randomSizes = sizes.randomKept ?? curve.edges;
  const total = Math.max(1, circuit.edges.length);
  container.replaceChildren();
  const values = [...curve.faithfulness, ...curve.random];
  const x = scaleSymlog()
    .constant(1)
    .domain([0, total])
    .range([CURVE.left, CURVE.width - CURVE.right]);
  const y = scaleLinear()
    .domain([Math.min(0, ...values), Math.max(1, ...values)])
    .range([CURVE.height - CURVE.bottom, CURVE.top]);
  const svg = chartSvg(container, { className: 'heatmap circuit-chart', id: 'circuit-curve', width: CURVE.width, height: CURVE.height });
  svg
    .append('text')
    .attr('class', 'title')
    .attr('x', 0)
    .attr('y', 14)
    .text(`Faithfulness (area ${formatFaithfulness(curve.area)} vs random ${formatFaithfulness(curve.randomArea)})`);
  const axis = '#888888';
  svg
    .append('line')
    .attr('x1', CURVE.left)
    .attr('x2', CURVE.width - CURVE.right)
    .attr('y1', y(0))
    .attr('y2', y(0))
    .attr('stroke', axis)
    .attr('stroke-width', 0.5);
  svg
    .append('line')
    .attr('x1', CURVE.left)
    .attr('x2', CURVE.width - CURVE.right)
    .attr('y1', y(1))
    .attr('y2', y(1))
    .attr('stroke', axis)
    .attr('stroke-width', 0.5)
    .attr('stroke-dasharray', '3 3');
  for (const tick of [0, 0.5, 1]) chartLabel(svg, CURVE.left - 6, y(tick) + 4, String(tick), 'end');
  const xTicks = [0, 1, 10, 100, 1000, 10000, 100000].filter((t) => t < total * 0.7).concat(total);
  for (const tick of xTicks) chartLabel(svg, x(tick), CURVE.height - CURVE.bottom + 14, String(tick), 'middle');
  chartLabel(svg, (CURVE.left + CURVE.width) / 2, CURVE.height - 6, 'edges kept after pruning (symlog scale)', 'middle');
  const line = (xs: number[], ys: number[]) => xs.map((size, i) => `${i === 0 ? 'M' : 'L'}${x(size)},${y(ys[i])}`).join(' ');
  svg
    .append('path')
    .attr('class', 'curve random')
    .attr('d', line(randomSizes, curve.random))
    .attr('fill', 'none')
    .attr('stroke', CURVE_COLORS.random)
    .attr('stroke-width', 1.5)
    .attr('stroke-dasharray', '4 3');
  svg
    .append('path')
    .attr('class', 'curve circuit')
    .attr('d', line(sizes.kept, curve.faithfulness))
    .attr('fill', 'none')
    .attr('stroke', CURVE_COLORS.circuit)
    .attr('stroke-width', 2);
  for (const [xs, ys, color, kind] of [
    [sizes.kept, curve.faithfulness, CURVE_COLORS.circuit, 'circuit'],
    [randomSizes, curve.random, CURVE_COLORS.random, 'random'],
  ] as const) {
    svg
      .append('g')
      .selectAll('circle')
      .data(xs.map((size, i) => ({ size, value: ys[i] })))
      .join('circle')
      .attr('class', `measured ${kind}`)
      .attr('cx', (d) => x(d.size))
      .attr('cy', (d) => y(d.value))
      .attr('r', 2.5)
      .attr('fill', color)
      .append('title')
      .text((d) => `${kind}: ${Number.isInteger(d.size) ? d.size : d.size.toFixed(1)} edges kept, measured ${formatFaithfulness(d.value)}`);
  }
  svg
    .append('line')
    .attr('class', 'marker')
    .attr('x1', x(kept))
    .attr('x2', x(kept))
    .attr('y1', CURVE.top)
    .attr('y2', CURVE.height - CURVE.bottom)
    .attr('stroke', '#007fd4')
    .attr('stroke-width', 1.5);
  const legend = svg.append('g').attr('transform', `translate(${CURVE.left + 8},${CURVE.top + 6})`);
  legend.append('line').attr('x1', 0).attr('x2', 16).attr('y1', 0).attr('y2', 0).attr('stroke', CURVE_COLORS.circuit).attr('stroke-width', 2);
  legend.append('text').attr('x', 20).attr('y', 4).text('circuit (top n, pruned)');
  legend
    .append('line')
    .attr('x1', 0)
    .attr('x2', 16)
    .attr('y1', 14)
    .attr('y2', 14)
    .attr('stroke', CURVE_COLORS.random)
    .attr('stroke-width', 1.5)
    .attr('stroke-dasharray', '4 3');
  legend
    .append('text')
    .attr('x', 20)
    .attr('y', 18)
    .text(`random (mean of ${curve.randomDraws}${sizes.randomKept ? ', pruned' : '; at the edges drawn'})`);
}
