// "Attribution Patch Current File": runs the engine (in its child process) on the dataset in the editor, with
// cancellable progress; saves the Result atomically, colours the file, and turns input errors into diagnostics.
// "Find Circuit" (commands/findCircuit.ts) runs the same command with circuit options: the same run, then edge
// attribution and faithfulness, and the panel opens on the circuit.
import * as vscode from 'vscode';
import { requireWorkspaceTrust } from './workspaceTrust';
import { basename } from 'node:path';
import { formatValue } from '../shared/colorScale';
import { modelLabel } from '../shared/modelNames';
import { wandbProjectPath } from '../shared/wandb';
import { isCurrentFor, isDatasetDocument } from '../services/resultState';
import type { Services } from '../services/services';
import { effectiveModel, readSettings } from '../services/settings';
import { HF_TOKEN_SECRET } from '../views/sidebar';
import { adviseCudaFallback, adviseFailure } from './runFailure';
import type { CircuitRequest } from '../shared/workerProtocol';
import { COMMANDS } from './ids';
import { reportWandbOutcome, wandbTargetForRun } from '../services/wandbTarget';

export const PATCH_CURRENT_FILE = COMMANDS.patchCurrentFile;

async function datasetDocument(uri: vscode.Uri | undefined): Promise<vscode.TextDocument | undefined> {
  // Menus pass the file's URI; the palette runs on the active editor.
  const document = uri instanceof vscode.Uri ? await vscode.workspace.openTextDocument(uri) : vscode.window.activeTextEditor?.document;
  if (document && isDatasetDocument(document)) return document;
  void vscode.window.showErrorMessage('Attribution Patching: open a dataset file (.jsonl or .atp) first.');
  return undefined;
}

export function registerPatchCurrentFile(services: Services): vscode.Disposable {
  // `options.check` (the panel's "Check top K") overrides the checkTopK setting for this run; `options.circuit`
  // (Find Circuit) makes it a circuit run.
  return vscode.commands.registerCommand(PATCH_CURRENT_FILE, async (uri?: vscode.Uri, options?: { check?: number; circuit?: CircuitRequest['circuit'] }) => {
    const { engine, store, state, diagnostics, log, recentModels, context } = services;
    if (!requireWorkspaceTrust(options?.circuit ? 'Find Circuit' : 'Attribution patching')) return;
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
    const wandb = await wandbTargetForRun(context.secrets, log);
    // The last run's problems go; the live ones (from typing) stay.
    diagnostics.clearSource(document, 'run');
    // A circuit run keeps the checks the dataset's Result had (Find Circuit after "Check top K"), else the setting.
    const shownChecks = options?.circuit ? state.get(document.uri)?.result.checks?.k : undefined;
    const check =
      typeof options?.check === 'number' && Number.isInteger(options.check) && options.check >= 0 ? options.check : (shownChecks ?? settings.checkTopK);
    const circuit = options?.circuit;
    log.info(
      `run: ${datasetFile} with ${model} on ${settings.device} in ${settings.precision}, batch size ${settings.batchSize}, method ${settings.method}${check ? `, checking ${2 * check} components` : ''}` +
        (circuit ? `, circuit by ${circuit.method}` : '') +
        (wandb ? `, logged to W&B ${wandbProjectPath(wandb)}` : ''),
    );

    const outcome = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `${circuit ? 'Finding the circuit of' : 'Attribution patching'} ${basename(datasetFile)}`,
        cancellable: true,
      },
      (progress, token) => {
        const controller = new AbortController();
        token.onCancellationRequested(() => controller.abort());
        let reported = 0;
        return engine.run(
          {
            model,
            hfToken,
            datasetFile,
            datasetText,
            device: settings.device,
            batchSize: settings.batchSize,
            precision: settings.precision,
            method: settings.method,
            gradDrop: settings.gradDrop,
            check,
            pendingFile,
            resultFile,
          },
          {
            signal: controller.signal,
            onProgress: (message, step) => {
              // Steps are logged at most every 10% (a 5,000-example run has hundreds of batches); other messages always.
              const percent = step && step.total > 0 ? (100 * step.done) / step.total : reported;
              if (!step || step.done === 0 || step.done === step.total || Math.floor(percent / 10) !== Math.floor(reported / 10)) log.info(message);
              // A new phase starts again at 0: the bar never moves back, so only forward steps move it.
              progress.report({ message, increment: Math.max(0, percent - reported) });
              reported = step && step.done === step.total ? 0 : percent;
            },
          },
          circuit,
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
        if (settings.model) await recentModels.add(settings.model);
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
        if (wandb) {
          // Now that the Result is in place: however the upload goes, it cannot cost the run.
          const where = wandbProjectPath(wandb);
          log.info(`logging to W&B (${where})`);
          void vscode.window
            .withProgress({ location: vscode.ProgressLocation.Window, title: `Logging to W&B (${where})` }, () =>
              engine.logToWandb({
                resultFile,
                target: wandb,
                displayName: `${modelLabel(result.model.source)} · ${basename(datasetFile)}`,
                jobType: circuit ? 'circuit' : 'patch',
                extraConfig: { batch_size: settings.batchSize },
              }),
            )
            .then((logged) => reportWandbOutcome(logged, log));
        }
        if (result.circuit) {
          // The circuit is what was asked for: show it at once, with its measured faithfulness.
          const { selection, faithfulness } = result.circuit;
          log.info(`circuit: ${selection.edges} of ${result.circuit.edges.length} edges, faithfulness ${faithfulness.circuit.toFixed(3)}`);
          void vscode.commands.executeCommand(COMMANDS.openHeatmap);
          vscode.window.setStatusBarMessage(`Circuit: ${selection.edges} edges keep ${(100 * faithfulness.circuit).toFixed(0)}% of the metric.`, 10_000);
          return;
        }
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
