// "Attribution Patching: Set Hugging Face Token": kept in VS Code's SecretStorage only (never settings or logs);
// an empty input removes it.
import * as vscode from 'vscode';
import type { Services } from '../services/services';
import { HF_TOKEN_SECRET } from '../views/sidebar';
import { COMMANDS } from './ids';

export function registerSetHuggingFaceToken(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(COMMANDS.setHuggingFaceToken, async () => {
    const token = await vscode.window.showInputBox({
      title: 'Hugging Face token',
      prompt: "Needed for gated or private models. Stored in VS Code's secret storage; leave empty to remove it.",
      password: true,
      ignoreFocusOut: true,
      placeHolder: 'hf_…',
    });
    if (token === undefined) return;
    if (token.trim() === '') {
      await services.context.secrets.delete(HF_TOKEN_SECRET);
      services.log.info('Hugging Face token removed');
    } else {
      await services.context.secrets.store(HF_TOKEN_SECRET, token.trim());
      services.log.info('Hugging Face token stored in secret storage');
    }
    await services.sidebar.refresh();
  });
}
