// Export of the current view: the panel's heatmaps stacked into one standalone SVG (theme colours resolved, so the
// file looks the same outside VS Code), or that SVG rendered to a PNG at twice the screen resolution. A header
// names the run (title, dataset, model, examples, baselines, methods): an image away from the panel must say what it shows.
const SVG_NS = 'http://www.w3.org/2000/svg';
const GAP = 16;
const HEADER_LINE = 16;
/** A generous width per character at 11–12 px, so that the header is never cut off at the right edge. */
const CHAR_WIDTH = 7.2;

/** One standalone SVG document: the header lines, then every chart under `root` (heatmaps by default), in page order. */
export async function exportSvg(root: HTMLElement, title: string, header: string[] = [], chartsSelector = 'svg.heatmap'): Promise<string> {
  const charts = Array.from(root.querySelectorAll<SVGSVGElement>(chartsSelector));
  const style = getComputedStyle(document.body);
  const background = style.getPropertyValue('--vscode-editor-background').trim() || style.backgroundColor || '#ffffff';
  const foreground = style.getPropertyValue('--vscode-editor-foreground').trim() || style.color || '#000000';
  const font = style.fontFamily || 'sans-serif';
  const width = Math.max(0, ...charts.map((chart) => Number(chart.getAttribute('width'))), ...header.map((line) => line.length * CHAR_WIDTH));
  let y = GAP;
  const out = document.createElementNS(SVG_NS, 'svg');
  out.setAttribute('xmlns', SVG_NS);
  const titleNode = document.createElementNS(SVG_NS, 'title');
  titleNode.textContent = title;
  out.append(titleNode);
  const backgroundRect = document.createElementNS(SVG_NS, 'rect');
  backgroundRect.setAttribute('width', '100%');
  backgroundRect.setAttribute('height', '100%');
  backgroundRect.setAttribute('fill', background);
  out.append(backgroundRect);
  const headerGroup = document.createElementNS(SVG_NS, 'g');
  headerGroup.setAttribute('class', 'export-header');
  header.forEach((line, i) => {
    const text = document.createElementNS(SVG_NS, 'text');
    text.setAttribute('x', String(GAP));
    text.setAttribute('y', String(y + 12));
    text.setAttribute('fill', foreground);
    text.setAttribute('font-family', font);
    text.setAttribute('font-size', i === 0 ? '13' : '11');
    if (i === 0) text.setAttribute('font-weight', '600');
    text.textContent = line;
    headerGroup.append(text);
    y += HEADER_LINE + (i === 0 ? 2 : 0);
  });
  out.append(headerGroup);
  if (header.length > 0) y += GAP / 2;
  for (const chart of charts) {
    const copy = chart.cloneNode(true) as SVGSVGElement;
    copy.setAttribute('x', String(GAP));
    copy.setAttribute('y', String(y));
    // Row labels and the title follow a horizontal scroll on screen; the file shows the whole map, unscrolled.
    copy.querySelectorAll('.sticky').forEach((node) => node.removeAttribute('transform'));
    copy.querySelectorAll('rect.sticky-bg').forEach((rect) => rect.setAttribute('fill', background));
    copy.querySelectorAll('text').forEach((text) => {
      text.setAttribute('fill', foreground);
      text.setAttribute('font-family', font);
      text.setAttribute('font-size', text.classList.contains('title') ? '12' : '11');
    });
    // Cell outlines come from the stylesheet on screen; an exported file needs them as attributes.
    copy.querySelectorAll('rect.cell').forEach((cell) => {
      cell.removeAttribute('tabindex');
      const checked = cell.classList.contains('checked');
      const suspect = cell.classList.contains('suspect');
      cell.setAttribute('stroke', suspect ? '#b180d7' : checked ? '#cca700' : 'rgba(128, 128, 128, 0.35)');
      cell.setAttribute('stroke-width', suspect || checked ? '2' : '0.5');
      if (checked) cell.setAttribute('stroke-dasharray', '3 2');
    });
    out.append(copy);
    y += Number(chart.getAttribute('height')) + GAP;
  }
  out.setAttribute('width', String(width + 2 * GAP));
  out.setAttribute('height', String(y));
  return new XMLSerializer().serializeToString(out);
}

/** The exported SVG drawn onto a canvas; a data: URL of a PNG. */
export async function exportPng(root: HTMLElement, title: string, header: string[] = [], chartsSelector = 'svg.heatmap'): Promise<string> {
  const svg = await exportSvg(root, title, header, chartsSelector);
  const url = URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
  try {
    const image = new Image();
    await new Promise<void>((resolve, reject) => {
      image.onload = () => resolve();
      image.onerror = () => reject(new Error('could not render the SVG'));
      image.src = url;
    });
    const scale = 2;
    const canvas = document.createElement('canvas');
    canvas.width = image.width * scale;
    canvas.height = image.height * scale;
    const context = canvas.getContext('2d')!;
    context.scale(scale, scale);
    context.drawImage(image, 0, 0);
    return canvas.toDataURL('image/png');
  } finally {
    URL.revokeObjectURL(url);
  }
}
