// Writes a Hugging Face-layout GPT-2 folder with seeded random weights, so that tests can load
// a real-shaped model without downloading one. The same seed gives the same float32 weights
// whatever the dtype, sharding or name prefix, so variants can be compared with each other.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from './safetensorsWriter';
import { writeGpt2TokenizerFiles, type Gpt2TokenizerOptions } from './gpt2Tokenizer';
import { seededNormal } from './random';

export interface RandomGpt2Options {
  nLayers: number;
  nHeads: number;
  dModel: number;
  /** Default 50257, GPT-2's, so the real tokenizer's ids all fit. */
  vocabSize?: number;
  /** Default 1024. */
  maxPositions?: number;
  seed: number;
  /** Default F32. */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** 1 (default) writes model.safetensors; more writes model-0000i-of-0000n.safetensors and an index. */
  shards?: number;
  /** Names with the "transformer." prefix, as GPT2LMHeadModel checkpoints have them. */
  withPrefix?: boolean;
  /** Standard deviation of the linear and embedding weights; default 0.1, large enough that attention is not uniform. */
  weightStd?: number;
  tokenizer?: Gpt2TokenizerOptions;
}

function padded(index: number): string {
  return String(index).padStart(5, '0');
}

export function writeRandomGpt2(dir: string, options: RandomGpt2Options): void {
  const { nLayers, nHeads, dModel, seed } = options;
  const vocabSize = options.vocabSize ?? 50257;
  const maxPositions = options.maxPositions ?? 1024;
  const dtype = options.dtype ?? 'F32';
  const shards = options.shards ?? 1;
  const weightStd = options.weightStd ?? 0.1;
  const dMlp = 4 * dModel;
  if (dModel % nHeads !== 0) throw new Error(`writeRandomGpt2: dModel ${dModel} is not divisible by nHeads ${nHeads}`);

  const normal = seededNormal(seed);
  const tensors: TensorToWrite[] = [];
  const prefix = options.withPrefix ? 'transformer.' : '';
  const add = (name: string, shape: number[], sample: () => number) => {
    const data = new Float32Array(shape.reduce((product, size) => product * size, 1));
    for (let i = 0; i < data.length; i++) data[i] = sample();
    tensors.push({ name: prefix + name, dtype, shape, data });
  };
  const weight = () => weightStd * normal();
  // Layer-norm parameters away from (1, 0), so that a bug that ignores them shows up.
  const lnWeight = () => 1 + 0.1 * normal();
  const lnBias = () => 0.1 * normal();

  // Hugging Face's GPT-2 layout; Conv1D weights are stored [in, out].
  add('wte.weight', [vocabSize, dModel], weight);
  add('wpe.weight', [maxPositions, dModel], weight);
  for (let layer = 0; layer < nLayers; layer++) {
    const h = `h.${layer}`;
    add(`${h}.ln_1.weight`, [dModel], lnWeight);
    add(`${h}.ln_1.bias`, [dModel], lnBias);
    add(`${h}.attn.c_attn.weight`, [dModel, 3 * dModel], weight);
    add(`${h}.attn.c_attn.bias`, [3 * dModel], weight);
    add(`${h}.attn.c_proj.weight`, [dModel, dModel], weight);
    add(`${h}.attn.c_proj.bias`, [dModel], weight);
    add(`${h}.ln_2.weight`, [dModel], lnWeight);
    add(`${h}.ln_2.bias`, [dModel], lnBias);
    add(`${h}.mlp.c_fc.weight`, [dModel, dMlp], weight);
    add(`${h}.mlp.c_fc.bias`, [dMlp], weight);
    add(`${h}.mlp.c_proj.weight`, [dMlp, dModel], weight);
    add(`${h}.mlp.c_proj.bias`, [dModel], weight);
  }
  add('ln_f.weight', [dModel], lnWeight);
  add('ln_f.bias', [dModel], lnBias);

  mkdirSync(dir, { recursive: true });
  const metadata = { format: 'pt' }; // as save_pretrained writes it
  if (shards === 1) {
    writeSafetensors(join(dir, 'model.safetensors'), tensors, metadata);
  } else {
    if (!Number.isInteger(shards) || shards < 1 || shards > tensors.length) {
      throw new Error(`writeRandomGpt2: shards must be an integer from 1 to ${tensors.length}`);
    }
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    for (let shard = 0; shard < shards; shard++) {
      // Contiguous, equal-count groups: every shard gets at least one tensor.
      const group = tensors.slice(Math.floor((shard * tensors.length) / shards), Math.floor(((shard + 1) * tensors.length) / shards));
      const shardName = `model-${padded(shard + 1)}-of-${padded(shards)}.safetensors`;
      writeSafetensors(join(dir, shardName), group, metadata);
      for (const tensor of group) {
        weightMap[tensor.name] = shardName;
        totalSize += tensor.data.length * (dtype === 'F32' ? 4 : 2);
      }
    }
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2));
  }

  const config = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    n_layer: nLayers,
    n_head: nHeads,
    n_embd: dModel,
    n_inner: null,
    n_positions: maxPositions,
    n_ctx: maxPositions,
    vocab_size: vocabSize,
    layer_norm_epsilon: 1e-5,
    activation_function: 'gelu_new',
    scale_attn_by_inverse_layer_idx: false,
    tie_word_embeddings: true,
    bos_token_id: 50256,
    eos_token_id: 50256,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype],
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeGpt2TokenizerFiles(dir, options.tokenizer);
}
