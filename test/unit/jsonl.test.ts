import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/shared/errors';
import { parseJsonl, parseJsonlDataset, readDataset, type Example } from '../../src/lib/dataset/jsonl';
import { seededRandom } from '../support/random';

const root = mkdtempSync(join(tmpdir(), 'atp-jsonl-'));
after(() => rmSync(root, { recursive: true, force: true }));

const IOI = {
  clean: 'When Mary and John went to the store, John gave a drink to',
  corrupted: 'When Mary and John went to the store, Mary gave a drink to',
  correct: ' Mary',
  incorrect: ' John',
};
const line = (value: unknown) => JSON.stringify(value);
/** An example's fields without the parser's source offsets and location. */
const fields = ({ source: _s, location: _l, ...rest }: Example) => rest;

function assertInputError(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InputError, `expected an InputError, got ${String(error)}`);
    assert.equal(error.message, message);
    return true;
  });
}

test('parses one example per line, keeping whitespace and 1-based line numbers', () => {
  const text = [line(IOI), '', '   ', line({ ...IOI, correct: ' John', incorrect: ' Mary', note: 'extra fields are ignored' }), ''].join('\n');
  const dataset = parseJsonlDataset(text, 'data.jsonl');
  assert.equal(dataset.file, 'data.jsonl');
  assert.deepEqual(dataset.examples.map(fields), [
    { ...IOI, line: 1 },
    { ...IOI, correct: ' John', incorrect: ' Mary', line: 4 },
  ]);
  assert.equal(dataset.examples[0].correct, ' Mary', 'the leading space is part of the token');
});

test('tolerates a UTF-8 BOM and \\r\\n line endings', () => {
  const text = '\uFEFF' + line(IOI) + '\r\n\r\n' + line({ ...IOI, clean: 'Ünïcödé ✓' }) + '\r\n';
  const dataset = parseJsonlDataset(text, 'data.jsonl');
  assert.deepEqual(
    dataset.examples.map((example) => [example.line, example.clean]),
    [
      [1, IOI.clean],
      [3, 'Ünïcödé ✓'],
    ],
  );
});

test('each error names file:line and the field', () => {
  const withLine3 = (third: string) => [line(IOI), line(IOI), third].join('\n');
  const { corrupted: _c, ...noCorrupted } = IOI;
  assertInputError(() => parseJsonlDataset(withLine3(line(noCorrupted)), 'data.jsonl'), 'data.jsonl:3: field "corrupted" is missing');
  assertInputError(() => parseJsonlDataset(withLine3(line({ ...IOI, corrupted: 7 })), 'data.jsonl'), 'data.jsonl:3: field "corrupted" must be a string');
  assertInputError(() => parseJsonlDataset(withLine3(line({ ...IOI, clean: null })), 'data.jsonl'), 'data.jsonl:3: field "clean" must be a string');
  assertInputError(() => parseJsonlDataset(withLine3(line({ ...IOI, correct: [' Mary'] })), 'data.jsonl'), 'data.jsonl:3: field "correct" must be a string');
  assertInputError(() => parseJsonlDataset(withLine3(line({ ...IOI, incorrect: '' })), 'data.jsonl'), 'data.jsonl:3: field "incorrect" must not be empty');
  assertInputError(() => parseJsonlDataset(withLine3(line({ ...IOI, clean: '' })), 'data.jsonl'), 'data.jsonl:3: field "clean" must not be empty');
  assertInputError(
    () => parseJsonlDataset(withLine3('[1, 2]'), 'data.jsonl'),
    'data.jsonl:3: expected a JSON object with fields "clean", "corrupted", "correct", "incorrect", found an array',
  );
  assertInputError(
    () => parseJsonlDataset(withLine3('"just a string"'), 'data.jsonl'),
    'data.jsonl:3: expected a JSON object with fields "clean", "corrupted", "correct", "incorrect", found a string',
  );
});

test('malformed JSON names the line and carries the JSON error', () => {
  const badLine = '{"clean": "a", "corrupted": "b",';
  let jsonError = '';
  try {
    JSON.parse(badLine);
  } catch (error) {
    jsonError = (error as Error).message;
  }
  assertInputError(() => parseJsonlDataset(`${line(IOI)}\n\n${badLine}\n`, 'data.jsonl'), `data.jsonl:3: invalid JSON: ${jsonError}`);
  // A comment is not JSON either: only blank lines are skipped.
  assert.throws(
    () => parseJsonlDataset(`// comment\n${line(IOI)}`, 'data.jsonl'),
    (error: unknown) => error instanceof InputError && error.message.startsWith('data.jsonl:1: invalid JSON: '),
  );
});

