// Export of the current view: the panel's heatmaps stacked into one standalone SVG (theme colours resolved, so the
// file looks the same outside VS Code), or that SVG rendered to a PNG at twice the screen resolution.
const SVG_NS = 'http://www.w3.org/2000/svg';
const GAP = 16;

/** One standalone SVG document with every heatmap under `root`, in page order. */
export async function exportSvg(root: HTMLElement, title: string): Promise<string> {
  const charts = Array.from(root.querySelectorAll<SVGSVGElement>('svg.heatmap'));
  const style = getComputedStyle(document.body);
  const background = style.getPropertyValue('--vscode-editor-background').trim() || style.backgroundColor || '#ffffff';
  const foreground = style.getPropertyValue('--vscode-editor-foreground').trim() || style.color || '#000000';
  const font = style.fontFamily || 'sans-serif';
  const width = Math.max(0, ...charts.map((chart) => Number(chart.getAttribute('width'))));
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
  for (const chart of charts) {
    const copy = chart.cloneNode(true) as SVGSVGElement;
    copy.setAttribute('y', String(y));
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
export async function exportPng(root: HTMLElement, title: string): Promise<string> {
  const svg = await exportSvg(root, title);
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
