// What the panel's views build alike (circuitView.ts, checksView.ts, compareView.ts): elements with their
// properties and children, toolbar buttons, and a d3 chart's <svg> with its labels.
import { select, type Selection } from 'd3';

/** An HTML element with these properties (id, className, …) and children. */
export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** A secondary toolbar button (vscode-elements). */
export function toolbarButton(label: string, id: string, onClick: () => void): HTMLElement {
  const node = document.createElement('vscode-button');
  node.id = id;
  node.textContent = label;
  node.setAttribute('secondary', '');
  node.addEventListener('click', onClick);
  return node;
}

export type Chart = Selection<SVGSVGElement, unknown, null, undefined>;

/** A chart's <svg>, appended to `container`: width × height in its own units (viewBox), its class and id. */
export function chartSvg(container: HTMLElement, spec: { className: string; id: string; width: number; height: number }): Chart {
  return select(container)
    .append('svg')
    .attr('xmlns', 'http://www.w3.org/2000/svg')
    .attr('class', spec.className)
    .attr('id', spec.id)
    .attr('width', spec.width)
    .attr('height', spec.height)
    .attr('viewBox', `0 0 ${spec.width} ${spec.height}`);
}

/** A text label at (x, y), anchored at its middle or end (a tick's, an axis's). */
export function chartLabel(chart: Chart, x: number, y: number, text: string, anchor: 'middle' | 'end'): void {
  chart.append('text').attr('x', x).attr('y', y).attr('text-anchor', anchor).text(text);
}
