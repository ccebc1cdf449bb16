// Messages between the heatmap panel's host (src/panel/heatmapPanel.ts) and its webview app (webview/), one
// discriminated union per direction, imported by both sides so that a renamed field fails the type check on both.
// Incoming webview messages are also checked at run time (parseWebviewMessage): the host never trusts their shape.
import type { ExampleResult, Result } from './result';
import { CIRCUIT_FORMATS, type CircuitFormat } from './circuitFormats';
import type { Comparison } from './compare';
import type { SweepSummary } from './sweep';
import { hookOfField } from './hooks';

/**
 * What a value "at a token position" means, for inline colours and the position heatmap:
 * - token (the default): the effect of patching that clean token into the corrupted prompt (the Result's
 *   tokenScores): exact wherever it was cheap, which is every token of ordinary prompt pairs, and 0 where the two
 *   prompts have the same token (patching it changes nothing). Results from before token scores show 'total'.
 * - total: everything the model writes into the residual stream at that position: the token embedding
 *   (resid_pre of layer 0) plus every layer's attention output and MLP output (Σ_l attn_out + mlp_out).
 *   It is a sum of separate linear (AtP) estimates, one per component, not one patch of the whole position.
 * - residPre / attnOut / mlpOut: that hook at one layer.
 * - head: one attention head's hook_z at one layer.
 */
export type ValueSelection =
  | { kind: 'token' }
  | { kind: 'total' }
  | { kind: 'residPre' | 'attnOut' | 'mlpOut'; layer: number }
  | { kind: 'head'; layer: number; head: number }
  /** AtP* nodes (--method atpstar): a query head's query, or a key/value head's key or value, at each position. */
  | { kind: 'query' | 'key' | 'value'; layer: number; head: number };

/** Heatmaps show one example or the sum over all of them (the Result's own summaries). */
export type ExampleScope = { kind: 'all' } | { kind: 'example'; index: number };

/** How maps over all examples combine them: the Result's sums (the default), or those sums / the number of examples. */
export type Aggregate = 'sum' | 'mean';

/**
 * What the panel gets of a Result (built by resultViews.panelResult): the summaries, one label per example, the
 * position maps over all examples, and the one example in scope whole. The per-example arrays of the others stay on
 * the host: a 5,000-example result is tens of MB there, a few hundred kB here.
 */
export interface PanelResult {
  /** Every field of the Result but its examples; heads and positions with each checked cell's exact value in place (resultViews.panelResult). */
  summary: Omit<Result, 'examples'>;
  examples: { count: number; labels: string[]; lines: number[] };
  /** Sums over all examples of each hook's layer × position map (checked cells exact), with their labels; null when prompts differ in length. */
  allPositions: { residPre: number[][]; attnOut: number[][]; mlpOut: number[][]; labels: string[]; titles: string[] } | null;
  /** The example of an 'example' scope. */
  example?: ScopedExample;
}

export interface ScopedExample {
  index: number;
  data: ExampleResult;
}

export type HostMessage =
  | { type: 'showResult'; result: PanelResult; resultFile: string; stale: boolean; selection: ValueSelection; scope: ExampleScope }
  | { type: 'setStale'; stale: boolean }
  /** The scope changed (in the panel or from the editor); an example scope brings its example. */
  | { type: 'setScope'; scope: ExampleScope; example?: ScopedExample }
  | { type: 'noResult'; message: string }
  /** The Compare view (its own panel): every run against the first, from src/shared/compare.ts. */
  /** `files`: the compared Result files, A first, which the view keeps so that a reload can compare them again. */
  | { type: 'showComparison'; comparison: Comparison; files: string[] }
  /** A sweep's summary in the same panel (after "Run Sweep…"); `folder` is where its files are. */
  | { type: 'showSweep'; summary: SweepSummary; folder: string };

/** What the Compare view can save: the drawing, a standalone HTML report, or the comparison's numbers. */
export type ComparisonExport = 'svg' | 'html' | 'json';

export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'select'; selection: ValueSelection }
  | { type: 'selectScope'; scope: ExampleScope }
  | { type: 'exportImage'; format: 'svg' | 'png'; data: string; suggestedName: string }
  | { type: 'exportResult' }
  /** A CSV the webview built from what it shows (token values, or the head and position maps); the host saves it. */
  | { type: 'exportCsv'; kind: 'tokens' | 'maps'; data: string; suggestedName: string }
  /** The same CSVs over all examples: built by the host, which holds every example's arrays. */
  | { type: 'exportCsvAll'; kind: 'tokens' | 'maps'; selection: ValueSelection; aggregate: Aggregate; suggestedName: string }
  /** Run the focused dataset again (the stale banner's button). */
  | { type: 'rerun' }
  /** Save the Result's circuit in a researchers' format (EAP-IG, Neuronpedia, QMI); the host builds the file from the Result. */
  | { type: 'exportCircuit'; format: CircuitFormat }
  /** Rerun the focused dataset with exact checks of the k largest and k random components. */
  | { type: 'checkTopK'; k: number }
  /** Save the comparison shown (the host has it: the webview sends only the format). */
  | { type: 'exportComparison'; format: ComparisonExport };

