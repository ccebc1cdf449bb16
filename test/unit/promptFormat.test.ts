import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/shared/errors';
import { formatPromptLine, parsePromptFormat, parsePromptFormatDataset, readDataset, datasetFormatOf, type Diagnostic } from '../../src/lib/dataset';
import { parseJsonlDataset } from '../../src/lib/dataset/jsonl';
import { seededRandom } from '../support/random';

const root = mkdtempSync(join(tmpdir(), 'atp-format-'));
after(() => rmSync(root, { recursive: true, force: true }));

const IOI_LINE = 'When John and Mary went to the shops, {John|Mary} gave the bag to => " Mary" | " John"';

/** The diagnostics of one line, as [startColumn, endColumn, severity, message]. */
function diagnosticsOf(text: string): [number, number, number, Diagnostic['severity'], string][] {
  return parsePromptFormat(text, 'd.atp').diagnostics.map((d) => [d.line, d.startColumn, d.endColumn, d.severity, d.message]);
}

test('the README example: both prompts, answers, source offsets and location', () => {
  const { dataset, diagnostics } = parsePromptFormat(IOI_LINE, 'ioi.atp');
  assert.deepEqual(diagnostics, []);
  const [example] = dataset.examples;
  assert.equal(example.clean, 'When John and Mary went to the shops, John gave the bag to');
  assert.equal(example.corrupted, 'When John and Mary went to the shops, Mary gave the bag to');
  assert.equal(example.correct, ' Mary');
  assert.equal(example.incorrect, ' John');
  assert.equal(example.line, 1);
  const prefix = 'When John and Mary went to the shops, '.length; // 38
  const up = (n: number) => Array.from({ length: n }, (_, i) => i);
  // Clean: the prefix, "John" inside the span (columns 39..42), then " gave the bag to" after the '}' (column 49).
  assert.deepEqual(example.source!.clean, [...up(prefix), 39, 40, 41, 42, ...up(16).map((i) => 49 + i), 65]);
  assert.deepEqual(example.source!.corrupted, [...up(prefix), 44, 45, 46, 47, ...up(16).map((i) => 49 + i), 65]);
  assert.deepEqual(example.location, {
    lineStart: 0,
    clean: { start: 0, end: 65 },
    corrupted: { start: 0, end: 65 },
    correct: { start: 69, end: 76 },
    incorrect: { start: 79, end: 86 },
    spans: [{ start: 38, end: 49 }],
  });
});

test('comments, blank lines, indentation, several spans, empty span sides, \\r\\n and a BOM', () => {
  const text = '\uFEFF# a comment\r\n\r\n   # an indented comment\r\n  {A|B} and {x|} end\t =>  "a"|"b"  \r\nlast {1|2} => "1" | "2"';
  const { dataset, diagnostics } = parsePromptFormat(text, 'd.atp');
  assert.deepEqual(diagnostics, []);
  const [first, second] = dataset.examples;
  assert.deepEqual([first.line, first.clean, first.corrupted, first.correct, first.incorrect], [4, 'A and x end', 'B and  end', 'a', 'b']);
  const document = text.slice(1);
  const lineStart = document.indexOf('  {A|B}');
  assert.equal(first.location!.lineStart, lineStart);
  // Columns: {2 A3 |4 B5 }6 _7 a8 n9 d10 _11 {12 x13 |14 }15 _16 e17 n18 d19, then a tab and a space (trimmed).
  assert.deepEqual(
    first.source!.clean.map((o) => o - lineStart),
    [3, 7, 8, 9, 10, 11, 13, 16, 17, 18, 19, 20],
  );
  assert.deepEqual(
    first.source!.corrupted.map((o) => o - lineStart),
    [5, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20],
  );
  assert.deepEqual(
    first.location!.spans.map((s) => [s.start - lineStart, s.end - lineStart]),
    [
      [2, 7],
      [12, 16],
    ],
  );
  assert.equal(second.line, 5);
  assert.equal(second.location!.lineStart, document.indexOf('last'));
});

