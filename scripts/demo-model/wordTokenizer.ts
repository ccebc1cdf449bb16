// A small byte-level BPE tokenizer for the TinySQL demo model: GPT-2's pre-tokenizer and byte alphabet, plus
// every word of the task as a whole token. `ignore_merges` (as in Llama 3's tokenizer.json) makes a pre-token
// that is in the vocabulary one token, so every table and field name is a single token with or without its
// leading space; any other text still encodes, byte by byte.

/** GPT-2's reversible byte → printable character table. */
function bytesToUnicode(): string[] {
  const printable = new Set<number>();
  for (let b = 33; b <= 126; b++) printable.add(b);
  for (let b = 161; b <= 172; b++) printable.add(b);
  for (let b = 174; b <= 255; b++) printable.add(b);
  const table: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable.has(b) ? b : 256 + extra++);
  return table;
}

const GPT2_SPLIT = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** Splits text the way the tokenizer's pre-tokenizer does (GPT-2's regex). */
export function preTokens(text: string): string[] {
  return text.match(new RegExp(GPT2_SPLIT, 'gu')) ?? [];
}

export const END_OF_TEXT = '<|endoftext|>';

export interface WordTokenizerFiles {
  tokenizerJson: string;
  tokenizerConfigJson: string;
  vocabSize: number;
  endOfTextId: number;
}

/** Builds tokenizer.json for the given pre-tokens (each becomes one token; duplicates are ignored). */
export function buildWordTokenizer(words: Iterable<string>): WordTokenizerFiles {
  const byteChars = bytesToUnicode();
  const encoder = new TextEncoder();
  const vocab: Record<string, number> = {};
  const add = (piece: string) => {
    if (!(piece in vocab)) vocab[piece] = Object.keys(vocab).length;
  };
  byteChars.forEach(add);
  for (const word of [...new Set(words)].sort()) {
    if (word.length === 0) continue;
    add(Array.from(encoder.encode(word), (b) => byteChars[b]).join(''));
  }
  const endOfTextId = Object.keys(vocab).length;
  vocab[END_OF_TEXT] = endOfTextId;
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: endOfTextId, content: END_OF_TEXT, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: true,
      vocab,
      merges: [],
    },
  };
  const config = {
    tokenizer_class: 'GPT2Tokenizer',
    bos_token: END_OF_TEXT,
    eos_token: END_OF_TEXT,
    unk_token: END_OF_TEXT,
    add_bos_token: false,
    model_max_length: 128,
    clean_up_tokenization_spaces: false,
  };
  return { tokenizerJson: JSON.stringify(tokenizer), tokenizerConfigJson: JSON.stringify(config, null, 2), vocabSize: endOfTextId + 1, endOfTextId };
}