/** What the webview keeps with getState/setState, and what the serializer gets back after a reload. */
export interface PanelState {
  resultFile?: string;
  /** The Compare view: the Result files it compares (A first), compared again when the window reloads. */
  comparedFiles?: string[];
  /** The Compare view showing a sweep: the sweep's folder (its summary.json is read again on reload). */
  sweepFolder?: string;
  /** The circuit view's slider (number of top edges); absent: the circuit's own size. */
  circuitEdges?: number;
  selection: ValueSelection;
  scope: ExampleScope;
  aggregate?: Aggregate;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isIndex = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0;

export function isValueSelection(value: unknown): value is ValueSelection {
  if (!isObject(value)) return false;
  switch (value.kind) {
    case 'token':
    case 'total':
      return true;
    case 'residPre':
    case 'attnOut':
    case 'mlpOut':
      return isIndex(value.layer);
    case 'head':
    case 'query':
    case 'key':
    case 'value':
      return isIndex(value.layer) && isIndex(value.head);
    default:
      return false;
  }
}

export function isExampleScope(value: unknown): value is ExampleScope {
  return isObject(value) && (value.kind === 'all' || (value.kind === 'example' && isIndex(value.index)));
}

/** The message if it is a well-formed WebviewMessage, else undefined. */
export function parseWebviewMessage(value: unknown): WebviewMessage | undefined {
  if (!isObject(value)) return undefined;
  switch (value.type) {
    case 'ready':
    case 'exportResult':
    case 'rerun':
      return { type: value.type };
    case 'select':
      return isValueSelection(value.selection) ? { type: 'select', selection: value.selection } : undefined;
    case 'selectScope':
      return isExampleScope(value.scope) ? { type: 'selectScope', scope: value.scope } : undefined;
    case 'exportCircuit':
      return CIRCUIT_FORMATS.includes(value.format as CircuitFormat) ? { type: 'exportCircuit', format: value.format as CircuitFormat } : undefined;
    case 'exportComparison':
      return value.format === 'svg' || value.format === 'html' || value.format === 'json' ? { type: 'exportComparison', format: value.format } : undefined;
    case 'checkTopK':
      return isIndex(value.k) && value.k >= 1 && value.k <= 100 ? { type: 'checkTopK', k: value.k } : undefined;
    case 'exportImage':
      if ((value.format === 'svg' || value.format === 'png') && typeof value.data === 'string' && typeof value.suggestedName === 'string') {
        return { type: 'exportImage', format: value.format, data: value.data, suggestedName: value.suggestedName };
      }
      return undefined;
    case 'exportCsv':
      // A name only, never a path: the host joins it to the dataset's folder for the save dialog's default.
      if (
        (value.kind === 'tokens' || value.kind === 'maps') &&
        typeof value.data === 'string' &&
        typeof value.suggestedName === 'string' &&
        !/[\\/]/.test(value.suggestedName)
      ) {
        return { type: 'exportCsv', kind: value.kind, data: value.data, suggestedName: value.suggestedName };
      }
      return undefined;
    case 'exportCsvAll':
      if (
        (value.kind === 'tokens' || value.kind === 'maps') &&
        isValueSelection(value.selection) &&
        (value.aggregate === 'sum' || value.aggregate === 'mean') &&
        typeof value.suggestedName === 'string' &&
        !/[\\/]/.test(value.suggestedName)
      ) {
        return { type: 'exportCsvAll', kind: value.kind, selection: value.selection, aggregate: value.aggregate, suggestedName: value.suggestedName };
      }
      return undefined;
    default:
      return undefined;
  }
}

/** The panel state if well-formed (a restored state may come from an older version), else the default. */
export function parsePanelState(value: unknown): PanelState {
  const state: PanelState = { selection: { kind: 'token' }, scope: { kind: 'all' } };
  if (!isObject(value)) return state;
  if (typeof value.resultFile === 'string') state.resultFile = value.resultFile;
  if (isValueSelection(value.selection)) state.selection = value.selection;
  if (isExampleScope(value.scope)) state.scope = value.scope;
  if (value.aggregate === 'sum' || value.aggregate === 'mean') state.aggregate = value.aggregate;
  if (isIndex(value.circuitEdges)) state.circuitEdges = value.circuitEdges;
  if (Array.isArray(value.comparedFiles) && value.comparedFiles.length >= 2 && value.comparedFiles.every((file) => typeof file === 'string')) {
    state.comparedFiles = value.comparedFiles as string[];
  }
  if (typeof value.sweepFolder === 'string') state.sweepFolder = value.sweepFolder;
  return state;
}

export function selectionLabel(selection: ValueSelection): string {
  switch (selection.kind) {
    case 'token':
      return 'token effect';
    case 'total':
      return 'total (embedding + Σ attn_out + mlp_out)';
    case 'residPre':
    case 'attnOut':
    case 'mlpOut':
      return `L${selection.layer} ${hookOfField(selection.kind).kind}`;
    case 'head':
      return `L${selection.layer}H${selection.head}`;
    case 'query':
      return `L${selection.layer} query H${selection.head}`;
    case 'key':
    case 'value':
      return `L${selection.layer} ${selection.kind} KV${selection.head}`;
  }
}
