// The product's tokenizer: Hugging Face's tokenizer.json run by the pure-JS @huggingface/tokenizers, plus
// the character offsets that library does not give. Offsets are rebuilt by aligning each token's bytes
// with the UTF-8 bytes of the (normalized) input, which is exact for byte-level BPE tokenizers
// (GPT-2, Llama 3, Qwen2/3, GPT-Neo, SmolLM, Granite, ...).
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { InputError } from '../../shared/errors';
import { inputErrorCode, readInputText } from '../../lib/files/readInput';

/** One token of an input string. */
export interface Token {
  id: number;
  /** The token's decoded text (may contain U+FFFD where the token holds part of a UTF-8 sequence). */
  text: string;
  /**
   * UTF-16 offsets into the input string, as VS Code ranges use. A token holding part of a character's
   * bytes spans the whole character. Special tokens that are not in the text (a template's BOS) have
   * start = end = where they stand: 0 before the text, the text's length after it.
   */
  start: number;
  end: number;
}

export interface EncodeOptions {
  /** Add the special tokens the tokenizer's post-processor adds (Llama 3's BOS, say). Default true. */
  addSpecialTokens?: boolean;
}

/**
 * The part of @huggingface/tokenizers' Tokenizer this module uses. Its shipped .d.ts files use extensionless
 * ESM imports that TypeScript cannot follow from this CommonJS project, so the class types as any otherwise.
 */
interface HfTokenizerApi {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[]; tokens: string[] };
  decode(ids: number[], options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
  normalizer: ((text: string) => string) | null;
}

interface AddedTokenJson {
  id: number;
  content: string;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

/** The parts of tokenizer.json this module reads itself; the library reads the rest. */
interface TokenizerJson {
  model?: { type?: string };
  normalizer?: unknown;
  pre_tokenizer?: { type?: string; pretokenizers?: { type?: string }[] } | null;
  post_processor?: PostProcessorJson | null;
  decoder?: { type?: string; decoders?: { type?: string }[] } | null;
  added_tokens?: AddedTokenJson[];
}

interface PostProcessorJson {
  type?: string;
  trim_offsets?: boolean;
  add_prefix_space?: boolean;
  processors?: PostProcessorJson[];
}

/** How an added token is matched: literally in the raw text, or in the normalized text. */
interface AddedTokenRule {
  content: string;
  lstrip: boolean;
  rstrip: boolean;
  matchesRawText: boolean;
}

/** The UTF-16 range of a piece of input that normalizes on its own: a code point, or a rewritten grapheme cluster. */
interface TextUnit {
  start: number;
  end: number;
}

/** The ByteLevel post-processor's offset trimming (Rust tokenizers' process_offsets), when enabled. */
interface OffsetTrimming {
  addPrefixSpace: boolean;
}

/** A token of the text (no template specials yet) with its UTF-16 offsets. */
interface AlignedToken {
  id: number;
  piece: string;
  start: number;
  end: number;
}

const BYTE_OF_CHAR = byteLevelDecodingTable();
const SPACE_CHAR = String.fromCharCode(0x120); // 'Ġ', the byte-level stand-in for ' '

export class ModelTokenizer {
  readonly vocabSize: number;
  private readonly hf: HfTokenizerApi;
  private readonly addedTokens: Map<number, AddedTokenRule>;
  private readonly normalize: ((text: string) => string) | null;
  private readonly offsetTrimming: OffsetTrimming | null;
  /** Whether the post-processor adds special tokens (a template's BOS); they do not depend on the text. */
  private readonly addsSpecialTokens: boolean;
  private readonly tokenTextCache = new Map<number, string>();

  private constructor(json: TokenizerJson, config: Record<string, unknown>, source: string) {
    requireByteLevelBpe(json, source);
    try {
      this.hf = new HfTokenizer(json, config) as HfTokenizerApi;
    } catch (error) {
      throw new InputError(`${source} is not a tokenizer this engine can load: ${errorMessage(error)}`);
    }
    const normalizer = this.hf.normalizer;
    this.normalize = normalizer === null ? null : (text) => normalizer(text);
    this.addedTokens = new Map(
      (json.added_tokens ?? []).map((token) => {
        // Mirrors the library: normalized defaults to !special, and only matters when there is a normalizer.
        const normalized = token.normalized ?? !(token.special ?? false);
        const content = normalized && this.normalize !== null ? this.normalize(token.content) : token.content;
        const rule: AddedTokenRule = {
          content,
          lstrip: token.lstrip ?? false,
          rstrip: token.rstrip ?? false,
          matchesRawText: !(normalized && this.normalize !== null),
        };
        return [token.id, rule];
      }),
    );
    this.offsetTrimming = offsetTrimmingOf(json.post_processor ?? null);
    this.addsSpecialTokens = this.hf.encode('', { add_special_tokens: true }).ids.length > 0;
    let highestId = -1;
    for (const id of this.hf.get_vocab(true).values()) highestId = Math.max(highestId, id);
    this.vocabSize = highestId + 1;
  }