test('escapes: literal braces, bars, backslashes, #, =>, newlines and a kept trailing space', () => {
  const line = String.raw`\# a \{b\} c\|d \\ e \=> f\ng\t{x\|y|z\}}\  => "\"q\"" | "\u00e9"`;
  const { dataset, diagnostics } = parsePromptFormat(line, 'd.atp');
  assert.deepEqual(diagnostics, []);
  const [example] = dataset.examples;
  assert.equal(example.clean, '# a {b} c|d \\ e => f\ng\tx|y ');
  assert.equal(example.corrupted, '# a {b} c|d \\ e => f\ng\tz} ');
  assert.equal(example.correct, '"q"');
  assert.equal(example.incorrect, 'é');
  // Each escaped character is at its backslash; "\ " keeps the trailing space, at column 42.
  const source = example.source!.clean;
  assert.deepEqual(source.slice(0, 6), [0, 2, 3, 4, 5, 7]);
  assert.equal(line.slice(source[source.length - 2], source[source.length - 1]), '\\ ');
  assert.equal(source[source.length - 1], line.indexOf('\\  =>') + 2);
});

test('unicode: astral characters, combining marks and CJK keep exact UTF-16 columns', () => {
  const line = 'Zoë 😀 {e\u0301|é} 漢字 {𝒳|y} => "😀" | " x"';
  const { dataset, diagnostics } = parsePromptFormat(line, 'd.atp');
  assert.deepEqual(diagnostics, []);
  const [example] = dataset.examples;
  assert.equal(example.clean, 'Zoë 😀 e\u0301 漢字 𝒳');
  assert.equal(example.corrupted, 'Zoë 😀 é 漢字 y');
  // Z0 o1 ë2 _3 😀4-5 _6 {7 e8 U+0301 9 |10 é11 }12 _13 漢14 字15 _16 {17 𝒳18-19 |20 y21 }22
  assert.deepEqual(example.source!.clean, [0, 1, 2, 3, 4, 5, 6, 8, 9, 13, 14, 15, 16, 18, 19, 20]);
  assert.deepEqual(example.source!.corrupted, [0, 1, 2, 3, 4, 5, 6, 11, 13, 14, 15, 16, 21, 22]);
  assert.deepEqual(example.location!.spans, [
    { start: 7, end: 13 },
    { start: 17, end: 23 },
  ]);
  assert.equal(example.location!.correct.start, line.indexOf('"😀"'));
});

