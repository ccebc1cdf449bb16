// Text helpers shared by the dataset formats: lines with their document offsets, JSON string literals decoded
// with the column of every code unit, and reading a file with errors that name it.
import { readInputFile } from '../files/readInput';
import { InputError } from '../../shared/errors';

/**
 * Prompts longer than this keep no per-character offsets (Example.source is then absent, as for generated data):
 * no model has positions for them, and a 50 MB line's offsets alone would exhaust memory before the length
 * check could say so. Far above any prompt a model takes (1 Mi code units).
 */
export const MAX_TRACKED_PROMPT = 1 << 20;

export interface TextLine {
  /** 1-based line number. */
  line: number;
  /** The line's text, without its line ending. */
  text: string;
  /** Document offset of the line's first character. */
  start: number;
}

/**
 * The document's lines. A leading byte-order mark is dropped (editors do not show it, and offsets do not count
 * it); \r\n, \n and a lone \r end a line, as in VS Code.
 */
export function documentLines(text: string): TextLine[] {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const lines: TextLine[] = [];
  const ending = /\r\n|\r|\n/g;
  let start = 0;
  for (let match = ending.exec(body); match !== null; match = ending.exec(body)) {
    lines.push({ line: lines.length + 1, text: body.slice(start, match.index), start });
    start = match.index + match[0].length;
  }
  lines.push({ line: lines.length + 1, text: body.slice(start), start });
  return lines;
}

export type JsonStringResult =
  | {
      ok: true;
      value: string;
      /** Column (in the line) of each code unit of value, then the column of the closing quote. */
      columns: number[];
      /** Column just after the closing quote. */
      end: number;
    }
  | { ok: false; start: number; end: number; message: string };

const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * Decodes the JSON string literal whose opening quote is at column `at` of `line`, keeping where each decoded
 * code unit is written: a raw character at its own column(s) (an astral character's two code units at its two
 * columns), an escape (\n, \", \uXXXX — a surrogate pair written as two escapes gives each half its own escape)
 * at its backslash.
 */
export function decodeJsonString(line: string, at: number): JsonStringResult {
  if (line[at] !== '"') return { ok: false, start: at, end: at + 1, message: 'expected a string in double quotes' };
  let value = '';
  const columns: number[] = [];
  let i = at + 1;
  while (i < line.length) {
    const char = line[i];
    if (char === '"') {
      columns.push(i);
      return { ok: true, value, columns, end: i + 1 };
    }
    if (char === '\\') {
      const escape = line[i + 1];
      if (escape === undefined) break;
      if (escape === 'u') {
        const hex = line.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) {
          const digits = /^[0-9a-fA-F]*/.exec(hex)![0].length;
          return { ok: false, start: i, end: i + 2 + digits, message: 'invalid escape: \\u needs four hexadecimal digits' };
        }
        value += String.fromCharCode(parseInt(hex, 16));
        columns.push(i);
        i += 6;
        continue;
      }
      const decoded = SIMPLE_ESCAPES[escape];
      if (decoded === undefined) {
        return { ok: false, start: i, end: i + 1 + escape.length, message: `invalid escape \\${escape} in a quoted string` };
      }
      value += decoded;
      columns.push(i);
      i += 2;
      continue;
    }
    if (char.charCodeAt(0) < 0x20) {
      return { ok: false, start: i, end: i + 1, message: 'a control character must be escaped in a quoted string (\\t, \\u0000)' };
    }
    value += char;
    columns.push(i);
    i += 1;
  }
  return { ok: false, start: at, end: line.length, message: 'unterminated string: the closing " is missing' };
}

/**
 * Reads a dataset file as UTF-8; InputError naming the file when it cannot, and naming the line of the first
 * invalid byte when it is not UTF-8 (decoding would silently turn it into U+FFFD, a different prompt).
 */
export function readTextFile(file: string, expected: string): string {
  // Only a regular file of at most READ_LIMITS.dataset: a symlink to /dev/zero or a FIFO is refused, not read forever.
  const bytes = readInputFile(file, 'dataset', expected);
  try {
    // ignoreBOM keeps a byte-order mark as U+FEFF, as readFileSync(file, 'utf8') did; documentLines drops it.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const { line, column } = lineOfByte(bytes, at);
    throw new InputError(
      `${file}:${line}: not valid UTF-8 (byte 0x${bytes[at].toString(16).padStart(2, '0')} at byte ${column + 1} of the line); save the file as UTF-8`,
    );
  }
}

/** The offset of the first byte that is not part of a well-formed UTF-8 sequence (bytes.length if none). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i += 1;
      continue;
    }
    // The well-formed sequences of the Unicode standard (table 3-7): no overlongs, no surrogates, nothing past U+10FFFF.
    let length: number;
    let low = 0x80;
    let high = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) low = 0xa0;
      if (b === 0xed) high = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) low = 0x90;
      if (b === 0xf4) high = 0x8f;
    } else return i;
    for (let k = 1; k < length; k += 1) {
      const c = bytes[i + k];
      const [min, max] = k === 1 ? [low, high] : [0x80, 0xbf];
      if (c === undefined || c < min || c > max) return i;
    }
    i += length;
  }
  return bytes.length;
}

/** The 1-based line (\r\n, \n and a lone \r end a line, as in documentLines) and 0-based byte column of a byte. */
function lineOfByte(bytes: Uint8Array, at: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < at; i += 1) {
    if (bytes[i] === 0x0a || (bytes[i] === 0x0d && bytes[i + 1] !== 0x0a)) {
      line += 1;
      lineStart = i + 1;
    }
  }
  return { line, column: at - lineStart };
}
