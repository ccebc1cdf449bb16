// Reads a Hugging Face config.json into the engine's architecture-neutral ModelSpec.
// Each model family has one reader; SPEC_READERS maps model_type to it, so adding
// gpt_neo, llama, qwen2, granite... means adding one function and one table row.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import type { TensorEntry } from './safetensors';

export interface ModelSpec {
  architecture: 'gpt2';
  /** config.json's model_type, as written there. */
  modelType: string;
  nLayers: number;
  nHeads: number;
  dModel: number;
  dHead: number;
  dMlp: number;
  vocabSize: number;
  maxPositions: number;
  layerNormEps: number;
  activation: 'gelu_new' | 'gelu' | 'relu';
  scaleAttnByInverseLayerIdx: boolean;
  tiedEmbeddings: boolean;
}

type RawConfig = Record<string, unknown>;
type SpecReader = (config: ConfigFields) => ModelSpec;

/** Typed access to config.json's keys, with errors that name the file and the key. */
class ConfigFields {
  constructor(
    readonly raw: RawConfig,
    readonly file: string,
  ) {}

  has(key: string): boolean {
    return this.raw[key] !== undefined;
  }

  private fail(key: string, expected: string): never {
    const value = this.raw[key];
    const found = value === undefined ? 'it is missing' : `found ${JSON.stringify(value)}`;
    throw new InputError(`${this.file}: key "${key}" must be ${expected} (${found})`);
  }

  positiveInteger(key: string): number {
    const value = this.raw[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) this.fail(key, 'a positive integer');
    return value;
  }

  positiveNumber(key: string, fallback?: number): number {
    const value = this.raw[key];
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) this.fail(key, 'a positive number');
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.raw[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.fail(key, 'true or false');
    return value;
  }

  /** A positive integer, or null/absent for "use the family's default". */
  optionalPositiveInteger(key: string): number | undefined {
    const value = this.raw[key];
    if (value === undefined || value === null) return undefined;
    return this.positiveInteger(key);
  }

  string(key: string, fallback: string): string {
    const value = this.raw[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'string') this.fail(key, 'a string');
    return value;
  }
}

/** Hugging Face activation names → the engine's; gelu_pytorch_tanh is the same tanh approximation as gelu_new. */
const GPT2_ACTIVATIONS: Record<string, ModelSpec['activation']> = {
  gelu_new: 'gelu_new',
  gelu_pytorch_tanh: 'gelu_new',
  gelu: 'gelu',
  relu: 'relu',
};

/** GPT-2; absent optional keys take the defaults of transformers' GPT2Config. */
function readGpt2Spec(config: ConfigFields): ModelSpec {
  const nLayers = config.positiveInteger('n_layer');
  const nHeads = config.positiveInteger('n_head');
  const dModel = config.positiveInteger('n_embd');
  if (dModel % nHeads !== 0) {
    throw new InputError(`${config.file}: key "n_embd" (${dModel}) must be divisible by "n_head" (${nHeads})`);
  }
  // Old configs carry only n_ctx, which meant the same thing.
  const maxPositions = config.has('n_positions') || !config.has('n_ctx') ? config.positiveInteger('n_positions') : config.positiveInteger('n_ctx');
  const activationName = config.string('activation_function', 'gelu_new');
  const activation = Object.hasOwn(GPT2_ACTIVATIONS, activationName) ? GPT2_ACTIVATIONS[activationName] : undefined;
  if (activation === undefined) {
    throw new InputError(
      `${config.file}: key "activation_function" is "${activationName}"; supported for gpt2: ${Object.keys(GPT2_ACTIVATIONS).join(', ')}`,
    );
  }
  return {
    architecture: 'gpt2',
    modelType: 'gpt2',
    nLayers,
    nHeads,
    dModel,
    dHead: dModel / nHeads,
    dMlp: config.optionalPositiveInteger('n_inner') ?? 4 * dModel,
    vocabSize: config.positiveInteger('vocab_size'),
    maxPositions,
    layerNormEps: config.positiveNumber('layer_norm_epsilon', 1e-5),
    activation,
    scaleAttnByInverseLayerIdx: config.boolean('scale_attn_by_inverse_layer_idx', false),
    tiedEmbeddings: config.boolean('tie_word_embeddings', true),
  };
}

const SPEC_READERS: Record<string, SpecReader> = {
  gpt2: readGpt2Spec,
};

export const SUPPORTED_MODEL_TYPES: readonly string[] = Object.freeze(Object.keys(SPEC_READERS));

export function readModelSpec(dir: string): ModelSpec {
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${file}: not found (a Hugging Face model folder has a config.json)`);
    throw new InputError(`${file}: cannot read: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new InputError(`${file}: not valid JSON: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InputError(`${file}: must be a JSON object`);

  const modelType = (raw as RawConfig).model_type;
  if (typeof modelType !== 'string') {
    throw new InputError(`${file}: key "model_type" must be a string naming the model family (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  }
  if (!Object.hasOwn(SPEC_READERS, modelType)) {
    throw new InputError(`${file}: model_type "${modelType}" is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  }
  return SPEC_READERS[modelType](new ConfigFields(raw as RawConfig, file));
}

/**
 * Looks a weight up by its name without the "transformer." prefix (e.g. "h.0.ln_1.weight");
 * checkpoints saved from GPT2LMHeadModel carry the prefix, those from GPT2Model do not.
 */
export function findTensor(weights: Map<string, TensorEntry>, name: string, dir?: string): TensorEntry {
  const prefix = 'transformer.';
  const bare = name.startsWith(prefix) ? name.slice(prefix.length) : name;
  const found = weights.get(bare) ?? weights.get(prefix + bare);
  if (found) return found;
  const firstEntry = weights.values().next().value as TensorEntry | undefined;
  const folder = dir ?? (firstEntry ? path.dirname(firstEntry.file) : 'the model folder');
  throw new InputError(`${folder}: weight "${bare}" not found (also looked for "${prefix}${bare}")`);
}
