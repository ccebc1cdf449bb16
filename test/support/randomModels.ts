// Writes Hugging Face-layout folders (config.json with the real keys and model_type, safetensors with the
// real tensor names, a real tokenizer) with seeded random weights for the families beyond GPT-2:
// GPT-Neo (GPT-2 BPE tokenizer, optionally with the TinySQL BM1 fine-tunes' added <|pad|> token) and the
// Llama family — llama / granite / granitemoe with the Llama 3 tokenizer (BOS through the hub's
// post-processor), qwen2 with the Qwen tokenizer. dModel stays small so that even the 128k/152k-row
// embeddings are a few MB.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from './safetensorsWriter';
import { gpt2TokenizerConfigJson, gpt2TokenizerJson, writeGpt2TokenizerFiles } from './gpt2Tokenizer';
import { seededNormal } from './random';
import { LLAMA3_BOS_ID, LLAMA3_HUB_POST_PROCESSOR, LLAMA3_TOKENIZER_DIR, QWEN3_TOKENIZER_DIR } from './tokenizers';
export { LLAMA3_BOS_ID };

export type StoredDtype = 'F32' | 'F16' | 'BF16';

/** Collects tensors in the order they are added (the same seed gives the same values whatever the dtype). */
class TensorWriter {
  readonly tensors: TensorToWrite[] = [];
  private readonly normal: () => number;

  constructor(
    seed: number,
    private readonly dtype: StoredDtype,
  ) {
    this.normal = seededNormal(seed);
  }

  add(name: string, shape: number[], sample: (normal: () => number) => number): void {
    const data = new Float32Array(shape.reduce((p, q) => p * q, 1));
    for (let i = 0; i < data.length; i++) data[i] = sample(this.normal);
    this.tensors.push({ name, dtype: this.dtype, shape, data });
  }

  write(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeSafetensors(join(dir, 'model.safetensors'), this.tensors, { format: 'pt' });
  }
}

const weight = (std: number) => (normal: () => number) => std * normal();
// Norm parameters away from (1, 0), so that a bug that ignores them shows up.
const normWeight = (normal: () => number) => 1 + 0.1 * normal();
const normBias = (normal: () => number) => 0.1 * normal();
const torchDtype = (dtype: StoredDtype) => ({ F32: 'float32', F16: 'float16', BF16: 'bfloat16' })[dtype];

// ---- GPT-Neo -------------------------------------------------------------------------------------------------

export interface RandomGptNeoOptions {
  nLayers: number;
  nHeads: number;
  dModel: number;
  seed: number;
  /** config.json's attention_types; default [[["global", "local"], nLayers / 2]]. */
  attentionTypes?: Array<[Array<'global' | 'local'>, number]>;
  /** Local attention window; default 256 (GPT-Neo's). */
  windowSize?: number;
  /** Default 1024. */
  maxPositions?: number;
  dtype?: StoredDtype;
  /**
   * As the TinySQL BM1 fine-tunes: the tokenizer gains "<|pad|>" (id 50257) and the embedding is resized,
   * config.json's vocab_size becoming `padVocabSize` (default 50258).
   */
  padToken?: boolean;
  padVocabSize?: number;
}

export const GPT_NEO_PAD_TOKEN = '<|pad|>';
export const GPT_NEO_PAD_ID = 50257;

