// Typed access to the extension's settings (declared with descriptions in package.json "contributes.configuration").
import * as vscode from 'vscode';
import { findBuiltInModel } from '../lib/model/presets';
import { modelLabel } from '../shared/modelNames';
import { DEVICES, type DeviceRequest } from '../shared/devices';

/** The devices a run may ask for (the manifest's enum lists them too). */
export const DEVICE_CHOICES: readonly DeviceRequest[] = DEVICES;

export const SECTION = 'attributionPatching';

export type ResultLocation = 'nextToDataset' | 'workspaceStorage';

export interface Settings {
  /** A model folder in Hugging Face layout, a Hugging Face repo id, a preset or a built-in model's name (ioi-demo); '' for the default built-in model. */
  model: string;
  device: DeviceRequest;
  batchSize: number;
  /** What the engine computes in: float16 is mixed precision for GPUs (AtP and exact patching only). */
  precision: 'float32' | 'float16';
  resultLocation: ResultLocation;
  /** How attributions are computed (engine/methods.ts). */
  method: 'auto' | 'atp' | 'atpstar' | 'exact';
  /** AtP*'s GradDrop (L more passes). */
  gradDrop: boolean;
  /** Components checked against exact patching after each run (k largest and k random); 0: none. */
  checkTopK: number;
}

export function readSettings(): Settings {
  const config = vscode.workspace.getConfiguration(SECTION);
  const device = config.get<string>('device', 'auto');
  const batchSize = config.get<number>('batchSize', 8);
  return {
    model: config.get<string>('model', '').trim(),
    device: (DEVICE_CHOICES as readonly string[]).includes(device) ? (device as DeviceRequest) : 'auto',
    batchSize: Number.isInteger(batchSize) && batchSize >= 1 ? batchSize : 8,
    precision: config.get<string>('precision') === 'float16' ? 'float16' : 'float32',
    resultLocation: config.get<string>('resultLocation') === 'workspaceStorage' ? 'workspaceStorage' : 'nextToDataset',
    method: (['atp', 'atpstar', 'exact'] as const).find((m) => m === config.get<string>('method')) ?? 'auto',
    gradDrop: config.get<boolean>('gradDrop', false) === true,
    checkTopK: Math.max(0, Math.min(100, Math.floor(Number(config.get<number>('checkTopK', 0)) || 0))),
  };
}

/**
 * The model a run uses: the setting, or the default built-in model (models/tinysql-demo). A built-in model's name
 * (ioi-demo) becomes its folder in this extension, so the worker never has to guess where the extension is.
 */
export function effectiveModel(settings: Settings, extensionUri: vscode.Uri): string {
  const builtIn = findBuiltInModel(settings.model || 'tinysql-demo');
  return builtIn ? builtInModel(extensionUri, builtIn.name) : settings.model;
}

/** The model the next run uses, as its Result will name it: a built-in model by its name, else the setting's words. */
export function nextRunModelName(settings: Settings): string {
  return findBuiltInModel(settings.model || 'tinysql-demo')?.name ?? settings.model;
}

/** How the sidebar names the model setting: "built-in IOI demo (ioi-demo)", a folder's name, a repo id. */
export function modelSettingLabel(model: string): string {
  const builtIn = findBuiltInModel(model || 'tinysql-demo');
  if (!builtIn) return modelLabel(model);
  return model ? `built-in ${builtIn.task} demo (${builtIn.name})` : `built-in demo (${builtIn.name})`;
}

export function builtInModel(extensionUri: vscode.Uri, name = 'tinysql-demo'): string {
  return vscode.Uri.joinPath(extensionUri, 'models', name).fsPath;
}

export async function updateSetting(key: keyof Settings, value: unknown): Promise<void> {
  // Workspace-level when a folder is open (a model is usually per project), else the user's settings.
  const target = vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  await vscode.workspace.getConfiguration(SECTION).update(key, value, target);
}
