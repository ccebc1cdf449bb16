// The dataset format: one JSON object per line with the clean and corrupted prompts and
// the correct and incorrect answers. Whitespace inside the strings is significant
// (" Mary" and "Mary" are different tokens), so nothing is trimmed.
import { InputError } from '../../shared/errors';
import { decodeJsonString, documentLines, MAX_TRACKED_PROMPT, readTextFile } from './text';
import type { Dataset, Diagnostic, Example, ExampleLocation, ParsedDataset, SourceRange } from './types';

export type { Dataset, Diagnostic, Example, ExampleLocation, ParsedDataset, PromptSource, SourceRange } from './types';

const REQUIRED_FIELDS = ['clean', 'corrupted', 'correct', 'incorrect'] as const;
type Field = (typeof REQUIRED_FIELDS)[number];

function describeJsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** A top-level member of a line's object: where its value is written, and for a string, each code unit's column. */
interface Member {
  start: number;
  end: number;
  columns?: number[];
}

/**
 * Parses JSONL text for an editor: every line's problems as diagnostics (the range of the offending value where
 * there is one, else the line), and the examples of the lines without problems, with their source offsets.
 */
export function parseJsonl(text: string, file: string): ParsedDataset {
  const examples: Example[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const { line, text: lineText, start: lineStart } of documentLines(text)) {
    if (lineText.trim() === '') continue;
    const error = (message: string, range?: { start: number; end: number }) => {
      const first = lineText.length - lineText.trimStart().length;
      const last = lineText.trimEnd().length;
      diagnostics.push({ line, startColumn: range?.start ?? first, endColumn: range?.end ?? last, severity: 'error', message });
    };
    let value: unknown;
    try {
      value = JSON.parse(lineText);
    } catch (parseError) {
      error(`invalid JSON: ${(parseError as Error).message}`);
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      error(`expected a JSON object with fields ${REQUIRED_FIELDS.map((f) => `"${f}"`).join(', ')}, found ${describeJsonType(value)}`);
      continue;
    }
    const record = value as Record<string, unknown>;
    const members = objectMembers(lineText);
    let bad = false;
    for (const field of REQUIRED_FIELDS) {
      const fieldValue = record[field];
      const member = members.get(field);
      if (!Object.hasOwn(record, field)) error(`field "${field}" is missing`);
      else if (typeof fieldValue !== 'string') error(`field "${field}" must be a string`, member);
      else if (fieldValue === '') error(`field "${field}" must not be empty`, member);
      else continue;
      bad = true;
      break;
    }
    if (bad) continue;
    const member = (field: Field) => members.get(field)!;
    if (record.correct === record.incorrect) {
      const range = { start: Math.min(member('correct').start, member('incorrect').start), end: Math.max(member('correct').end, member('incorrect').end) };
      error(`fields "correct" and "incorrect" are the same (${JSON.stringify(record.correct)}): their logit difference is always 0`, range);
      continue;
    }
    const toDocument = (columns: number[]) => columns.map((column) => lineStart + column);
    const range = (field: Field): SourceRange => ({ start: lineStart + member(field).start, end: lineStart + member(field).end });
    const location: ExampleLocation = {
      lineStart,
      clean: range('clean'),
      corrupted: range('corrupted'),
      correct: range('correct'),
      incorrect: range('incorrect'),
      spans: [],
    };
    examples.push({
      clean: record.clean as string,
      corrupted: record.corrupted as string,
      correct: record.correct as string,
      incorrect: record.incorrect as string,
      line,
      ...(member('clean').columns && member('corrupted').columns
        ? { source: { clean: toDocument(member('clean').columns!), corrupted: toDocument(member('corrupted').columns!) } }
        : {}),
      location,
    });
  }
  return { dataset: { file, examples }, diagnostics };
}

/** Parses JSONL text; `file` is only used to name the file in error messages. Throws at the first problem. */
export function parseJsonlDataset(text: string, file: string): Dataset {
  const { dataset, diagnostics } = parseJsonl(text, file);
  const first = diagnostics.find((d) => d.severity === 'error');
  if (first !== undefined) throw new InputError(`${file}:${first.line}: ${first.message}`);
  if (dataset.examples.length === 0) throw new InputError(`${file}: no examples (the file is empty or has only blank lines)`);
  return dataset;
}

/** Reads a JSONL dataset. (readDataset in ./index reads .jsonl and .atp files by their extension.) */
export function readJsonlDataset(file: string): Dataset {
  return parseJsonlDataset(readTextFile(file, 'a .jsonl file'), file);
}

/**
 * Reads a JSONL dataset, whatever the file's extension.
 * @deprecated Use readDataset from './index' (or '../dataset'), which also reads .atp files.
 */
export const readDataset = readJsonlDataset;

// ---- Locating the members of a line's (valid) JSON object ----

const isJsonSpace = (char: string | undefined) => char === ' ' || char === '\t' || char === '\n' || char === '\r';

function skipSpace(line: string, at: number): number {
  while (isJsonSpace(line[at])) at += 1;
  return at;
}

/** The end of the (valid) JSON string literal at `at`: the column after its closing quote. */
function skipString(line: string, at: number): number {
  const special = /["\\]/g;
  special.lastIndex = at + 1;
  for (let match = special.exec(line); match !== null; match = special.exec(line)) {
    if (match[0] === '"') return match.index + 1;
    special.lastIndex = match.index + 2;
  }
  return line.length;
}

/** The end of the JSON value starting at `at` (the line is known to be valid JSON). */
function skipValue(line: string, at: number): number {
  const char = line[at];
  if (char === '"') return skipString(line, at);
  if (char === '{' || char === '[') {
    let depth = 0;
    let i = at;
    while (i < line.length) {
      const c = line[i];
      if (c === '"') {
        i = skipValue(line, i);
        continue;
      }
      if (c === '{' || c === '[') depth += 1;
      else if (c === '}' || c === ']') {
        depth -= 1;
        if (depth === 0) return i + 1;
      }
      i += 1;
    }
    return i;
  }
  let i = at;
  while (i < line.length && !isJsonSpace(line[i]) && line[i] !== ',' && line[i] !== '}' && line[i] !== ']') i += 1;
  return i;
}

/** The top-level members of the object on a line that JSON.parse accepted; a repeated key keeps its last value, as JSON.parse does. */
function objectMembers(line: string): Map<string, Member> {
  const members = new Map<string, Member>();
  let i = skipSpace(line, 0);
  if (line[i] !== '{') return members;
  i = skipSpace(line, i + 1);
  while (i < line.length && line[i] !== '}') {
    const key = decodeJsonString(line, i);
    if (!key.ok) return members;
    i = skipSpace(line, key.end);
    i = skipSpace(line, i + 1); // the colon
    const start = i;
    const end = skipValue(line, i);
    const member: Member = { start, end };
    // Per-character columns only for prompts a model could take: a 50 MB literal's would exhaust memory.
    if (line[start] === '"' && end - start <= MAX_TRACKED_PROMPT + 2) {
      const decoded = decodeJsonString(line, start);
      if (decoded.ok) member.columns = decoded.columns;
    }
    members.set(key.value, member);
    i = skipSpace(line, end);
    if (line[i] === ',') i = skipSpace(line, i + 1);
  }
  return members;
}
