import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/shared/errors';
import { findTensor, readModelSpec, SUPPORTED_MODEL_TYPES } from '../../src/engine/model/config';
import type { TensorEntry } from '../../src/lib/model/safetensors';

const root = mkdtempSync(join(tmpdir(), 'atp-config-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** A folder holding config.json with `config` (an object, or raw text). */
function folderWithConfig(config: unknown): string {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

// GPT-2 small's config.json as published on the Hugging Face hub (task-specific params left out).
const GPT2_SMALL = {
  activation_function: 'gelu_new',
  architectures: ['GPT2LMHeadModel'],
  attn_pdrop: 0.1,
  bos_token_id: 50256,
  embd_pdrop: 0.1,
  eos_token_id: 50256,
  initializer_range: 0.02,
  layer_norm_epsilon: 1e-5,
  model_type: 'gpt2',
  n_ctx: 1024,
  n_embd: 768,
  n_head: 12,
  n_layer: 12,
  n_positions: 1024,
  resid_pdrop: 0.1,
  summary_activation: null,
  summary_first_dropout: 0.1,
  summary_proj_to_labels: true,
  summary_type: 'cls_index',
  summary_use_proj: true,
  vocab_size: 50257,
};

function assertInputError(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InputError, `expected an InputError, got ${String(error)}`);
    assert.equal(error.message, message);
    return true;
  });
}

test("GPT-2 small's config.json reads into its ModelSpec", () => {
  assert.deepEqual(readModelSpec(folderWithConfig(GPT2_SMALL)), {
    architecture: 'gpt2',
    modelType: 'gpt2',
    nLayers: 12,
    nHeads: 12,
    dModel: 768,
    dHead: 64,
    dMlp: 3072,
    vocabSize: 50257,
    maxPositions: 1024,
    layerNormEps: 1e-5,
    activation: 'gelu_new',
    scaleAttnByInverseLayerIdx: false,
    tiedEmbeddings: true,
  });
});

test('optional GPT-2 keys are honoured when present', () => {
  const spec = readModelSpec(
    folderWithConfig({
      ...GPT2_SMALL,
      n_inner: 1000,
      scale_attn_by_inverse_layer_idx: true,
      tie_word_embeddings: false,
      layer_norm_epsilon: 1e-6,
    }),
  );
  assert.equal(spec.dMlp, 1000);
  assert.equal(spec.architecture, 'gpt2');
  assert.equal(spec.activation, 'gelu_new');
  assert.equal(spec.scaleAttnByInverseLayerIdx, true);
  assert.equal(spec.tiedEmbeddings, false);
  assert.equal(spec.layerNormEps, 1e-6);
  // gelu_pytorch_tanh is the same tanh approximation as gelu_new.
  assert.equal(readModelSpec(folderWithConfig({ ...GPT2_SMALL, activation_function: 'gelu_pytorch_tanh' })).activation, 'gelu_new');
  // Old configs have only n_ctx.
  const { n_positions: _dropped, ...onlyContext } = { ...GPT2_SMALL, n_ctx: 512 };
  assert.equal(readModelSpec(folderWithConfig(onlyContext)).maxPositions, 512);
});

test('an unknown model_type names it and lists the supported ones', () => {
  assert.deepEqual([...SUPPORTED_MODEL_TYPES], ['gpt2', 'gpt_neo', 'llama', 'qwen2', 'granite', 'granitemoe']);
  const dir = folderWithConfig({ ...GPT2_SMALL, model_type: 'mamba' });
  assertInputError(
    () => readModelSpec(dir),
    `${join(dir, 'config.json')}: model_type "mamba" is not supported (supported: gpt2, gpt_neo, llama, qwen2, granite, granitemoe)`,
  );
  const noType = folderWithConfig({ n_layer: 2 });
  assertInputError(
    () => readModelSpec(noType),
    `${join(noType, 'config.json')}: key "model_type" must be a string naming the model family (supported: gpt2, gpt_neo, llama, qwen2, granite, granitemoe)`,
  );
});