test('diagnostics at exact ranges: braces, bars, arrows, answers and empty prompts', () => {
  const cases: [string, [number, number, Diagnostic['severity'], string][]][] = [
    ['a {b|c => "x" | "y"', [[2, 6, 'error', "unbalanced '{': the span is not closed with '}'"]]],
    [
      'a b|c} => "x" | "y"',
      [
        [3, 4, 'error', "a '|' outside a {clean|corrupted} span; write \\| for a literal bar"],
        [5, 6, 'error', "unbalanced '}': no '{' opens it; write \\} for a literal brace"],
      ],
    ],
    ['a {b} c => "x" | "y"', [[2, 5, 'error', "missing '|' in a span: write {clean text|corrupted text}"]]],
    ['a {b|c|d} => "x" | "y"', [[6, 7, 'error', "a second '|' in a span: a span is {clean|corrupted}; write \\| for a literal bar"]]],
    ['a {b{c|d} => "x" | "y"', [[4, 5, 'error', "a '{' inside a {clean|corrupted} span: spans do not nest; write \\{ for a literal brace"]]],
    [
      '  a {b|c} "x" | "y"  ',
      [
        [14, 15, 'error', "a '|' outside a {clean|corrupted} span; write \\| for a literal bar"],
        [2, 19, 'error', `missing '=>' and the answers: write the prompt, then => " correct" | " incorrect"`],
      ],
    ],
    ['a {b|c} =>   ', [[8, 10, 'error', `missing answers after '=>': write => " correct" | " incorrect"`]]],
    ['a {b|c} => " x"', [[11, 15, 'error', `missing the incorrect answer: write " correct" | " incorrect"`]]],
    ['a {b|c} => " x" |', [[16, 17, 'error', "missing the incorrect answer after '|'"]]],
    ['a {b|c} => " x" " y"', [[16, 20, 'error', "expected '|' and the incorrect answer after the correct answer"]]],
    ['a {b|c} => x | " y"', [[11, 12, 'error', 'the correct answer must be a quoted string, e.g. " Mary" (the leading space is part of the token)']]],
    ['a {b|c} => " x" | y z', [[18, 19, 'error', 'the incorrect answer must be a quoted string, e.g. " Mary" (the leading space is part of the token)']]],
    ['a {b|c} => " x | " y"', [[19, 21, 'error', "expected '|' and the incorrect answer after the correct answer"]]],
    ['a {b|c} => " x" | " y', [[18, 21, 'error', 'malformed incorrect answer: unterminated string: the closing " is missing']]],
    ['a {b|c} => " \\x" | " y"', [[13, 15, 'error', 'malformed correct answer: invalid escape \\x in a quoted string']]],
    ['a {b|c} => " \\u12" | " y"', [[13, 17, 'error', 'malformed correct answer: invalid escape: \\u needs four hexadecimal digits']]],
    ['a {b|c} => "" | " y"', [[11, 13, 'error', 'the correct answer is empty']]],
    ['a {b|c} => " x" | " y" # no', [[23, 27, 'error', 'unexpected text after the answers (a comment must be on its own line, starting with #)']]],
    ['   => " x" | " y"', [[3, 5, 'error', "empty prompt: write the prompt before '=>'"]]],
    ['{|b} => " x" | " y"', [[0, 4, 'error', 'the clean prompt is empty']]],
    ['{a|} => " x" | " y"', [[0, 4, 'error', 'the corrupted prompt is empty']]],
    ['a \\q b => " x" | " y"', [[2, 4, 'error', 'unknown escape \\q: the escapes are \\{ \\} \\| \\\\ \\# \\= \\n \\r \\t and "\\ " (a space)']]],
    ['a \\😀 b => " x" | " y"', [[2, 5, 'error', 'unknown escape \\😀: the escapes are \\{ \\} \\| \\\\ \\# \\= \\n \\r \\t and "\\ " (a space)']]],
    ['same prompt => " x" | " y"', [[0, 11, 'warning', 'no {clean|corrupted} span: the clean and corrupted prompts are the same, so every attribution is 0']]],
    ['same {a|a} => " x" | " y"', [[0, 10, 'warning', 'the clean and corrupted prompts are the same, so every attribution is 0']]],
  ];
  for (const [line, expected] of cases) {
    assert.deepEqual(
      diagnosticsOf(line),
      expected.map((d) => [1, ...d]),
      line,
    );
  }
  // Columns count UTF-16 units: an astral character before the problem moves it by two.
  assert.deepEqual(diagnosticsOf('😀 {b => "x" | "y"'), [[1, 3, 5, 'error', "unbalanced '{': the span is not closed with '}'"]]);
  // Lines with errors give no example; the others still do.
  const parsed = parsePromptFormat(`${IOI_LINE}\na {b => "x" | "y"\n${IOI_LINE}`, 'd.atp');
  assert.deepEqual(
    parsed.dataset.examples.map((e) => e.line),
    [1, 3],
  );
  assert.deepEqual(
    parsed.diagnostics.map((d) => d.line),
    [2],
  );
});

