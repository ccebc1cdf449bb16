// Claims files in VS Code's Test Explorer: one test item per claims file, one child per claim at its line; run one
// claim, a file or all; a failed claim shows expected against actual at its line; "Run claim" CodeLenses above each
// claim. The runs go through the engine's child process (claimsRunner.ts); a current stored Result is reused.
import * as vscode from 'vscode';
import { requireWorkspaceTrust } from '../commands/workspaceTrust';
import { formatProblem, isClaimsFile, parseClaims } from '../lib/claims/schema';
import { type ClaimReport, describeLastPass } from '../lib/claims/state';
import type { Services } from '../services/services';
import { readSettings } from '../services/settings';
import { HF_TOKEN_SECRET } from '../views/sidebar';
import { runClaimsFile } from './claimsRunner';
import { COMMANDS } from '../commands/ids';
import { readInputText } from '../lib/files/readInput';

/**
 * A claims file's text: a local one through the read helper (a claims file that is a symlink to /dev/zero or a FIFO
 * would otherwise hang the extension host), another scheme through VS Code's file system.
 */
async function readClaimsText(uri: vscode.Uri): Promise<string> {
  if (uri.scheme === 'file') return readInputText(uri.fsPath, 'claims', 'a claims file');
  return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
}

export const CLAIMS_GLOB = '**/*.claims.{yaml,yml,json}';
export const RUN_CLAIM_COMMAND = COMMANDS.runClaim;
const CLAIMS_SELECTOR: vscode.DocumentSelector = [{ scheme: 'file', pattern: CLAIMS_GLOB }];

const claimItemId = (uri: vscode.Uri, claimId: string) => `${uri.toString()}#${claimId}`;

export class ClaimsTesting implements vscode.Disposable, vscode.CodeLensProvider {
  private readonly controller: vscode.TestController;
  private readonly lensesChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.lensesChanged.event;
  private readonly disposables: vscode.Disposable[] = [];
  /** A claims file's problems (unknown field, bad value, YAML syntax) at their line and column, as the user types. */
  private readonly problems = vscode.languages.createDiagnosticCollection('attributionPatching.claims');

  constructor(private readonly services: Services) {
    this.controller = vscode.tests.createTestController('attributionPatching.claims', 'Interpretability Claims');
    this.controller.resolveHandler = async (item) => {
      if (!item) await this.discover();
    };
    this.controller.refreshHandler = () => this.discover();
    this.controller.createRunProfile('Run Claims', vscode.TestRunProfileKind.Run, (request, token) => this.run(request, token), true);
    const watcher = vscode.workspace.createFileSystemWatcher(CLAIMS_GLOB);
    this.disposables.push(
      this.controller,
      this.lensesChanged,
      this.problems,
      watcher,
      watcher.onDidCreate((uri) => void this.update(uri)),
      watcher.onDidChange((uri) => void this.update(uri)),
      watcher.onDidDelete((uri) => {
        this.controller.items.delete(uri.toString());
        this.problems.delete(uri);
      }),
      // Unsaved edits move claims and their lines: the tree follows the editor's text.
      vscode.workspace.onDidChangeTextDocument((event) => {
        if (isClaimsFile(event.document.uri.fsPath) && event.document.uri.scheme === 'file') void this.update(event.document.uri, event.document.getText());
      }),
      vscode.workspace.onDidOpenTextDocument((document) => {
        if (isClaimsFile(document.uri.fsPath) && document.uri.scheme === 'file') void this.update(document.uri, document.getText());
      }),
      vscode.commands.registerCommand(RUN_CLAIM_COMMAND, (uri: string, claimId?: string) => this.runFromLens(uri, claimId)),
      vscode.languages.registerCodeLensProvider(CLAIMS_SELECTOR, this),
    );
  }

  dispose(): void {
    this.disposables.forEach((d) => d.dispose());
  }

  /** Every claims file in the workspace (node_modules left out). */
  async discover(): Promise<void> {
    const files = await vscode.workspace.findFiles(CLAIMS_GLOB, '**/node_modules/**');
    await Promise.all(files.map((uri) => this.update(uri)));
  }