test('an empty dataset is an InputError', () => {
  for (const text of ['', '\n\n', '\uFEFF', ' \r\n\t\r\n']) {
    assertInputError(() => parseJsonlDataset(text, 'empty.jsonl'), 'empty.jsonl: no examples (the file is empty or has only blank lines)');
  }
});

test('readDataset reads the file, and names it when it is missing', () => {
  const file = join(root, 'ioi.jsonl');
  writeFileSync(file, `${line(IOI)}\n${line(IOI)}\n`);
  const dataset = readDataset(file);
  assert.equal(dataset.file, file);
  assert.equal(dataset.examples.length, 2);
  assert.equal(dataset.examples[1].line, 2);

  const missing = join(root, 'missing.jsonl');
  assertInputError(() => readDataset(missing), `${missing}: file not found`);
  assertInputError(() => readDataset(root), `${root} is not a regular file (a folder), expected a .jsonl file`);
});

// ---- Source offsets: where each prompt character is written in the document ----

/** For each code unit of the decoded prompt, the document text written for it (an escape, or the character). */
function writtenAt(document: string, source: number[], prompt: string): string[] {
  assert.equal(source.length, prompt.length + 1);
  return prompt.split('').map((_, i) => document.slice(source[i], source[i + 1]));
}

test('source offsets: plain prompts, exact document offsets, and the end entry at the closing quote', () => {
  const first = line(IOI);
  const text = `${first}\n${line({ ...IOI, clean: 'ab', corrupted: 'cd' })}\n`;
  const [one, two] = parseJsonlDataset(text, 'data.jsonl').examples;
  const cleanAt = first.indexOf('"When Mary') + 1;
  assert.deepEqual(
    one.source!.clean,
    Array.from({ length: IOI.clean.length + 1 }, (_, i) => cleanAt + i),
  );
  const corruptedAt = first.indexOf('"When Mary', cleanAt) + 1;
  assert.equal(one.source!.corrupted[0], corruptedAt);
  const secondLine = first.length + 1;
  // {"clean":"ab","corrupted":"cd",...}: "a" is at column 10 of line 2.
  assert.deepEqual(two.source, { clean: [secondLine + 10, secondLine + 11, secondLine + 12], corrupted: [secondLine + 27, secondLine + 28, secondLine + 29] });
  assert.deepEqual(two.location, {
    lineStart: secondLine,
    clean: { start: secondLine + 9, end: secondLine + 13 },
    corrupted: { start: secondLine + 26, end: secondLine + 30 },
    correct: { start: secondLine + 41, end: secondLine + 48 },
    incorrect: { start: secondLine + 61, end: secondLine + 68 },
    spans: [],
  });
});

test('source offsets map through escapes: \\n, \\", \\\\, \\uXXXX, surrogate pairs as two escapes', () => {
  // The raw line, as written in the file (String.raw keeps the backslashes).
  const raw = String.raw`{"clean": "a\nb\"c\\d\u00e9\ud83d\ude00e/\/", "corrupted": "x", "correct": " M", "incorrect": " J"}`;
  const [example] = parseJsonlDataset(raw, 'data.jsonl').examples;
  assert.equal(example.clean, 'a\nb"c\\d\u00e9\u{1F600}e//');
  assert.deepEqual(example.source!.clean, [11, 12, 14, 15, 17, 18, 20, 21, 27, 33, 39, 40, 41, 43]);
  assert.deepEqual(writtenAt(raw, example.source!.clean, example.clean), [
    'a',
    '\\n',
    'b',
    '\\"',
    'c',
    '\\\\',
    'd',
    '\\u00e9',
    '\\ud83d',
    '\\ude00',
    'e',
    '/',
    '\\/',
  ]);
  assert.equal(raw[example.source!.clean[example.clean.length]], '"', 'the end entry is the closing quote');
});

