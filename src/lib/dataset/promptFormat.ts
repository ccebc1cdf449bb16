// The human-editable dataset format (.atp): one example per line, the clean prompt with its corrupted spans
// written inline, then the two answers. docs/DATASETS.md describes it with examples:
//
//   When John and Mary went to the shops, {John|Mary} gave the bag to => " Mary" | " John"
//
// - Outside braces, text belongs to both prompts; {clean|corrupted} is a span whose left side is in the clean
//   prompt and right side in the corrupted prompt (several spans per line; either side may be empty).
// - `=>` ends the prompt; then the correct and the incorrect answer, as JSON strings, separated by `|`.
// - Whitespace at the start of the line and just before `=>` is not part of the prompt; everything else is.
// - Backslash escapes in the prompt: \{ \} \| \\ \# \= for those characters; \n \r \t for a newline, carriage
//   return, tab; "\ " (backslash, space) for a space that is never trimmed (a prompt ending in a space).
// - A line whose first non-blank character is # is a comment; blank lines are skipped.
import { InputError } from '../../shared/errors';
import { decodeJsonString, documentLines, MAX_TRACKED_PROMPT, readTextFile } from './text';
import type { Dataset, Diagnostic, Example, ParsedDataset, SourceRange } from './types';

export const PROMPT_FORMAT_EXTENSION = '.atp';

const PROMPT_ESCAPES: Record<string, string> = { '{': '{', '}': '}', '|': '|', '\\': '\\', '#': '#', '=': '=', n: '\n', r: '\r', t: '\t', ' ': ' ' };

const MAX_LINE_DIAGNOSTICS = 50;

/** A prompt being assembled: its text, the column of each code unit, and the column after the last one. */
class PromptBuilder {
  // Built in flat chunks: appending to one string per character makes a rope of one node per character.
  private readonly chunks: string[] = [];
  private pending: string[] = [];
  private length = 0;
  private columns: number[] | null = [];
  private ends: number[] | null = [];

  get text(): string {
    if (this.pending.length > 0) {
      this.chunks.push(this.pending.join(''));
      this.pending = [];
    }
    if (this.chunks.length > 1) this.chunks.splice(0, this.chunks.length, this.chunks.join(''));
    return this.chunks[0] ?? '';
  }

  push(char: string, column: number, end: number): void {
    this.pending.push(char);
    this.length += char.length;
    if (this.pending.length >= 4096) {
      this.chunks.push(this.pending.join(''));
      this.pending = [];
    }
    if (this.columns !== null && this.ends !== null) {
      if (this.length > MAX_TRACKED_PROMPT) {
        this.columns = null;
        this.ends = null;
      } else {
        this.columns.push(column);
        this.ends.push(end);
      }
    }
  }

  pop(count: number): void {
    if (count === 0) return;
    const text = this.text;
    this.chunks[0] = text.slice(0, text.length - count);
    this.length -= count;
    if (this.columns !== null && this.ends !== null) {
      this.columns.length -= count;
      this.ends.length -= count;
    }
  }

  /** Document offsets: each code unit's, then the end of the last one (or `emptyAt` for an empty prompt). */
  source(lineStart: number, emptyAt: number): number[] | undefined {
    if (this.columns === null || this.ends === null) return undefined;
    const end = this.ends.length > 0 ? this.ends[this.ends.length - 1] : emptyAt;
    const source = this.columns.map((column) => lineStart + column);
    source.push(lineStart + end);
    return source;
  }
}

interface LineResult {
  example?: Example;
  diagnostics: Diagnostic[];
}

const isBlank = (char: string | undefined) => char === ' ' || char === '\t';