  /** Loads tokenizer.json (and tokenizer_config.json, when present) from a model folder. */
  static fromDir(dir: string): ModelTokenizer {
    const tokenizerPath = join(dir, 'tokenizer.json');
    const json = readJsonFile(tokenizerPath, 'the tokenizer file') as TokenizerJson | undefined;
    if (json === undefined) throw new InputError(`No tokenizer found: ${tokenizerPath} does not exist.`);
    if (typeof json !== 'object' || json === null || typeof json.model !== 'object') {
      throw new InputError(`${tokenizerPath} is not a Hugging Face tokenizer.json (it has no "model").`);
    }
    const configPath = join(dir, 'tokenizer_config.json');
    const config = readJsonFile(configPath, 'the tokenizer config') ?? {};
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw new InputError(`${configPath} is not a JSON object.`);
    }
    return new ModelTokenizer(json, config as Record<string, unknown>, tokenizerPath);
  }

  private longestTokenBytes: number | undefined;

  /**
   * A lower bound on the number of tokens of text, found without tokenizing it (tokenizing a prompt of megabytes
   * takes seconds and gigabytes, then cannot run anyway): every token stands for at most as many UTF-8 bytes as
   * the longest entry of the vocabulary, and the text has at least one byte per UTF-16 code unit. Whitespace is not
   * counted where an added token may swallow it (lstrip/rstrip), and a normalizer's output is what is counted.
   */
  minimumTokenCount(text: string): number {
    const swallowsWhitespace = [...this.addedTokens.values()].some((rule) => rule.lstrip || rule.rstrip);
    const counted = this.normalize === null ? text : this.normalize(text);
    const units = swallowsWhitespace || this.normalize !== null ? nonWhitespaceUnits(counted) : counted.length;
    if (this.longestTokenBytes === undefined) {
      let longest = 1;
      for (const piece of this.hf.get_vocab(true).keys()) longest = Math.max(longest, (byteLevelBytes(piece) ?? utf8Bytes(piece)).length);
      for (const rule of this.addedTokens.values()) longest = Math.max(longest, utf8Bytes(rule.content).length);
      this.longestTokenBytes = longest;
    }
    return Math.ceil(units / this.longestTokenBytes);
  }

  /** The tokens of text, with their UTF-16 offsets; the ids are exactly those Hugging Face produces. */
  encode(text: string, options: EncodeOptions = {}): Token[] {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    const textEncoding = this.hf.encode(text, { add_special_tokens: false });
    const aligned = this.alignToText(text, textEncoding.ids, textEncoding.tokens);
    const withText = (token: AlignedToken): Token => ({
      id: token.id,
      text: this.tokenText(token.id),
      start: token.start,
      end: token.end,
    });
    if (!addSpecialTokens || !this.addsSpecialTokens) return aligned.map(withText);

    // The post-processor (a template) wraps the text's tokens in special tokens; find where the text sits.
    const ids = this.hf.encode(text, { add_special_tokens: true }).ids;
    const at = indexOfRun(ids, textEncoding.ids);
    if (at < 0) throw new Error('The tokenizer post-processor changed the text tokens; cannot place special tokens.');
    const special = (id: number, position: number): Token => ({ id, text: this.tokenText(id), start: position, end: position });
    return [
      ...ids.slice(0, at).map((id) => special(id, 0)),
      ...aligned.map(withText),
      ...ids.slice(at + textEncoding.ids.length).map((id) => special(id, text.length)),
    ];
  }

