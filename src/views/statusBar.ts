// Status bar item: the model, device and baselines of the result in focus (or the model that would run next),
// and a warning when that result is stale. Clicking opens the heatmap.
import * as vscode from 'vscode';
import { basename } from 'node:path';
import { formatValue } from '../shared/colorScale';
import { describeRuntime } from '../shared/result';
import type { ResultState } from '../services/resultState';
import { nextRunModelName, readSettings } from '../services/settings';
import { modelLabel, resultModelText, sameModel } from '../shared/modelNames';
import { escapeIcons, escapeMarkdown, markdownCode } from '../editor/markdown';
import { COMMANDS } from '../commands/ids';

export { modelLabel };

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('attributionPatching.status', vscode.StatusBarAlignment.Right, 100);

  constructor(
    private readonly state: ResultState,
    private readonly extensionUri: vscode.Uri,
  ) {
    this.item.name = 'Attribution Patching';
    this.item.command = COMMANDS.openHeatmap;
  }

  update(): void {
    const entry = this.state.focusedResult;
    const settings = readSettings();
    if (!entry) {
      this.item.text = `$(pulse) AtP: ${settings.model ? escapeIcons(modelLabel(settings.model)) : 'built-in demo model'} · ${escapeIcons(settings.device)}${settings.precision === 'float16' ? ' float16' : ''}`;
      this.item.tooltip = 'Attribution Patching: no result yet. Run "Attribution Patch Current File" on a dataset.';
      this.item.backgroundColor = undefined;
      this.item.show();
      return;
    }
    const { result } = entry;
    // Compared as a Result names its model: a built-in one by its name, not the extension's folder.
    const next = nextRunModelName(settings);
    const baselines = `LD clean ${formatValue(result.metric.cleanLogitDiff)} / corrupted ${formatValue(result.metric.corruptedLogitDiff)}`;
    // Result files are shared: their model and device show as text, never as an icon or Markdown.
    // float16 is said beside the device (float32 is the norm; the tooltip's runtime line says it either way).
    const half = result.runtime?.precision === 'float16' ? ' float16' : '';
    this.item.text = `${entry.stale ? '$(warning)' : '$(pulse)'} AtP: ${escapeIcons(resultModelText(result.model.source, next))} · ${escapeIcons(result.device)}${half} · ${baselines}${entry.stale ? ' · stale' : ''}`;
    this.item.tooltip = new vscode.MarkdownString(
      `**Attribution patching** of ${markdownCode(basename(entry.datasetUri.fsPath))}\n\n` +
        `model ${escapeMarkdown(modelLabel(result.model.source))} (${result.model.layers} layers × ${result.model.heads} heads) on ${escapeMarkdown(result.device)}\n\n` +
        (result.runtime ? `runtime: ${escapeMarkdown(describeRuntime(result.runtime))}\n\n` : '') +
        `${baselines} · ${result.examples.length} examples · ${new Date(result.createdAt).toLocaleString()}` +
        (result.merged ? ` · merged from ${result.merged.shards} shards` : '') +
        '\n\n' +
        (sameModel(result.model.source, next) ? '' : `The model setting changed since this run: the next run uses ${escapeMarkdown(next)}.\n\n`) +
        (entry.stale ? '**Stale**: the dataset changed since this run; colours are hidden until you run again.\n\n' : '') +
        (this.state.coloursEnabled ? '' : 'Inline colours are off.\n\n') +
        'Click to open the heatmap.',
    );
    this.item.backgroundColor = entry.stale ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}
