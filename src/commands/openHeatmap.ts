// "Attribution Patching: Open Heatmap": the panel for the active dataset's result, or for a run picked in the
// sidebar (its result file is loaded first).
import * as vscode from 'vscode';
import type { Services } from '../services/services';
import type { RunItem } from '../views/sidebar';

export function registerOpenHeatmap(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand('attributionPatching.openHeatmap', async (item?: RunItem) => {
    const { state, panel } = services;
    if (item?.run) {
      const loaded = state.get(vscode.Uri.file(item.run.datasetFile));
      if (loaded?.resultFile === item.run.resultFile) state.focused = loaded.datasetUri;
      else if (!(await panel.loadResultFile(item.run.resultFile))) return;
    } else {
      const active = vscode.window.activeTextEditor?.document.uri;
      if (active && state.get(active)) state.focused = active;
    }
    panel.show();
  });
}