  /** Token ids of text, exactly as Hugging Face's tokenizer gives them. */
  ids(text: string, options: EncodeOptions = {}): number[] {
    return this.hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** The text of ids, special tokens included, without the "clean up tokenization spaces" rewriting. */
  decode(ids: number[]): string {
    if (ids.length === 0) return '';
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.hf.id_to_token(id) === undefined) {
        throw new RangeError(`Token id ${id} is not in the vocabulary (size ${this.vocabSize}).`);
      }
    }
    return this.hf.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** The decoded text of one token (U+FFFD where it holds only part of a character's bytes). */
  tokenText(id: number): string {
    let text = this.tokenTextCache.get(id);
    if (text === undefined) {
      text = this.decode([id]);
      this.tokenTextCache.set(id, text);
    }
    return text;
  }

  /**
   * Gives each of the text's tokens its UTF-16 range in text. The library splits the text at added tokens
   * that match the raw text, normalizes each piece between them, and byte-level encodes that; this walks the
   * same way, matching every token's bytes against the input's, and throws rather than guess.
   */
  private alignToText(text: string, ids: number[], pieces: string[]): AlignedToken[] {
    const aligned: AlignedToken[] = [];
    let cursor = 0;
    let index = 0;
    while (index < ids.length) {
      const rule = this.addedTokens.get(ids[index]);
      if (rule?.matchesRawText) {
        // Here only where no section precedes it, so an lstrip token's whitespace is still ahead of it.
        const contentStart = rule.lstrip ? skipWhitespace(text, cursor) : cursor;
        if (!text.startsWith(rule.content, contentStart)) throw alignmentError(text, pieces[index], cursor);
        let end = contentStart + rule.content.length;
        if (rule.rstrip) end = skipWhitespace(text, end);
        aligned.push({ id: ids[index], piece: pieces[index], start: cursor, end });
        cursor = end;
        index += 1;
        continue;
      }
      // A section: the tokens up to the next raw-text added token, covering the text up to where it starts.
      let next = index;
      while (next < ids.length && !this.addedTokens.get(ids[next])?.matchesRawText) next += 1;
      const nextRule = next < ids.length ? this.addedTokens.get(ids[next]) : undefined;
      const sectionEnd = nextRule === undefined ? text.length : text.indexOf(nextRule.content, cursor);
      if (sectionEnd < 0) throw alignmentError(text, pieces[next], cursor);
      // An lstrip added token swallows the whitespace before it: the section stops short of it.
      let sectionText = text.slice(cursor, sectionEnd);
      if (nextRule?.lstrip) sectionText = sectionText.trimEnd();
      // A loop, not push(...section): a section of a long prompt has more tokens than the call stack has room for.
      for (const token of this.alignSection(text, cursor, sectionText, ids.slice(index, next), pieces.slice(index, next))) aligned.push(token);
      if (nextRule !== undefined) {
        const start = cursor + sectionText.length;
        let end = sectionEnd + nextRule.content.length;
        if (nextRule.rstrip) end = skipWhitespace(text, end);
        aligned.push({ id: ids[next], piece: pieces[next], start, end });
        cursor = end;
        next += 1;
      } else {
        cursor = sectionEnd;
      }
      index = next;
    }
    if (this.offsetTrimming !== null) trimOffsets(aligned, this.offsetTrimming);
    return aligned;
  }

  /** Aligns the tokens of one section (text starting at offset, before normalization) with its bytes. */
  private alignSection(fullText: string, offset: number, sectionText: string, ids: number[], pieces: string[]): AlignedToken[] {
    const { units, bytes, unitOfByte } = this.normalizedBytes(sectionText, offset);
    const aligned: AlignedToken[] = [];
    let byte = 0;
    ids.forEach((id, i) => {
      const rule = this.addedTokens.get(id);
      const first = byte;
      if (rule?.lstrip) byte = skipWhitespaceBytes(bytes, byte);
      const expected = rule === undefined ? byteLevelBytes(pieces[i]) : utf8Bytes(rule.content);
      if (expected === null || !bytesAt(bytes, byte, expected)) {
        const at = byte < unitOfByte.length ? units[unitOfByte[byte]].start : offset + sectionText.length;
        throw alignmentError(fullText, pieces[i], at);
      }
      byte += expected.length;
      if (rule?.rstrip) byte = skipWhitespaceBytes(bytes, byte);
      // Whole units: a token holding part of a character (or of a normalized run) spans all of it.
      aligned.push({ id, piece: pieces[i], start: units[unitOfByte[first]].start, end: units[unitOfByte[byte - 1]].end });
    });
    if (byte !== bytes.length) {
      throw alignmentError(fullText, pieces[pieces.length - 1] ?? '', units[unitOfByte[byte]].start);
    }
    return aligned;
  }

  /**
   * The section's normalized UTF-8 bytes, each tied to the unit of the original text it came from. Without a
   * normalizer (or where it changes nothing) a unit is one code point; where it changes a grapheme cluster
   * (NFC composing "e" + U+0301, say) the whole cluster is one unit.
   */
  private normalizedBytes(sectionText: string, offset: number): { units: TextUnit[]; bytes: number[]; unitOfByte: number[] } {
    const units: TextUnit[] = [];
    const bytes: number[] = [];
    const unitOfByte: number[] = [];
    const addUnit = (start: number, end: number, normalized: string) => {
      for (const byte of utf8Bytes(normalized)) {
        bytes.push(byte);
        unitOfByte.push(units.length);
      }
      units.push({ start: offset + start, end: offset + end });
    };
    const addCodePoints = (from: number, to: number) => {
      for (let i = from; i < to;) {
        const width = codePointWidth(sectionText, i);
        addUnit(i, i + width, sectionText.slice(i, i + width));
        i += width;
      }
    };

    const normalized = this.normalize === null ? sectionText : this.normalize(sectionText);
    if (normalized === sectionText) {
      addCodePoints(0, sectionText.length);
      return { units, bytes, unitOfByte };
    }
    // Normalizers such as NFC act within a grapheme cluster; check that holds for this text.
    const normalize = this.normalize!;
    let rebuilt = '';
    for (const { segment, index } of graphemeSegmenter().segment(sectionText)) {
      const normalizedSegment = normalize(segment);
      rebuilt += normalizedSegment;
      if (normalizedSegment === segment) addCodePoints(index, index + segment.length);
      else addUnit(index, index + segment.length, normalizedSegment);
    }
    if (rebuilt !== normalized) {
      throw new Error(
        `Cannot compute token offsets: the tokenizer's normalizer does not act grapheme by grapheme on ${JSON.stringify(sectionText.slice(0, 80))}.`,
      );
    }
    return { units, bytes, unitOfByte };
  }
}

/** Only byte-level BPE tokenizers have tokens that map back to input bytes this simply. */
function requireByteLevelBpe(json: TokenizerJson, source: string): void {
  const preTokenizers = json.pre_tokenizer?.type === 'Sequence' ? (json.pre_tokenizer.pretokenizers ?? []) : [json.pre_tokenizer];
  const decoders = json.decoder?.type === 'Sequence' ? (json.decoder.decoders ?? []) : [json.decoder];
  const byteLevel = preTokenizers.some((p) => p?.type === 'ByteLevel') && decoders.some((d) => d?.type === 'ByteLevel');
  if (json.model?.type !== 'BPE' || !byteLevel) {
    const kind = `${json.model?.type ?? 'unknown'} model, ${json.pre_tokenizer?.type ?? 'no'} pre-tokenizer`;
    throw new InputError(`${source}: this tokenizer type is not supported yet (${kind}); only byte-level BPE tokenizers (GPT-2, Llama 3, Qwen, ...) are.`);
  }
}

/** Whether (and how) the post-processor trims spaces off offsets, as Rust tokenizers' ByteLevel/Roberta do. */
function offsetTrimmingOf(processor: PostProcessorJson | null): OffsetTrimming | null {
  if (processor === null) return null;
  if (processor.type === 'Sequence') {
    for (const inner of processor.processors ?? []) {
      const trimming = offsetTrimmingOf(inner);
      if (trimming !== null) return trimming;
    }
    return null;
  }
  // Rust defaults both options to true when the file leaves them out.
  if ((processor.type === 'ByteLevel' || processor.type === 'RobertaProcessing') && (processor.trim_offsets ?? true)) {
    return { addPrefixSpace: processor.add_prefix_space ?? true };
  }
  return null;
}

/** Rust tokenizers' byte_level::process_offsets: leading and trailing spaces leave a token's offsets. */
function trimOffsets(tokens: AlignedToken[], trimming: OffsetTrimming): void {
  const isSpace = (char: string) => char === SPACE_CHAR || /\p{White_Space}/u.test(char);
  tokens.forEach((token, i) => {
    const chars = [...token.piece];
    let leading = 0;
    while (leading < chars.length && isSpace(chars[leading])) leading += 1;
    let trailing = 0;
    while (trailing < chars.length && isSpace(chars[chars.length - 1 - trailing])) trailing += 1;
    if (leading > 0) {
      // A single leading space the tokenizer itself prepended stays (Rust keeps it on the first token).
      const isFirst = i === 0 || token.start === 0;
      if (!(isFirst && trimming.addPrefixSpace && leading === 1)) token.start = Math.min(token.start + leading, token.end);
    }
    if (trailing > 0 && token.end >= trailing) token.end = Math.max(token.end - trailing, token.start);
  });
}

/** GPT-2's bytes_to_unicode table, inverted: the byte each byte-level character stands for. */
function byteLevelDecodingTable(): Map<string, number> {
  const printable = (byte: number) => (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  const table = new Map<string, number>();
  let shifted = 0;
  for (let byte = 0; byte < 256; byte += 1) {
    const code = printable(byte) ? byte : 256 + shifted++;
    table.set(String.fromCharCode(code), byte);
  }
  return table;
}

/** The raw bytes a byte-level token string stands for, or null if it is not one. */
function byteLevelBytes(piece: string): number[] | null {
  const bytes: number[] = [];
  for (const char of piece) {
    const byte = BYTE_OF_CHAR.get(char);
    if (byte === undefined) return null;
    bytes.push(byte);
  }
  return bytes;
}

/** UTF-8 bytes of a string, lone surrogates as U+FFFD (as TextEncoder, and so the library, does). */
function utf8Bytes(text: string): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < text.length;) {
    let code = text.codePointAt(i)!;
    const width = codePointWidth(text, i);
    if (width === 1 && code >= 0xd800 && code <= 0xdfff) code = 0xfffd;
    i += width;
    if (code < 0x80) bytes.push(code);
    else if (code < 0x800) bytes.push(0xc0 | (code >> 6), 0x80 | (code & 0x3f));
    else if (code < 0x10000) bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
    else bytes.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 0x3f), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
  }
  return bytes;
}

