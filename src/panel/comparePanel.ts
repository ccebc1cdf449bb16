// Host side of the Compare view: a panel of the same webview app as the heatmap, showing a Comparison (every run
// against the first: B − A maps on one scale, depth profiles, top-k overlap, circuit edges) and saving it as SVG,
// standalone HTML or JSON when the view asks. It holds its comparison itself, so the heatmap panel's focused result
// and selections are untouched.
import * as vscode from 'vscode';
import { basename } from 'node:path';
import type { Comparison } from '../shared/compare';
import type { SweepSummary } from '../shared/sweep';
import { comparisonSvg } from '../shared/compareSvg';
import { parseWebviewMessage, type ComparisonExport, type HostMessage } from '../shared/panelProtocol';
import { renderCompareReport } from '../report/compareReport';
import { writeTextAtomically } from '../engine/files/atomicWrite';
import { webviewHtml, webviewOptions } from './heatmapPanel';

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

export class ComparePanelHost implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private ready = false;
  private comparison: Comparison | undefined;
  /** A sweep's summary, shown instead of a comparison after a sweep in the editor. */
  private sweep: SweepSummary | undefined;
  /** Where the compared results live: the save dialog starts there. */
  private folder: string | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Shows the comparison, in a new panel or the open one. */
  show(comparison: Comparison, folder: string | undefined): void {
    this.comparison = comparison;
    this.sweep = undefined;
    this.open(folder);
  }

  /** Shows a sweep's summary (its cells, and each feature's depth profiles across models). */
  showSweep(summary: SweepSummary, folder: string): void {
    this.sweep = summary;
    this.comparison = undefined;
    this.open(folder);
  }

  private open(folder: string | undefined): void {
    this.folder = folder;
    if (this.panel) {
      this.panel.reveal(undefined, false);
      return this.sync();
    }
    const panel = vscode.window.createWebviewPanel(
      COMPARE_VIEW_TYPE,
      'Compare Runs',
      { viewColumn: vscode.ViewColumn.Active },
      webviewOptions(this.extensionUri),
    );
    this.panel = panel;
    this.ready = false;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'icon.svg');
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'Compare Runs');
    panel.onDidDispose(
      () => {
        if (this.panel === panel) this.panel = undefined;
      },
      undefined,
      this.disposables,
    );
    panel.webview.onDidReceiveMessage((raw) => this.onMessage(raw), undefined, this.disposables);
  }

  private sync(): void {
    if (!this.panel || !this.ready) return;
    let message: HostMessage;
    if (this.comparison) {
      this.panel.title = `Compare ${this.comparison.runs.length} Runs`;
      message = { type: 'showComparison', comparison: this.comparison };
    } else if (this.sweep) {
      this.panel.title = 'Sweep Summary';
      message = { type: 'showSweep', summary: this.sweep, folder: this.folder ?? '' };
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
