// "Attribution Patching: New Prompt Pairs File": a commented .atp file in the workspace (never overwriting one),
// with one example that suits the built-in demo model, ready to edit and run.
import * as vscode from 'vscode';
import { formatPromptLine } from '../lib/dataset/promptFormat';
import { uniqueFileName } from '../services/datasetGeneration';
import type { Services } from '../services/services';
import { COMMANDS } from './ids';

export const NEW_DATASET = COMMANDS.newDataset;

/** The template: how to write prompt pairs, then one TinySQL example (the demo model's task). */
export function datasetTemplate(): string {
  const example = formatPromptLine({
    clean:
      '### Instruction: show me the price and status from the items table ### Context: CREATE TABLE items ( price JSON, status JSON ) ### Response: SELECT',
    corrupted:
      '### Instruction: show me the code and status from the items table ### Context: CREATE TABLE items ( price JSON, status JSON ) ### Response: SELECT',
    correct: ' price',
    incorrect: ' code',
  });
  return [
    '# Prompt pairs for attribution patching: one example per line; lines starting with # are comments.',
    '# Write the clean prompt, with each place where the corrupted prompt differs as {clean|corrupted} (both sides the',
    '# same number of tokens), then => and the two answers, quoted with their leading space: the answer the clean',
    '# prompt should give, then the one the corrupted prompt should give. Problems show up as you type.',
    '# The example below suits the built-in demo model (TinySQL: an English request and a table → SQL). For GPT-2:',
    '#   When John and Mary went to the shops, {John|Mary} gave the bag to => " Mary" | " John"',
    example,
    '',
  ].join('\n');
}

export function registerNewDataset(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(NEW_DATASET, async () => {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const target = folder
      ? vscode.Uri.joinPath(
          folder,
          await uniqueFileName('prompts.atp', (name) =>
            Promise.resolve(
              vscode.workspace.fs.stat(vscode.Uri.joinPath(folder, name)).then(
                () => true,
                () => false,
              ),
            ),
          ),
        )
      : await vscode.window.showSaveDialog({
          title: 'New prompt pairs file',
          defaultUri: vscode.Uri.joinPath(services.context.globalStorageUri, 'prompts.atp'),
          saveLabel: 'Create',
          filters: { 'Prompt pairs': ['atp'] },
        });
    if (!target) return;
    await vscode.workspace.fs.writeFile(target, Buffer.from(datasetTemplate(), 'utf8'));
    services.log.info(`new dataset: ${target.fsPath}`);
    const editor = await vscode.window.showTextDocument(target, { preview: false });
    // The cursor on the example, ready to edit.
    const line = editor.document.lineCount - 2;
    editor.selection = new vscode.Selection(line, 0, line, 0);
  });
}
