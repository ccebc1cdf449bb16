// "Attribution Patching: Select Device": which ONNX Runtime execution provider runs the engine.
import * as vscode from 'vscode';
import { DEVICE_CHOICES, readSettings, updateSetting } from '../services/settings';
import { COMMANDS } from './ids';

const DESCRIPTIONS: Record<string, string> = {
  auto: 'CUDA when CUDA support is installed and its NVIDIA libraries load, DirectML on Windows, CoreML on macOS, else the CPU',
  cpu: 'always available',
  cuda: 'NVIDIA GPUs (needs Attribution Patching: Install CUDA Support, CUDA 12 and cuDNN 9)',
  dml: 'DirectML, Windows GPUs',
  coreml: 'Apple silicon',
  webgpu: 'WebGPU (Dawn); falls back to the CPU when no adapter is found',
};

export function registerSelectDevice(): vscode.Disposable {
  return vscode.commands.registerCommand(COMMANDS.selectDevice, async () => {
    const current = readSettings().device;
    const picked = await vscode.window.showQuickPick(
      DEVICE_CHOICES.map((device) => ({ label: device, description: device === current ? 'current' : undefined, detail: DESCRIPTIONS[device] })),
      { title: 'Attribution Patching: device' },
    );
    if (picked) await updateSetting('device', picked.label);
  });
}