function parseLine(lineText: string, line: number, lineStart: number): LineResult {
  const diagnostics: Diagnostic[] = [];
  // A hostile line (millions of stray '|') must not become millions of diagnostics; the first ones say enough.
  const report = (severity: Diagnostic['severity'], start: number, end: number, message: string) => {
    if (diagnostics.length < MAX_LINE_DIAGNOSTICS) diagnostics.push({ line, startColumn: start, endColumn: Math.max(end, start), severity, message });
  };
  const error = (start: number, end: number, message: string) => report('error', start, end, message);

  const clean = new PromptBuilder();
  const corrupted = new PromptBuilder();
  const spans: SourceRange[] = [];
  let promptStart = 0;
  while (isBlank(lineText[promptStart])) promptStart += 1;
  // Raw blanks just appended outside spans: trimmed if the prompt ends there.
  let trailingBlanks = 0;
  let lastWritten = promptStart; // the column after the last character kept in the prompt
  let span: { start: number; bar: number | null } | null = null;
  let arrow = -1;

  let i = promptStart;
  while (i < lineText.length) {
    const char = lineText[i];
    if (char === '=' && lineText[i + 1] === '>') {
      arrow = i;
      break;
    }
    let literal: string | null = null;
    let width = 1;
    if (char === '\\') {
      const next = lineText[i + 1];
      if (next === undefined) {
        error(i, i + 1, 'a backslash at the end of the line escapes nothing; write \\\\ for a backslash');
        i += 1;
        continue;
      }
      // An astral character after a backslash is one (unknown) escape of two code units.
      const nextWidth = next.charCodeAt(0) >= 0xd800 && next.charCodeAt(0) <= 0xdbff && i + 2 < lineText.length ? 2 : 1;
      literal = PROMPT_ESCAPES[next] ?? null;
      if (literal === null) {
        error(
          i,
          i + 1 + nextWidth,
          `unknown escape \\${lineText.slice(i + 1, i + 1 + nextWidth)}: the escapes are \\{ \\} \\| \\\\ \\# \\= \\n \\r \\t and "\\ " (a space)`,
        );
        i += 1 + nextWidth;
        continue;
      }
      width = 2;
    } else if (char === '{') {
      if (span !== null) {
        error(i, i + 1, "a '{' inside a {clean|corrupted} span: spans do not nest; write \\{ for a literal brace");
      } else {
        span = { start: i, bar: null };
        trailingBlanks = 0;
      }
      i += 1;
      continue;
    } else if (char === '}') {
      if (span === null) {
        error(i, i + 1, "unbalanced '}': no '{' opens it; write \\} for a literal brace");
      } else {
        if (span.bar === null) error(span.start, i + 1, "missing '|' in a span: write {clean text|corrupted text}");
        spans.push({ start: lineStart + span.start, end: lineStart + i + 1 });
        span = null;
        lastWritten = i + 1;
      }
      i += 1;
      continue;
    } else if (char === '|') {
      if (span === null) error(i, i + 1, "a '|' outside a {clean|corrupted} span; write \\| for a literal bar");
      else if (span.bar !== null) error(i, i + 1, "a second '|' in a span: a span is {clean|corrupted}; write \\| for a literal bar");
      else span.bar = i;
      i += 1;
      continue;
    } else {
      literal = char;
    }
    // A character of prompt text (an astral character is two code units, both written here).
    const end = i + width;
    if (span === null || span.bar === null) clean.push(literal, i, end);
    if (span === null || span.bar !== null) corrupted.push(literal, i, end);
    if (span === null && width === 1 && isBlank(char)) trailingBlanks += 1;
    else trailingBlanks = 0;
    lastWritten = end;
    i = end;
  }

  const promptEnd = arrow >= 0 ? arrow : lineText.length;
  if (span !== null) {
    error(span.start, lineText.slice(0, promptEnd).trimEnd().length, "unbalanced '{': the span is not closed with '}'");
  }
  // Drop the blanks before '=>' (outside spans, so in both prompts).
  clean.pop(trailingBlanks);
  corrupted.pop(trailingBlanks);
  if (trailingBlanks > 0) lastWritten -= trailingBlanks;

  if (arrow < 0) {
    const end = lineText.trimEnd().length;
    error(promptStart, end, `missing '=>' and the answers: write the prompt, then => " correct" | " incorrect"`);
    return { diagnostics };
  }
  const arrowRange: [number, number] = [arrow, arrow + 2];
  const promptErrors = diagnostics.length;
  const answers = parseAnswers(lineText, arrow + 2, arrowRange, error);

  const promptHasErrors = promptErrors > 0;
  if (clean.text === '' && corrupted.text === '') error(arrowRange[0], arrowRange[1], "empty prompt: write the prompt before '=>'");
  else if (promptHasErrors) {
    // The prompt's own errors explain it; an empty side would only repeat them.
  } else if (clean.text === '') error(promptStart, lastWritten, 'the clean prompt is empty');
  else if (corrupted.text === '') error(promptStart, lastWritten, 'the corrupted prompt is empty');

  if (diagnostics.some((d) => d.severity === 'error') || answers === null) return { diagnostics };
  if (clean.text === corrupted.text) {
    const message =
      spans.length === 0
        ? 'no {clean|corrupted} span: the clean and corrupted prompts are the same, so every attribution is 0'
        : 'the clean and corrupted prompts are the same, so every attribution is 0';
    report('warning', promptStart, lastWritten, message);
  }
  const promptRange = { start: lineStart + promptStart, end: lineStart + lastWritten };
  const cleanSource = clean.source(lineStart, promptStart);
  const corruptedSource = corrupted.source(lineStart, promptStart);
  const example: Example = {
    clean: clean.text,
    corrupted: corrupted.text,
    correct: answers.correct.value,
    incorrect: answers.incorrect.value,
    line,
    ...(cleanSource && corruptedSource ? { source: { clean: cleanSource, corrupted: corruptedSource } } : {}),
    location: {
      lineStart,
      clean: promptRange,
      corrupted: { ...promptRange },
      correct: { start: lineStart + answers.correct.start, end: lineStart + answers.correct.end },
      incorrect: { start: lineStart + answers.incorrect.start, end: lineStart + answers.incorrect.end },
      spans,
    },
  };
  return { example, diagnostics };
}

