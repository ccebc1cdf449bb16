// The activity-bar view: the model (folder or Hugging Face id, recent models), the device, the Hugging Face token
// (set or not; the token itself is never shown), and the list of runs with their actions.
import * as vscode from 'vscode';
import { basename } from 'node:path';
import { formatValue } from '../shared/colorScale';
import type { ResultStore, RunRecord } from '../services/resultStore';
import { modelSettingLabel, readSettings } from '../services/settings';
import type { RecentModels } from '../services/recentModels';
import { modelLabel } from './statusBar';
import { escapeMarkdown, markdownCode } from '../editor/markdown';
import { COMMANDS, RUN_ITEM_CONTEXT, type CommandId } from '../commands/ids';

export const HF_TOKEN_SECRET = 'attributionPatching.huggingFaceToken';

type Node =
  | { kind: 'model' }
  | { kind: 'recentModel'; model: string }
  | { kind: 'device' }
  | { kind: 'token' }
  | { kind: 'runs' }
  | { kind: 'run'; run: RunRecord }
  /** Next steps under an empty Runs list. */
  | { kind: 'start'; label: string; icon: string; command: CommandId; tooltip: string };

/** What an empty Runs list offers: the tree always has rows, so the view's welcome text would never show. */
const FIRST_STEPS: Array<Extract<Node, { kind: 'start' }>> = [
  {
    kind: 'start',
    label: 'Open Example Dataset',
    icon: 'book',
    command: COMMANDS.openExampleDataset,
    tooltip: 'TinySQL prompt pairs for the built-in demo model',
  },
  {
    kind: 'start',
    label: 'Generate TinySQL Dataset…',
    icon: 'sparkle',
    command: COMMANDS.generateTinySqlDataset,
    tooltip: 'Prompt pairs for one TinySQL feature, for the model chosen above',
  },
  {
    kind: 'start',
    label: 'Generate IOI Dataset…',
    icon: 'sparkle',
    command: COMMANDS.generateIoiDataset,
    tooltip: 'Indirect-object-identification prompt pairs (GPT-2 and the like)',
  },
  { kind: 'start', label: 'Write Your Own Prompt Pairs…', icon: 'new-file', command: COMMANDS.newDataset, tooltip: 'A commented .atp file to edit' },
];

/**
 * What the run commands (open heatmap, reveal dataset, delete) receive: the row's RunTreeItem when clicked, the
 * tree's node when chosen from the row's context menu; both carry the run.
 */
export interface RunItem {
  run: RunRecord;
}

/** A run's row: its dataset, when and with which model, the numbers in the tooltip; a click opens its heatmap. */
export class RunTreeItem extends vscode.TreeItem implements RunItem {
  constructor(readonly run: RunRecord) {
    super(basename(run.datasetFile));
    this.description = `${new Date(run.createdAt).toLocaleString()} · ${modelLabel(run.model)}`;
    this.tooltip = new vscode.MarkdownString(
      `${markdownCode(run.datasetFile)}\n\nmodel ${escapeMarkdown(run.model)} on ${escapeMarkdown(run.device)} · ${run.examples} examples\n\n` +
        `LD clean ${formatValue(run.cleanLogitDiff)} / corrupted ${formatValue(run.corruptedLogitDiff)}\n\nresult: ${markdownCode(run.resultFile)}`,
    );
    this.iconPath = new vscode.ThemeIcon('table');
    this.contextValue = RUN_ITEM_CONTEXT;
    this.command = { command: COMMANDS.openHeatmap, title: 'Open Heatmap', arguments: [this] };
  }
}

export class SidebarProvider implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private tokenSet = false;

  constructor(
    private readonly store: ResultStore,
    private readonly recent: RecentModels,
    private readonly secrets: vscode.SecretStorage,
  ) {}

  async refresh(): Promise<void> {
    this.tokenSet = Boolean(await this.secrets.get(HF_TOKEN_SECRET));
    this.changed.fire(undefined);
  }

  getChildren(node?: Node): Node[] {
    if (!node) return [{ kind: 'model' }, { kind: 'device' }, { kind: 'token' }, { kind: 'runs' }];
    if (node.kind === 'model')
      return this.recent
        .list()
        .filter((model) => model !== readSettings().model)
        .map((model) => ({ kind: 'recentModel', model }));
    if (node.kind === 'runs') {
      const runs = this.store.runs();
      return runs.length > 0 ? runs.map((run) => ({ kind: 'run', run })) : FIRST_STEPS;
    }
    return [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    const settings = readSettings();
    switch (node.kind) {
      case 'model': {
        const item = new vscode.TreeItem(
          `Model: ${modelSettingLabel(settings.model)}`,
          this.recent.list().some((model) => model !== settings.model) ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None,
        );
        item.description = settings.model && modelLabel(settings.model) !== settings.model ? settings.model : undefined;
        item.tooltip =
          'A model folder in Hugging Face layout, a Hugging Face repo id, a preset or a built-in model (tinysql-demo, ioi-demo); without one, the built-in TinySQL demo model. Click to change; recent models are below.';
        item.iconPath = new vscode.ThemeIcon('circuit-board');
        item.command = { command: COMMANDS.selectModel, title: 'Select Model' };
        return item;
      }
      case 'recentModel': {
        const item = new vscode.TreeItem(modelLabel(node.model));
        item.description = node.model;
        item.iconPath = new vscode.ThemeIcon('history');
        item.tooltip = `Use ${node.model}`;
        item.command = { command: COMMANDS.selectModel, title: 'Use Model', arguments: [node.model] };
        return item;
      }
      case 'device': {
        const item = new vscode.TreeItem(`Device: ${settings.device}`);
        item.description = settings.precision === 'float16' ? 'float16 (setting attributionPatching.precision)' : undefined;
        item.iconPath = new vscode.ThemeIcon('chip');
        item.tooltip = 'auto uses CUDA, DirectML or CoreML when available, else the CPU. Click to change.';
        item.command = { command: COMMANDS.selectDevice, title: 'Select Device' };
        return item;
      }
      case 'token': {
        const item = new vscode.TreeItem(`Hugging Face token: ${this.tokenSet ? 'set' : 'not set'}`);
        item.iconPath = new vscode.ThemeIcon('key');
        item.tooltip = "Kept in VS Code's secret storage, never in settings or logs. Needed for gated models only.";
        item.command = { command: COMMANDS.setHuggingFaceToken, title: 'Set Hugging Face Token' };
        return item;
      }
      case 'runs': {
        const count = this.store.runs().length;
        const item = new vscode.TreeItem('Runs', vscode.TreeItemCollapsibleState.Expanded);
        item.description = count === 0 ? 'none yet' : String(count);
        item.iconPath = new vscode.ThemeIcon('graph');
        return item;
      }
      case 'start': {
        const item = new vscode.TreeItem(node.label);
        item.iconPath = new vscode.ThemeIcon(node.icon);
        item.tooltip = node.tooltip;
        item.command = { command: node.command, title: node.label };
        return item;
      }
      case 'run':
        return new RunTreeItem(node.run);
    }
  }

  dispose(): void {
    this.changed.dispose();
  }
}
