// Typed access to the extension's settings (declared with descriptions in package.json "contributes.configuration").
import * as vscode from 'vscode';
// Type-only: importing the runtime's values would load onnxruntime-node into the extension host.
import type { DeviceRequest } from '../engine/process/runtime';

/** The same list as the engine's DEVICES (the manifest's enum lists them too). */
export const DEVICE_CHOICES: readonly DeviceRequest[] = ['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'];

export const SECTION = 'attributionPatching';

export type ResultLocation = 'nextToDataset' | 'workspaceStorage';

export interface Settings {
  /** A model folder in Hugging Face layout or a Hugging Face repo id; '' when none is chosen yet. */
  model: string;
  device: DeviceRequest;
  batchSize: number;
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
    resultLocation: config.get<string>('resultLocation') === 'workspaceStorage' ? 'workspaceStorage' : 'nextToDataset',
    method: (['atp', 'atpstar', 'exact'] as const).find((m) => m === config.get<string>('method')) ?? 'auto',
    gradDrop: config.get<boolean>('gradDrop', false) === true,
    checkTopK: Math.max(0, Math.min(100, Math.floor(Number(config.get<number>('checkTopK', 0)) || 0))),
  };
}

/** The model a run uses: the setting, or the built-in demo model shipped in the extension (models/tinysql-demo). */
export function effectiveModel(settings: Settings, extensionUri: vscode.Uri): string {
  return settings.model || builtInModel(extensionUri);
}

export function builtInModel(extensionUri: vscode.Uri): string {
  return vscode.Uri.joinPath(extensionUri, 'models', 'tinysql-demo').fsPath;
}

export async function updateSetting(key: keyof Settings, value: unknown): Promise<void> {
  // Workspace-level when a folder is open (a model is usually per project), else the user's settings.
  const target = vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  await vscode.workspace.getConfiguration(SECTION).update(key, value, target);
}
