// Whether and where a run is logged to W&B, as the editor decides it: the attributionPatching.wandb.project setting
// (empty: off, the default) and the key from SecretStorage (else WANDB_API_KEY of VS Code's environment, else the
// ~/.netrc entry `wandb login` wrote: src/lib/wandb/wandbKey.ts); the worker
// gets both in its request and does the logging. What came of it is shown here: each run's page in the log, each
// failure as a warning. The key is never logged or shown.
import * as vscode from 'vscode';
import { parseWandbBaseUrl, parseWandbProject, type WandbOutcome, type WandbTarget } from '../shared/wandb';
import { InputError } from '../shared/errors';
import { renderFieldText } from '../shared/fields';
import { COMMANDS } from '../commands/ids';
import { SECTION } from './settings';
import { findWandbKey } from '../lib/wandb/wandbKey';

export const WANDB_KEY_SECRET = 'attributionPatching.wandbApiKey';

const SET_KEY = 'Set W&B API Key';

/** The target for the next run, or undefined when logging is off or cannot work (then a warning says why; the run goes on). */
export async function wandbTargetForRun(secrets: vscode.SecretStorage, log: vscode.LogOutputChannel): Promise<WandbTarget | undefined> {
  const setting = vscode.workspace.getConfiguration(SECTION).get<string>('wandb.project', '').trim();
  if (setting === '') return undefined;
  try {
    const where = parseWandbProject(setting);
    const stored = (await secrets.get(WANDB_KEY_SECRET))?.trim();
    const found = stored ? undefined : findWandbKey(process.env);
    const apiKey = stored || found?.apiKey;
    if (!apiKey) {
      log.warn('W&B logging is on (attributionPatching.wandb.project) but there is no API key; this run is not logged');
      void vscode.window
        .showWarningMessage('Attribution Patching: W&B logging is on but no API key is set; this run will not be logged.', SET_KEY)
        .then((choice) => choice === SET_KEY && vscode.commands.executeCommand(COMMANDS.setWandbApiKey));
      return undefined;
    }
    const baseUrl = parseWandbBaseUrl(process.env.WANDB_BASE_URL);
    return {
      ...where,
      apiKey,
      keySource: stored
        ? 'VS Code secret storage (Attribution Patching: Set W&B API Key)'
        : found!.keySource === 'WANDB_API_KEY'
          ? 'WANDB_API_KEY in VS Code’s environment'
          : found!.keySource,
      ...(baseUrl ? { baseUrl } : {}),
    };
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    const text = renderFieldText(error.detail, 'editor');
    log.warn(`W&B logging is off for this run: ${text}`);
    void vscode.window.showWarningMessage(`Attribution Patching: W&B logging is off for this run: ${text}`);
    return undefined;
  }
}

/** Each W&B run's page in the log; each failure in the log and as a warning offering a new key when W&B refused it. */
export function reportWandbOutcome(outcome: WandbOutcome | undefined, log: vscode.LogOutputChannel): void {
  if (!outcome) return;
  for (const url of outcome.urls) log.info(`W&B run: ${url}`);
  for (const warning of outcome.warnings) log.warn(warning);
  if (outcome.warnings.length === 0) return;
  const more = outcome.warnings.length > 1 ? ` (and ${outcome.warnings.length - 1} more in the log)` : '';
  void vscode.window
    .showWarningMessage(`Attribution Patching: ${outcome.warnings[0]}${more}`, ...(outcome.keyRefused ? [SET_KEY] : []))
    .then((choice) => choice === SET_KEY && vscode.commands.executeCommand(COMMANDS.setWandbApiKey));
}
