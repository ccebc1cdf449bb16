// "Attribution Patch Current File": runs the engine (in its child process) on the dataset in the editor, with
// cancellable progress; saves the Result atomically, colours the file, and turns input errors into diagnostics.
import * as vscode from 'vscode';
import { basename } from 'node:path';
import { formatValue } from '../shared/colorScale';
import { isCurrentFor, isDatasetDocument } from '../services/resultState';
import type { Services } from '../services/services';
import { effectiveModel, readSettings } from '../services/settings';
import { HF_TOKEN_SECRET } from '../views/sidebar';
import { adviseCudaFallback, adviseFailure } from './runFailure';
import { COMMANDS } from './ids';

export const PATCH_CURRENT_FILE = COMMANDS.patchCurrentFile;

async function datasetDocument(uri: vscode.Uri | undefined): Promise<vscode.TextDocument | undefined> {
  // Menus pass the file's URI; the palette runs on the active editor.
  const document = uri instanceof vscode.Uri ? await vscode.workspace.openTextDocument(uri) : vscode.window.activeTextEditor?.document;
  if (document && isDatasetDocument(document)) return document;
  void vscode.window.showErrorMessage('Attribution Patching: open a dataset file (.jsonl or .atp) first.');
  return undefined;
}

export function registerPatchCurrentFile(services: Services): vscode.Disposable {
  // `options.check` (the panel's "Check top K") overrides the checkTopK setting for this run.
  return vscode.commands.registerCommand(PATCH_CURRENT_FILE, async (uri?: vscode.Uri, options?: { check?: number }) => {
    const { engine, store, state, diagnostics, log, recentModels, context } = services;
    const document = await datasetDocument(uri);
    if (!document) return;
    if (engine.busy) {
      void vscode.window.showInformationMessage('Attribution Patching: a run is already in progress.');
      return;
    }
    const settings = readSettings();
    // No model chosen yet: the built-in demo model, so that a first run works right after install.
    const model = effectiveModel(settings, context.extensionUri);
    const datasetFile = document.uri.fsPath;
    const datasetText = document.getText();
    const resultFile = store.resultFileFor(datasetFile, settings.resultLocation);
    const pendingFile = await store.pendingFileFor(resultFile);
    const hfToken = await context.secrets.get(HF_TOKEN_SECRET);
    // The last run's problems go; the live ones (from typing) stay.
    diagnostics.clearSource(document, 'run');
    const check = typeof options?.check === 'number' && Number.isInteger(options.check) && options.check >= 0 ? options.check : settings.checkTopK;
    log.info(`run: ${datasetFile} with ${model} on ${settings.device}, batch size ${settings.batchSize}, method ${settings.method}${check ? `, checking ${2 * check} components` : ''}`);

    const outcome = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Attribution patching ${basename(datasetFile)}`, cancellable: true },
      (progress, token) => {
        const controller = new AbortController();
        token.onCancellationRequested(() => controller.abort());
        let reported = 0;
        return engine.run(
          { model, hfToken, datasetFile, datasetText, device: settings.device, batchSize: settings.batchSize, method: settings.method, gradDrop: settings.gradDrop, check, pendingFile, resultFile },
          {
            signal: controller.signal,
            onProgress: (message, done, total) => {
              log.info(message);
              const percent = done !== undefined && total ? (100 * done) / total : reported;
              progress.report({ message, increment: percent - reported });
              reported = percent;
            },
          },
        );
      },
    );

    switch (outcome.kind) {
      case 'cancelled':
        log.info('run cancelled; nothing was written');
        vscode.window.setStatusBarMessage('Attribution patching cancelled; nothing was written.', 5000);
        return;
      case 'failed': {
        diagnostics.set(document, outcome.diagnostics, 'run');
        if (outcome.reason === 'input') {
          log.warn(outcome.message);
          const advice = adviseFailure(outcome, outcome.diagnostics, datasetFile);
          void vscode.window.showErrorMessage(`Attribution Patching: ${advice.message}`, ...advice.actions.map((a) => a.title)).then((choice) => {
            const action = advice.actions.find((a) => a.title === choice);
            if (action) void vscode.commands.executeCommand(action.command, ...(action.args ?? []));
          });
        } else {
          log.error(outcome.message);
          const choice = await vscode.window.showErrorMessage(`Attribution Patching failed: ${outcome.message.split('\n')[0]}`, 'Show Log');
          if (choice) log.show();
        }
        return;
      }
      case 'done': {
        await store.commit(outcome.pendingFile, resultFile);
        const result = await store.read(resultFile);
        diagnostics.set(document, outcome.diagnostics, 'run');
        for (const warning of outcome.warnings) log.warn(warning);
        const cuda = adviseCudaFallback(outcome.warnings);
        if (cuda) {
          void vscode.window.showWarningMessage(`Attribution Patching: ${cuda.message}`, ...cuda.actions.map((a) => a.title)).then((choice) => {
            const action = cuda.actions.find((a) => a.title === choice);
            if (action) void vscode.commands.executeCommand(action.command, ...(action.args ?? []));
          });
        }
        state.set({ datasetUri: document.uri, resultFile, result, stale: !isCurrentFor(result, document.getText()) });
        if (settings.model) await recentModels.add(model);
        await store.recordRun({
          datasetFile,
          resultFile,
          createdAt: result.createdAt,
          model,
          device: result.device,
          examples: result.examples.length,
          cleanLogitDiff: result.metric.cleanLogitDiff,
          corruptedLogitDiff: result.metric.corruptedLogitDiff,
        });
        const { summary } = outcome;
        log.info(`done in ${summary.seconds.toFixed(1)} s on ${summary.device}; wrote ${resultFile}`);
        void vscode.window
          .showInformationMessage(
            `Attribution patching done on ${summary.device}: LD clean ${formatValue(summary.cleanLogitDiff)}, corrupted ${formatValue(summary.corruptedLogitDiff)}.`,
            'Open Heatmap',
          )
          .then((choice) => choice && vscode.commands.executeCommand(COMMANDS.openHeatmap));
        return;
      }
    }
  });
}
