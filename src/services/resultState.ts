// The results the editor shows now: one per dataset document (loaded after a run, or found on disk when a dataset
// is opened again), whether each is stale (the document changed since the run), and the view choices shared by the
// inline colours and the heatmap panel (which value, which example, colours on or off). Views listen to onDidChange.
import * as vscode from 'vscode';
import type { Result } from '../shared/result';
import { contentHash } from '../lib/files/contentHash';
import type { ExampleScope, ValueSelection } from '../shared/panelProtocol';
import { viewCarriesOver } from '../shared/resultViews';
import type { ResultStore } from './resultStore';
import { readSettings } from './settings';

export interface ShownResult {
  datasetUri: vscode.Uri;
  resultFile: string;
  result: Result;
  /** The dataset's text no longer hashes to the one the result was computed from. */
  stale: boolean;
}

export const DATASET_EXTENSIONS = ['.jsonl', '.atp'];

export function isDatasetDocument(document: vscode.TextDocument): boolean {
  const name = document.uri.path.toLowerCase();
  return document.uri.scheme === 'file' && DATASET_EXTENSIONS.some((extension) => name.endsWith(extension));
}

/** A result describes a text when it was computed from exactly that text. */
export function isCurrentFor(result: Result, text: string): boolean {
  return result.dataset.contentHash !== undefined && result.dataset.contentHash === contentHash(text);
}

/**
 * The only writer of what it holds: views read through getters and a read-only ShownResult, and change it through
 * the methods below, each of which tells the views (onDidChange).
 */
export class ResultState implements vscode.Disposable {
  private readonly shown = new Map<string, ShownResult>();
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;

  private currentSelection: ValueSelection = { kind: 'token' };
  private currentScope: ExampleScope = { kind: 'all' };
  private colours = true;
  private focusedUri: vscode.Uri | undefined;

  get selection(): ValueSelection {
    return this.currentSelection;
  }

  get scope(): ExampleScope {
    return this.currentScope;
  }

  get coloursEnabled(): boolean {
    return this.colours;
  }

  /** The dataset of the last run or last result the panel showed: what the panel and status bar describe. */
  get focused(): vscode.Uri | undefined {
    return this.focusedUri;
  }

  constructor(
    private readonly store: ResultStore,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get(uri: vscode.Uri): Readonly<ShownResult> | undefined {
    return this.shown.get(uri.toString());
  }

  get focusedResult(): Readonly<ShownResult> | undefined {
    return this.focused && this.get(this.focused);
  }

  /**
   * Shows a dataset's Result. The panel's choices (which value colours the editor, which example) belong to the
   * Result they were made on: they carry over to a new run of the same dataset on the same model (the panel shows
   * them), and any other Result in focus — another model, another dataset — starts from the token effects over all
   * examples, never from a head of the run before (which another model may not even have).
   */
  set(entry: ShownResult, focus = true): void {
    const key = entry.datasetUri.toString();
    const replaced = this.shown.get(key);
    this.shown.set(key, { ...entry });
    if (focus) {
      if (this.focusedUri?.toString() === key && !viewCarriesOver(replaced?.result, entry.result, this.currentScope, this.currentSelection)) this.resetView();
      this.focusOn(entry.datasetUri, false);
    }
    this.changed.fire();
  }

  /**
   * Focuses a dataset's result (what the panel and status bar describe); another dataset's examples and components
   * are not this one's, so the panel starts from the token effects over all of them. Views hear of it unless the
   * caller fires a change itself.
   */
  focusOn(uri: vscode.Uri, notify = true): void {
    if (this.focusedUri?.toString() === uri.toString()) return;
    this.resetView();
    this.focusedUri = uri;
    if (notify) this.changed.fire();
  }

  private resetView(): void {
    this.currentScope = { kind: 'all' };
    this.currentSelection = { kind: 'token' };
  }

  forgetResultFile(resultFile: string): void {
    for (const [key, entry] of this.shown) if (entry.resultFile === resultFile) this.shown.delete(key);
    this.changed.fire();
  }

  setSelection(selection: ValueSelection): void {
    this.currentSelection = selection;
    this.changed.fire();
  }

  /** The example chosen in the panel, when this dataset is the focused one: its colours use that example's scale. */
  chosenExample(uri: vscode.Uri): number | undefined {
    const entry = this.get(uri);
    if (!entry || this.focused?.toString() !== uri.toString() || this.scope.kind !== 'example') return undefined;
    return this.scope.index < entry.result.examples.length ? this.scope.index : undefined;
  }

  setScope(scope: ExampleScope): void {
    this.currentScope = scope;
    this.changed.fire();
  }

  setColoursEnabled(enabled: boolean): void {
    this.colours = enabled;
    this.changed.fire();
  }

  /** The panel's choices as a restored panel saved them (after a reload). */
  restoreView(selection: ValueSelection, scope: ExampleScope): void {
    this.currentSelection = selection;
    this.currentScope = scope;
    this.changed.fire();
  }

  /** An edit moved the ranges: colours would be misplaced until refreshStaleness hashes the text again. */
  markStale(uri: vscode.Uri): void {
    const entry = this.shown.get(uri.toString());
    if (!entry || entry.stale) return;
    entry.stale = true;
    this.changed.fire();
  }

  /** Re-checks staleness after an edit; fires only when it flips. */
  refreshStaleness(document: vscode.TextDocument): void {
    const entry = this.shown.get(document.uri.toString());
    if (!entry) return;
    const stale = !isCurrentFor(entry.result, document.getText());
    if (stale !== entry.stale) {
      entry.stale = stale;
      this.changed.fire();
    }
  }

  /** Finds and loads the saved result of a dataset that was opened (e.g. after a restart), without rerunning. */
  async loadSaved(document: vscode.TextDocument): Promise<void> {
    if (this.get(document.uri)) return;
    const file = await this.store.find(document.uri.fsPath, readSettings().resultLocation);
    if (!file) return;
    try {
      const result = await this.store.read(file);
      if (this.get(document.uri)) return;
      const stale = !isCurrentFor(result, document.getText());
      this.log.info(`restored ${file}${stale ? ' (stale: the dataset changed since that run)' : ''}`);
      this.set({ datasetUri: document.uri, resultFile: file, result, stale }, this.focused === undefined);
    } catch (error) {
      this.log.warn(`could not read the saved result ${file}: ${(error as Error).message}`);
    }
  }

  dispose(): void {
    this.changed.dispose();
  }
}
