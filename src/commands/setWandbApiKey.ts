// "Attribution Patching: Set W&B API Key": kept in VS Code's SecretStorage only (never settings or logs); an empty
// input removes it. Logging itself is switched on by the attributionPatching.wandb.project setting.
import * as vscode from 'vscode';
import type { Services } from '../services/services';
import { WANDB_KEY_SECRET } from '../services/wandbTarget';
import { COMMANDS } from './ids';

export function registerSetWandbApiKey(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(COMMANDS.setWandbApiKey, async () => {
    const key = await vscode.window.showInputBox({
      title: 'Weights & Biases API key',
      prompt:
        "For logging runs to W&B (setting attributionPatching.wandb.project). Stored in VS Code's secret storage; leave empty to remove it. Find it at https://wandb.ai/authorize.",
      password: true,
      ignoreFocusOut: true,
    });
    if (key === undefined) return;
    if (key.trim() === '') {
      await services.context.secrets.delete(WANDB_KEY_SECRET);
      services.log.info('W&B API key removed');
    } else {
      await services.context.secrets.store(WANDB_KEY_SECRET, key.trim());
      services.log.info('W&B API key stored in secret storage');
    }
  });
}
