// A sweep: the seed notebook's comparative use as one command. For each model and each feature (TinySQL features
// per command set, or IOI) it generates the dataset for that model's tokenizer, runs attribution patching, and
// writes the Result to DIR/<model>/<feature>[-cs<C>].atp-result.json beside its dataset; after every cell it
// rewrites DIR/summary.json (and summary.html, when given a renderer), so an interrupted sweep still has a summary.
// Resumable: a cell whose Result is complete and was made from the same generated dataset text (hence the same
// tokenizer, feature, command set, count and seed), with the same model and method, is kept, not recomputed.
// A cell that fails records its error; the others go on.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../../shared/errors';
import { fieldRef } from '../../shared/fields';
import type { Precision, Result } from '../../shared/result';
import { digestRun, DEFAULT_TOP_K } from '../../shared/compare';
import { SWEEP_SCHEMA, type SweepCellRecord, type SweepSpec, type SweepSummary } from '../../shared/sweep';
import { resolveModel, type ResolveOptions } from '../model/hub';
import { loadModel, type LoadedModel } from '../model/load';
import { ModelTokenizer } from '../model/tokenizer';
import { generateDataset, type GenerateSpec } from '../../lib/dataset/generate';
import { parseTinySqlFeature, type CommandSet } from '../../lib/dataset/tinysql';
import { parseDatasetText } from '../../lib/dataset';
import { cellLabel, planSweep, type SweepCell } from './plan';
import { contentHash } from '../../lib/files/contentHash';
import { hashFile } from '../../lib/files/provenance';
import { type FileToWrite, writeFilesAtomically, writeTextAtomically } from '../../lib/files/atomicWrite';
import { readResultFile, writeResultAtomically } from '../../lib/files/resultFile';
import { CancelledError, type PatchingOptions } from '../patching/options';
import { runAttributionPatching } from '../patching/run';
import type { MethodRequest } from '../patching/methods';
import { releaseSessions } from '../process/runtime';
import { readInputText } from '../../lib/files/readInput';

export const SUMMARY_JSON = 'summary.json';
export const SUMMARY_HTML = 'summary.html';

export interface SweepProgress {
  /** 1-based. */
  cell: number;
  cells: number;
  label: string;
  phase: 'start' | 'ran' | 'kept' | 'failed';
  error?: string;
}

export interface SweepOptions extends Omit<PatchingOptions, 'onProgress'> {
  /** Engine messages (plans, batches), as `atp patch` prints them. */
  onLog?: (message: string) => void;
  /** One event as each cell starts and ends. */
  onCell?: (progress: SweepProgress) => void;
  /** summary.html's text for a summary; without it only summary.json is written. */
  renderHtml?: (summary: SweepSummary) => string;
  /** Hub access (token, offline, downloads); folders need none. */
  resolve?: ResolveOptions;
  /** Heads in each cell's digest (top heads, concentration). */
  top?: number;
  /**
   * Awaited after a cell's Result is computed and written (not for kept or failed cells), before the next cell: the
   * front ends log it to W&B here. It must not throw (a failure there is its own warning, never the cell's).
   */
  onCellResult?: (cell: { cell: SweepCell; label: string; result: Result; resultFile: string }) => Promise<void>;
}

/** A model resolved, tokenized and (on first need) loaded, once per sweep; or the error that stops its cells. */
interface ModelEntry {
  dir?: string;
  source?: string;
  tokenizer?: ModelTokenizer;
  loaded?: LoadedModel;
  error?: string;
}

/** The Result at `file` when it is complete and describes this very run; undefined otherwise (missing, partial, another run). */
async function finishedResult(
  file: string,
  expected: { datasetHash: string; source: string; dir: string; method: MethodRequest; examples: number; precision: Precision },
): Promise<Result | undefined> {
  const text = readText(file);
  if (text === undefined) return undefined;
  let result: Result;
  try {
    result = readResultFile(file);
  } catch {
    return undefined; // truncated or hand-edited: computed again
  }
  const same =
    !result.shard &&
    result.dataset.contentHash === expected.datasetHash &&
    result.dataset.examples === expected.examples &&
    (result.run?.requested ?? 'atp') === expected.method &&
    // Results from before precision was recorded were float32 (sweeps never ran another).
    (result.runtime?.precision ?? 'float32') === expected.precision &&
    (await sameModel(result, expected.source, expected.dir));
  return same ? result : undefined;
}

/**
 * Whether `result` was computed from the model in `dir`: the same --model text, or the same files by hash (a folder
 * named another way — relative in one run, absolute in the next — is still the same model; hashes are cached by
 * path, size and mtime, so this costs a stat per file after the first time).
 */
async function sameModel(result: Result, source: string, dir: string): Promise<boolean> {
  if (result.model.source === source) return true;
  const recorded = Object.entries(result.provenance?.modelFiles ?? {});
  if (recorded.length === 0) return false;
  for (const [name, hash] of recorded) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file) || (await hashFile(file)) !== hash) return false;
  }
  return true;
}

