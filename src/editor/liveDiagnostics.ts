// Diagnostics while typing, before any run: every open .atp / .jsonl document is parsed in the extension host on
// open and ~300 ms after the last change (the parsers are pure and fast), and its problems are shown at once at
// their exact ranges. Then the engine's worker checks the parsed examples with the configured model's tokenizer
// (answers that are not one token, clean/corrupted token-count mismatches) and those are added. The tokenizer lives
// in the worker, loaded once per model: loading a big tokenizer.json takes about a second, and tokenizing a large
// file on every pause in typing would stall the host. A hub model that is not downloaded yet gets no tokenizer
// diagnostics (the worker looks only in the local cache); the parse diagnostics still show.
import * as vscode from 'vscode';
import { isAbsolute } from 'node:path';
import { parseJsonl } from '../lib/dataset/jsonl';
import { parsePromptFormat } from '../lib/dataset/promptFormat';
import { builtInModelMismatch } from '../lib/dataset/taskDetection';
import type { FileDiagnostic } from '../shared/workerProtocol';
import type { DiagnoseOutcome } from '../services/engineClient';
import { liveDatasetFormat } from './datasetFormat';
import type { DatasetDiagnostics } from './diagnostics';

export const LIVE_DIAGNOSTICS_DELAY_MS = 300;

export interface TokenizerChecker {
  diagnose(request: { model: string; datasetFile: string; format: 'jsonl' | 'atp'; datasetText: string }): Promise<DiagnoseOutcome>;
}

export class LiveDatasetDiagnostics implements vscode.Disposable {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** The latest check of each document: a reply to an older one is dropped. */
  private readonly generation = new Map<string, number>();
  private readonly skippedModels = new Set<string>();
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly diagnostics: DatasetDiagnostics,
    private readonly engine: TokenizerChecker,
    /** The model whose tokenizer checks the prompts (the setting, or the built-in model). */
    private readonly model: () => string,
    private readonly log: vscode.LogOutputChannel,
    /** The selected built-in model's name (tinysql-demo, ioi-demo), or undefined for any other model. */
    private readonly builtInModel: () => string | undefined = () => undefined,
  ) {}

  /** Starts listening to the documents, and checks those already open. */
  start(): vscode.Disposable {
    this.subscriptions.push(
      vscode.workspace.onDidOpenTextDocument((document) => void this.check(document)),
      vscode.workspace.onDidChangeTextDocument((event) => {
        if (event.contentChanges.length > 0) this.schedule(event.document);
      }),
      vscode.workspace.onDidCloseTextDocument((document) => this.forget(document)),
    );
    this.checkAll();
    return this;
  }

  /** Checks every open dataset again (the model changed). */
  checkAll(): void {
    for (const document of vscode.workspace.textDocuments) void this.check(document);
  }

  schedule(document: vscode.TextDocument, delayMs = LIVE_DIAGNOSTICS_DELAY_MS): void {
    if (!this.formatOf(document)) return;
    const key = document.uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        void this.check(document);
      }, delayMs),
    );
  }

  private formatOf(document: vscode.TextDocument): 'atp' | 'jsonl' | undefined {
    if (document.uri.scheme !== 'file' && document.uri.scheme !== 'untitled') return undefined;
    return liveDatasetFormat(document.languageId, document.uri.path);
  }

  async check(document: vscode.TextDocument): Promise<void> {
    const format = this.formatOf(document);
    if (!format || document.isClosed) return;
    const key = document.uri.toString();
    const generation = (this.generation.get(key) ?? 0) + 1;
    this.generation.set(key, generation);
    const text = document.getText();
    const file = document.uri.scheme === 'file' ? document.uri.fsPath : document.uri.path;
    const parsed = format === 'atp' ? parsePromptFormat(text, file) : parseJsonl(text, file);
    // A dataset of one built-in model's task with the other selected: said at once, with a quick fix.
    const mismatch = builtInModelMismatch(parsed.dataset, this.builtInModel());
    const parseProblems: FileDiagnostic[] = mismatch ? [...parsed.diagnostics, mismatch] : parsed.diagnostics;
    this.diagnostics.set(document, parseProblems);
    if (parsed.dataset.examples.length === 0) return;

    const model = this.model();
    let outcome: DiagnoseOutcome;
    try {
      outcome = await this.engine.diagnose({ model, datasetFile: file, format, datasetText: text });
    } catch (error) {
      outcome = { kind: 'failed', message: (error as Error).message };
    }
    if (this.generation.get(key) !== generation || document.isClosed) return;
    if (outcome.kind === 'failed') {
      this.log.warn(`tokenizer diagnostics for ${file}: ${outcome.message}`);
      return;
    }
    if (outcome.skipped !== undefined) {
      // Said once per model in the log, never as a notification: the model is simply not here yet.
      if (!this.skippedModels.has(model)) {
        const reason = outcome.skipped.split('\n')[0];
        const local = isAbsolute(model) || model.startsWith('.');
        this.log.info(
          local
            ? `no tokenizer diagnostics: cannot read the tokenizer of ${model} (${reason})`
            : `no tokenizer diagnostics with ${model} until it is downloaded (${reason})`,
        );
      }
      this.skippedModels.add(model);
      return;
    }
    this.diagnostics.set(document, [...parseProblems, ...outcome.diagnostics]);
  }

  private forget(document: vscode.TextDocument): void {
    const key = document.uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    this.generation.delete(key);
    if (this.formatOf(document) && document.uri.scheme === 'untitled') this.diagnostics.clear(document.uri);
  }

  dispose(): void {
    this.timers.forEach((timer) => clearTimeout(timer));
    this.timers.clear();
    this.subscriptions.forEach((subscription) => subscription.dispose());
  }
}
