// Composition root: builds the services once, registers commands, providers and views, and wires state changes to
// the views. Everything with behaviour lives in its own module (src/commands, src/editor, src/views, src/panel).
import * as vscode from 'vscode';
import { registerCompareRuns } from './commands/compareRuns';
import { registerRunSweep } from './commands/runSweep';
import { registerDeleteRun } from './commands/deleteRun';
import { registerGenerateDatasets } from './commands/generateDataset';
import { registerInstallCuda } from './commands/installCuda';
import { registerOpenExampleDataset } from './commands/openExampleDataset';
import { registerOpenHeatmap } from './commands/openHeatmap';
import { registerPatchCurrentFile } from './commands/patchCurrentFile';
import { registerFindCircuit } from './commands/findCircuit';
import { registerRevealDataset } from './commands/revealDataset';
import { registerSelectDevice } from './commands/selectDevice';
import { registerSelectModel } from './commands/selectModel';
import { registerSetHuggingFaceToken } from './commands/setHuggingFaceToken';
import { registerSetWandbApiKey } from './commands/setWandbApiKey';
import { registerToggleColours } from './commands/toggleColours';
import { TokenDecorations } from './editor/decorations';
import { DatasetDiagnostics } from './editor/diagnostics';
import { TokenHoverProvider } from './editor/hover';
import { LiveDatasetDiagnostics } from './editor/liveDiagnostics';
import { UseBuiltInModelFix } from './editor/useModelFix';
import { findBuiltInModel } from './lib/model/presets';
import { HeatmapPanelHost } from './panel/heatmapPanel';
import { ComparePanelHost } from './panel/comparePanel';
import { EngineClient } from './services/engineClient';
import { RecentModels } from './services/recentModels';
import { isDatasetDocument, ResultState } from './services/resultState';
import { ResultStore } from './services/resultStore';
import type { Services } from './services/services';
import { effectiveModel, readSettings, SECTION } from './services/settings';
import { SidebarProvider } from './views/sidebar';
import { StatusBar } from './views/statusBar';
import { ColourLegend } from './views/colourLegend';
import { openWalkthroughOnFirstRun } from './views/firstRun';
import { ExampleLensProvider } from './editor/exampleLens';
import { registerNewDataset } from './commands/newDataset';
import { ClaimsTesting } from './testing/claimsTesting';
import { proxyEnvironment } from './services/proxyEnvironment';

