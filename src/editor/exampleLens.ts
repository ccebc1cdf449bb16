// A line above each example of a dataset with a current result: its own logit differences, the effect of its
// changed token(s) (exact or estimate, as the Result says), and the head that matters most at its answer position,
// so that nothing the researcher needs hides off-screen at the end of a long JSONL line. Clicking it shows that
// example in the heatmap panel.
import * as vscode from 'vscode';
import { exampleLensText } from '../shared/resultViews';
import type { ResultState } from '../services/resultState';
import { COMMANDS } from '../commands/ids';

export const SHOW_EXAMPLE = COMMANDS.showExample;

export class ExampleLensProvider implements vscode.CodeLensProvider {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changed.event;

  constructor(private readonly state: ResultState) {
    state.onDidChange(() => this.changed.fire());
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const entry = this.state.get(document.uri);
    if (!entry || entry.stale) return [];
    return entry.result.examples.flatMap((example, index) => {
      const line = example.line - 1;
      if (line < 0 || line >= document.lineCount) return [];
      return [
        new vscode.CodeLens(new vscode.Range(line, 0, line, 0), {
          title: exampleLensText(entry.result, example),
          tooltip: 'Show this example in the heatmap panel',
          command: SHOW_EXAMPLE,
          arguments: [document.uri, index],
        }),
      ];
    });
  }
}
