// The benchmark models and prompts that bench/matrix.ts and bench/loadTime.ts share: random-weight models in Hugging
// Face layout with the shapes of GPT-2-small, Qwen2.5-0.5B and Llama-3.2-1B, and prompt pairs of an exact length.
import type { LoadedModel } from '../src/engine/model/load';
import type { Dataset, Example } from '../src/lib/dataset/types';
import { writeRandomGpt2 } from '../test/support/randomGpt2';
import { writeRandomLlamaFamily } from '../test/support/randomModels';

export interface Shape {
  name: string;
  description: string;
  write: (dir: string) => void;
}

export const SHAPES: Shape[] = [
  {
    name: 'gpt2-small',
    description: 'GPT-2-small (12 layers, d 768, 12 heads, vocab 50,257, tied, F32; 124M)',
    write: (dir) => writeRandomGpt2(dir, { nLayers: 12, nHeads: 12, dModel: 768, seed: 124, weightStd: 0.02 }),
  },
  {
    name: 'qwen2.5-0.5b',
    description: 'Qwen2.5-0.5B (24 layers, d 896, GQA 14/2, d_mlp 4,864, q/k/v biases, vocab 151,936, tied, BF16; 494M)',
    write: (dir) =>
      writeRandomLlamaFamily(dir, {
        modelType: 'qwen2',
        nLayers: 24,
        nHeads: 14,
        nKvHeads: 2,
        dModel: 896,
        dMlp: 4864,
        seed: 1,
        tied: true,
        dtype: 'BF16',
        ropeTheta: 1000000,
        maxPositions: 32768,
      }),
  },
  {
    name: 'llama-3.2-1b',
    description: 'Llama-3.2-1B (16 layers, d 2,048, GQA 32/8, d_mlp 8,192, llama3 RoPE scaling, vocab 128,256, tied, BF16; 1.24B)',
    write: (dir) =>
      writeRandomLlamaFamily(dir, {
        modelType: 'llama',
        nLayers: 16,
        nHeads: 32,
        nKvHeads: 8,
        dModel: 2048,
        dMlp: 8192,
        seed: 2,
        tied: true,
        dtype: 'BF16',
        ropeTheta: 500000,
        ropeScaling: { rope_type: 'llama3', factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 },
        maxPositions: 131072,
      }),
  },
];

const WORDS = [' the', ' cat', ' dog', ' house', ' tree', ' water', ' light', ' book', ' day', ' city', ' river', ' table'];

/**
 * `batch` prompt pairs of exactly `tokens` tokens (special tokens included) that differ in one name in the middle:
 * "The" + common words, each a single token in GPT-2's, Llama 3's and Qwen's vocabularies; checked, not assumed.
 */
export function promptPairs(model: LoadedModel, batch: number, tokens: number): Dataset {
  const base = model.tokenizer.encode('The').length;
  const fill = tokens - base - 1;
  if (fill < 1) throw new Error(`prompts of ${tokens} tokens are too short for this tokenizer`);
  const examples: Example[] = [];
  for (let b = 0; b < batch; b++) {
    const words = Array.from({ length: fill }, (_, i) => WORDS[(i * 7 + b * 5 + ((i * b) % 3)) % WORDS.length]);
    const at = Math.floor(fill / 2);
    const prompt = (name: string) => `The${words.slice(0, at).join('')}${name}${words.slice(at).join('')}`;
    const example: Example = { clean: prompt(' Mary'), corrupted: prompt(' John'), correct: ' Mary', incorrect: ' John', line: b + 1 };
    for (const text of [example.clean, example.corrupted]) {
      const length = model.tokenizer.encode(text).length;
      if (length !== tokens) throw new Error(`a prompt meant to be ${tokens} tokens is ${length}: pick other words`);
    }
    examples.push(example);
  }
  return { file: `matrix-${batch}x${tokens}.jsonl`, examples };
}
