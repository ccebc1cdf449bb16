// What a claims run was computed from, and what changed since: the model files, the tokenizer, the dataset's text,
// the engine version, the method and the seed. Decides when a stored Result is still current (reused instead of
// rerunning the model) and tells a failing claim what differs from the inputs it last passed on.
// Node's fs and crypto only: the extension host uses it too.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Provenance, Result } from '../../shared/result';
import { type CircuitMethod, CIRCUIT_METHODS } from '../../shared/circuit';
import { contentHash } from '../files/contentHash';
import { ENGINE_VERSION, hashFile } from '../files/provenance';
import { readInputText } from '../files/readInput';

export interface InputsRecord {
  engineVersion: string;
  modelFiles: Record<string, string>;
  tokenizerHash: string;
  /** contentHash of the dataset's text. */
  datasetHash: string;
  /** The method the claims file asked for (auto, atp, atpstar, exact). */
  requested: string;
  seed: number;
  /** The circuit run's method and steps ("eap-ig, 5 steps"), when the Result has a circuit or the claims ask for one. */
  circuit?: string;
}

/** How InputsRecord names a circuit run. */
export const describeCircuitRun = (circuit: { method: CircuitMethod; steps: number }) =>
  CIRCUIT_METHODS[circuit.method].oneGradient ? circuit.method : `${circuit.method}, ${circuit.steps} steps`;

/** The inputs a Result records; undefined for a Result without provenance or dataset hash (made before they existed). */
export function inputsOf(result: Result): InputsRecord | undefined {
  const provenance: Provenance | undefined = result.provenance;
  if (!provenance || !result.dataset.contentHash) return undefined;
  return {
    engineVersion: provenance.engineVersion,
    modelFiles: provenance.modelFiles,
    tokenizerHash: provenance.tokenizerHash,
    datasetHash: result.dataset.contentHash,
    requested: result.run?.requested ?? provenance.method,
    seed: provenance.seed,
    ...(result.circuit ? { circuit: describeCircuitRun(result.circuit) } : {}),
  };
}

/** The dataset text's hash as the editor computes it (VS Code drops a leading byte-order mark). */
export function datasetFileHash(file: string): string {
  return contentHash(readInputText(file, 'dataset').replace(/^\uFEFF/, ''));
}

/**
 * The inputs as they are now, for the files a stored Result recorded: each recorded model file is hashed again
 * (cached by size and modification time), a missing one records "missing". Undefined when the model is not a folder
 * (a preset or hub id: its files are not known without resolving it, so its Result is never reused).
 */
export async function currentInputs(
  model: string,
  recorded: InputsRecord,
  request: { dataset: string; requested: string; seed: number; circuit?: { method: CircuitMethod; steps: number } },
): Promise<InputsRecord | undefined> {
  if (!existsSync(model) || !statSync(model).isDirectory()) return undefined;
  // The names were checked (modelFileNamesProblem) before they got here; a dictionary without a prototype all the
  // same, so "__proto__" would be a key like any other, never Object.prototype's.
  const modelFiles: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name of Object.keys(recorded.modelFiles)) modelFiles[name] = await hashModelFile(join(model, name));
  const tokenizer = await hashModelFile(join(model, 'tokenizer.json'));
  return {
    engineVersion: ENGINE_VERSION,
    modelFiles,
    tokenizerHash: tokenizer === 'missing' ? 'none' : tokenizer,
    datasetHash: datasetFileHash(request.dataset),
    requested: request.requested,
    seed: request.seed,
    ...(request.circuit ? { circuit: describeCircuitRun(request.circuit) } : {}),
  };
}

/** Most model files a stored Result may name: the engine records config, tokenizer files and weight shards. */
const MAX_MODEL_FILES = 10_000;

/**
 * Why a stored Result's model-file names are not ones the engine writes, or undefined when they are: each a plain
 * file name (no folder, no "..", not "." or "__proto__"), as modelFileHashes records them. A stored Result is a file
 * anyone could have committed: its names decide which files are read and hashed, so nothing else is read.
 */
export function modelFileNamesProblem(modelFiles: unknown): string | undefined {
  if (typeof modelFiles !== 'object' || modelFiles === null || Array.isArray(modelFiles)) return 'its provenance.modelFiles is not an object';
  const names = Object.keys(modelFiles);
  if (names.length > MAX_MODEL_FILES) return `its provenance.modelFiles names ${names.length} files (at most ${MAX_MODEL_FILES})`;
  for (const name of names) {
    if (name === '' || name === '.' || name === '..' || name === '__proto__' || /[/\\\0]/.test(name) || name.length > 255)
      return `its provenance.modelFiles names ${JSON.stringify(name.slice(0, 200))}, not a plain file name of a model folder`;
    if (typeof (modelFiles as Record<string, unknown>)[name] !== 'string') return `its provenance.modelFiles entry ${JSON.stringify(name)} is not a hash`;
  }
  return undefined;
}

/** The file's hash when it is a regular file of the folder (a link to one counts: the Hugging Face cache links blobs), else "missing". */
async function hashModelFile(path: string): Promise<string> {
  try {
    if (!statSync(path).isFile()) return 'missing';
  } catch {
    return 'missing';
  }
  return hashFile(path);
}

const short = (hash: string) => hash.replace(/^sha256:/, '').slice(0, 12);

/** What differs between two sets of inputs, one phrase each ("model.safetensors changed (sha256 1a2b… → 3c4d…)"); empty when none. */
export function inputChanges(before: InputsRecord, now: InputsRecord): string[] {
  const changes: string[] = [];
  if (before.engineVersion !== now.engineVersion) changes.push(`engine ${before.engineVersion} → ${now.engineVersion}`);
  const names = [...new Set([...Object.keys(before.modelFiles), ...Object.keys(now.modelFiles)])].sort();
  for (const name of names) {
    const a = before.modelFiles[name];
    const b = now.modelFiles[name];
    if (a === b) continue;
    if (name === 'tokenizer.json') continue; // reported once, as the tokenizer
    changes.push(
      !a
        ? `model file ${name} added`
        : !b || b === 'missing'
          ? `model file ${name} missing`
          : `model file ${name} changed (sha256 ${short(a)}… → ${short(b)}…)`,
    );
  }
  if (before.tokenizerHash !== now.tokenizerHash) changes.push(`tokenizer changed (sha256 ${short(before.tokenizerHash)}… → ${short(now.tokenizerHash)}…)`);
  if (before.datasetHash !== now.datasetHash) changes.push('dataset changed');
  if (before.requested !== now.requested) changes.push(`method ${before.requested} → ${now.requested}`);
  if (before.seed !== now.seed) changes.push(`seed ${before.seed} → ${now.seed}`);
  // A Result with a circuit still serves claims that need none; one the claims need must be the same kind of run.
  if (now.circuit !== undefined && before.circuit !== now.circuit) changes.push(`circuit ${before.circuit ?? 'none'} → ${now.circuit}`);
  return changes;
}
