// What the editor says when a run fails: the first blocking error (never a warning), in the editor's terms (the
// setting, not the command-line flag; the file's name, not its full path), with the actions that get the user out.
// No 'vscode' import: unit-tested under plain Node.
import { basename } from 'node:path';
import { CUDA_NOT_INSTALLED, type InputProblem } from '../shared/errors';
import { FIELDS, type FieldId, renderFieldText } from '../shared/fields';
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
const settingsFor = (setting: string): FailureAction => ({ title: 'Open Settings', command: 'workbench.action.openSettings', args: [setting] });

/** The ways out of a problem with a field: its own commands where it has them, else its setting. */
function actionsFor(field: FieldId | undefined, detail: string): FailureAction[] {
  if (field === undefined) return [];
  const modelActions = [SELECT_MODEL, settingsFor(FIELDS.model.setting!)];
  if (field === 'model') return modelActions;
  // A gated or private repo, or one misspelled (the hub answers the same): a token, or another model.
  if (field === 'hfToken') return [SET_TOKEN, ...modelActions];
  const setting = FIELDS[field].setting;
  const actions = setting ? [settingsFor(setting)] : [];
  if (field === 'device' && detail.includes(CUDA_NOT_INSTALLED)) actions.unshift(INSTALL_CUDA);
  return actions;
}

/**
 * The failure of a run (its message, and the InputError's field and detail when the worker sent them), with the
 * run's diagnostics: the first error in the editor's terms and the actions its field calls for.
 */
export function adviseFailure(failure: { message: string; input?: InputProblem }, diagnostics: readonly FileDiagnostic[], datasetFile: string): FailureAdvice {
  const name = basename(datasetFile);
  const firstError = diagnostics.find((d) => d.severity === 'error');
  const described = failure.input ? renderFieldText(failure.input.detail, 'editor') : failure.message;
  let text = firstError ? `${name}:${firstError.line}: ${firstError.message}` : described.split('\n')[0];
  // The dataset by its name: the full path is in the log and the Problems view.
  if (text.startsWith(`${datasetFile}:`)) text = `${name}${text.slice(datasetFile.length)}`;
  if (diagnostics.length > 0) text += ' (see Problems)';
  return { message: text, actions: actionsFor(failure.input?.field, failure.input?.detail ?? '') };
}

/**
 * A run that finished on the CPU because CUDA was asked for (device cuda, or auto with the provider expected) and
 * its libraries are not installed: the engine falls back rather than failing, so the offer comes with the run's
 * warnings. Undefined when no warning says so.
 */
export function adviseCudaFallback(warnings: readonly string[]): FailureAdvice | undefined {
  const warning = warnings.find((w) => w.includes(CUDA_NOT_INSTALLED));
  if (!warning) return undefined;
  return { message: `CUDA is not installed, so this run used the CPU (${CUDA_NOT_INSTALLED}).`, actions: [INSTALL_CUDA, settingsFor(FIELDS.device.setting!)] };
}
