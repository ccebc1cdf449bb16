// Host side of the heatmap panel: one webview panel showing the focused dataset's Result, fed through the typed
// messages of protocol.ts. Selections made in the panel (a layer row, a head or position cell, an example) change
// what the inline colours show; the panel restores itself after a reload through a serializer.
import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';
import { writeResultAtomically } from '../lib/files/resultFile';
import { writeFilesAtomically } from '../lib/files/atomicWrite';
import { basename, dirname, join } from 'node:path';
import {
  parsePanelState,
  parseWebviewMessage,
  type Aggregate,
  type HostMessage,
  type PanelState,
  type ValueSelection,
  type WebviewMessage,
} from '../shared/panelProtocol';
import { mapsCsv, panelResult, scopedExample, tokenCsv } from '../shared/resultViews';
import { isCurrentFor, type ResultState } from '../services/resultState';
import { CIRCUIT_FORMAT_NAMES, CIRCUIT_FORMAT_SUFFIX, exportCircuit, type CircuitFormat } from '../shared/circuitFormats';
import { writeTextAtomically } from '../lib/files/atomicWrite';
import type { ResultStore } from '../services/resultStore';
import { COMMANDS } from '../commands/ids';
import { readInputText } from '../lib/files/readInput';

/**
 * The dataset a Result names, or undefined when it cannot be read. The name comes from the Result (anyone's file):
 * through the read helper, so /dev/zero or a FIFO there is "cannot be read", not a hung extension host.
 */
function readDatasetText(file: string): string | undefined {
  try {
    return readInputText(file, 'dataset');
  } catch {
    return undefined;
  }
}

export const HEATMAP_VIEW_TYPE = 'attributionPatching.heatmap';

