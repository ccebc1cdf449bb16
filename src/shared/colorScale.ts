// The one colour scale of the product, shared by the editor's token colours and the heatmap panel: diverging and
// zero-centred, blue for positive attributions and red for negative ones (Plotly's "RdBu" with midpoint 0, as in
// the seed notebook's heatmaps). A colour is a hue plus an opacity that grows with |value|, laid over the theme's
// own background, so zero is always "no colour" and the scale reads on light, dark and high-contrast themes
// (dark themes get lighter hues so that strong cells stay distinguishable from the dark background).
// No DOM and no 'vscode' import: the extension host and the webview both use it.

export type ThemeKind = 'light' | 'dark';

/** Opacity of the strongest colour: text under it stays readable in every theme. */
export const MAX_ALPHA = 0.8;

/** Number of colour steps on each side of zero for editor decorations (which are created once, one per step). */
export const BINS_PER_SIDE = 8;

const HUES: Record<ThemeKind, { positive: readonly [number, number, number]; negative: readonly [number, number, number] }> = {
  light: { positive: [33, 102, 172], negative: [178, 24, 43] },
  dark: { positive: [67, 147, 195], negative: [214, 96, 77] },
};

/** A symmetric domain [-maxAbs, maxAbs] over the given values; 0 when all are zero (everything uncoloured). */
export function symmetricMax(values: Iterable<number>): number {
  let max = 0;
  for (const value of values) if (Number.isFinite(value)) max = Math.max(max, Math.abs(value));
  return max;
}

/** value / maxAbs clamped to [-1, 1]; 0 when the domain is empty. */
export function normalise(value: number, maxAbs: number): number {
  if (!(maxAbs > 0) || !Number.isFinite(value)) return 0;
  return Math.max(-1, Math.min(1, value / maxAbs));
}

/** The colour of a normalised value t ∈ [-1, 1] as CSS rgba(): transparent at 0. */
export function colorFor(t: number, theme: ThemeKind): string {
  const clamped = Math.max(-1, Math.min(1, Number.isFinite(t) ? t : 0));
  const [r, g, b] = clamped >= 0 ? HUES[theme].positive : HUES[theme].negative;
  const alpha = Math.round(Math.abs(clamped) * MAX_ALPHA * 1000) / 1000;
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/** The step of a value for decorations: -BINS_PER_SIDE..BINS_PER_SIDE, 0 only for an exact zero (or empty domain). */
export function binOf(value: number, maxAbs: number): number {
  const t = normalise(value, maxAbs);
  if (t === 0) return 0;
  return Math.sign(t) * Math.max(1, Math.ceil(Math.abs(t) * BINS_PER_SIDE - 1e-9));
}

/** The colour of a decoration step: the colour of the step's upper edge, so the strongest step is the full colour. */
export function binColor(bin: number, theme: ThemeKind): string {
  return colorFor(bin / BINS_PER_SIDE, theme);
}

/** Every non-zero step, for creating one decoration type per step once. */
export function allBins(): number[] {
  const bins: number[] = [];
  for (let k = -BINS_PER_SIDE; k <= BINS_PER_SIDE; k++) if (k !== 0) bins.push(k);
  return bins;
}

/** Compact signed number for labels and hovers: +0.1234, -1.2e-5. */
/** A value with its sign and four decimals, as tables and reports print LDs and attributions: "+0.1234", "-2.0000". */
export function signedFixed(value: number): string {
  return (value >= 0 ? '+' : '') + value.toFixed(4);
}

/** A number to `digits` decimals, or "—" where there is none (a statistic that could not be computed). */
export function fixedOrDash(value: number | null | undefined, digits = 3): string {
  return value === null || value === undefined ? '—' : value.toFixed(digits);
}

export function formatValue(value: number): string {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  const text = magnitude >= 1e-3 && magnitude < 1e4 ? magnitude.toFixed(4) : magnitude.toExponential(2);
  return (value > 0 ? '+' : '−') + text;
}

/** A cell's value in at most five characters: two significant figures, an exponent only below 0.01. */
export function cellNumber(value: number): string {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  const sign = value < 0 ? '−' : '';
  if (magnitude >= 0.01 && magnitude < 100) return sign + Number(magnitude.toPrecision(2)).toString().replace(/^0\./, '.');
  return sign + magnitude.toExponential(0).replace('e+', 'e');
}