const DATASET_SELECTOR: vscode.DocumentSelector = [
  { scheme: 'file', pattern: '**/*.jsonl' },
  { scheme: 'file', pattern: '**/*.atp' },
];

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Attribution Patching', { log: true });
  const proxySettings = () => {
    const http = vscode.workspace.getConfiguration('http');
    return proxyEnvironment({ proxy: http.get<string>('proxy'), noProxy: http.get<string[]>('noProxy'), strictSSL: http.get<boolean>('proxyStrictSSL') });
  };
  const engine = new EngineClient({ workerPath: vscode.Uri.joinPath(context.extensionUri, 'dist', 'worker.js').fsPath, log, environment: proxySettings });
  const store = new ResultStore(context);
  const state = new ResultState(store, log);
  const recentModels = new RecentModels(context.globalState);
  const sidebar = new SidebarProvider(store, recentModels, context.secrets);
  const panel = new HeatmapPanelHost(context.extensionUri, state, store, log);
  const comparePanel = new ComparePanelHost(context.extensionUri, log);
  const diagnostics = new DatasetDiagnostics();
  const decorations = new TokenDecorations(state);
  const statusBar = new StatusBar(state, context.extensionUri);
  const legend = new ColourLegend(state);
  const liveDiagnostics = new LiveDatasetDiagnostics(
    diagnostics,
    engine,
    () => effectiveModel(readSettings(), context.extensionUri),
    log,
    () => findBuiltInModel(readSettings().model || 'tinysql-demo')?.name,
  );
  const services: Services = { context, log, engine, store, state, diagnostics, panel, comparePanel, recentModels, sidebar };
  context.subscriptions.push(log, { dispose: () => engine.dispose() }, store, state, sidebar, panel, comparePanel, diagnostics, decorations, statusBar, legend);

  context.subscriptions.push(
    registerPatchCurrentFile(services),
    registerFindCircuit(),
    registerOpenHeatmap(services),
    registerToggleColours(services),
    registerSelectModel(services),
    registerSelectDevice(),
    registerSetHuggingFaceToken(services),
    registerSetWandbApiKey(services),
    registerInstallCuda(services),
    registerRevealDataset(),
    registerDeleteRun(services),
    registerCompareRuns(services),
    registerRunSweep(services),
    registerOpenExampleDataset(services),
    registerGenerateDatasets(services),
    registerNewDataset(services),
    panel.registerSerializer(),
    comparePanel.registerSerializer((file) => store.read(file)),
    vscode.languages.registerHoverProvider(DATASET_SELECTOR, new TokenHoverProvider(state)),
    vscode.languages.registerCodeLensProvider(DATASET_SELECTOR, new ExampleLensProvider(state)),
    vscode.languages.registerCodeActionsProvider(DATASET_SELECTOR, new UseBuiltInModelFix(), { providedCodeActionKinds: UseBuiltInModelFix.kinds }),
    vscode.window.registerTreeDataProvider('attributionPatching.sidebar', sidebar),
    // Claims files (*.claims.yaml) in the Test Explorer, with "Run claim" CodeLenses.
    new ClaimsTesting(services),
  );

  // One place turns state changes into view updates.
  const refreshViews = () => {
    decorations.renderAll();
    statusBar.update();
    legend.update();
    panel.sync();
    void vscode.commands.executeCommand('setContext', 'attributionPatching.coloursEnabled', state.coloursEnabled);
  };
  const openDataset = (document: vscode.TextDocument) => {
    if (!isDatasetDocument(document)) return;
    // Known result: the file may have changed on disk while it was closed. Unknown: look for a saved one.
    if (state.get(document.uri)) state.refreshStaleness(document);
    else void state.loadSaved(document);
  };
  const staleChecks = new Map<string, NodeJS.Timeout>();
  context.subscriptions.push(
    state.onDidChange(refreshViews),
    store.onDidChangeRuns(() => void sidebar.refresh()),
    vscode.window.onDidChangeVisibleTextEditors(() => decorations.renderAll()),
    vscode.window.onDidChangeActiveTextEditor(() => legend.update()),
    vscode.workspace.onDidOpenTextDocument(openDataset),
    vscode.workspace.onDidChangeTextDocument((event) => {
      if (event.contentChanges.length === 0) return;
      // The last run's problems describe the text as it was; the checks while typing take over.
      diagnostics.clearSource(event.document, 'run');
      if (!state.get(event.document.uri)) return;
      // Hashing the whole file on every keystroke is wasteful; once typing pauses is enough.
      const key = event.document.uri.toString();
      clearTimeout(staleChecks.get(key));
      staleChecks.set(
        key,
        setTimeout(() => state.refreshStaleness(event.document), 250),
      );
      // Ranges move with the edit; until the check runs, colours would be misplaced: hide them now.
      state.markStale(event.document.uri);
    }),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(SECTION)) {
        statusBar.update();
        void sidebar.refresh();
      }
      // Another model, another tokenizer: its token counts decide the diagnostics.
      if (event.affectsConfiguration(`${SECTION}.model`)) liveDiagnostics.checkAll();
      // The engine process reads the proxy when it starts: the next run starts one with the new settings.
      if (['http.proxy', 'http.noProxy', 'http.proxyStrictSSL'].some((setting) => event.affectsConfiguration(setting))) engine.restart();
    }),
    { dispose: () => staleChecks.forEach((timer) => clearTimeout(timer)) },
  );

  vscode.workspace.textDocuments.forEach(openDataset);
  // Parse and tokenizer diagnostics while typing, for the datasets open now and those opened later.
  context.subscriptions.push(liveDiagnostics.start());
  refreshViews();
  void sidebar.refresh();
  openWalkthroughOnFirstRun(context);
  log.info('activated');
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions (the engine process included).
}
