// Reads a Hugging Face config.json into the engine's architecture-neutral ModelSpec.
// Each model family has one reader; SPEC_READERS maps model_type to it (gpt2, gpt_neo, and the Llama
// family: llama (SmolLM too), qwen2, granite, granitemoe), so a new family is one function and one row.
import * as path from 'node:path';
import { InputError } from '../../shared/errors';
import type { TensorEntry } from '../../lib/model/safetensors';
import { inputErrorCode, readInputText } from '../../lib/files/readInput';

/**
 * What the engine needs of a model, one variant per family (`architecture` says which; several model_types can
 * share one): what every family has, and the family's own fields, present exactly when they apply. Anything a
 * config asks for that the family's forward pass does not implement is refused when config.json is read.
 */
export type ModelSpec = Gpt2Spec | GptNeoSpec | LlamaSpec;

export interface Gpt2Spec extends CommonSpec {
  architecture: 'gpt2';
  activation: 'gelu_new';
  /** Scores also divided by layer index + 1 (scale_attn_by_inverse_layer_idx). */
  scaleAttnByInverseLayerIdx: boolean;
}

export interface GptNeoSpec extends CommonSpec {
  architecture: 'gpt_neo';
  activation: 'gelu_new';
  /** Which layers attend globally and which locally, and the local window. */
  gptNeo: GptNeoDetails;
}

export interface LlamaSpec extends CommonSpec {
  architecture: 'llama';
  activation: 'silu';
  /** What differs from a plain Llama (llama, qwen2, granite, granitemoe). */
  llama: LlamaDetails;
}

interface CommonSpec {
  /** config.json's model_type, as written there. */
  modelType: string;
  nLayers: number;
  /** Query heads (hook_z has one entry per query head). */
  nHeads: number;
  dModel: number;
  dHead: number;
  /** The MLP's hidden width (for GraniteMoE, each expert's). */
  dMlp: number;
  vocabSize: number;
  maxPositions: number;
  /** LayerNorm's epsilon, or RMSNorm's for the Llama family. */
  layerNormEps: number;
  tiedEmbeddings: boolean;
}

/** Key/value heads: fewer than the query heads with grouped-query attention (Llama family), as many elsewhere. */
export function keyValueHeads(spec: ModelSpec): number {
  return spec.architecture === 'llama' ? spec.llama.nKvHeads : spec.nHeads;
}

export interface GptNeoDetails {
  /** One entry per layer (config.json's attention_types expanded). */
  attentionLayers: Array<'global' | 'local'>;
  /** A local layer's query attends to itself and the windowSize − 1 positions before it. */
  windowSize: number;
}

export type RopeScaling =
  { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number } | { type: 'linear'; factor: number };

export interface LlamaDetails {
  /** Key/value heads (grouped-query attention when fewer than nHeads). */
  nKvHeads: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** Biases on q_proj, k_proj, v_proj (Qwen2; Llama/Granite with attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama/Granite with attention_bias). */
  oBias: boolean;
  /** Biases on the MLP projections (mlp_bias). */
  mlpBias: boolean;
  /** Granite's embedding_multiplier (1 elsewhere): the token embeddings are multiplied by it. */
  embeddingMultiplier: number;
  /** The factor on q·k: Granite's attention_multiplier, 1/sqrt(dHead) elsewhere. */
  attentionScale: number;
  /** Granite's residual_multiplier (1 elsewhere): attention and MLP outputs are multiplied by it before being added. */
  residualMultiplier: number;
  /** Logits are divided by this (Granite's logits_scaling; 1 elsewhere). */
  logitsScaling: number;
  /** GraniteMoE: every MLP is a mixture of experts with top-k routing. */
  moe?: { nExperts: number; topK: number };
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

  /** A positive integer, with a default when the key is absent or null. */
  positiveIntegerOr(key: string, fallback: number): number {
    return this.optionalPositiveInteger(key) ?? fallback;
  }

  /** A key whose value changes the computation in a way the engine does not implement: rejected, naming it. */
  unsupportedUnless(key: string, allowed: (value: unknown) => boolean, what: string): void {
    const value = this.raw[key];
    if (value !== undefined && !allowed(value)) {
      throw new InputError(`${this.file}: key "${key}" is ${JSON.stringify(value)}; ${what}`);
    }
  }

  /** A nested object (e.g. rope_scaling), read with the same checks; its keys are named "outer.inner" in errors. */
  object(key: string): ConfigFields | null {
    const value = this.raw[key];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'object' || Array.isArray(value)) this.fail(key, 'an object or null');
    return new ConfigFields(Object.fromEntries(Object.entries(value as RawConfig).map(([k, v]) => [`${key}.${k}`, v])), this.file);
  }
}

