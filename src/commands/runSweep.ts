// "Attribution Patching: Run Sweep…": the editor's `atp sweep`. Asks for the models (the configured one by default),
// the features, the examples per dataset and the output folder, runs the sweep in the engine's worker with a
// progress notification per cell (cancellable: finished cells stay, with their summary), then opens the summary in
// the Compare panel. A rerun into the same folder keeps the finished cells.
import * as vscode from 'vscode';
import { requireWorkspaceTrust } from './workspaceTrust';
import { isAbsolute, join } from 'node:path';
import { MAX_GENERATED_EXAMPLES, TINYSQL_FEATURES } from '../shared/generateSpec';
import { integerInputProblem, TINYSQL_FEATURE_DESCRIPTIONS } from '../services/datasetGeneration';
import { parseSweepSummary, type SweepSpec } from '../shared/sweep';
import type { Services } from '../services/services';
import { readSettings } from '../services/settings';
import { HF_TOKEN_SECRET } from '../views/sidebar';
import { COMMANDS } from './ids';
import { renderFieldText } from '../shared/fields';
import { reportWandbOutcome, wandbTargetForRun } from '../services/wandbTarget';
import { readInputText } from '../lib/files/readInput';

export const RUN_SWEEP = COMMANDS.runSweep;

/** The questions, in order; undefined when the user cancels one. */
async function askSweep(defaultModel: string): Promise<{ spec: SweepSpec; outDir: string } | undefined> {
  const title = 'Run Sweep';
  const models = await vscode.window.showInputBox({
    title,
    prompt: 'Models, comma-separated: folders, presets (M1, bm1-cs1, …) or Hugging Face repo ids',
    value: defaultModel,
    ignoreFocusOut: true,
    validateInput: (text) => (text.split(',').some((m) => m.trim() !== '') ? undefined : 'Give at least one model'),
  });
  if (models === undefined) return undefined;
  const features = await vscode.window.showQuickPick(
    [
      ...TINYSQL_FEATURES.map((f) => ({ label: f, detail: `TinySQL: corrupts ${TINYSQL_FEATURE_DESCRIPTIONS[f]}` })),
      { label: 'IOI', detail: 'indirect object identification' },
    ],
    { title, placeHolder: 'Features (one dataset per model and feature)', canPickMany: true, ignoreFocusOut: true },
  );
  if (!features || features.length === 0) return undefined;
  const count = await vscode.window.showInputBox({
    title,
    prompt: `Examples per dataset (1 to ${MAX_GENERATED_EXAMPLES})`,
    value: '20',
    ignoreFocusOut: true,
    validateInput: (t) => integerInputProblem(t, 1, MAX_GENERATED_EXAMPLES),
  });
  if (count === undefined) return undefined;
  // A folder that may not exist yet (a sweep makes it); with no workspace open, a dialog picks an existing one.
  const workspace = vscode.workspace.workspaceFolders?.[0]?.uri;
  let outDir: string | undefined;
  if (workspace) {
    outDir = await vscode.window.showInputBox({
      title,
      prompt: 'Output folder (a rerun into the same folder keeps the finished cells)',
      value: join(workspace.fsPath, 'atp-sweep'),
      ignoreFocusOut: true,
      validateInput: (text) => (isAbsolute(text.trim()) ? undefined : 'Give an absolute folder path'),
    });
  } else {
    outDir = (
      await vscode.window.showOpenDialog({ title: 'Sweep output folder', canSelectFolders: true, canSelectFiles: false, openLabel: 'Write the sweep here' })
    )?.[0]?.fsPath;
  }
  if (!outDir) return undefined;
  return {
    spec: {
      models: models
        .split(',')
        .map((m) => m.trim())
        .filter((m) => m !== ''),
      features: features.map((f) => f.label),
      count: Number(count.trim()),
      seed: 0,
      method: 'atp',
    },
    outDir: outDir.trim(),
  };
}

export function registerRunSweep(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(RUN_SWEEP, async (given?: { spec: SweepSpec; outDir: string }) => {
    const { engine, log, context } = services;
    if (!requireWorkspaceTrust('A sweep')) return;
    if (engine.busy) {
      void vscode.window.showWarningMessage('Attribution Patching: a run is in progress; start the sweep when it has finished.');
      return;
    }
    const settings = readSettings();
    // Called with a spec (tests, other commands) or asked for.
    const request = given?.spec && typeof given.outDir === 'string' ? given : await askSweep(settings.model || 'tinysql-demo');
    if (!request) return;
    const hfToken = (await context.secrets.get(HF_TOKEN_SECRET)) || undefined;
    const wandb = await wandbTargetForRun(context.secrets, log);
    const outcome = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Attribution patching sweep', cancellable: true },
      (progress, token) => {
        const controller = new AbortController();
        token.onCancellationRequested(() => controller.abort());
        let reported = 0;
        return engine.sweep(
          {
            spec: request.spec,
            outDir: request.outDir,
            device: settings.device,
            batchSize: settings.batchSize,
            precision: settings.precision,
            hfToken,
            ...(wandb ? { wandb } : {}),
          },
          {
            signal: controller.signal,
            onProgress: (message, step) => {
              // Cell events carry counts; the engine's own messages (batches) only update the text.
              if (step?.unit !== 'cell') return;
              const percent = step.total ? (100 * step.done) / step.total : reported;
              progress.report({ message, increment: percent - reported });
              reported = percent;
            },
          },
        );
      },
    );
    const summaryFile = join(request.outDir, 'summary.json');
    if (outcome.kind === 'failed') {
      log.warn(`sweep failed: ${outcome.message}`);
      // An input problem in the editor's terms (settings and words, not the command line's flags).
      const text = outcome.input ? renderFieldText(outcome.input.detail, 'editor') : outcome.message;
      void vscode.window.showErrorMessage(`Attribution Patching: the sweep stopped: ${text.split('\n')[0]}`);
      return;
    }
    if (outcome.kind === 'cancelled') {
      log.info('sweep cancelled; the finished cells are kept');
      vscode.window.setStatusBarMessage('Sweep cancelled; the finished cells and their summary are kept.', 5000);
    } else {
      log.info(`sweep done: ${outcome.ran} ran, ${outcome.kept} kept, ${outcome.failed} failed`);
      reportWandbOutcome(outcome.wandb, log);
      if (outcome.failed > 0)
        void vscode.window.showWarningMessage(
          `Attribution Patching: ${outcome.failed} sweep cell${outcome.failed === 1 ? '' : 's'} failed; the summary says why.`,
        );
    }
    try {
      const summary = parseSweepSummary(readInputText(summaryFile, 'json'), summaryFile);
      services.comparePanel.showSweep(summary, request.outDir);
    } catch (error) {
      // A sweep cancelled before its first cell has no summary: nothing to show.
      log.info(`no sweep summary to show: ${(error as Error).message}`);
    }
  });
}
