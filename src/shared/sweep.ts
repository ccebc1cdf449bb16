// A sweep's summary (atp sweep → DIR/summary.json): one cell per model × feature (× command set), each with its
// Result file and the digest the seed notebook compares across models — baselines, top heads, how concentrated
// the attribution is, where along the depth it sits — or the error that stopped it. Read by the CLI, the HTML
// summary and the editor, so it imports nothing at run time but src/shared/.
import type { RunDigest } from './compare';
import { InputError } from './errors';

export const SWEEP_SCHEMA = 'attribution-patching/sweep@1';

/** A TinySQL feature (EngTableName …) or 'IOI'. */
export type SweepFeature = string;

/** What a sweep was asked to do: enough to rerun it, and what decides whether a finished cell is still current. */
export interface SweepSpec {
  /** As the user named them: folders, repo ids, presets. */
  models: string[];
  features: SweepFeature[];
  /** The command sets asked for with --cs; absent: each model's own (bm<B>-cs<C> presets), else 1. */
  commandSets?: number[];
  /** Examples per dataset, and the generator's seed. */
  count: number;
  seed: number;
  method: string;
}

/**
 * ran: computed in this invocation; kept: a complete Result of the same model and dataset (same generated text,
 * same method) was already there, so it was not recomputed; failed: see `error`, the other cells went on.
 */
export type SweepCellStatus = 'ran' | 'kept' | 'failed';

export interface SweepCellRecord {
  /** The model as named in the spec, and the folder under DIR its files go to. */
  model: string;
  folder: string;
  feature: SweepFeature;
  /** null for IOI. */
  commandSet: number | null;
  status: SweepCellStatus;
  /** Relative to DIR, '/'-separated. */
  result: string;
  dataset: string;
  /** Present unless failed. */
  digest?: RunDigest;
  error?: string;
  /** Wall-clock seconds of the cell (generation and run) in the invocation that made or checked it. */
  seconds: number;
}

export interface SweepSummary {
  schema: typeof SWEEP_SCHEMA;
  /** ISO 8601, of this summary's last write. */
  updatedAt: string;
  spec: SweepSpec;
  /** How many cells the sweep has in all (cells holds those finished so far, in order). */
  plannedCells: number;
  cells: SweepCellRecord[];
}

/** The summary file's text parsed; errors name the file and the field. */
export function parseSweepSummary(text: string, file: string): SweepSummary {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${file}: not valid JSON: ${(error as Error).message}`);
  }
  const fail = (field: string, expected: string): never => {
    throw new InputError(`${file}: field "${field}" must be ${expected}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InputError(`${file}: not a sweep summary (expected a JSON object)`);
  const summary = raw as Record<string, unknown>;
  if (summary.schema !== SWEEP_SCHEMA) fail('schema', `"${SWEEP_SCHEMA}"`);
  if (!Array.isArray(summary.cells)) fail('cells', 'an array');
  (summary.cells as unknown[]).forEach((item, index) => {
    const field = `cells[${index}]`;
    if (typeof item !== 'object' || item === null) fail(field, 'an object');
    const cell = item as Record<string, unknown>;
    for (const key of ['model', 'folder', 'feature', 'result', 'dataset']) if (typeof cell[key] !== 'string') fail(`${field}.${key}`, 'a string');
    if (cell.status !== 'ran' && cell.status !== 'kept' && cell.status !== 'failed') fail(`${field}.status`, '"ran", "kept" or "failed"');
    if (cell.status === 'failed' ? typeof cell.error !== 'string' : typeof cell.digest !== 'object' || cell.digest === null) {
      fail(cell.status === 'failed' ? `${field}.error` : `${field}.digest`, cell.status === 'failed' ? 'a string' : 'an object');
    }
  });
  return raw as SweepSummary;
}
