// Inline token colours. One decoration type per colour step (BINS_PER_SIDE each side of zero) and one for the
// corrupted span are created once, at start-up, and reused: each render only hands every type its ranges, which
// keeps re-colouring cheap when the heatmap selection changes.
import * as vscode from 'vscode';
import { allBins, binColor, binOf, symmetricMax } from '../shared/colorScale';
import { corruptedPositions, tokenValues, VISIBLE_FRACTION } from '../shared/resultViews';
import type { ResultState } from '../services/resultState';
import { tokenLayout } from './tokenLayout';

export class TokenDecorations implements vscode.Disposable {
  private readonly binTypes = new Map<number, vscode.TextEditorDecorationType>();
  /** The tokens where clean and corrupted prompts differ: an outline, so it never hides the colour under it. */
  private readonly corruptedType = vscode.window.createTextEditorDecorationType({
    outlineWidth: '1px',
    outlineStyle: 'dashed',
    outlineColor: new vscode.ThemeColor('editorWarning.foreground'),
  });

  /** The example chosen in the heatmap panel: its whole line, highlighted. */
  private readonly exampleType = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('editor.rangeHighlightBackground'),
  });

  constructor(private readonly state: ResultState) {
    for (const bin of allBins()) {
      this.binTypes.set(
        bin,
        vscode.window.createTextEditorDecorationType({
          light: { backgroundColor: binColor(bin, 'light') },
          dark: { backgroundColor: binColor(bin, 'dark') },
          borderRadius: '2px',
        }),
      );
    }
  }

  /** Colours every visible dataset editor from its current (non-stale) result, or clears it. */
  renderAll(): void {
    for (const editor of vscode.window.visibleTextEditors) this.render(editor);
  }

  render(editor: vscode.TextEditor): void {
    const entry = this.state.get(editor.document.uri);
    if (!entry || entry.stale || !this.state.coloursEnabled) return this.clear(editor);
    const { result } = entry;
    const chosen = this.state.chosenExample(editor.document.uri);
    // An example chosen in the panel is coloured alone, on its own scale: small effects in a weak example show,
    // and no other line is drawn saturated on a scale that is not its own.
    const all = tokenLayout(editor.document, result);
    const layouts = all.filter((layout) => chosen === undefined || layout.example === chosen);
    const values = layouts.map((layout) => tokenValues(result.examples[layout.example], this.state.selection));
    // Otherwise one domain for the whole file, so that colours compare across examples.
    const maxAbs = symmetricMax(values.flat());
    const byBin = new Map<number, vscode.Range[]>();
    const corrupted: vscode.Range[] = [];
    layouts.forEach((layout, i) => {
      layout.clean.forEach((tokenRanges, pos) => {
        // Too small to matter next to the largest value shown: no faint wash over every token.
        if (Math.abs(values[i][pos]) < VISIBLE_FRACTION * maxAbs) return;
        const bin = binOf(values[i][pos], maxAbs);
        if (bin === 0) return;
        const ranges = byBin.get(bin);
        // Loops, not push(...x): a very long token's ranges must not overflow the call stack.
        if (ranges) for (const range of tokenRanges) ranges.push(range);
        else byBin.set(bin, tokenRanges.slice());
      });
    });
    // The corrupted spans of every example stay outlined: they say where each example differs, whatever is coloured.
    for (const layout of all) {
      for (const pos of corruptedPositions(result.examples[layout.example])) {
        for (const range of layout.clean[pos] ?? []) corrupted.push(range);
        for (const range of layout.corrupted[pos] ?? []) corrupted.push(range);
      }
    }
    for (const [bin, type] of this.binTypes) editor.setDecorations(type, byBin.get(bin) ?? []);
    editor.setDecorations(this.corruptedType, corrupted);
    const line = chosen === undefined ? undefined : result.examples[chosen]?.line;
    editor.setDecorations(this.exampleType, line !== undefined && line <= editor.document.lineCount ? [new vscode.Range(line - 1, 0, line - 1, 0)] : []);
  }

  clear(editor: vscode.TextEditor): void {
    for (const type of this.binTypes.values()) editor.setDecorations(type, []);
    editor.setDecorations(this.corruptedType, []);
    editor.setDecorations(this.exampleType, []);
  }

  dispose(): void {
    this.exampleType.dispose();
    for (const type of this.binTypes.values()) type.dispose();
    this.corruptedType.dispose();
  }
}
