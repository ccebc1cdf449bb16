// "Attribution Patching: Open Example Dataset" (walkthrough): copies a bundled example into the workspace (or the
// extension's storage when no folder is open), since the result is saved next to the dataset. The default,
// tinysql-cs1.jsonl, is the task the built-in demo model was trained on, so its heatmap shows a real mechanism.
import * as vscode from 'vscode';
import type { Services } from '../services/services';
import { COMMANDS } from './ids';

const EXAMPLES = ['tinysql-cs1.jsonl', 'ioi.jsonl', 'ioi.atp'];

export function registerOpenExampleDataset(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(COMMANDS.openExampleDataset, async (name?: string) => {
    const file = typeof name === 'string' && EXAMPLES.includes(name) ? name : EXAMPLES[0];
    const source = vscode.Uri.joinPath(services.context.extensionUri, 'examples', file);
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri ?? services.context.globalStorageUri;
    const target = vscode.Uri.joinPath(folder, file);
    const exists = await vscode.workspace.fs.stat(target).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await vscode.workspace.fs.createDirectory(folder);
      await vscode.workspace.fs.copy(source, target);
    }
    await vscode.window.showTextDocument(target, { preview: false });
  });
}