/**
 * Hugging Face activation names → the engine's, for GPT-2 and GPT-Neo: the ones their forward pass implements
 * (gelu_pytorch_tanh is the same tanh approximation as gelu_new); any other is refused when the config is read.
 */
const GELU_NEW_ACTIVATIONS: Record<string, 'gelu_new'> = { gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new' };

/** GPT-2; absent optional keys take the defaults of transformers' GPT2Config. */
function readGpt2Spec(config: ConfigFields): Gpt2Spec {
  const nLayers = config.positiveInteger('n_layer');
  const nHeads = config.positiveInteger('n_head');
  const dModel = config.positiveInteger('n_embd');
  if (dModel % nHeads !== 0) {
    throw new InputError(`${config.file}: key "n_embd" (${dModel}) must be divisible by "n_head" (${nHeads})`);
  }
  // Old configs carry only n_ctx, which meant the same thing.
  const maxPositions = config.has('n_positions') || !config.has('n_ctx') ? config.positiveInteger('n_positions') : config.positiveInteger('n_ctx');
  const activationName = config.string('activation_function', 'gelu_new');
  const activation = Object.hasOwn(GELU_NEW_ACTIVATIONS, activationName) ? GELU_NEW_ACTIVATIONS[activationName] : undefined;
  if (activation === undefined) {
    throw new InputError(
      `${config.file}: key "activation_function" is "${activationName}"; supported for gpt2: ${Object.keys(GELU_NEW_ACTIVATIONS).join(', ')}`,
    );
  }
  // false would drop the 1/sqrt(dHead) factor on the scores; the gpt2 forward pass always applies it.
  config.unsupportedUnless('scale_attn_weights', (v) => v === true, 'only scaled attention scores (true) are supported for gpt2');
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

// ---- GPT-Neo ---------------------------------------------------------------------------------------------

const ATTENTION_KINDS = ['global', 'local'] as const;

/** attention_types, e.g. [[["global", "local"], 2]], expanded to one entry per layer (GPTNeoConfig's rule). */
function readGptNeoAttentionLayers(config: ConfigFields, nLayers: number): Array<'global' | 'local'> {
  const expected = 'a list of [["global" | "local", ...], repeat] pairs';
  const types = config.raw.attention_types;
  const layers: Array<'global' | 'local'> = [];
  if (types === undefined) {
    throw new InputError(`${config.file}: key "attention_types" must be ${expected} (it is missing)`);
  }
  const bad = () => {
    throw new InputError(`${config.file}: key "attention_types" must be ${expected} (found ${JSON.stringify(types)})`);
  };
  if (!Array.isArray(types)) bad();
  // Counted before expanding: a hostile repeat (1e15) must be refused, not expanded until memory runs out.
  let described = 0;
  for (const item of types as unknown[]) {
    if (!Array.isArray(item) || item.length !== 2 || !Array.isArray(item[0]) || !Number.isSafeInteger(item[1]) || item[1] < 0) bad();
    const [kinds, repeat] = item as [unknown[], number];
    if (kinds.some((k) => !(ATTENTION_KINDS as readonly unknown[]).includes(k))) bad();
    described += kinds.length * repeat;
  }
  if (described !== nLayers) {
    throw new InputError(`${config.file}: key "attention_types" describes ${described} layers but "num_layers" is ${nLayers}`);
  }
  for (const [kinds, repeat] of types as Array<[Array<'global' | 'local'>, number]>) {
    for (let r = 0; r < repeat; r++) for (const kind of kinds) layers.push(kind);
  }
  const listed = config.raw.attention_layers;
  if (listed !== undefined && (!Array.isArray(listed) || listed.length !== nLayers || listed.some((k, i) => k !== layers[i]))) {
    throw new InputError(`${config.file}: key "attention_layers" (${JSON.stringify(listed)}) disagrees with "attention_types" (${JSON.stringify(layers)})`);
  }
  return layers;
}

/** GPT-Neo (TinyStories, TinySQL BM1); absent optional keys take the defaults of transformers' GPTNeoConfig. */
function readGptNeoSpec(config: ConfigFields): GptNeoSpec {
  const nLayers = config.positiveInteger('num_layers');
  const nHeads = config.positiveInteger('num_heads');
  const dModel = config.positiveInteger('hidden_size');
  if (dModel % nHeads !== 0) {
    throw new InputError(`${config.file}: key "hidden_size" (${dModel}) must be divisible by "num_heads" (${nHeads})`);
  }
  const activationName = config.string('activation_function', 'gelu_new');
  const activation = Object.hasOwn(GELU_NEW_ACTIVATIONS, activationName) ? GELU_NEW_ACTIVATIONS[activationName] : undefined;
  if (activation === undefined) {
    throw new InputError(
      `${config.file}: key "activation_function" is "${activationName}"; supported for gpt_neo: ${Object.keys(GELU_NEW_ACTIVATIONS).join(', ')}`,
    );
  }
  return {
    architecture: 'gpt_neo',
    modelType: 'gpt_neo',
    nLayers,
    nHeads,
    dModel,
    dHead: dModel / nHeads,
    dMlp: config.optionalPositiveInteger('intermediate_size') ?? 4 * dModel,
    vocabSize: config.positiveInteger('vocab_size'),
    maxPositions: config.positiveInteger('max_position_embeddings'),
    layerNormEps: config.positiveNumber('layer_norm_epsilon', 1e-5),
    activation,
    tiedEmbeddings: config.boolean('tie_word_embeddings', true),
    gptNeo: { attentionLayers: readGptNeoAttentionLayers(config, nLayers), windowSize: config.positiveIntegerOr('window_size', 256) },
  };
}

// ---- the Llama family: llama (and SmolLM), qwen2, granite, granitemoe ------------------------------------

/** What each model_type of the Llama family adds; everything else is read the same way. */
interface LlamaFamilyRules {
  modelType: string;
  /** Whether the family reads config.json's head_dim (Granite derives it from hidden_size / num_attention_heads). */
  readsHeadDim: boolean;
  /** Qwen2 always has q/k/v biases and no o_proj bias; the others follow attention_bias (all four). */
  qkvBiasAlways: boolean;
  readsMlpBias: boolean;
  /** Granite's embedding/attention/residual multipliers and logits_scaling. */
  multipliers: boolean;
  moe: boolean;
}

const LLAMA_FAMILY = {
  llama: { modelType: 'llama', readsHeadDim: true, qkvBiasAlways: false, readsMlpBias: true, multipliers: false, moe: false },
  qwen2: { modelType: 'qwen2', readsHeadDim: true, qkvBiasAlways: true, readsMlpBias: false, multipliers: false, moe: false },
  granite: { modelType: 'granite', readsHeadDim: false, qkvBiasAlways: false, readsMlpBias: true, multipliers: true, moe: false },
  granitemoe: { modelType: 'granitemoe', readsHeadDim: false, qkvBiasAlways: false, readsMlpBias: false, multipliers: true, moe: true },
} satisfies Record<string, LlamaFamilyRules>;

/**
 * RoPE's base and scaling, from rope_theta / rope_scaling (transformers ≤ 4.x) or rope_parameters (newer).
 * Types that depend on the sequence length at run time (dynamic, yarn, longrope) are rejected.
 */
function readRope(config: ConfigFields): { ropeTheta: number; ropeScaling: RopeScaling | null } {
  const parameters = config.object('rope_parameters');
  const scaling = parameters ?? config.object('rope_scaling');
  const key = parameters ? 'rope_parameters' : 'rope_scaling';
  const ropeTheta = parameters?.has(`${key}.rope_theta`) ? parameters.positiveNumber(`${key}.rope_theta`) : config.positiveNumber('rope_theta', 10000);
  if (!scaling) return { ropeTheta, ropeScaling: null };
  const typeKey = scaling.has(`${key}.rope_type`) ? `${key}.rope_type` : `${key}.type`;
  const type = scaling.string(typeKey, 'default');
  if (type === 'default') return { ropeTheta, ropeScaling: null };
  if (type === 'linear') return { ropeTheta, ropeScaling: { type, factor: scaling.positiveNumber(`${key}.factor`) } };
  if (type === 'llama3') {
    const ropeScaling: RopeScaling = {
      type,
      factor: scaling.positiveNumber(`${key}.factor`),
      lowFreqFactor: scaling.positiveNumber(`${key}.low_freq_factor`),
      highFreqFactor: scaling.positiveNumber(`${key}.high_freq_factor`),
      originalMaxPositions: scaling.positiveInteger(`${key}.original_max_position_embeddings`),
    };
    if (ropeScaling.highFreqFactor <= ropeScaling.lowFreqFactor) {
      throw new InputError(`${config.file}: key "${key}.high_freq_factor" must be larger than "${key}.low_freq_factor"`);
    }
    return { ropeTheta, ropeScaling };
  }
  throw new InputError(`${config.file}: key "${typeKey}" is "${type}"; supported: default, linear, llama3`);
}

function readLlamaFamilySpec(config: ConfigFields, rules: LlamaFamilyRules): LlamaSpec {
  const nLayers = config.positiveInteger('num_hidden_layers');
  const nHeads = config.positiveInteger('num_attention_heads');
  const dModel = config.positiveInteger('hidden_size');
  const nKvHeads = config.positiveIntegerOr('num_key_value_heads', nHeads);
  if (nHeads % nKvHeads !== 0) {
    throw new InputError(`${config.file}: key "num_attention_heads" (${nHeads}) must be divisible by "num_key_value_heads" (${nKvHeads})`);
  }
  let dHead: number;
  if (rules.readsHeadDim && config.optionalPositiveInteger('head_dim') !== undefined) {
    dHead = config.positiveInteger('head_dim');
  } else {
    if (dModel % nHeads !== 0) {
      throw new InputError(`${config.file}: key "hidden_size" (${dModel}) must be divisible by "num_attention_heads" (${nHeads})`);
    }
    dHead = dModel / nHeads;
    config.unsupportedUnless(
      'head_dim',
      (v) => v === null || v === dHead,
      `${rules.modelType} uses hidden_size / num_attention_heads (${dHead}) as the head size`,
    );
  }
  const hiddenAct = config.string('hidden_act', 'silu');
  if (hiddenAct !== 'silu') throw new InputError(`${config.file}: key "hidden_act" is "${hiddenAct}"; supported for ${rules.modelType}: silu`);
  config.unsupportedUnless('partial_rotary_factor', (v) => v === 1, 'only full rotary embeddings (1.0) are supported');
  if (rules.modelType === 'qwen2') {
    config.unsupportedUnless('use_sliding_window', (v) => v === false, 'sliding-window attention is not supported for qwen2');
  }
  if (rules.moe) {
    config.unsupportedUnless('position_embedding_type', (v) => v === 'rope', 'only rotary position embeddings ("rope") are supported');
  }
  const attentionBias = config.boolean('attention_bias', false);
  const moe = rules.moe ? { nExperts: config.positiveInteger('num_local_experts'), topK: config.positiveInteger('num_experts_per_tok') } : undefined;
  if (moe && moe.topK > moe.nExperts) {
    throw new InputError(`${config.file}: key "num_experts_per_tok" (${moe.topK}) must not exceed "num_local_experts" (${moe.nExperts})`);
  }
  const multiplier = (key: string) => (rules.multipliers ? config.positiveNumber(key, 1) : 1);
  const llama: LlamaDetails = {
    nKvHeads,
    ...readRope(config),
    qkvBias: rules.qkvBiasAlways || attentionBias,
    oBias: !rules.qkvBiasAlways && attentionBias,
    mlpBias: rules.readsMlpBias && config.boolean('mlp_bias', false),
    embeddingMultiplier: multiplier('embedding_multiplier'),
    attentionScale: rules.multipliers ? config.positiveNumber('attention_multiplier', 1) : 1 / Math.sqrt(dHead),
    residualMultiplier: multiplier('residual_multiplier'),
    logitsScaling: multiplier('logits_scaling'),
    ...(moe ? { moe } : {}),
  };
  return {
    architecture: 'llama',
    modelType: rules.modelType,
    nLayers,
    nHeads,
    dModel,
    dHead,
    dMlp: config.positiveInteger('intermediate_size'),
    vocabSize: config.positiveInteger('vocab_size'),
    maxPositions: config.positiveInteger('max_position_embeddings'),
    layerNormEps: config.positiveNumber('rms_norm_eps', 1e-6),
    activation: 'silu',
    tiedEmbeddings: config.boolean('tie_word_embeddings', false),
    llama,
  };
}

const SPEC_READERS: Record<string, SpecReader> = {
  gpt2: readGpt2Spec,
  gpt_neo: readGptNeoSpec,
  llama: (config) => readLlamaFamilySpec(config, LLAMA_FAMILY.llama),
  qwen2: (config) => readLlamaFamilySpec(config, LLAMA_FAMILY.qwen2),
  granite: (config) => readLlamaFamilySpec(config, LLAMA_FAMILY.granite),
  granitemoe: (config) => readLlamaFamilySpec(config, LLAMA_FAMILY.granitemoe),
};

export const SUPPORTED_MODEL_TYPES: readonly string[] = Object.freeze(Object.keys(SPEC_READERS));

export function readModelSpec(dir: string): ModelSpec {
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = readInputText(file, 'json');
  } catch (error) {
    if (inputErrorCode(error) === 'ENOENT') throw new InputError(`${file}: not found (a Hugging Face model folder has a config.json)`);
    throw error;
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