test('parsePromptFormatDataset throws at the first error with file:line:column; warnings are collected', () => {
  assert.throws(
    () => parsePromptFormatDataset(`${IOI_LINE}\n\n  a {b => "x" | "y"`, 'd.atp'),
    (error: unknown) => error instanceof InputError && error.message === "d.atp:3:5: unbalanced '{': the span is not closed with '}'",
  );
  const warnings: string[] = [];
  parsePromptFormatDataset(`${IOI_LINE}\nsame => "x" | "y"`, 'd.atp', warnings);
  assert.deepEqual(warnings, ['d.atp:2:1: warning: no {clean|corrupted} span: the clean and corrupted prompts are the same, so every attribution is 0']);
  assert.throws(() => parsePromptFormatDataset('# only a comment\n\n', 'd.atp'), /d\.atp: no examples/);
});

test('formatPromptLine writes lines that parse back to the same example, for random prompts', () => {
  const random = seededRandom(11);
  const alphabet = ['a', 'b', ' ', '{', '}', '|', '\\', '#', '=', '>', '\n', '\t', 'é', '😀', '"', '\r'];
  const word = () => Array.from({ length: Math.floor(random() * 6) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
  let checked = 0;
  for (let n = 0; n < 3000; n += 1) {
    const prefix = word();
    const suffix = word();
    const clean = prefix + word() + suffix;
    const corrupted = prefix + word() + suffix;
    const correct = word() || ' x';
    const incorrect = word() || ' y';
    if (clean === '' || corrupted === '' || correct === incorrect) continue; // equal answers are refused
    const line = formatPromptLine({ clean, corrupted, correct, incorrect });
    const { dataset, diagnostics } = parsePromptFormat(line, 'r.atp');
    assert.deepEqual(
      diagnostics.filter((d) => d.severity === 'error'),
      [],
      line,
    );
    const [example] = dataset.examples;
    assert.deepEqual([example.clean, example.corrupted, example.correct, example.incorrect], [clean, corrupted, correct, incorrect], line);
    assert.equal(example.source!.clean.length, clean.length + 1);
    checked += 1;
  }
  assert.ok(checked > 2500);
  assert.equal(
    formatPromptLine({
      clean: 'When John and Mary went to the shops, John gave the bag to',
      corrupted: 'When John and Mary went to the shops, Mary gave the bag to',
      correct: ' Mary',
      incorrect: ' John',
    }),
    'When John and Mary went to the shops, {John|Mary} gave the bag to => " Mary" | " John"',
  );
});

test('readDataset dispatches on the extension; other extensions are a clear InputError', () => {
  const atp = join(root, 'ioi.ATP');
  writeFileSync(atp, `# IOI\n${IOI_LINE}\n`);
  assert.equal(readDataset(atp).examples[0].clean, 'When John and Mary went to the shops, John gave the bag to');
  const jsonl = join(root, 'ioi.jsonl');
  writeFileSync(jsonl, `${JSON.stringify({ clean: 'a', corrupted: 'b', correct: ' x', incorrect: ' y' })}\n`);
  assert.equal(readDataset(jsonl).examples[0].corrupted, 'b');
  const csv = join(root, 'ioi.csv');
  assert.throws(
    () => readDataset(csv),
    (error: unknown) => error instanceof InputError && error.message.startsWith(`${csv}: unknown dataset format ".csv": use a .jsonl file`),
  );
  assert.equal(datasetFormatOf('x.JSONL'), 'jsonl');
  assert.throws(() => datasetFormatOf('noext'), /unknown dataset format "\(no extension\)"/);
  assert.throws(() => readDataset(join(root, 'missing.atp')), /missing\.atp: file not found/);
});

test('the .atp and JSONL IOI examples are the same dataset', () => {
  const fromAtp = readDataset('examples/ioi.atp').examples;
  const fromJsonl = parseJsonlDataset(require('node:fs').readFileSync('examples/ioi.jsonl', 'utf8'), 'ioi.jsonl').examples;
  const fields = (e: { clean: string; corrupted: string; correct: string; incorrect: string }) => [e.clean, e.corrupted, e.correct, e.incorrect];
  assert.deepEqual(fromAtp.map(fields), fromJsonl.map(fields));
});