export function writeRandomGptNeo(dir: string, options: RandomGptNeoOptions): void {
  const { nLayers, nHeads, dModel, seed } = options;
  const vocabSize = options.padToken ? (options.padVocabSize ?? GPT_NEO_PAD_ID + 1) : 50257;
  const maxPositions = options.maxPositions ?? 1024;
  const dtype = options.dtype ?? 'F32';
  const dMlp = 4 * dModel;
  const attentionTypes = options.attentionTypes ?? [[['global', 'local'], nLayers / 2]];
  const attentionLayers = attentionTypes.flatMap(([kinds, repeat]) => Array.from({ length: repeat }, () => kinds).flat());
  if (attentionLayers.length !== nLayers) throw new Error('writeRandomGptNeo: attentionTypes must describe nLayers layers');

  const t = new TensorWriter(seed, dtype);
  const std = weight(0.1);
  // GPTNeoForCausalLM's names; nn.Linear weights are [out, in]. The tied lm_head is not stored.
  t.add('transformer.wte.weight', [vocabSize, dModel], std);
  t.add('transformer.wpe.weight', [maxPositions, dModel], std);
  for (let l = 0; l < nLayers; l++) {
    const h = `transformer.h.${l}`;
    t.add(`${h}.ln_1.weight`, [dModel], normWeight);
    t.add(`${h}.ln_1.bias`, [dModel], normBias);
    // Larger q/k weights: GPT-Neo does not scale scores by 1/sqrt(dHead), so they are naturally larger.
    t.add(`${h}.attn.attention.k_proj.weight`, [dModel, dModel], weight(0.2));
    t.add(`${h}.attn.attention.v_proj.weight`, [dModel, dModel], std);
    t.add(`${h}.attn.attention.q_proj.weight`, [dModel, dModel], weight(0.2));
    t.add(`${h}.attn.attention.out_proj.weight`, [dModel, dModel], std);
    t.add(`${h}.attn.attention.out_proj.bias`, [dModel], std);
    t.add(`${h}.ln_2.weight`, [dModel], normWeight);
    t.add(`${h}.ln_2.bias`, [dModel], normBias);
    t.add(`${h}.mlp.c_fc.weight`, [dMlp, dModel], std);
    t.add(`${h}.mlp.c_fc.bias`, [dMlp], std);
    t.add(`${h}.mlp.c_proj.weight`, [dModel, dMlp], std);
    t.add(`${h}.mlp.c_proj.bias`, [dModel], std);
  }
  t.add('transformer.ln_f.weight', [dModel], normWeight);
  t.add('transformer.ln_f.bias', [dModel], normBias);
  t.write(dir);

  // As roneneldan/TinyStories-Instruct-2Layers-33M's config.json, scaled down.
  const config = {
    activation_function: 'gelu_new',
    architectures: ['GPTNeoForCausalLM'],
    attention_dropout: 0,
    attention_layers: attentionLayers,
    attention_types: attentionTypes,
    bos_token_id: 50256,
    embed_dropout: 0,
    eos_token_id: 50256,
    gradient_checkpointing: false,
    hidden_size: dModel,
    initializer_range: 0.02,
    intermediate_size: null,
    layer_norm_epsilon: 1e-5,
    max_position_embeddings: maxPositions,
    model_type: 'gpt_neo',
    num_heads: nHeads,
    num_layers: nLayers,
    resid_dropout: 0,
    torch_dtype: torchDtype(dtype),
    use_cache: true,
    vocab_size: vocabSize,
    window_size: options.windowSize ?? 256,
    ...(options.padToken ? { pad_token_id: GPT_NEO_PAD_ID } : {}),
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  if (!options.padToken) {
    writeGpt2TokenizerFiles(dir);
    return;
  }
  // The GPT-2 tokenizer with "<|pad|>" added as a special token (tokenizer.add_special_tokens({"pad_token": ...})).
  const json = JSON.parse(gpt2TokenizerJson()) as { added_tokens: object[] };
  json.added_tokens.push({
    id: GPT_NEO_PAD_ID,
    content: GPT_NEO_PAD_TOKEN,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  const tokenizerConfig = JSON.parse(gpt2TokenizerConfigJson()) as Record<string, unknown>;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...tokenizerConfig, pad_token: GPT_NEO_PAD_TOKEN }, null, 2));
}

// ---- the Llama family ----------------------------------------------------------------------------------------

export type LlamaFamilyType = 'llama' | 'qwen2' | 'granite' | 'granitemoe';

export interface RandomLlamaOptions {
  modelType: LlamaFamilyType;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  dModel: number;
  /** Written as config.json's head_dim (llama/qwen2 only) when it differs from dModel / nHeads. */
  headDim?: number;
  dMlp: number;
  seed: number;
  tied: boolean;
  dtype?: StoredDtype;
  ropeTheta?: number;
  /** Hugging Face's rope_scaling, e.g. Llama 3.2's {"rope_type": "llama3", ...}. */
  ropeScaling?: Record<string, unknown> | null;
  /** llama/granite: attention_bias (q, k, v and o projections) and mlp_bias. */
  attentionBias?: boolean;
  mlpBias?: boolean;
  /** granite/granitemoe. */
  multipliers?: { embedding: number; attention: number; residual: number; logitsScaling: number };
  /** granitemoe. */
  experts?: { count: number; topK: number };
  /** Default 2048. */
  maxPositions?: number;
}

