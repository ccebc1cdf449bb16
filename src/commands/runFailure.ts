// What the editor says when a run fails: the first blocking error (never a warning), in the editor's terms (the
// setting, not the command-line flag; the file's name, not its full path), with the actions that get the user out.
// No 'vscode' import: unit-tested under plain Node.
import { basename } from 'node:path';
import { CUDA_NOT_INSTALLED } from '../shared/errors';
import type { FileDiagnostic } from '../shared/workerProtocol';
import { COMMANDS, type CommandId } from './ids';

export interface FailureAction {
  title: string;
  /** One of ours, or VS Code's settings editor. */
  command: CommandId | 'workbench.action.openSettings';
  args?: unknown[];
}

export interface FailureAdvice {
  message: string;
  actions: FailureAction[];
}

const SELECT_MODEL: FailureAction = { title: 'Select Model', command: COMMANDS.selectModel };
const SET_TOKEN: FailureAction = { title: 'Set Hugging Face Token', command: COMMANDS.setHuggingFaceToken };
export const INSTALL_CUDA: FailureAction = { title: 'Install CUDA Support…', command: COMMANDS.installCuda };
const settingsFor = (setting: string): FailureAction => ({ title: 'Open Settings', command: 'workbench.action.openSettings', args: [`attributionPatching.${setting}`] });

/** Command-line flags in engine messages, and the settings they are in the editor. */
const FLAGS: Array<[RegExp, string]> = [
  [/--batch-size (\d+)/g, 'a batch size (setting attributionPatching.batchSize) of $1'],
  [/--model\b/g, 'the model (setting attributionPatching.model)'],
  [/--batch-size\b/g, 'the batch size (setting attributionPatching.batchSize)'],
  [/--device\b/g, 'the device (setting attributionPatching.device)'],
  [/--method\b/g, 'the method (setting attributionPatching.method)'],
];

export function adviseFailure(message: string, diagnostics: readonly FileDiagnostic[], datasetFile: string): FailureAdvice {
  const name = basename(datasetFile);
  const firstError = diagnostics.find((d) => d.severity === 'error');
  let text = firstError ? `${name}:${firstError.line}: ${firstError.message}` : message.split('\n')[0];
  // The dataset by its name: the full path is in the log and the Problems view.
  if (text.startsWith(`${datasetFile}:`)) text = `${name}${text.slice(datasetFile.length)}`;
  for (const [flag, words] of FLAGS) text = text.replace(flag, words);
  if (diagnostics.length > 0) text += ' (see Problems)';

  const modelProblem = message.startsWith('--model') || /config\.json|safetensors|tokenizer\.json|model_type|Hugging Face cache|answered \d{3}/.test(message);
  const tokenProblem = /needs a Hugging Face token|private \(then it needs a token\)/.test(message);
  const actions: FailureAction[] = [];
  if (tokenProblem) actions.push(SET_TOKEN);
  if (modelProblem) actions.push(SELECT_MODEL, settingsFor('model'));
  if (/not enough (GPU )?memory/.test(message)) actions.push(settingsFor('batchSize'));
  if (message.includes(CUDA_NOT_INSTALLED)) actions.push(INSTALL_CUDA, settingsFor('device'));
  return { message: text, actions };
}

/**
 * A run that finished on the CPU because CUDA was asked for (device cuda, or auto with the provider expected) and
 * its libraries are not installed: the engine falls back rather than failing, so the offer comes with the run's
 * warnings. Undefined when no warning says so.
 */
export function adviseCudaFallback(warnings: readonly string[]): FailureAdvice | undefined {
  const warning = warnings.find((w) => w.includes(CUDA_NOT_INSTALLED));
  if (!warning) return undefined;
  return { message: `CUDA is not installed, so this run used the CPU (${CUDA_NOT_INSTALLED}).`, actions: [INSTALL_CUDA, settingsFor('device')] };
}