/** 2 for a surrogate pair at i, else 1. */
function codePointWidth(text: string, i: number): number {
  const code = text.charCodeAt(i);
  if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
    const low = text.charCodeAt(i + 1);
    if (low >= 0xdc00 && low <= 0xdfff) return 2;
  }
  return 1;
}

/** Code units that are not whitespace (which a normalizer or an lstrip/rstrip token may drop or swallow). */
function nonWhitespaceUnits(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (!(
      code === 0x20 ||
      (code >= 0x09 && code <= 0x0d) ||
      code === 0xa0 ||
      code === 0x3000 ||
      (code >= 0x2000 && code <= 0x200b) ||
      code === 0x85 ||
      code === 0x1680 ||
      code === 0x2028 ||
      code === 0x2029 ||
      code === 0x202f ||
      code === 0x205f ||
      code === 0xfeff
    ))
      count += 1;
  }
  return count;
}

function bytesAt(haystack: number[], at: number, needle: number[]): boolean {
  if (at + needle.length > haystack.length) return false;
  return needle.every((byte, i) => haystack[at + i] === byte);
}

function skipWhitespace(text: string, at: number): number {
  return text.length - text.slice(at).trimStart().length;
}

function skipWhitespaceBytes(bytes: number[], at: number): number {
  while (at < bytes.length && (bytes[at] === 0x20 || (bytes[at] >= 0x09 && bytes[at] <= 0x0d))) at += 1;
  return at;
}

/** Where run occurs as a contiguous stretch of ids (the first place), or -1. */
function indexOfRun(ids: number[], run: number[]): number {
  for (let at = 0; at + run.length <= ids.length; at += 1) {
    if (run.every((id, i) => ids[at + i] === id)) return at;
  }
  return -1;
}

let segmenter: Intl.Segmenter | undefined;
function graphemeSegmenter(): Intl.Segmenter {
  segmenter ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  return segmenter;
}

function alignmentError(text: string, piece: string, at: number): Error {
  return new Error(
    `Cannot compute token offsets: token ${JSON.stringify(piece)} does not match the input at UTF-16 offset ${at} ` +
      `(${JSON.stringify(text.slice(at, at + 20))}).`,
  );
}

/** Parsed JSON of a file, or undefined when it does not exist; InputError naming the file otherwise. */
function readJsonFile(path: string, what: string): unknown {
  let raw: string;
  try {
    raw = readInputText(path, 'json', what);
  } catch (error) {
    if (inputErrorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(raw);
  } catch (error) {
    throw new InputError(`${path} is not valid JSON: ${errorMessage(error)}`);
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