export class HeatmapPanelHost implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private ready = false;
  /** What the webview shows now, so that a result is re-sent only when it changed. */
  private shownResult: unknown;
  private shownStale: boolean | undefined;
  private shownScope: string | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly state: ResultState,
    private readonly store: ResultStore,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  registerSerializer(): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(HEATMAP_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel, rawState) => {
        const saved = parsePanelState(rawState);
        // Loaded first: a Result coming into focus starts from a fresh view, which the saved one then replaces.
        if (saved.resultFile && !this.state.focusedResult) await this.loadResultFile(saved.resultFile);
        this.state.restoreView(saved.selection, saved.scope);
        this.attach(panel);
      },
    });
  }

  /** Opens (or reveals) the panel on the focused result. */
  show(): void {
    if (this.panel) {
      this.panel.reveal(undefined, true);
      this.sync();
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      HEATMAP_VIEW_TYPE,
      'Attribution Heatmap',
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      this.options(),
    );
    this.attach(panel);
  }

  /** Loads a result file into the state (e.g. a run picked in the sidebar) and focuses it. */
  async loadResultFile(resultFile: string): Promise<boolean> {
    try {
      const result = await this.store.read(resultFile);
      const datasetUri = vscode.Uri.file(result.dataset.file);
      const open = vscode.workspace.textDocuments.find((document) => document.uri.toString() === datasetUri.toString());
      const text = open ? open.getText() : readDatasetText(result.dataset.file);
      this.state.set({ datasetUri, resultFile, result, stale: text === undefined || !isCurrentFor(result, text) });
      return true;
    } catch (error) {
      this.log.warn(`could not open ${resultFile}: ${(error as Error).message}`);
      void vscode.window.showWarningMessage(`Attribution Patching: could not open ${basename(resultFile)}: ${(error as Error).message}`);
      return false;
    }
  }

  private options(): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return webviewOptions(this.extensionUri);
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    this.ready = false;
    this.shownResult = undefined;
    loadPanelApp(
      panel,
      this.extensionUri,
      'Attribution Heatmap',
      {
        message: (raw) => this.onMessage(raw),
        dispose: () => {
          if (this.panel === panel) this.panel = undefined;
        },
      },
      this.disposables,
    );
  }

  /** Sends the focused result when it changed (or its staleness did); called on every state change. */
  sync(): void {
    if (!this.panel || !this.ready) return;
    const entry = this.state.focusedResult;
    if (!entry) {
      this.shownResult = undefined;
      return this.post({ type: 'noResult', message: 'No result yet: run "Attribution Patch Current File" on a dataset (.jsonl).' });
    }
    this.panel.title = `Attribution: ${basename(entry.datasetUri.fsPath)}`;
    const scope = JSON.stringify(this.state.scope);
    if (entry.result !== this.shownResult) {
      this.shownResult = entry.result;
      this.shownStale = entry.stale;
      this.shownScope = scope;
      // Summaries and the example in scope only: the other examples' arrays stay here (see PanelResult).
      return this.post({
        type: 'showResult',
        result: panelResult(entry.result, this.state.scope),
        resultFile: entry.resultFile,
        stale: entry.stale,
        selection: this.state.selection,
        scope: this.state.scope,
      });
    }
    if (entry.stale !== this.shownStale) {
      this.shownStale = entry.stale;
      this.post({ type: 'setStale', stale: entry.stale });
    }
    // The example shown can change from the editor (a CodeLens) as well as from the panel; either way the webview
    // gets that example's arrays from here.
    if (scope !== this.shownScope) {
      this.shownScope = scope;
      this.post({ type: 'setScope', scope: this.state.scope, example: scopedExample(entry.result, this.state.scope) });
    }
  }

  private post(message: HostMessage): void {
    void this.panel?.webview.postMessage(message);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const message: WebviewMessage | undefined = parseWebviewMessage(raw);
    if (!message) return this.log.warn(`heatmap panel: ignored a malformed message ${JSON.stringify(raw)?.slice(0, 200)}`);
    switch (message.type) {
      case 'ready':
        this.ready = true;
        this.shownResult = undefined;
        return this.sync();
      case 'select':
        return this.state.setSelection(message.selection);
      case 'selectScope':
        // Not marked as shown: sync answers with setScope and the example's arrays.
        this.state.setScope(message.scope);
        return this.revealExample();
      case 'exportImage':
        return this.exportImage(message.format, message.data, message.suggestedName);
      case 'exportResult':
        return this.exportResult();
      case 'exportCsv':
        return this.exportCsv(message.kind, message.data, message.suggestedName);
      case 'exportCircuit':
        return this.exportCircuit(message.format);
      case 'exportCsvAll':
        return this.exportCsvAll(message.kind, message.selection, message.aggregate, message.suggestedName);
      case 'rerun': {
        const entry = this.state.focusedResult;
        if (!entry) return;
        await vscode.commands.executeCommand(COMMANDS.patchCurrentFile, entry.datasetUri);
        return;
      }
      case 'checkTopK': {
        const entry = this.state.focusedResult;
        if (!entry) return;
        await vscode.commands.executeCommand(COMMANDS.patchCurrentFile, entry.datasetUri, { check: message.k });
        return;
      }
    }
  }

  /** Selecting an example in the panel scrolls its dataset editor to that example's line. */
  private revealExample(): void {
    const entry = this.state.focusedResult;
    const scope = this.state.scope;
    if (!entry || scope.kind !== 'example') return;
    const line = entry.result.examples[scope.index]?.line;
    const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === entry.datasetUri.toString());
    if (!editor || !line) return;
    const range = new vscode.Range(line - 1, 0, line - 1, 0);
    editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    editor.selection = new vscode.Selection(range.start, range.start);
  }

  private defaultExportUri(name: string): vscode.Uri {
    const entry = this.state.focusedResult;
    const folder = entry ? dirname(entry.datasetUri.fsPath) : (vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '');
    return vscode.Uri.file(join(folder, name));
  }

  private async exportImage(format: 'svg' | 'png', data: string, suggestedName: string): Promise<void> {
    const target = await vscode.window.showSaveDialog({
      defaultUri: this.defaultExportUri(suggestedName),
      filters: format === 'svg' ? { 'SVG image': ['svg'] } : { 'PNG image': ['png'] },
    });
    if (!target) return;
    const bytes = format === 'svg' ? Buffer.from(data, 'utf8') : Buffer.from(data.replace(/^data:image\/png;base64,/, ''), 'base64');
    // Atomically: whoever watches the folder never reads a half-written image.
    writeFilesAtomically([{ file: target.fsPath, contents: bytes, what: `the ${format.toUpperCase()} export` }]);
    this.log.info(`exported ${format.toUpperCase()} to ${target.fsPath}`);
    void vscode.window.showInformationMessage(`Attribution Patching: saved ${basename(target.fsPath)}`);
  }

  /** The CSVs over all examples, built here from the whole Result (the webview has only its summaries). */
  private async exportCsvAll(kind: 'tokens' | 'maps', selection: ValueSelection, aggregate: Aggregate, suggestedName: string): Promise<void> {
    const entry = this.state.focusedResult;
    if (!entry) return;
    const all = { kind: 'all' } as const;
    const data = kind === 'tokens' ? tokenCsv(entry.result, selection, all) : mapsCsv(entry.result, all, selection, aggregate);
    return this.exportCsv(kind, data, suggestedName);
  }

  private async exportCsv(kind: 'tokens' | 'maps', data: string, suggestedName: string): Promise<void> {
    const target = await vscode.window.showSaveDialog({ defaultUri: this.defaultExportUri(suggestedName), filters: { CSV: ['csv'] } });
    if (!target) return;
    writeFilesAtomically([{ file: target.fsPath, contents: data, what: 'the CSV export' }]);
    this.log.info(`exported the ${kind === 'tokens' ? 'token values' : 'head and position maps'} as CSV to ${target.fsPath}`);
    void vscode.window.showInformationMessage(`Attribution Patching: saved ${basename(target.fsPath)}`);
  }

  /** The focused Result's circuit in a researchers' format, built here from the Result (not from the webview). */
  private async exportCircuit(format: CircuitFormat): Promise<void> {
    const entry = this.state.focusedResult;
    if (!entry?.result.circuit) return;
    const stem = basename(entry.result.dataset.file).replace(/\.[^.]+$/, '');
    let text: string;
    try {
      text = exportCircuit(entry.result, format, stem);
    } catch (error) {
      void vscode.window.showWarningMessage(`Attribution Patching: cannot export the circuit as ${CIRCUIT_FORMAT_NAMES[format]}: ${(error as Error).message}`);
      return;
    }
    const target = await vscode.window.showSaveDialog({
      defaultUri: this.defaultExportUri(`${stem}${CIRCUIT_FORMAT_SUFFIX[format]}`),
      filters: { JSON: ['json'] },
    });
    if (!target) return;
    try {
      writeTextAtomically(target.fsPath, text, `the ${format} export`);
    } catch (error) {
      void vscode.window.showErrorMessage(`Attribution Patching: ${(error as Error).message}`);
      return;
    }
    this.log.info(`exported the circuit as ${CIRCUIT_FORMAT_NAMES[format]} to ${target.fsPath}`);
    void vscode.window.showInformationMessage(`Attribution Patching: saved ${basename(target.fsPath)}`);
  }

  private async exportResult(): Promise<void> {
    const entry = this.state.focusedResult;
    if (!entry) return;
    const target = await vscode.window.showSaveDialog({ defaultUri: this.defaultExportUri(basename(entry.resultFile)), filters: { 'Result JSON': ['json'] } });
    if (!target) return;
    // Written anew rather than copied: a large result's sidecar is named after its own JSON and must travel with it.
    writeResultAtomically(target.fsPath, entry.result);
    this.log.info(`exported the Result JSON to ${target.fsPath}`);
  }

  dispose(): void {
    this.panel?.dispose();
    for (const disposable of this.disposables) disposable.dispose();
  }
}