test('missing and ill-typed keys name config.json and the key', () => {
  const { n_layer: _dropped, ...noLayers } = GPT2_SMALL;
  const missing = folderWithConfig(noLayers);
  assertInputError(() => readModelSpec(missing), `${join(missing, 'config.json')}: key "n_layer" must be a positive integer (it is missing)`);

  const stringHeads = folderWithConfig({ ...GPT2_SMALL, n_head: '12' });
  assertInputError(() => readModelSpec(stringHeads), `${join(stringHeads, 'config.json')}: key "n_head" must be a positive integer (found "12")`);

  const fractional = folderWithConfig({ ...GPT2_SMALL, vocab_size: 1.5 });
  assertInputError(() => readModelSpec(fractional), `${join(fractional, 'config.json')}: key "vocab_size" must be a positive integer (found 1.5)`);

  const indivisible = folderWithConfig({ ...GPT2_SMALL, n_head: 7 });
  assertInputError(() => readModelSpec(indivisible), `${join(indivisible, 'config.json')}: key "n_embd" (768) must be divisible by "n_head" (7)`);

  const badFlag = folderWithConfig({ ...GPT2_SMALL, tie_word_embeddings: 'yes' });
  assertInputError(() => readModelSpec(badFlag), `${join(badFlag, 'config.json')}: key "tie_word_embeddings" must be true or false (found "yes")`);

  const badActivation = folderWithConfig({ ...GPT2_SMALL, activation_function: 'swish' });
  assertInputError(
    () => readModelSpec(badActivation),
    `${join(badActivation, 'config.json')}: key "activation_function" is "swish"; supported for gpt2: gelu_new, gelu_pytorch_tanh`,
  );
  // Activations that transformers knows but the forward pass does not implement are refused when config.json is
  // read, not when the graph is built: exact gelu and relu are not gelu_new's tanh approximation.
  for (const name of ['gelu', 'relu', 'silu', 'gelu_fast']) {
    const unsupported = folderWithConfig({ ...GPT2_SMALL, activation_function: name });
    assertInputError(
      () => readModelSpec(unsupported),
      `${join(unsupported, 'config.json')}: key "activation_function" is "${name}"; supported for gpt2: gelu_new, gelu_pytorch_tanh`,
    );
  }
  const unscaled = folderWithConfig({ ...GPT2_SMALL, scale_attn_weights: false });
  assertInputError(
    () => readModelSpec(unscaled),
    `${join(unscaled, 'config.json')}: key "scale_attn_weights" is false; only scaled attention scores (true) are supported for gpt2`,
  );
  const nonString = folderWithConfig({ ...GPT2_SMALL, activation_function: 3 });
  assertInputError(() => readModelSpec(nonString), `${join(nonString, 'config.json')}: key "activation_function" must be a string (found 3)`);

  const badEps = folderWithConfig({ ...GPT2_SMALL, layer_norm_epsilon: null });
  assertInputError(() => readModelSpec(badEps), `${join(badEps, 'config.json')}: key "layer_norm_epsilon" must be a positive number (found null)`);
});

test('a missing or malformed config.json is an InputError naming it', () => {
  const empty = join(root, `case-${counter++}`);
  mkdirSync(empty);
  assertInputError(() => readModelSpec(empty), `${join(empty, 'config.json')}: not found (a Hugging Face model folder has a config.json)`);

  const broken = folderWithConfig('{"model_type": "gpt2",');
  assert.throws(
    () => readModelSpec(broken),
    (error: unknown) => error instanceof InputError && error.message.startsWith(`${join(broken, 'config.json')}: not valid JSON: `),
  );

  const array = folderWithConfig('[1]');
  assertInputError(() => readModelSpec(array), `${join(array, 'config.json')}: must be a JSON object`);
});

test('findTensor accepts names with or without the "transformer." prefix', () => {
  const entry = (name: string): TensorEntry => ({ name, dtype: 'F32', shape: [1], file: '/models/tiny/model.safetensors', offset: 8, length: 4 });
  const prefixed = new Map([['transformer.h.0.ln_1.weight', entry('transformer.h.0.ln_1.weight')]]);
  const bare = new Map([['h.0.ln_1.weight', entry('h.0.ln_1.weight')]]);
  for (const weights of [prefixed, bare]) {
    for (const name of ['h.0.ln_1.weight', 'transformer.h.0.ln_1.weight']) {
      assert.equal(findTensor(weights, name).shape[0], 1);
    }
  }
  assertInputError(() => findTensor(bare, 'ln_f.weight'), '/models/tiny: weight "ln_f.weight" not found (also looked for "transformer.ln_f.weight")');
  assertInputError(
    () => findTensor(new Map(), 'transformer.wte.weight', '/models/x'),
    '/models/x: weight "wte.weight" not found (also looked for "transformer.wte.weight")',
  );
});
