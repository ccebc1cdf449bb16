// The checks of a Result: attribution estimate against exact activation patching for each checked component, as a
// scatter (x: estimate, y: exact, the diagonal where they agree) with Pearson and Spearman, and the components
// where the two disagree most. Points carry data-layer / data-head / data-pos, data-attribution and data-exact.
import { axisBottom, axisLeft, scaleLinear } from 'd3';
import { agreementsOf, describeAgreement, MAP_TITLES } from '../src/shared/checkAgreement';
import type { CheckItem, Checks } from '../src/shared/result';
import { formatValue } from '../src/shared/colorScale';
import { chartSvg } from './chart';

const SIZE = { width: 340, height: 280, margin: 52 };

export function checkLabel(item: CheckItem): string {
  const where = item.position !== null ? `pos ${item.position}` : item.fromEnd ? `${item.fromEnd} before the answer` : 'answer';
  return item.hook === 'z' ? `L${item.layer}H${item.head} (${where})` : `L${item.layer} ${item.hook} (${where})`;
}

export function drawChecks(container: HTMLElement, checks: Checks): void {
  container.replaceChildren();
  const heading = document.createElement('h2');
  heading.textContent = `Checked against exact activation patching: ${checks.items.length} components (top ${checks.k} by |attribution|, ${checks.items.length - Math.min(checks.k, checks.items.length)} random)`;
  const agreement = document.createElement('p');
  agreement.id = 'check-agreement';
  agreement.className = 'baselines';
  agreement.textContent = `All maps together: Pearson ${checks.pearson.toFixed(3)} · Spearman ${checks.spearman.toFixed(3)} (summed over examples; outlined cells in the heatmaps, ≠ where the signs differ)`;
  // Each map's agreement, led by its error: a correlation cannot see a scale error.
  const perMap = document.createElement('ul');
  perMap.id = 'check-agreement-maps';
  for (const map of agreementsOf(checks)) {
    const entry = document.createElement('li');
    entry.dataset.map = map.map;
    entry.textContent = `${MAP_TITLES[map.map]}: ${describeAgreement(map)}`;
    perMap.append(entry);
  }
  container.append(heading, perMap, agreement);

  const values = checks.items.flatMap((item) => [item.attribution, item.exact]);
  let low = Math.min(0, ...values);
  let high = Math.max(0, ...values);
  if (high - low === 0) [low, high] = [-1, 1];
  const pad = (high - low) * 0.08;
  const x = scaleLinear()
    .domain([low - pad, high + pad])
    .range([SIZE.margin, SIZE.width - 10]);
  const y = scaleLinear()
    .domain([low - pad, high + pad])
    .range([SIZE.height - SIZE.margin, 10]);
  const svg = chartSvg(container, { className: 'heatmap scatter', id: 'check-scatter', width: SIZE.width, height: SIZE.height });
  const [d0, d1] = x.domain();
  svg.append('line').attr('class', 'diagonal').attr('x1', x(d0)).attr('y1', y(d0)).attr('x2', x(d1)).attr('y2', y(d1));
  svg.append('line').attr('class', 'axis').attr('x1', x(d0)).attr('y1', y(0)).attr('x2', x(d1)).attr('y2', y(0));
  svg.append('line').attr('class', 'axis').attr('x1', x(0)).attr('y1', y(d0)).attr('x2', x(0)).attr('y2', y(d1));
  // Axes with values: the reader must see the scale, not only the shape (a 9× scale error looks like agreement).
  svg
    .append('g')
    .attr('class', 'x-axis')
    .attr('transform', `translate(0,${SIZE.height - SIZE.margin})`)
    .call(axisBottom(x).ticks(5));
  svg.append('g').attr('class', 'y-axis').attr('transform', `translate(${SIZE.margin},0)`).call(axisLeft(y).ticks(5));
  svg
    .append('text')
    .attr('class', 'axis-label')
    .attr('x', (SIZE.margin + SIZE.width - 10) / 2)
    .attr('y', SIZE.height - 10)
    .attr('text-anchor', 'middle')
    .text('estimate (AtP), summed over examples');
  svg
    .append('text')
    .attr('class', 'axis-label')
    .attr('transform', `translate(12,${(SIZE.height - SIZE.margin + 10) / 2}) rotate(-90)`)
    .attr('text-anchor', 'middle')
    .text('exact (activation patching)');
  svg
    .append('g')
    .selectAll('circle')
    .data(checks.items)
    .join('circle')
    .attr('class', (item) => `point ${item.pick}${item.signDiffers ? ' sign-differs' : ''}`)
    .attr('cx', (item) => x(item.attribution))
    .attr('cy', (item) => y(item.exact))
    .attr('r', 4)
    .attr('data-hook', (item) => item.hook)
    .attr('data-layer', (item) => item.layer)
    .attr('data-head', (item) => (item.head === null ? null : item.head))
    .attr('data-pos', (item) => (item.position === null ? null : item.position))
    .attr('data-attribution', (item) => String(item.attribution))
    .attr('data-exact', (item) => String(item.exact))
    .append('title')
    .text((item) => `${checkLabel(item)}: AtP ${formatValue(item.attribution)}, exact ${formatValue(item.exact)} (${item.pick})`);

  const worst = [...checks.items].sort((a, b) => Math.abs(b.exact - b.attribution) - Math.abs(a.exact - a.attribution)).slice(0, 5);
  const list = document.createElement('ol');
  list.id = 'check-disagreements';
  list.className = 'disagreements';
  for (const item of worst) {
    const entry = document.createElement('li');
    entry.textContent = `${checkLabel(item)}: AtP ${formatValue(item.attribution)} · exact ${formatValue(item.exact)} · off by ${formatValue(item.attribution - item.exact).slice(1)}${item.signDiffers ? ' · sign differs' : ''}`;
    list.append(entry);
  }
  const caption = document.createElement('p');
  caption.className = 'hint';
  caption.textContent = 'Largest disagreements:';
  container.append(caption, list);
}