test('source offsets: raw multi-byte and astral characters, combining marks, \\r\\n line endings and a BOM', () => {
  const first = line({ ...IOI, clean: 'Zoë 😀 e\u0301!' }); // JSON.stringify writes these characters raw
  const second = line({ ...IOI, corrupted: '𝒳y' });
  const text = `\uFEFF${first}\r\n\r\n${second}\r\n`;
  const document = text.slice(1); // as an editor holds it: no BOM
  const [one, two] = parseJsonlDataset(text, 'data.jsonl').examples;
  assert.equal(two.line, 3);
  const at = first.indexOf('Zoë');
  // Z o ë space (😀 = two code units at their own offsets) space e U+0301 !
  assert.deepEqual(
    one.source!.clean,
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => at + i),
  );
  assert.deepEqual(writtenAt(document, one.source!.clean, one.clean), ['Z', 'o', 'ë', ' ', '\uD83D', '\uDE00', ' ', 'e', '\u0301', '!', '"'].slice(0, 10));
  const secondStart = first.length + 4; // two \r\n
  const corruptedAt = secondStart + second.indexOf('𝒳');
  assert.deepEqual(two.source!.corrupted, [corruptedAt, corruptedAt + 1, corruptedAt + 2, corruptedAt + 3]);
  assert.equal(two.location!.lineStart, secondStart);
  assert.equal(document.slice(two.source!.corrupted[0], two.source!.corrupted[3]), '𝒳y');
});

test('source offsets agree with JSON.parse on thousands of random strings, whatever the escaping', () => {
  const random = seededRandom(7);
  const alphabet = ['a', ' ', '"', '\\', '\n', '\t', '\u0001', 'é', '€', '😀', '\u0301', '/', '\u2028', '{', '|'];
  for (let n = 0; n < 2000; n += 1) {
    const length = Math.floor(random() * 8) + 1;
    const value = Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    // Write each code unit raw or as \uXXXX (where JSON allows raw), at random.
    let literal = '"';
    for (const unit of value.split('')) {
      const code = unit.charCodeAt(0);
      const mustEscape = unit === '"' || unit === '\\' || code < 0x20 || (code >= 0xd800 && code <= 0xdfff && random() < 0.5);
      literal += mustEscape || random() < 0.3 ? `\\u${code.toString(16).padStart(4, '0')}` : unit;
    }
    literal += '"';
    const raw = `{"clean": ${literal}, "correct": " a", "corrupted": "b", "incorrect": " b"}`;
    if (
      !(() => {
        try {
          JSON.parse(raw);
          return true;
        } catch {
          return false;
        }
      })()
    )
      continue;
    const [example] = parseJsonlDataset(raw, 'fuzz.jsonl').examples;
    assert.equal(example.clean, JSON.parse(raw).clean);
    const source = example.source!.clean;
    assert.equal(source.length, example.clean.length + 1);
    const start = '{"clean": "'.length;
    assert.equal(source[0], start);
    assert.equal(source[source.length - 1], start + literal.length - 2);
    for (let i = 0; i < example.clean.length; i += 1) {
      const written = raw.slice(source[i], source[i + 1]);
      // Each code unit is written as itself (one unit of an astral character) or as one escape decoding to it.
      const decoded = written.startsWith('\\') ? JSON.parse(`"${written}"`) : written;
      if (written.startsWith('\\u') && written.length === 6) assert.equal(decoded.charCodeAt(0), example.clean.charCodeAt(i));
      else assert.equal(decoded, example.clean[i], `unit ${i} of ${JSON.stringify(example.clean)} in ${raw}`);
    }
  }
});

test('a repeated key keeps its last value and offsets, as JSON.parse does', () => {
  const raw = '{"clean": "first", "corrupted": "b", "correct": " a", "incorrect": " b", "clean": "second"}';
  const [example] = parseJsonlDataset(raw, 'data.jsonl').examples;
  assert.equal(example.clean, 'second');
  assert.equal(example.source!.clean[0], raw.indexOf('second'));
});

test('parseJsonl reports every bad line as a diagnostic and keeps the good ones', () => {
  const text = [line(IOI), '{"clean": ', line({ ...IOI, corrupted: 7 }), line({ ...IOI, correct: '' }), line(IOI)].join('\n');
  const { dataset, diagnostics } = parseJsonl(text, 'data.jsonl');
  assert.deepEqual(
    dataset.examples.map((e) => e.line),
    [1, 5],
  );
  const third = line({ ...IOI, corrupted: 7 });
  const fourth = line({ ...IOI, correct: '' });
  assert.deepEqual(
    diagnostics.map(({ message, ...range }) => range),
    [
      { line: 2, startColumn: 0, endColumn: 9, severity: 'error' },
      { line: 3, startColumn: third.indexOf('7'), endColumn: third.indexOf('7') + 1, severity: 'error' },
      { line: 4, startColumn: fourth.indexOf('""'), endColumn: fourth.indexOf('""') + 2, severity: 'error' },
    ],
  );
  assert.match(diagnostics[0].message, /^invalid JSON: /);
  assert.equal(diagnostics[1].message, 'field "corrupted" must be a string');
});
