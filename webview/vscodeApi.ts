// The webview side of VS Code's messaging and state API, typed with the panel protocol.
import type { PanelState, WebviewMessage } from '../src/shared/panelProtocol';

interface VsCodeApi {
  postMessage(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: PanelState): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

export const vscode = acquireVsCodeApi();
