// A sweep's plan: which cells (model × feature × command set), and where each one's dataset and Result go under
// the output folder. Pure (no run, no file written), so the CLI refuses a bad sweep before anything runs.
import * as path from 'node:path';
import { InputError } from '../../shared/errors';
import type { SweepSpec } from '../../shared/sweep';
import { findPreset } from '../../lib/model/presets';
import { parseModelSource } from '../../lib/model/modelSource';
import { parseTinySqlFeature } from '../../lib/dataset/tinysql';

export const RESULT_SUFFIX = '.atp-result.json';

/** One cell of the plan: a model (its folder under DIR) and a dataset to generate for it. */
export interface SweepCell {
  model: string;
  folder: string;
  feature: string;
  /** null for IOI. */
  commandSet: number | null;
  /** Paths relative to DIR, '/'-separated. */
  result: string;
  dataset: string;
}

/** Canonical feature names: TinySQL's (case-insensitive on input) and IOI. */
export function parseSweepFeature(name: string): string {
  if (name.trim().toLowerCase() === 'ioi') return 'IOI';
  return parseTinySqlFeature(name.trim());
}

/** The folder a model's files go to under DIR: the preset's name, the folder's own name, or org--name[@revision] for a repo id. */
export function modelFolderName(model: string): string {
  const source = parseModelSource(model);
  const name =
    source.kind === 'folder'
      ? path.basename(source.path)
      : source.preset
        ? findPreset(source.preset)!.name + (source.revision ? `@${source.revision}` : '')
        : source.text.replace('/', '--');
  // Never a path: only the characters a file name keeps everywhere.
  return name.replace(/[^A-Za-z0-9._@-]/g, '-');
}

/** The command sets a model is swept on: --cs when given, else a bm<B>-cs<C> preset's own C, else 1. */
function commandSetsFor(model: string, requested: readonly number[] | undefined): number[] {
  if (requested && requested.length > 0) return [...requested];
  const preset = findPreset(model.split('@')[0]);
  const match = preset ? /^bm\d+-cs(\d+)/.exec(preset.name) : null;
  return [match ? Number(match[1]) : 1];
}

/** Every cell, models in the order given, features in the order given, command sets ascending. */
export function planSweep(spec: SweepSpec): SweepCell[] {
  if (spec.models.length === 0) throw InputError.about('models', 'give at least one model');
  if (spec.features.length === 0) throw InputError.about('features', 'give at least one feature');
  const folders = new Map<string, string>();
  const cells: SweepCell[] = [];
  for (const model of spec.models) {
    const folder = modelFolderName(model);
    const other = folders.get(folder);
    if (other !== undefined) {
      throw InputError.about(
        'models',
        `"${other}" and "${model}" would both write to the folder ${folder}; give each model once, or copy one under another folder name`,
      );
    }
    folders.set(folder, model);
    for (const feature of spec.features.map(parseSweepFeature)) {
      const sets = feature === 'IOI' ? [null] : commandSetsFor(model, spec.commandSets);
      for (const commandSet of sets) {
        const name = commandSet === null ? feature : `${feature}-cs${commandSet}`;
        cells.push({ model, folder, feature, commandSet, result: `${folder}/${name}${RESULT_SUFFIX}`, dataset: `${folder}/${name}.jsonl` });
      }
    }
  }
  return cells;
}

export const cellLabel = (cell: Pick<SweepCell, 'model' | 'feature' | 'commandSet'>): string =>
  `${cell.model} · ${cell.feature}${cell.commandSet === null ? '' : ` CS${cell.commandSet}`}`;
