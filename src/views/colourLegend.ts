// The legend of the inline colours, in the status bar: what the colours of the active dataset show, whether
// those values are exact or estimates, and the scale (the file-wide largest |value| is the strongest colour).
// Clicking it toggles the colours.
import * as vscode from 'vscode';
import { formatValue, symmetricMax } from '../shared/colorScale';
import { selectionLabel } from '../shared/panelProtocol';
import { selectionExactness, tokenValues, VISIBLE_FRACTION } from '../shared/resultViews';
import type { ResultState } from '../services/resultState';
import { COMMANDS } from '../commands/ids';

const EXACTNESS = { exact: 'exact', estimate: 'AtP estimate', mixed: 'exact + AtP estimates' } as const;

export class ColourLegend implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('attributionPatching.legend', vscode.StatusBarAlignment.Right, 99);

  constructor(private readonly state: ResultState) {
    this.item.name = 'Attribution Patching colours';
    this.item.command = COMMANDS.toggleColours;
  }

  update(): void {
    // The active dataset editor; while the heatmap panel has the focus, the dataset editor beside it.
    const editors = [vscode.window.activeTextEditor, ...vscode.window.visibleTextEditors];
    const editor = editors.find((candidate) => candidate && this.state.get(candidate.document.uri));
    const entry = editor && this.state.get(editor.document.uri);
    if (!entry || entry.stale || !this.state.coloursEnabled) {
      this.item.hide();
      return;
    }
    const { result } = entry;
    const selection = this.state.selection;
    // The same domain as the decorations: the chosen example's own values while one is chosen in the panel.
    const chosen = this.state.chosenExample(editor.document.uri);
    const examples = chosen === undefined ? result.examples : [result.examples[chosen]];
    const maxAbs = symmetricMax(examples.flatMap((example) => tokenValues(example, selection)));
    const scale = chosen === undefined ? '' : ` · line ${result.examples[chosen].line} only`;
    const exactness = EXACTNESS[selectionExactness(result, selection)];
    const what = selection.kind === 'token' && !result.examples[0]?.tokenScores ? selectionLabel({ kind: 'total' }) : selectionLabel(selection);
    this.item.text = `$(symbol-color) ${selectionLabel(selection)} · ${exactness} · ±${formatValue(maxAbs).slice(1)}${scale}`;
    const md = new vscode.MarkdownString(undefined, true);
    md.appendMarkdown(`**Inline colours**: ${what}, ${exactness}.\n\n`);
    md.appendMarkdown(
      `Blue raises the normalised logit difference towards the clean run (1), red lowers it towards the corrupted run (0); ` +
        `the strongest colour is ±${formatValue(maxAbs).slice(1)} (the largest |value| ${chosen === undefined ? 'in this file' : `of the example on line ${result.examples[chosen].line}`}); values below ` +
        `${VISIBLE_FRACTION * 100}% of it stay uncoloured. Units: the share of the metric${chosen === undefined ? ', summed over examples' : ' in this example'}.\n\n`,
    );
    if (chosen !== undefined) {
      md.appendMarkdown(
        `The example on line ${result.examples[chosen].line} is chosen in the heatmap panel: only its tokens are coloured, on its own scale. Pick "All examples" there to colour the whole file again.\n\n`,
      );
    }
    if (selection.kind === 'token') {
      md.appendMarkdown(
        "A token's value is the effect of patching that token of the clean prompt into the corrupted one; tokens the prompts share change nothing and stay uncoloured.\n\n",
      );
    }
    md.appendMarkdown('Click to turn the colours off.');
    this.item.tooltip = md;
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}
