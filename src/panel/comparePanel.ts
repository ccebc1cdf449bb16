// Host side of the Compare view: a panel of the same webview app as the heatmap, showing a Comparison (every run
// against the first: B − A maps on one scale, depth profiles, top-k overlap, circuit edges) and saving it as SVG,
// standalone HTML or JSON when the view asks. It holds its comparison itself, so the heatmap panel's focused result
// and selections are untouched.
import * as vscode from 'vscode';
import { basename, dirname, join } from 'node:path';
import { compareRuns, DEFAULT_TOP_K, type Comparison } from '../shared/compare';
import type { Result } from '../shared/result';
import { modelLabel } from '../shared/modelNames';
import { parseSweepSummary, type SweepSummary } from '../shared/sweep';
import { parsePanelState } from '../shared/panelProtocol';
import { comparisonSvg } from '../shared/compareSvg';
import { parseWebviewMessage, type ComparisonExport, type HostMessage } from '../shared/panelProtocol';
import { renderCompareReport } from '../report/compareReport';
import { writeTextAtomically } from '../lib/files/atomicWrite';
import { loadPanelApp, webviewOptions } from './heatmapPanel';
import { readInputText } from '../lib/files/readInput';

export const COMPARE_VIEW_TYPE = 'attributionPatching.compare';

/** The file's text for each export format. */
export function comparisonExport(comparison: Comparison, format: ComparisonExport): string {
  if (format === 'svg') return comparisonSvg(comparison) + '\n';
  if (format === 'html') return renderCompareReport(comparison);
  return JSON.stringify(comparison, null, 2) + '\n';
}

const FILTERS: Record<ComparisonExport, Record<string, string[]>> = {
  svg: { 'SVG image': ['svg'] },
  html: { 'HTML report': ['html'] },
  json: { 'Comparison JSON': ['json'] },
};

/** Labels that say which run is which, made distinct when two runs would read the same. */
export function runLabels(results: ReadonlyArray<{ file: string; result: Result }>): string[] {
  const base = results.map(({ result }) => `${basename(result.dataset.file)} · ${modelLabel(result.model.source)}`);
  return base.map((label, i) => (base.indexOf(label) !== i || base.lastIndexOf(label) !== i ? `${label} (${basename(results[i].file)})` : label));
}

const SWEEP_SUMMARY = 'summary.json';

export class ComparePanelHost implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private ready = false;
  private comparison: Comparison | undefined;
  /** The compared Result files, A first (sent to the view, which keeps them for a reload). */
  private files: string[] = [];
  /** A sweep's summary, shown instead of a comparison after a sweep in the editor. */
  private sweep: SweepSummary | undefined;
  /** Where the compared results live: the save dialog starts there. */
  private folder: string | undefined;
  /** Why a view restored after a reload shows nothing (its files are gone or unreadable). */
  private notice: string | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Compares the runs (every one against the first, A) and shows the comparison, in a new panel or the open one. */
  showRuns(runs: ReadonlyArray<{ file: string; result: Result }>): void {
    const labels = runLabels(runs);
    this.comparison = compareRuns(
      runs.map(({ result }, index) => ({ label: labels[index], result })),
      DEFAULT_TOP_K,
    );
    this.files = runs.map(({ file }) => file);
    this.sweep = undefined;
    this.open(dirname(runs[0].file));
  }

  /** Shows a sweep's summary (its cells, and each feature's depth profiles across models). */
  showSweep(summary: SweepSummary, folder: string): void {
    this.sweep = summary;
    this.comparison = undefined;
    this.open(folder);
  }

  /**
   * Brings the view back after a window reload: the runs it compared are read and compared again (a Result changed
   * since is compared as it is now), a sweep's summary is read again; what is gone is said, not guessed.
   */
  registerSerializer(readResult: (file: string) => Promise<Result>): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(COMPARE_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel, rawState) => {
        const saved = parsePanelState(rawState);
        this.attach(panel);
        try {
          if (saved.comparedFiles) {
            const runs = [];
            for (const file of saved.comparedFiles) runs.push({ file, result: await readResult(file) });
            this.showRuns(runs);
          } else if (saved.sweepFolder) {
            const file = join(saved.sweepFolder, SWEEP_SUMMARY);
            // The read helper: a summary that is a FIFO or a device is an error, not a hung extension host.
            this.showSweep(parseSweepSummary(readInputText(file, 'json'), file), saved.sweepFolder);
          } else {
            panel.dispose();
          }
        } catch (error) {
          this.log.warn(`compare view: could not restore after the reload: ${(error as Error).message}`);
          this.notice = `Could not show this comparison again: ${(error as Error).message}. Run "Compare Runs…" again.`;
          this.sync();
        }
      },
    });
  }

  private open(folder: string | undefined): void {
    this.folder = folder;
    if (this.panel) {
      this.panel.reveal(undefined, false);
      return this.sync();
    }
    this.attach(
      vscode.window.createWebviewPanel(COMPARE_VIEW_TYPE, 'Compare Runs', { viewColumn: vscode.ViewColumn.Active }, webviewOptions(this.extensionUri)),
    );
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    this.ready = false;
    loadPanelApp(
      panel,
      this.extensionUri,
      'Compare Runs',
      {
        message: (raw) => this.onMessage(raw),
        dispose: () => {
          if (this.panel === panel) this.panel = undefined;
        },
      },
      this.disposables,
    );
  }

  private sync(): void {
    if (!this.panel || !this.ready) return;
    let message: HostMessage;
    if (this.comparison) {
      this.panel.title = `Compare ${this.comparison.runs.length} Runs`;
      message = { type: 'showComparison', comparison: this.comparison, files: this.files };
    } else if (this.sweep) {
      this.panel.title = 'Sweep Summary';
      message = { type: 'showSweep', summary: this.sweep, folder: this.folder ?? '' };
    } else if (this.notice) {
      message = { type: 'noResult', message: this.notice };
    } else return;
    void this.panel.webview.postMessage(message);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const message = parseWebviewMessage(raw);
    if (!message) return this.log.warn(`compare view: ignored a malformed message ${JSON.stringify(raw)?.slice(0, 200)}`);
    if (message.type === 'ready') {
      this.ready = true;
      return this.sync();
    }
    if (message.type === 'exportComparison') return this.save(message.format);
    // The heatmap's own messages (selections, reruns) mean nothing here.
  }

  private async save(format: ComparisonExport): Promise<void> {
    const comparison = this.comparison;
    if (!comparison) return;
    const name = `comparison.${format}`;
    const defaultUri = this.folder ? vscode.Uri.joinPath(vscode.Uri.file(this.folder), name) : undefined;
    const target = await vscode.window.showSaveDialog({ defaultUri, filters: FILTERS[format] });
    if (!target) return;
    try {
      writeTextAtomically(target.fsPath, comparisonExport(comparison, format), `the comparison (${format.toUpperCase()})`);
    } catch (error) {
      void vscode.window.showErrorMessage(`Attribution Patching: ${(error as Error).message}`);
      return;
    }
    this.log.info(`exported the comparison as ${format.toUpperCase()} to ${target.fsPath}`);
    void vscode.window.showInformationMessage(`Attribution Patching: saved ${basename(target.fsPath)}`);
  }

  dispose(): void {
    this.panel?.dispose();
    for (const disposable of this.disposables) disposable.dispose();
  }
}
