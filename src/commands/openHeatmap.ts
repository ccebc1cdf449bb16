// "Attribution Patching: Open Heatmap": the panel for the active dataset's result, or for a run picked in the
// sidebar (its result file is loaded first).
import * as vscode from 'vscode';
import type { Services } from '../services/services';
import type { RunItem } from '../views/sidebar';
import { SHOW_EXAMPLE } from '../editor/exampleLens';
import { COMMANDS } from './ids';

export function registerOpenHeatmap(services: Services): vscode.Disposable {
  return vscode.Disposable.from(openHeatmap(services), showExample(services));
}

/** From a CodeLens: the panel on one example of a dataset's result. */
function showExample(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(SHOW_EXAMPLE, (uri: vscode.Uri, index: number) => {
    const { state, panel } = services;
    const entry = state.get(uri);
    if (!entry || !Number.isInteger(index) || index < 0 || index >= entry.result.examples.length) return;
    state.focusOn(uri);
    state.setScope({ kind: 'example', index });
    panel.show();
  });
}

function openHeatmap(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(COMMANDS.openHeatmap, async (item?: RunItem) => {
    const { state, panel } = services;
    if (item?.run) {
      const loaded = state.get(vscode.Uri.file(item.run.datasetFile));
      if (loaded?.resultFile === item.run.resultFile) state.focusOn(loaded.datasetUri);
      else if (!(await panel.loadResultFile(item.run.resultFile))) return;
    } else {
      const active = vscode.window.activeTextEditor?.document.uri;
      if (active && state.get(active)) state.focusOn(active);
    }
    panel.show();
  });
}