  /** The file's item and its claims' items, from the editor's text when given, else from disk. */
  private async update(uri: vscode.Uri, text?: string): Promise<vscode.TestItem | undefined> {
    let source = text ?? vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString())?.getText();
    if (source === undefined) {
      try {
        source = await readClaimsText(uri);
      } catch {
        this.controller.items.delete(uri.toString());
        return undefined;
      }
    }
    let file = this.controller.items.get(uri.toString());
    if (!file) {
      const relative = vscode.workspace.asRelativePath(uri);
      file = this.controller.createTestItem(uri.toString(), relative.split('/').pop()!, uri);
      // The folder beside the name: two folders may each hold a tables.claims.yaml.
      file.description = relative.includes('/') ? relative.slice(0, relative.lastIndexOf('/')) : undefined;
      this.controller.items.add(file);
    }
    const { claims, problems } = parseClaims(source, uri.fsPath);
    this.problems.set(
      uri,
      problems.map((p) => {
        const start = new vscode.Position(p.line - 1, p.column - 1);
        // The value or key at the problem (up to a delimiter); VS Code clamps a range past the line's end.
        const length = /^[^\s,{}[\]]+/.exec(source!.split('\n')[p.line - 1]?.slice(p.column - 1) ?? '')?.[0].length ?? 1;
        const diagnostic = new vscode.Diagnostic(
          new vscode.Range(start, start.translate(0, Math.max(1, length))),
          `${p.field ? `${p.field}: ` : ''}${p.message}`,
          vscode.DiagnosticSeverity.Error,
        );
        diagnostic.source = 'claims';
        return diagnostic;
      }),
    );
    if (!claims) {
      // Plain text: markdown would escape the spaces of "file:line:col: field: message" into &nbsp; in the hover.
      file.error = problems.map((p) => formatProblem(vscode.workspace.asRelativePath(uri), p)).join('\n');
      file.children.replace([]);
    } else {
      file.error = undefined;
      file.children.replace(
        claims.claims.map((entry) => {
          const item = this.controller.createTestItem(claimItemId(uri, entry.id), entry.name, uri);
          item.range = new vscode.Range(entry.line - 1, entry.column - 1, entry.line - 1, entry.column - 1);
          item.description = entry.claim.kind;
          return item;
        }),
      );
    }
    this.lensesChanged.fire();
    return file;
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const { claims } = parseClaims(document.getText(), document.uri.fsPath);
    if (!claims) return [];
    const uri = document.uri.toString();
    return [
      new vscode.CodeLens(new vscode.Range(0, 0, 0, 0), {
        title: `$(run-all) Run all ${claims.claims.length} claims`,
        command: RUN_CLAIM_COMMAND,
        arguments: [uri],
      }),
      ...claims.claims.map(
        (entry) =>
          new vscode.CodeLens(new vscode.Range(entry.line - 1, 0, entry.line - 1, 0), {
            title: '$(play) Run claim',
            command: RUN_CLAIM_COMMAND,
            arguments: [uri, entry.id],
          }),
      ),
    ];
  }

  private async runFromLens(uriText: string, claimId?: string): Promise<void> {
    const uri = vscode.Uri.parse(uriText);
    const file = (await this.update(uri)) ?? this.controller.items.get(uriText);
    if (!file) return;
    const item = claimId ? file.children.get(claimItemId(uri, claimId)) : file;
    const cancel = new vscode.CancellationTokenSource();
    try {
      await this.run(new vscode.TestRunRequest(item ? [item] : [file]), cancel.token);
    } finally {
      cancel.dispose();
    }
  }

  /** Runs the requested claims, one claims file (one Result) at a time. */
  async run(request: vscode.TestRunRequest, token: vscode.CancellationToken): Promise<void> {
    if (!requireWorkspaceTrust('Running claims')) return;
    const run = this.controller.createTestRun(request);
    const excluded = new Set((request.exclude ?? []).map((item) => item.id));
    // Claims files → the claim items asked for (all of a file when the file was asked for).
    const wanted = new Map<vscode.TestItem, vscode.TestItem[]>();
    const include = request.include ?? [...this.collect()];
    for (const item of include) {
      const file = item.parent ?? item;
      const claims = item.parent ? [item] : [...this.children(item)];
      wanted.set(file, [...(wanted.get(file) ?? []), ...claims.filter((c) => !excluded.has(c.id))]);
    }
    const settings = readSettings();
    const hfToken = await this.services.context.secrets.get(HF_TOKEN_SECRET);
    const controller = new AbortController();
    const cancelled = token.onCancellationRequested(() => controller.abort());
    try {
      for (const [file, items] of wanted) {
        items.forEach((item) => run.enqueued(item));
        if (token.isCancellationRequested) {
          items.forEach((item) => run.skipped(item));
          continue;
        }
        items.forEach((item) => run.started(item));
        const uri = file.uri!;
        let text: string;
        try {
          text = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString())?.getText() ?? (await readClaimsText(uri));
        } catch (error) {
          const message = new vscode.TestMessage((error as Error).message);
          items.forEach((item) => run.errored(item, message));
          continue;
        }
        if (this.services.engine.busy) {
          const message = new vscode.TestMessage('Another attribution patching run is in progress; run the claims when it has finished.');
          items.forEach((item) => run.errored(item, message));
          continue;
        }
        const started = Date.now();
        this.services.log.info(`claims: ${uri.fsPath}`);
        const outcome = await runClaimsFile(
          uri.fsPath,
          text,
          this.services.engine,
          { device: settings.device, batchSize: settings.batchSize, hfToken },
          {
            signal: controller.signal,
            onProgress: (message) => run.appendOutput(`${message}\r\n`),
          },
        );
        if (outcome.kind === 'cancelled') {
          items.forEach((item) => run.skipped(item));
          continue;
        }
        if (outcome.kind !== 'checked') {
          const message = new vscode.TestMessage(outcome.message);
          message.location = new vscode.Location(uri, new vscode.Position(0, 0));
          items.forEach((item) => run.errored(item, message));
          this.services.log.warn(outcome.message);
          continue;
        }
        const how = outcome.reused ? 'reused the stored Result (its inputs are unchanged)' : `ran the model (${outcome.why.join('; ')})`;
        run.appendOutput(`${vscode.workspace.asRelativePath(uri)}: ${how}\r\n`);
        this.services.log.info(`claims: ${uri.fsPath}: ${how}`);
        const duration = Date.now() - started;
        this.report(run, uri, outcome.reports, items, duration);
      }
    } finally {
      cancelled.dispose();
      run.end();
    }
  }

  /** Passed, failed (expected against actual, at the claim's line) or errored (not settled), claim by claim. */
  private report(run: vscode.TestRun, uri: vscode.Uri, reports: readonly ClaimReport[], items: readonly vscode.TestItem[], duration: number): void {
    const byId = new Map(reports.map((r) => [claimItemId(uri, r.entry.id), r]));
    for (const item of items) {
      const report = byId.get(item.id);
      if (!report) {
        // The file changed since the tree was built: that claim is gone.
        run.skipped(item);
        continue;
      }
      const { outcome, entry, lastPass } = report;
      const location = new vscode.Location(uri, new vscode.Position(entry.line - 1, entry.column - 1));
      if (outcome.status === 'passed') {
        run.passed(item, duration);
        continue;
      }
      const text = [
        `${outcome.status === 'failed' ? 'Claim failed' : 'Claim not settled'}: ${entry.name}`,
        `actual: ${outcome.actual}`,
        ...(lastPass ? [describeLastPass(lastPass)] : []),
      ].join('\n');
      const message = outcome.status === 'failed' ? vscode.TestMessage.diff(text, outcome.expected, outcome.actual) : new vscode.TestMessage(text);
      message.location = location;
      if (outcome.status === 'failed') run.failed(item, message, duration);
      else run.errored(item, message, duration);
    }
  }

  private *collect(): Iterable<vscode.TestItem> {
    for (const [, item] of this.controller.items) yield item;
  }

  private *children(item: vscode.TestItem): Iterable<vscode.TestItem> {
    for (const [, child] of item.children) yield child;
  }
}
