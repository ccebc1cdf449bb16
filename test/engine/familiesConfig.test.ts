import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/shared/errors';
import { type LlamaDetails, type ModelSpec, readModelSpec, SUPPORTED_MODEL_TYPES } from '../../src/engine/model/config';

/** A Llama-family spec's details (the spec is discriminated by architecture: other families have none). */
function llamaOf(spec: ModelSpec): LlamaDetails {
  assert.equal(spec.architecture, 'llama');
  return spec.llama;
}
import { ropeInverseFrequencies } from '../../src/engine/architectures/llama';

/** config.json readers of the families beyond GPT-2: the seed notebook's models, and clear errors. */

const root = mkdtempSync(join(tmpdir(), 'atp-families-config-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

function folderWithConfig(config: unknown): string {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

function assertInputError(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InputError, `expected an InputError, got ${String(error)}`);
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

// The seed notebook's models, config.json as on the hub (keys that the engine does not read kept, a few left out).
const TINYSTORIES_33M = {
  activation_function: 'gelu_new',
  architectures: ['GPTNeoForCausalLM'],
  attention_dropout: 0,
  attention_layers: ['global', 'local'],
  attention_types: [[['global', 'local'], 1]],
  bos_token_id: 50256,
  embed_dropout: 0,
  eos_token_id: 50256,
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: null,
  layer_norm_epsilon: 1e-5,
  max_position_embeddings: 2048,
  model_type: 'gpt_neo',
  num_heads: 16,
  num_layers: 2,
  resid_dropout: 0,
  torch_dtype: 'float32',
  vocab_size: 50257,
  window_size: 256,
};
const LLAMA_32_1B = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  vocab_size: 128256,
};
const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'],
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: 'silu',
  hidden_size: 896,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  use_sliding_window: false,
  vocab_size: 151936,
};
const GRANITE_MOE_1B = {
  architectures: ['GraniteMoeForCausalLM'],
  attention_bias: false,
  attention_multiplier: 0.015625,
  embedding_multiplier: 12.0,
  hidden_act: 'silu',
  hidden_size: 1024,
  intermediate_size: 512,
  logits_scaling: 6.0,
  max_position_embeddings: 4096,
  model_type: 'granitemoe',
  num_attention_heads: 16,
  num_experts_per_tok: 8,
  num_hidden_layers: 24,
  num_key_value_heads: 8,
  num_local_experts: 32,
  residual_multiplier: 0.22,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 10000,
  tie_word_embeddings: true,
  vocab_size: 49155,
};

test('every family of the seed notebook has a reader', () => {
  assert.deepEqual([...SUPPORTED_MODEL_TYPES], ['gpt2', 'gpt_neo', 'llama', 'qwen2', 'granite', 'granitemoe']);
});

test('TinyStories-Instruct-2Layers-33M (gpt_neo)', () => {
  assert.deepEqual(readModelSpec(folderWithConfig(TINYSTORIES_33M)), {
    architecture: 'gpt_neo',
    modelType: 'gpt_neo',
    nLayers: 2,
    nHeads: 16,
    dModel: 1024,
    dHead: 64,
    dMlp: 4096,
    vocabSize: 50257,
    maxPositions: 2048,
    layerNormEps: 1e-5,
    activation: 'gelu_new',
    tiedEmbeddings: true,
    gptNeo: { attentionLayers: ['global', 'local'], windowSize: 256 },
  });
  // A TinySQL BM1 fine-tune: resized embedding for the added <|pad|>.
  assert.equal(readModelSpec(folderWithConfig({ ...TINYSTORIES_33M, vocab_size: 50258, pad_token_id: 50257 })).vocabSize, 50258);
});

test('Llama-3.2-1B-Instruct (llama, GQA 32/8, llama3 rope scaling, tied)', () => {
  const spec = readModelSpec(folderWithConfig(LLAMA_32_1B));
  assert.equal(spec.architecture, 'llama');
  assert.equal(spec.nHeads, 32);
  assert.equal(spec.dHead, 64);
  assert.equal(spec.dMlp, 8192);
  assert.equal(spec.layerNormEps, 1e-5);
  assert.equal(spec.tiedEmbeddings, true);
  assert.deepEqual(spec.llama, {
    nKvHeads: 8,
    ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    embeddingMultiplier: 1,
    attentionScale: 1 / 8,
    residualMultiplier: 1,
    logitsScaling: 1,
  });
  // SmolLM-style: no head_dim, no num_key_value_heads, untied by default; attention_bias biases all four projections.
  const { head_dim: _h, num_key_value_heads: _k, tie_word_embeddings: _t, ...plain } = LLAMA_32_1B;
  const smol = readModelSpec(folderWithConfig({ ...plain, attention_bias: true, rope_scaling: null }));
  assert.equal(llamaOf(smol).nKvHeads, 32);
  assert.equal(smol.tiedEmbeddings, false);
  assert.equal(llamaOf(smol).ropeScaling, null);
  assert.equal(llamaOf(smol).qkvBias && llamaOf(smol).oBias, true);
  // transformers ≥ 4.5x writes rope_parameters instead of rope_theta/rope_scaling.
  const { rope_scaling: _s, rope_theta: _r, ...noRope } = LLAMA_32_1B;
  const modern = readModelSpec(folderWithConfig({ ...noRope, rope_parameters: { ...LLAMA_32_1B.rope_scaling, rope_theta: 500000.0 } }));
  assert.deepEqual(llamaOf(modern).ropeScaling, llamaOf(spec).ropeScaling);
  assert.equal(llamaOf(modern).ropeTheta, 500000);
});

test('Qwen2.5-0.5B-Instruct (qwen2: q/k/v biases, no o_proj bias)', () => {
  const spec = readModelSpec(folderWithConfig(QWEN25_05B));
  assert.equal(spec.modelType, 'qwen2');
  assert.equal(spec.dHead, 64);
  assert.equal(llamaOf(spec).nKvHeads, 2);
  assert.equal(llamaOf(spec).qkvBias, true);
  assert.equal(llamaOf(spec).oBias, false);
  assert.equal(llamaOf(spec).ropeTheta, 1e6);
});

test('granite-3.0-1b-a400m-instruct (granitemoe: multipliers, 32 experts top-8)', () => {
  const spec = readModelSpec(folderWithConfig(GRANITE_MOE_1B));
  assert.equal(spec.architecture, 'llama');
  assert.equal(spec.modelType, 'granitemoe');
  assert.equal(spec.dMlp, 512);
  assert.deepEqual(spec.llama, {
    nKvHeads: 8,
    ropeTheta: 10000,
    ropeScaling: null,
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    embeddingMultiplier: 12,
    attentionScale: 0.015625,
    residualMultiplier: 0.22,
    logitsScaling: 6,
    moe: { nExperts: 32, topK: 8 },
  });
  const { num_local_experts: _e, num_experts_per_tok: _k, ...dense } = GRANITE_MOE_1B;
  const granite = readModelSpec(folderWithConfig({ ...dense, model_type: 'granite', mlp_bias: true }));
  assert.equal(llamaOf(granite).moe, undefined);
  assert.equal(llamaOf(granite).mlpBias, true);
  assert.equal(llamaOf(granite).attentionScale, 0.015625);
});

test('unknown, unsupported and ill-typed keys are InputErrors naming config.json and the key', () => {
  const file = (dir: string) => join(dir, 'config.json');
  const unknown = folderWithConfig({ ...LLAMA_32_1B, model_type: 'mistral' });
  assertInputError(
    () => readModelSpec(unknown),
    `${file(unknown)}: model_type "mistral" is not supported (supported: gpt2, gpt_neo, llama, qwen2, granite, granitemoe)`,
  );

  const yarn = folderWithConfig({ ...LLAMA_32_1B, rope_scaling: { rope_type: 'yarn', factor: 4 } });
  assertInputError(() => readModelSpec(yarn), `${file(yarn)}: key "rope_scaling.rope_type" is "yarn"; supported: default, linear, llama3`);
  const factor = folderWithConfig({ ...LLAMA_32_1B, rope_scaling: { ...LLAMA_32_1B.rope_scaling, factor: '32' } });
  assertInputError(() => readModelSpec(factor), `${file(factor)}: key "rope_scaling.factor" must be a positive number (found "32")`);
  const scalingList = folderWithConfig({ ...LLAMA_32_1B, rope_scaling: [32] });
  assertInputError(() => readModelSpec(scalingList), `${file(scalingList)}: key "rope_scaling" must be an object or null (found [32])`);
  const kv = folderWithConfig({ ...LLAMA_32_1B, num_key_value_heads: 5 });
  assertInputError(() => readModelSpec(kv), `${file(kv)}: key "num_attention_heads" (32) must be divisible by "num_key_value_heads" (5)`);
  const act = folderWithConfig({ ...LLAMA_32_1B, hidden_act: 'gelu' });
  assertInputError(() => readModelSpec(act), `${file(act)}: key "hidden_act" is "gelu"; supported for llama: silu`);
  const partial = folderWithConfig({ ...LLAMA_32_1B, partial_rotary_factor: 0.5 });
  assertInputError(() => readModelSpec(partial), `${file(partial)}: key "partial_rotary_factor" is 0.5; only full rotary embeddings (1.0) are supported`);
  const sliding = folderWithConfig({ ...QWEN25_05B, use_sliding_window: true });
  assertInputError(() => readModelSpec(sliding), `${file(sliding)}: key "use_sliding_window" is true; sliding-window attention is not supported for qwen2`);

  const { num_local_experts: _e, ...noExperts } = GRANITE_MOE_1B;
  const missing = folderWithConfig(noExperts);
  assertInputError(() => readModelSpec(missing), `${file(missing)}: key "num_local_experts" must be a positive integer (it is missing)`);
  const topK = folderWithConfig({ ...GRANITE_MOE_1B, num_experts_per_tok: 33 });
  assertInputError(() => readModelSpec(topK), `${file(topK)}: key "num_experts_per_tok" (33) must not exceed "num_local_experts" (32)`);
  const multiplier = folderWithConfig({ ...GRANITE_MOE_1B, embedding_multiplier: '12' });
  assertInputError(() => readModelSpec(multiplier), `${file(multiplier)}: key "embedding_multiplier" must be a positive number (found "12")`);
  const headDim = folderWithConfig({ ...GRANITE_MOE_1B, head_dim: 128 });
  assertInputError(
    () => readModelSpec(headDim),
    `${file(headDim)}: key "head_dim" is 128; granitemoe uses hidden_size / num_attention_heads (64) as the head size`,
  );

  const types = folderWithConfig({ ...TINYSTORIES_33M, attention_types: [[['global', 'sparse'], 1]] });
  assertInputError(() => readModelSpec(types), /key "attention_types" must be a list of \[\["global" \| "local", \.\.\.\], repeat\] pairs \(found/);
  const count = folderWithConfig({ ...TINYSTORIES_33M, attention_types: [[['global', 'local'], 2]], attention_layers: undefined });
  assertInputError(() => readModelSpec(count), `${file(count)}: key "attention_types" describes 4 layers but "num_layers" is 2`);
  const disagree = folderWithConfig({ ...TINYSTORIES_33M, attention_layers: ['local', 'global'] });
  assertInputError(() => readModelSpec(disagree), /key "attention_layers" \(\["local","global"\]\) disagrees with "attention_types"/);
  const neoAct = folderWithConfig({ ...TINYSTORIES_33M, activation_function: 'relu' });
  assertInputError(() => readModelSpec(neoAct), `${file(neoAct)}: key "activation_function" is "relu"; supported for gpt_neo: gelu_new, gelu_pytorch_tanh`);
  const windowSize = folderWithConfig({ ...TINYSTORIES_33M, window_size: 0 });
  assertInputError(() => readModelSpec(windowSize), `${file(windowSize)}: key "window_size" must be a positive integer (found 0)`);
});

test("Llama 3's rope scaling: high frequencies kept, low ones divided by factor, a smooth blend between", () => {
  const dHead = 64;
  const base = ropeInverseFrequencies(dHead, 500000, null);
  const scaled = ropeInverseFrequencies(dHead, 500000, { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
  assert.equal(base[0], 1);
  assert.ok(Math.abs(base[1] - 500000 ** (-2 / 64)) < 1e-15);
  let medium = 0;
  base.forEach((f, i) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength < 8192 / 4) assert.equal(scaled[i], f);
    else if (wavelength > 8192) assert.ok(Math.abs(scaled[i] - f / 32) <= 1e-18);
    else {
      medium++;
      assert.ok(scaled[i] < f && scaled[i] > f / 32, 'blended frequencies lie between');
      const smooth = (8192 / wavelength - 1) / 3;
      assert.ok(Math.abs(scaled[i] - ((1 - smooth) * f) / 32 - smooth * f) < 1e-15);
    }
  });
  assert.ok(medium > 0, 'some frequencies are blended');
  assert.deepEqual(ropeInverseFrequencies(4, 100, { type: 'linear', factor: 2 }), [0.5, 0.05]);
});

test('GPT-Neo: a hostile attention_types repeat is refused by its count, never expanded', () => {
  const huge = folderWithConfig({ ...TINYSTORIES_33M, attention_types: [[['global', 'local'], 1e15]], attention_layers: undefined });
  const started = performance.now();
  assertInputError(() => readModelSpec(huge), /key "attention_types" describes 2000000000000000 layers but "num_layers" is 2/);
  assert.ok(performance.now() - started < 1000);
});
