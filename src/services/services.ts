// The extension's long-lived parts, built once in activate() and handed to each command and view.
import type * as vscode from 'vscode';
import type { DatasetDiagnostics } from '../editor/diagnostics';
import type { HeatmapPanelHost } from '../panel/heatmapPanel';
import type { ComparePanelHost } from '../panel/comparePanel';
import type { SidebarProvider } from '../views/sidebar';
import type { EngineClient } from './engineClient';
import type { RecentModels } from './recentModels';
import type { ResultState } from './resultState';
import type { ResultStore } from './resultStore';

export interface Services {
  context: vscode.ExtensionContext;
  log: vscode.LogOutputChannel;
  engine: EngineClient;
  store: ResultStore;
  state: ResultState;
  diagnostics: DatasetDiagnostics;
  panel: HeatmapPanelHost;
  comparePanel: ComparePanelHost;
  recentModels: RecentModels;
  sidebar: SidebarProvider;
}
