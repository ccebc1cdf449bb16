import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/engine/errors';
import { parseJsonlDataset, readDataset } from '../../src/engine/dataset/jsonl';

const root = mkdtempSync(join(tmpdir(), 'atp-jsonl-'));
after(() => rmSync(root, { recursive: true, force: true }));

const IOI = {
  clean: 'When Mary and John went to the store, John gave a drink to',
  corrupted: 'When Mary and John went to the store, Mary gave a drink to',
  correct: ' Mary',
  incorrect: ' John',
};
const line = (value: unknown) => JSON.stringify(value);

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
  assert.deepEqual(dataset.examples, [
    { ...IOI, line: 1 },
    { ...IOI, correct: ' John', incorrect: ' Mary', line: 4 },
  ]);
  assert.equal(dataset.examples[0].correct, ' Mary', 'the leading space is part of the token');
});

test('tolerates a UTF-8 BOM and \\r\\n line endings', () => {
  const text = '\uFEFF' + line(IOI) + '\r\n\r\n' + line({ ...IOI, clean: 'Ünïcödé ✓' }) + '\r\n';
  const dataset = parseJsonlDataset(text, 'data.jsonl');
  assert.deepEqual(dataset.examples.map((example) => [example.line, example.clean]), [
    [1, IOI.clean],
    [3, 'Ünïcödé ✓'],
  ]);
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
  assert.throws(() => parseJsonlDataset(`// comment\n${line(IOI)}`, 'data.jsonl'), (error: unknown) => error instanceof InputError && error.message.startsWith('data.jsonl:1: invalid JSON: '));
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
  assertInputError(() => readDataset(root), `${root}: is a folder, expected a .jsonl file`);
});