interface Answer {
  value: string;
  start: number;
  end: number;
}

/** `" correct" | " incorrect"` from column `from`; reports its problems and returns null when there are any. */
function parseAnswers(
  lineText: string,
  from: number,
  arrow: [number, number],
  error: (start: number, end: number, message: string) => void,
): { correct: Answer; incorrect: Answer } | null {
  const skip = (at: number) => {
    while (isBlank(lineText[at])) at += 1;
    return at;
  };
  const quoted = (at: number, which: string): Answer | null => {
    if (lineText[at] !== '"') {
      let end = at;
      while (end < lineText.length && !isBlank(lineText[end]) && lineText[end] !== '|') end += 1;
      error(at, Math.max(end, at + 1), `the ${which} answer must be a quoted string, e.g. " Mary" (the leading space is part of the token)`);
      return null;
    }
    const decoded = decodeJsonString(lineText, at);
    if (!decoded.ok) {
      error(decoded.start, decoded.end, `malformed ${which} answer: ${decoded.message}`);
      return null;
    }
    if (decoded.value === '') {
      error(at, decoded.end, `the ${which} answer is empty`);
      return null;
    }
    return { value: decoded.value, start: at, end: decoded.end };
  };

  let i = skip(from);
  if (i >= lineText.length) {
    error(arrow[0], arrow[1], `missing answers after '=>': write => " correct" | " incorrect"`);
    return null;
  }
  const correct = quoted(i, 'correct');
  if (correct === null) return null;
  i = skip(correct.end);
  if (lineText[i] !== '|') {
    if (i >= lineText.length) error(correct.start, correct.end, `missing the incorrect answer: write " correct" | " incorrect"`);
    else error(i, lineText.trimEnd().length, `expected '|' and the incorrect answer after the correct answer`);
    return null;
  }
  const bar = i;
  i = skip(i + 1);
  if (i >= lineText.length) {
    error(bar, bar + 1, `missing the incorrect answer after '|'`);
    return null;
  }
  const incorrect = quoted(i, 'incorrect');
  if (incorrect === null) return null;
  if (incorrect.value === correct.value) {
    error(
      correct.start,
      incorrect.end,
      `the correct and incorrect answers are the same (${JSON.stringify(correct.value)}): their logit difference is always 0`,
    );
    return null;
  }
  i = skip(incorrect.end);
  if (i < lineText.length) {
    error(i, lineText.trimEnd().length, 'unexpected text after the answers (a comment must be on its own line, starting with #)');
    return null;
  }
  return { correct, incorrect };
}

/** Parses .atp text for an editor: the examples of the lines without errors, and every line's diagnostics. */
export function parsePromptFormat(text: string, file: string): ParsedDataset {
  const examples: Example[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const { line, text: lineText, start } of documentLines(text)) {
    const content = lineText.replace(/^[ \t]+/, '');
    if (content === '' || content.startsWith('#')) continue;
    const result = parseLine(lineText, line, start);
    for (const diagnostic of result.diagnostics) diagnostics.push(diagnostic);
    if (result.example !== undefined) examples.push(result.example);
  }
  return { dataset: { file, examples }, diagnostics };
}

/** `file:line:column: message`, the column 1-based, as compilers print it. */
export function formatDiagnostic(file: string, diagnostic: Diagnostic): string {
  return `${file}:${diagnostic.line}:${diagnostic.startColumn + 1}: ${diagnostic.severity === 'warning' ? 'warning: ' : ''}${diagnostic.message}`;
}

