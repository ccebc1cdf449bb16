// Sidebar run action "Delete Run": removes the result file (after confirmation) and its entry.
import * as vscode from 'vscode';
import { basename } from 'node:path';
import type { Services } from '../services/services';
import type { RunItem } from '../views/sidebar';
import { COMMANDS } from './ids';

export function registerDeleteRun(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(COMMANDS.deleteRun, async (item?: RunItem) => {
    if (!item?.run) return;
    const confirm = await vscode.window.showWarningMessage(`Delete the result ${basename(item.run.resultFile)}?`, { modal: true }, 'Delete');
    if (confirm !== 'Delete') return;
    await services.store.deleteRun(item.run.resultFile);
    services.state.forgetResultFile(item.run.resultFile);
    services.log.info(`deleted ${item.run.resultFile}`);
  });
}
