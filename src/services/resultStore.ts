// Where each dataset's Result lives (next to the dataset, or in the workspace's storage, by setting), reading it
// back, and the list of past runs shown in the sidebar (kept in workspace state).
import * as vscode from 'vscode';
import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { refuseShard, type Result } from '../shared/result';
import { removeStalePendingFiles } from '../lib/files/atomicWrite';
import { readResultFile, removeStaleSidecars, sidecarsOf } from '../lib/files/resultFile';
import type { ResultLocation } from './settings';

export const RESULT_SUFFIX = '.atp-result.json';

export interface RunRecord {
  datasetFile: string;
  resultFile: string;
  createdAt: string;
  model: string;
  device: string;
  examples: number;
  cleanLogitDiff: number;
  corruptedLogitDiff: number;
}

const HISTORY_KEY = 'attributionPatching.runs';
const HISTORY_LIMIT = 50;

export class ResultStore {
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when the run list changes. */
  readonly onDidChangeRuns = this.changed.event;

  constructor(private readonly context: vscode.ExtensionContext) {}

  /** The result file for a dataset: `<dataset file name>.atp-result.json` beside it, or in workspace storage. */
  resultFileFor(datasetFile: string, location: ResultLocation): string {
    if (location === 'nextToDataset') return join(dirname(datasetFile), basename(datasetFile) + RESULT_SUFFIX);
    const storage = (this.context.storageUri ?? this.context.globalStorageUri).fsPath;
    const key = createHash('sha1').update(datasetFile).digest('hex').slice(0, 16);
    return join(storage, 'results', `${basename(datasetFile)}.${key}${RESULT_SUFFIX}`);
  }

  /** Both possible places, the configured one first: a result saved under the other setting is still found. */
  candidateFiles(datasetFile: string, location: ResultLocation): string[] {
    const other: ResultLocation = location === 'nextToDataset' ? 'workspaceStorage' : 'nextToDataset';
    return [this.resultFileFor(datasetFile, location), this.resultFileFor(datasetFile, other)];
  }

  /** A hidden sibling of the target, on the same file system so that the final rename is atomic. */
  async pendingFileFor(resultFile: string): Promise<string> {
    await mkdir(dirname(resultFile), { recursive: true });
    removeStalePendingFiles(resultFile);
    return join(dirname(resultFile), `.${basename(resultFile)}.${process.pid}.${Date.now()}.pending`);
  }

  /** The pending JSON becomes the result; the previous run's sidecar (if any) goes once nothing names it. */
  async commit(pendingFile: string, resultFile: string): Promise<void> {
    await rename(pendingFile, resultFile);
    removeStaleSidecars(resultFile);
  }

  /** The result with its sidecar, if it has one (src/lib/files/resultFile.ts). */
  async read(resultFile: string): Promise<Result> {
    return refuseShard(readResultFile(resultFile), resultFile);
  }

  /** The newest existing result for a dataset, if any. */
  async find(datasetFile: string, location: ResultLocation): Promise<string | undefined> {
    let best: { file: string; mtime: number } | undefined;
    for (const file of this.candidateFiles(datasetFile, location)) {
      const info = await stat(file).catch(() => undefined);
      if (info?.isFile() && (!best || info.mtimeMs > best.mtime)) best = { file, mtime: info.mtimeMs };
    }
    return best?.file;
  }

  runs(): RunRecord[] {
    return this.context.workspaceState.get<RunRecord[]>(HISTORY_KEY, []);
  }

  async recordRun(record: RunRecord): Promise<void> {
    const others = this.runs().filter((run) => run.resultFile !== record.resultFile);
    await this.context.workspaceState.update(HISTORY_KEY, [record, ...others].slice(0, HISTORY_LIMIT));
    this.changed.fire();
  }

  async deleteRun(resultFile: string): Promise<void> {
    await rm(resultFile, { force: true });
    for (const sidecar of sidecarsOf(resultFile)) await rm(sidecar, { force: true });
    await this.context.workspaceState.update(
      HISTORY_KEY,
      this.runs().filter((run) => run.resultFile !== resultFile),
    );
    this.changed.fire();
  }

  dispose(): void {
    this.changed.dispose();
  }
}