function readText(file: string): string | undefined {
  try {
    return readInputText(file, 'dataset');
  } catch {
    return undefined;
  }
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Writes summary.json (and summary.html) in one atomic step. */
function writeSummary(dir: string, summary: SweepSummary, renderHtml?: (summary: SweepSummary) => string): void {
  const files: FileToWrite[] = [{ file: path.join(dir, SUMMARY_JSON), contents: JSON.stringify(summary, null, 2) + '\n', what: 'the sweep summary' }];
  if (renderHtml) files.push({ file: path.join(dir, SUMMARY_HTML), contents: renderHtml(summary), what: 'the sweep summary report' });
  writeFilesAtomically(files);
}

/**
 * Runs every cell of the spec into `dir` and returns the summary (also written there). Cancellation (options.signal)
 * stops between batches and cells: the cells finished so far stay written, with a summary of them, and
 * CancelledError is thrown.
 */
export async function runSweep(spec: SweepSpec, dir: string, options: SweepOptions): Promise<SweepSummary> {
  const cells = planSweep(spec);
  const top = options.top ?? DEFAULT_TOP_K;
  const method = (spec.method ?? 'atp') as MethodRequest;
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new InputError(`${fieldRef('out', dir)}: cannot create the folder: ${message(error)}`, { field: 'out' });
  }
  const summary: SweepSummary = { schema: SWEEP_SCHEMA, updatedAt: new Date().toISOString(), spec, plannedCells: cells.length, cells: [] };
  const models = new Map<string, ModelEntry>();

  const entryFor = async (model: string): Promise<ModelEntry> => {
    let entry = models.get(model);
    if (entry) return entry;
    entry = {};
    models.set(model, entry);
    try {
      const resolved = await resolveModel(model, { ...options.resolve, signal: options.signal });
      for (const note of resolved.notes) options.onLog?.(note);
      entry.dir = resolved.dir;
      // The name openModel gives the Result (repo commits included), so a kept Result is recognised as this model's.
      entry.source = resolved.commit && resolved.repo ? `${resolved.source} (${resolved.commit.slice(0, 10)})` : resolved.source;
      entry.tokenizer = ModelTokenizer.fromDir(resolved.dir);
    } catch (error) {
      if (options.signal?.aborted) throw new CancelledError();
      entry.error = message(error);
    }
    return entry;
  };

  for (const [index, cell] of cells.entries()) {
    if (options.signal?.aborted) break;
    // Cells come model by model: a model's weights and sessions are let go before the next one loads.
    const previous = cells[index - 1];
    if (previous && previous.model !== cell.model) {
      const done = models.get(previous.model);
      if (done?.loaded) {
        done.loaded = undefined;
        await releaseSessions();
      }
    }
    const label = cellLabel(cell);
    const started = performance.now();
    options.onCell?.({ cell: index + 1, cells: cells.length, label, phase: 'start' });
    const record: SweepCellRecord = { ...cell, status: 'failed', seconds: 0 };
    try {
      const entry = await entryFor(cell.model);
      if (entry.error !== undefined) throw new InputError(entry.error);
      if (cell.commandSet !== null && ![1, 2, 3].includes(cell.commandSet)) {
        throw new InputError(`command set ${cell.commandSet} has no TinySQL generator here (1, 2 or 3); pass ${fieldRef('commandSet')}`, {
          field: 'commandSet',
        });
      }
      const generateSpec: GenerateSpec =
        cell.feature === 'IOI'
          ? { kind: 'ioi', count: spec.count, seed: spec.seed }
          : {
              kind: 'tinysql',
              feature: parseTinySqlFeature(cell.feature),
              commandSet: cell.commandSet as CommandSet,
              count: spec.count,
              seed: spec.seed,
              novel: false,
              synonyms: false,
            };
      const generated = generateDataset(entry.tokenizer!, generateSpec, 'jsonl', cell.model);
      if (generated.examples.length === 0) throw new InputError(`no ${cell.feature} example could be generated for this tokenizer`);
      const datasetFile = path.join(dir, cell.dataset);
      const resultFile = path.join(dir, cell.result);
      const datasetHash = contentHash(generated.text);
      const kept = await finishedResult(resultFile, {
        datasetHash,
        source: entry.source!,
        dir: entry.dir!,
        method,
        examples: generated.examples.length,
        precision: options.precision ?? 'float32',
      });
      // The dataset beside its Result, so the editor can open one with the other (rewritten only when it differs).
      if (readText(datasetFile) !== generated.text) {
        fs.mkdirSync(path.dirname(datasetFile), { recursive: true });
        writeTextAtomically(datasetFile, generated.text, 'the dataset');
      }
      let result: Result;
      if (kept) {
        result = kept;
        record.status = 'kept';
      } else {
        entry.loaded ??= { ...loadModel(entry.dir!), source: entry.source! };
        const dataset = parseDatasetText(generated.text, datasetFile).dataset;
        result = await runAttributionPatching(entry.loaded, dataset, { ...options, method, onProgress: options.onLog });
        result.dataset.contentHash = datasetHash;
        writeResultAtomically(resultFile, result);
        record.status = 'ran';
        await options.onCellResult?.({ cell, label, result, resultFile });
      }
      record.digest = digestRun(label, result, top);
    } catch (error) {
      if (error instanceof CancelledError || options.signal?.aborted) {
        writeSummary(dir, { ...summary, updatedAt: new Date().toISOString() }, options.renderHtml);
        throw error instanceof CancelledError ? error : new CancelledError();
      }
      record.status = 'failed';
      record.error = message(error);
    }
    record.seconds = (performance.now() - started) / 1000;
    summary.cells.push(record);
    summary.updatedAt = new Date().toISOString();
    writeSummary(dir, summary, options.renderHtml);
    options.onCell?.({ cell: index + 1, cells: cells.length, label, phase: record.status, error: record.error });
  }
  if (options.signal?.aborted) throw new CancelledError();
  return summary;
}