/** Scripts on, and only this extension's webview bundle and media readable. */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: true,
    retainContextWhenHidden: false,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

/** The page of the panel app (the heatmap panel and the Compare view share it): the bundle under a strict CSP with a fresh nonce. */
/** Loads the panel app into `panel` (options, icon, the page with its CSP) and wires its messages and its closing. */
export function loadPanelApp(
  panel: vscode.WebviewPanel,
  extensionUri: vscode.Uri,
  title: string,
  on: { message: (raw: unknown) => unknown; dispose: () => void },
  disposables: vscode.Disposable[],
): void {
  panel.webview.options = webviewOptions(extensionUri);
  panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.svg');
  panel.webview.html = webviewHtml(panel.webview, extensionUri, title);
  panel.onDidDispose(on.dispose, undefined, disposables);
  panel.webview.onDidReceiveMessage(on.message, undefined, disposables);
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, title: string): string {
  const nonce = randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', 'heatmap.js'));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'heatmap.css'));
  // Strict CSP: only this extension's files and this page's nonce; images only from data:/blob: (PNG export).
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `img-src ${webview.cspSource} data: blob:`,
    `font-src ${webview.cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}" nonce="${nonce}">
<title>${title}</title>
</head>
<body>
<main id="app" aria-live="polite"><p class="empty">Loading…</p></main>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}