/** Parses .atp text; throws an InputError at the first error. Warnings go to `warnings` when given. */
export function parsePromptFormatDataset(text: string, file: string, warnings?: string[]): Dataset {
  const { dataset, diagnostics } = parsePromptFormat(text, file);
  const first = diagnostics.find((d) => d.severity === 'error');
  if (first !== undefined) throw new InputError(formatDiagnostic(file, first));
  for (const d of diagnostics) warnings?.push(formatDiagnostic(file, d));
  if (dataset.examples.length === 0) throw new InputError(`${file}: no examples (the file is empty or has only blank lines and comments)`);
  return dataset;
}

export function readPromptFormatDataset(file: string, warnings?: string[]): Dataset {
  return parsePromptFormatDataset(readTextFile(file, 'a .atp file'), file, warnings);
}

/**
 * Escapes text for the prompt part of an .atp line: braces, bars, backslashes, '#', "=>", newlines and tabs;
 * blanks at the start (`atLineStart`) or at the end (`beforeArrow`) are written as "\ " so they are kept.
 */
export function escapePromptText(text: string, atLineStart = true, beforeArrow = true): string {
  const out = escapeSpanSide(text);
  const lead = atLineStart ? out.length - out.replace(/^ +/, '').length : 0;
  let body = out.slice(lead);
  const trail = beforeArrow ? body.length - body.replace(/ +$/, '').length : 0;
  body = body.slice(0, body.length - trail);
  if (atLineStart && lead === 0 && body.startsWith('#')) body = `\\${body}`;
  return '\\ '.repeat(lead) + body + '\\ '.repeat(trail);
}

/**
 * An example as one .atp line: the common prefix and suffix of the two prompts written once, the middle as
 * one {clean|corrupted} span (prompts that differ in several places get one wide span).
 */
export function formatPromptLine(example: Pick<Example, 'clean' | 'corrupted' | 'correct' | 'incorrect'>): string {
  const { clean, corrupted } = example;
  let prefix = 0;
  while (prefix < clean.length && prefix < corrupted.length && clean[prefix] === corrupted[prefix]) prefix += 1;
  // Do not split a surrogate pair.
  if (prefix > 0 && isHighSurrogate(clean.charCodeAt(prefix - 1))) prefix -= 1;
  let suffix = 0;
  while (
    suffix < clean.length - prefix &&
    suffix < corrupted.length - prefix &&
    clean[clean.length - 1 - suffix] === corrupted[corrupted.length - 1 - suffix]
  ) {
    suffix += 1;
  }
  if (suffix > 0 && isLowSurrogate(clean.charCodeAt(clean.length - suffix))) suffix -= 1;
  // Whole words in the span ({price|code}, not {pric|cod}e): widen it while a word runs across either edge.
  const wordAt = (text: string, index: number) => index >= 0 && index < text.length && WORD_CHAR.test(text[index]);
  while (prefix > 0 && wordAt(clean, prefix - 1) && (wordAt(clean, prefix) || wordAt(corrupted, prefix))) prefix -= 1;
  while (suffix > 0 && wordAt(clean, clean.length - suffix) && (wordAt(clean, clean.length - suffix - 1) || wordAt(corrupted, corrupted.length - suffix - 1)))
    suffix -= 1;
  const head = clean.slice(0, prefix);
  const tail = clean.slice(clean.length - suffix);
  const cleanMiddle = clean.slice(prefix, clean.length - suffix);
  const corruptedMiddle = corrupted.slice(prefix, corrupted.length - suffix);
  if (cleanMiddle === '' && corruptedMiddle === '') return `${escapePromptText(clean)} => ${answers(example)}`;
  const middle = `{${escapeSpanSide(cleanMiddle)}|${escapeSpanSide(corruptedMiddle)}}`;
  const prompt = escapePromptText(head, true, false) + middle + escapePromptText(tail, false, true);
  return `${prompt} => ${answers(example)}`;
}

const answers = (example: Pick<Example, 'correct' | 'incorrect'>) => `${JSON.stringify(example.correct)} | ${JSON.stringify(example.incorrect)}`;

const WORD_CHAR = /[\p{L}\p{N}_]/u;
const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff;

/** Escapes one side of a span (blanks are never trimmed inside a span). */
function escapeSpanSide(text: string): string {
  return text
    .replace(/[\\{}|]/g, (c) => `\\${c}`)
    .replace(/=>/g, '\\=>')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t');
}
