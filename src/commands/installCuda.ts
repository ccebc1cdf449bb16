// "Attribution Patching: Install CUDA Support": the CUDA provider libraries for the bundled onnxruntime-node, into
// the per-user runtime folder (src/lib/cuda/cudaInstall.ts: plain Node https and fs, no onnxruntime in this
// process). With a progress notification that cancels; offline, "Install from File…" takes a downloaded .nupkg and
// its SHA-512. Afterwards the engine process is restarted so that the next run loads ONNX Runtime from there.
import * as vscode from 'vscode';
import { CudaInstallError, cudaPackage, InstallCancelledError, installCuda, type InstallOptions, normalizeSha512 } from '../lib/cuda/cudaInstall';
import { bundledOrt, CUDA_PLATFORM, cudaRuntimeRoot, cudaRuntimeState } from '../lib/cuda/cudaRuntime';
import { readSettings, updateSetting } from '../services/settings';
import type { Services } from '../services/services';
import { COMMANDS } from './ids';

const FROM_FILE = 'Install from File…';

async function askForFile(): Promise<Pick<InstallOptions, 'from' | 'sha512'> | undefined> {
  const ort = bundledOrt();
  const pkg = cudaPackage(ort.version);
  const picked = await vscode.window.showOpenDialog({ title: `The downloaded ${pkg.fileName}`, canSelectMany: false, filters: { 'NuGet package': ['nupkg'] } });
  if (!picked?.[0]) return undefined;
  const sha512 = await vscode.window.showInputBox({
    title: 'SHA-512 of the package',
    prompt: `packageHash in the catalog entry that ${pkg.registrationUrl} links to (base64), or 128 hex digits`,
    ignoreFocusOut: true,
    validateInput: (text) => {
      try {
        normalizeSha512(text, 'SHA-512');
        return undefined;
      } catch (error) {
        return (error as Error).message;
      }
    },
  });
  return sha512 === undefined ? undefined : { from: picked[0].fsPath, sha512 };
}

async function install(services: Services, source: Pick<InstallOptions, 'from' | 'sha512'>): Promise<void> {
  const { log } = services;
  const outcome = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Installing CUDA support', cancellable: true },
    async (progress, token) => {
      const controller = new AbortController();
      token.onCancellationRequested(() => controller.abort());
      let reported = 0;
      try {
        return await installCuda({
          ...source,
          signal: controller.signal,
          onProgress: (step) => {
            if (step.phase !== 'download' || step.done === undefined) log.info(`install-cuda: ${step.message}`);
            const percent = step.done !== undefined && step.total ? Math.floor((100 * step.done) / step.total) : undefined;
            progress.report({
              message: percent !== undefined ? `${step.message} (${percent}%)` : step.message,
              increment: percent !== undefined ? percent - reported : undefined,
            });
            if (percent !== undefined) reported = percent;
          },
        });
      } catch (error) {
        return error as Error;
      }
    },
  );
  if (outcome instanceof InstallCancelledError) {
    log.info(`install-cuda: ${outcome.message}`);
    vscode.window.setStatusBarMessage('CUDA install cancelled; nothing was installed.', 5000);
    return;
  }
  if (outcome instanceof Error) {
    log.error(`install-cuda: ${outcome.message}`);
    const actions = outcome instanceof CudaInstallError ? [FROM_FILE, 'Show Log'] : ['Show Log'];
    const choice = await vscode.window.showErrorMessage(`CUDA support was not installed: ${outcome.message}`, ...actions);
    if (choice === 'Show Log') log.show();
    if (choice === FROM_FILE) {
      const file = await askForFile();
      if (file) await install(services, file);
    }
    return;
  }
  services.engine.restart();
  log.info(`install-cuda: installed into ${outcome.dir}; the engine process restarts for the next run`);
  for (const note of outcome.notes) log.warn(`install-cuda: ${note}`);
  const device = readSettings().device;
  const useCuda = device === 'cuda' || device === 'auto' ? [] : ['Use CUDA'];
  const message =
    outcome.notes.length > 0 ? `CUDA support installed in ${outcome.dir}, but ${outcome.notes.join(' ')}` : `CUDA support installed in ${outcome.dir}.`;
  const show = outcome.notes.length > 0 ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
  const choice = await show(message, ...useCuda);
  if (choice === 'Use CUDA') await updateSetting('device', 'cuda');
}

export function registerInstallCuda(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(COMMANDS.installCuda, async () => {
    if (`${process.platform}/${process.arch}` !== CUDA_PLATFORM) {
      void vscode.window.showErrorMessage(`CUDA support is installed on Linux x64 only (this is ${process.platform}/${process.arch}).`);
      return;
    }
    const ort = bundledOrt();
    const state = cudaRuntimeState(ort.version);
    const pkg = cudaPackage(ort.version);
    const download = `Download from nuget.org`;
    const choice = await vscode.window.showInformationMessage(
      state.state === 'installed'
        ? `CUDA support for ONNX Runtime ${ort.version} is already installed in ${state.dir}.`
        : `Download ${pkg.id} ${ort.version} (ONNX Runtime's CUDA provider, several hundred MB) from nuget.org into ${cudaRuntimeRoot()}? CUDA 12 and cuDNN 9 must be on this machine already.`,
      { modal: state.state !== 'installed' },
      state.state === 'installed' ? 'Reinstall' : download,
      FROM_FILE,
    );
    if (choice === FROM_FILE) {
      const file = await askForFile();
      if (file) await install(services, file);
    } else if (choice === download || choice === 'Reinstall') await install(services, {});
  });
}