/** The Llama 3 vocabulary including its 256 reserved special tokens (config.json's vocab_size). */
export const LLAMA3_VOCAB_SIZE = 128256;
/** Qwen2.5's config.json vocab_size (the embedding is padded beyond the tokenizer's 151,6xx ids). */
export const QWEN2_VOCAB_SIZE = 151936;

let llama3TokenizerJson: string | undefined;

function writeTokenizer(dir: string, modelType: LlamaFamilyType): void {
  if (modelType === 'qwen2') {
    for (const name of ['tokenizer.json', 'tokenizer_config.json']) writeFileSync(join(dir, name), readFileSync(join(QWEN3_TOKENIZER_DIR, name)));
    return;
  }
  llama3TokenizerJson ??= JSON.stringify({
    ...JSON.parse(readFileSync(join(LLAMA3_TOKENIZER_DIR, 'tokenizer.json'), 'utf8')),
    post_processor: LLAMA3_HUB_POST_PROCESSOR,
  });
  writeFileSync(join(dir, 'tokenizer.json'), llama3TokenizerJson);
  writeFileSync(join(dir, 'tokenizer_config.json'), readFileSync(join(LLAMA3_TOKENIZER_DIR, 'tokenizer_config.json')));
}

export function writeRandomLlamaFamily(dir: string, options: RandomLlamaOptions): void {
  const { modelType, nLayers, nHeads, nKvHeads, dModel, dMlp, seed } = options;
  const dHead = options.headDim ?? dModel / nHeads;
  const vocabSize = modelType === 'qwen2' ? QWEN2_VOCAB_SIZE : LLAMA3_VOCAB_SIZE;
  const dtype = options.dtype ?? 'F32';
  const qkvBias = modelType === 'qwen2' || (options.attentionBias ?? false);
  const oBias = modelType !== 'qwen2' && (options.attentionBias ?? false);
  const mlpBias = options.mlpBias ?? false;
  const granite = modelType === 'granite' || modelType === 'granitemoe';
  if (granite && dHead !== dModel / nHeads) throw new Error('writeRandomLlamaFamily: granite derives head_dim from hidden_size');
  if ((modelType === 'granitemoe') !== (options.experts !== undefined)) throw new Error('writeRandomLlamaFamily: experts go with granitemoe');

  const t = new TensorWriter(seed, dtype);
  const std = weight(0.1);
  // Embeddings with std 1, as Llama's residual stream is (RMSNorm makes the scale matter only relative to the blocks').
  t.add('model.embed_tokens.weight', [vocabSize, dModel], weight(0.5));
  for (let l = 0; l < nLayers; l++) {
    const p = `model.layers.${l}`;
    t.add(`${p}.input_layernorm.weight`, [dModel], normWeight);
    t.add(`${p}.self_attn.q_proj.weight`, [nHeads * dHead, dModel], weight(0.3));
    if (qkvBias) t.add(`${p}.self_attn.q_proj.bias`, [nHeads * dHead], std);
    t.add(`${p}.self_attn.k_proj.weight`, [nKvHeads * dHead, dModel], weight(0.3));
    if (qkvBias) t.add(`${p}.self_attn.k_proj.bias`, [nKvHeads * dHead], std);
    t.add(`${p}.self_attn.v_proj.weight`, [nKvHeads * dHead, dModel], std);
    if (qkvBias) t.add(`${p}.self_attn.v_proj.bias`, [nKvHeads * dHead], std);
    t.add(`${p}.self_attn.o_proj.weight`, [dModel, nHeads * dHead], std);
    if (oBias) t.add(`${p}.self_attn.o_proj.bias`, [dModel], std);
    t.add(`${p}.post_attention_layernorm.weight`, [dModel], normWeight);
    if (options.experts) {
      const { count } = options.experts;
      // GraniteMoeMoE: router (nn.Linear, [E, d]) and GraniteMoeParallelExperts weights [E, out, in].
      t.add(`${p}.block_sparse_moe.router.layer.weight`, [count, dModel], weight(0.5));
      t.add(`${p}.block_sparse_moe.input_linear.weight`, [count, 2 * dMlp, dModel], std);
      t.add(`${p}.block_sparse_moe.output_linear.weight`, [count, dModel, dMlp], std);
    } else {
      t.add(`${p}.mlp.gate_proj.weight`, [dMlp, dModel], std);
      if (mlpBias) t.add(`${p}.mlp.gate_proj.bias`, [dMlp], std);
      t.add(`${p}.mlp.up_proj.weight`, [dMlp, dModel], std);
      if (mlpBias) t.add(`${p}.mlp.up_proj.bias`, [dMlp], std);
      t.add(`${p}.mlp.down_proj.weight`, [dModel, dMlp], std);
      if (mlpBias) t.add(`${p}.mlp.down_proj.bias`, [dModel], std);
    }
  }
  t.add('model.norm.weight', [dModel], normWeight);
  if (!options.tied) t.add('lm_head.weight', [vocabSize, dModel], weight(0.5));
  t.write(dir);

  const common = {
    attention_dropout: 0.0,
    hidden_act: 'silu',
    hidden_size: dModel,
    initializer_range: 0.02,
    intermediate_size: dMlp,
    max_position_embeddings: options.maxPositions ?? 2048,
    model_type: modelType,
    num_attention_heads: nHeads,
    num_hidden_layers: nLayers,
    num_key_value_heads: nKvHeads,
    rms_norm_eps: 1e-5,
    rope_scaling: options.ropeScaling ?? null,
    rope_theta: options.ropeTheta ?? 10000.0,
    tie_word_embeddings: options.tied,
    torch_dtype: torchDtype(dtype),
    use_cache: true,
    vocab_size: vocabSize,
  };
  const perType: Record<LlamaFamilyType, Record<string, unknown>> = {
    // As meta-llama/Llama-3.2-1B-Instruct's config.json, scaled down.
    llama: {
      architectures: ['LlamaForCausalLM'],
      attention_bias: options.attentionBias ?? false,
      bos_token_id: LLAMA3_BOS_ID,
      eos_token_id: [128001, 128008, 128009],
      head_dim: dHead,
      mlp_bias: mlpBias,
      pretraining_tp: 1,
    },
    // As Qwen/Qwen2.5-0.5B-Instruct's.
    qwen2: {
      architectures: ['Qwen2ForCausalLM'],
      bos_token_id: 151643,
      eos_token_id: 151645,
      max_window_layers: nLayers,
      sliding_window: 32768,
      use_sliding_window: false,
      ...(options.headDim !== undefined ? { head_dim: dHead } : {}),
    },
    // As ibm-granite/granite-3.0-2b-instruct's.
    granite: {
      architectures: ['GraniteForCausalLM'],
      attention_bias: options.attentionBias ?? false,
      mlp_bias: mlpBias,
      bos_token_id: 0,
      eos_token_id: 0,
    },
    // As ibm-granite/granite-3.0-1b-a400m-instruct's.
    granitemoe: {
      architectures: ['GraniteMoeForCausalLM'],
      attention_bias: false,
      bos_token_id: 0,
      eos_token_id: 0,
      num_local_experts: options.experts?.count,
      num_experts_per_tok: options.experts?.topK,
      output_router_logits: false,
      router_aux_loss_coef: 0.001,
    },
  };
  const multipliers = granite
    ? {
        embedding_multiplier: options.multipliers?.embedding ?? 1.0,
        attention_multiplier: options.multipliers?.attention ?? 1.0,
        residual_multiplier: options.multipliers?.residual ?? 1.0,
        logits_scaling: options.multipliers?.logitsScaling ?? 1.0,
      }
    : {};
  const config = Object.fromEntries(Object.entries({ ...common, ...perType[modelType], ...multipliers }).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeTokenizer(dir, modelType);
}
