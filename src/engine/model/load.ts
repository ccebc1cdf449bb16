import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { InputError } from '../../shared/errors';
import { architectureOf } from '../architectures/families';
import type { Architecture } from '../architectures/types';
import { findTensor, type ModelSpec, readModelSpec } from './config';
import { indexModelWeights, type TensorEntry } from '../../lib/model/safetensors';
import { ModelTokenizer } from './tokenizer';

/** A model ready for the engine: its spec, an index of its weights (headers only) and its tokenizer. */
export interface LoadedModel {
  /** What the user named (a folder now; a hub id later), shown in results. */
  readonly source: string;
  readonly dir: string;
  readonly spec: ModelSpec;
  readonly weights: ReadonlyMap<string, TensorEntry>;
  readonly tokenizer: ModelTokenizer;
  readonly architecture: Architecture;
  /** Distinct weight files, in a stable order. */
  readonly weightFiles: readonly string[];
  /** The stored dtype(s) of the weights, e.g. "F32" or "BF16". */
  readonly storedDtype: string;
}

export function loadModel(source: string): LoadedModel {
  const dir = resolve(source);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw InputError.about('model', `${source} is not a folder (expected a Hugging Face layout folder with config.json, *.safetensors and tokenizer.json)`);
  }
  const spec = readModelSpec(dir);
  const weights = indexModelWeights(dir);
  const tokenizer = ModelTokenizer.fromDir(dir);
  const entries = [...weights.values()];
  const weightFiles = [...new Set(entries.map((e) => e.file))].sort();
  const storedDtype = [...new Set(entries.map((e) => e.dtype))].sort().join('+');
  return { source, dir, spec, weights, tokenizer, architecture: architectureOf(spec), weightFiles, storedDtype };
}

/** Weight lookup for graph building (accepts names with or without the "transformer." prefix). */
export function weightLookup(model: LoadedModel): (name: string) => TensorEntry {
  return (name) => findTensor(model.weights as Map<string, TensorEntry>, name, model.dir);
}
