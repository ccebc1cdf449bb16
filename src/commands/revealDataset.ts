// Sidebar run action "Reveal Dataset": opens the dataset the run was computed from.
import * as vscode from 'vscode';
import type { RunItem } from '../views/sidebar';
import { COMMANDS } from './ids';

export function registerRevealDataset(): vscode.Disposable {
  return vscode.commands.registerCommand(COMMANDS.revealDataset, async (item?: RunItem) => {
    if (!item?.run) return;
    await vscode.window.showTextDocument(vscode.Uri.file(item.run.datasetFile), { preview: false });
  });
}
