// "Attribution Patching: Compare Runs…" (the sidebar's title bar and the command palette): pick two or more results
// among the sidebar's runs, or browse for result files (a sweep's, a colleague's), choose the baseline A when there
// are more than two, and open the Compare view: every run against A.
import * as vscode from 'vscode';
import { basename } from 'node:path';
import type { Result } from '../shared/result';
import { modelLabel } from '../shared/modelNames';
import { runLabels } from '../panel/comparePanel';
import type { Services } from '../services/services';
import { COMMANDS } from './ids';

export const COMPARE_RUNS = COMMANDS.compareRuns;

type Pick = vscode.QuickPickItem & { resultFile?: string; browse?: boolean };

/** Result files picked in a multi-select list of the runs, plus any browsed for; undefined when cancelled. */
async function pickResultFiles(services: Services): Promise<string[] | undefined> {
  const runs = services.store.runs();
  const items: Pick[] = [
    ...runs.map((run) => ({
      label: basename(run.datasetFile),
      description: `${new Date(run.createdAt).toLocaleString()} · ${modelLabel(run.model)}`,
      detail: run.resultFile,
      resultFile: run.resultFile,
    })),
    { label: '$(folder-opened) Browse for result files…', description: "a sweep's results, or any .atp-result.json", browse: true, alwaysShow: true },
  ];
  const picked = await vscode.window.showQuickPick(items, {
    canPickMany: true,
    title: 'Compare Runs: pick two or more results',
    placeHolder: 'Tick the runs to compare (B − A needs one shape; other shapes are compared by depth profile)',
    matchOnDetail: true,
  });
  if (!picked) return undefined;
  const files = picked.filter((item) => item.resultFile).map((item) => item.resultFile!);
  if (picked.some((item) => item.browse)) {
    const uris = await vscode.window.showOpenDialog({
      canSelectMany: true,
      openLabel: 'Compare',
      filters: { 'Attribution patching results': ['json'] },
      defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
    });
    if (!uris) return undefined;
    files.push(...uris.map((uri) => uri.fsPath));
  }
  return [...new Set(files)];
}

export function registerCompareRuns(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand(COMPARE_RUNS, async (given?: unknown) => {
    // Called with result files (tests, other commands) or from the UI (no argument, or a tree item).
    const files = Array.isArray(given) && given.every((file) => typeof file === 'string') ? (given as string[]) : await pickResultFiles(services);
    if (!files) return;
    if (files.length < 2) {
      void vscode.window.showWarningMessage(`Attribution Patching: pick at least two results to compare (${files.length} picked).`);
      return;
    }
    const loaded: Array<{ file: string; result: Result }> = [];
    for (const file of files) {
      try {
        loaded.push({ file, result: await services.store.read(file) });
      } catch (error) {
        void vscode.window.showErrorMessage(`Attribution Patching: cannot compare ${basename(file)}: ${(error as Error).message}`);
        return;
      }
    }
    // Two runs: the older is A (B − A reads as "what changed"); more: the user says which is the baseline.
    loaded.sort((a, b) => a.result.createdAt.localeCompare(b.result.createdAt));
    if (loaded.length > 2) {
      const baseline = await vscode.window.showQuickPick(
        runLabels(loaded).map((label, index) => ({ label, detail: loaded[index].file, index })),
        { title: 'Compare Runs: which run is A, the baseline? (each other run is shown as B − A)' },
      );
      if (!baseline) return;
      const [chosen] = loaded.splice(baseline.index, 1);
      loaded.unshift(chosen);
    }
    services.log.info(`comparing ${loaded.map(({ file }) => file).join(', ')}`);
    services.comparePanel.showRuns(loaded);
  });
}
