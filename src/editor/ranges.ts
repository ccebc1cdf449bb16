// Token offsets → document ranges. Tokens carry UTF-16 offsets into the decoded prompt; the dataset parsers give
// each prompt a source map (PromptSource: the document offset of every prompt code unit, plus its end). A code
// unit may be written as an escape (JSONL: \n, \", \u00e9; .atp: \{, \|, \n, "\ "), and an .atp prompt is not
// written contiguously (the other side of a {clean|corrupted} span lies between), so a token becomes one or more
// exact document segments: each code unit covers its own written text, and touching units are merged.
// No 'vscode' import: tested under plain Node.
import type { DatasetFormat } from '../lib/dataset';
import type { TokenInfo } from '../shared/result';

export type { DatasetFormat };

/** For a prompt of length n: n + 1 document offsets (the last one is where the prompt ends as written). */
export type SourceMap = readonly number[];

export interface Segment {
  start: number;
  end: number;
}

/** How many document characters the code unit written at `offset` takes: an escape or one character. */
export function writtenWidth(text: string, offset: number, format: DatasetFormat): number {
  if (text[offset] !== '\\') return 1;
  return format === 'jsonl' && text[offset + 1] === 'u' ? 6 : 2;
}

/** The document segments of prompt code units [start, end), merged where they touch. */
export function promptSegments(text: string, map: SourceMap, start: number, end: number, format: DatasetFormat): Segment[] {
  const segments: Segment[] = [];
  for (let unit = start; unit < end && unit < map.length - 1; unit++) {
    const from = map[unit];
    const to = from + writtenWidth(text, from, format);
    const last = segments[segments.length - 1];
    if (last && last.end === from) last.end = to;
    else segments.push({ start: from, end: to });
  }
  return segments;
}

/** Each token's document segments (an empty token, e.g. a special token with no text, gets none). */
export function tokenSegments(text: string, tokens: readonly TokenInfo[], map: SourceMap, format: DatasetFormat): Segment[][] {
  return tokens.map((token) => promptSegments(text, map, token.start, token.end, format));
}
