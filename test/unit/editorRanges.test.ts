// Token offsets → document segments, through JSON escapes, astral characters and .atp spans, using the engine's
// own parsers for the source maps (as the editor does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJsonl } from '../../src/lib/dataset/jsonl';
import { parsePromptFormat } from '../../src/lib/dataset/promptFormat';
import type { TokenInfo } from '../../src/shared/result';
import { promptSegments, tokenSegments, writtenWidth } from '../../src/editor/ranges';

/** Tokens that cut the prompt at the given offsets. */
function tokensAt(prompt: string, cuts: number[]): TokenInfo[] {
  const bounds = [0, ...cuts, prompt.length];
  return bounds.slice(0, -1).map((start, i) => ({ id: i, text: prompt.slice(start, bounds[i + 1]), start, end: bounds[i + 1] }));
}

/** The document text of each token's segments, joined. */
const written = (text: string, segments: Array<Array<{ start: number; end: number }>>) =>
  segments.map((token) => token.map((s) => text.slice(s.start, s.end)).join(''));

test('JSONL: escapes map to their whole escape sequence; a token ending before an escape stops there', () => {
  const clean = 'Say "hi"\n\tto é and \\ ok';
  const line = JSON.stringify({ clean, corrupted: clean.replace('hi', 'yo'), correct: ' a', incorrect: ' b' }).replace('é', '\\u00e9');
  const text = `\n${line}\n`;
  const { dataset, diagnostics } = parseJsonl(text, 'x.jsonl');
  assert.deepEqual(diagnostics, []);
  const example = dataset.examples[0];
  assert.equal(example.clean, clean);
  const tokens = tokensAt(clean, [3, 4, 5, 8, 9, 10, 13, 14, 16, 20]);
  const segments = tokenSegments(text, tokens, example.source!.clean, 'jsonl');
  assert.deepEqual(written(text, segments), ['Say', ' ', '\\"', 'hi\\"', '\\n', '\\t', 'to ', '\\u00e9', ' a', 'nd \\\\', ' ok']);
  // Every token is one contiguous segment in JSONL, and the decoded segments give back the token text.
  for (const [i, token] of tokens.entries()) {
    assert.equal(segments[i].length, 1);
    assert.equal(JSON.parse(`"${written(text, [segments[i]])[0]}"`), token.text);
  }
});

test('JSONL: astral characters, raw (two UTF-16 units) or as an escaped surrogate pair', () => {
  const clean = 'a😀b😀c';
  const line = `{"clean": "a😀b\\ud83d\\ude00c", "corrupted": "a😀b\\ud83d\\ude00d", "correct": " x", "incorrect": " y"}`;
  const { dataset } = parseJsonl(line, 'x.jsonl');
  const example = dataset.examples[0];
  assert.equal(example.clean, clean);
  const segments = tokenSegments(line, tokensAt(clean, [1, 3, 4, 6]), example.source!.clean, 'jsonl');
  assert.deepEqual(written(line, segments), ['a', '😀', 'b', '\\ud83d\\ude00', 'c']);
  // A byte-level token that splits a surrogate pair still maps each half to its own escape.
  assert.deepEqual(written(line, [promptSegments(line, example.source!.clean, 4, 5, 'jsonl')]), ['\\ud83d']);
  assert.equal(writtenWidth(line, line.indexOf('\\ud83d'), 'jsonl'), 6);
});

test('.atp: a token straddling a {clean|corrupted} span becomes two segments that skip the other side', () => {
  const text = '# comment\nWhen {John|Mary} gave it\\{s\\} to => " Mary" | " John"\n';
  const { dataset, diagnostics } = parsePromptFormat(text, 'x.atp');
  assert.deepEqual(
    diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  const example = dataset.examples[0];
  assert.equal(example.clean, 'When John gave it{s} to');
  assert.equal(example.corrupted, 'When Mary gave it{s} to');
  const cleanTokens = tokensAt(example.clean, [4, 9, 14, 17, 20]);
  const clean = tokenSegments(text, cleanTokens, example.source!.clean, 'atp');
  assert.deepEqual(written(text, clean), ['When', ' John', ' gave', ' it', '\\{s\\}', ' to']);
  assert.equal(clean[1].length, 2, '" John": the space before the brace and "John" inside it');
  assert.equal(text.slice(clean[1][1].start, clean[1][1].end), 'John');
  const corrupted = tokenSegments(text, tokensAt(example.corrupted, [4, 9]), example.source!.corrupted, 'atp');
  assert.equal(text.slice(corrupted[1][1].start, corrupted[1][1].end), 'Mary');
  // Clean and corrupted segments of the differing token never overlap.
  assert.ok(clean[1][1].end <= corrupted[1][1].start);
});

test('CRLF line endings and a leading byte-order mark keep offsets in editor terms', () => {
  const text =
    '\uFEFF{"clean": "a b", "corrupted": "a c", "correct": " x", "incorrect": " y"}\r\n{"clean": "d e", "corrupted": "d f", "correct": " x", "incorrect": " y"}\r\n';
  const { dataset } = parseJsonl(text, 'x.jsonl');
  const editorText = text.slice(1); // VS Code's document text has no BOM
  const second = dataset.examples[1];
  const segments = tokenSegments(editorText, tokensAt(second.clean, [1]), second.source!.clean, 'jsonl');
  assert.deepEqual(written(editorText, segments), ['d', ' e']);
});
