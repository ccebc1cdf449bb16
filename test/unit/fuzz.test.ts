// Seeded, time-bounded fuzzing of what reads untrusted files: the dataset parsers (.jsonl, .atp) and the
// safetensors header reader. Whatever the bytes, each ends in a result or an InputError: never a TypeError, a
// RangeError, a hang or a crash. A failure prints the seed and input, so it replays exactly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/shared/errors';
import { parseDatasetText, parseJsonlDataset, parsePromptFormatDataset, readDataset } from '../../src/lib/dataset';
import { readSafetensorsHeader } from '../../src/lib/model/safetensors';
import { seededRandom } from '../support/random';

const root = mkdtempSync(join(tmpdir(), 'atp-fuzz-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SEED = 20261129;
/** Each target runs this long (or until its iteration cap): bounded, so the suite's time does not depend on luck. */
const BUDGET_MS = 1500;
const MAX_ITERATIONS = 4000;

function fuzz(name: string, generate: (random: () => number) => Buffer, check: (input: Buffer) => void): void {
  const random = seededRandom(SEED);
  const deadline = performance.now() + BUDGET_MS;
  let iterations = 0;
  for (; iterations < MAX_ITERATIONS && performance.now() < deadline; iterations += 1) {
    const input = generate(random);
    try {
      check(input);
    } catch (error) {
      if (error instanceof InputError) continue;
      assert.fail(`${name}, seed ${SEED}, iteration ${iterations}: ${(error as Error).stack}\ninput (base64): ${input.toString('base64')}`);
    }
  }
  assert.ok(iterations >= 50, `${name}: only ${iterations} iterations in ${BUDGET_MS} ms`);
}

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)];

const JSONL_LINE =
  '{"clean": "When John and Mary went to the shops, John gave the bag to", "corrupted": "When John and Mary went to the shops, Mary gave the bag to", "correct": " Mary", "incorrect": " John"}';
const ATP_LINE = 'When {John|Tom} and Mary went, {John|Tom} gave \\{x\\} => " Mary" | " \\"John\\u00e9"';
const TOKENS = [
  '{',
  '}',
  '|',
  '\\',
  '"',
  '=>',
  '=',
  '>',
  '#',
  ' ',
  '\t',
  '\n',
  '\r\n',
  '\r',
  ':',
  ',',
  '[',
  ']',
  'null',
  '\\u',
  '\\ud800',
  'é',
  '😀',
  '\uFEFF',
  '\u0000',
  'clean',
  'corrupted',
  'correct',
  'incorrect',
];

/** Text near the valid formats: a valid line with random edits, random tokens, or random bytes. */
function datasetBytes(random: () => number): Buffer {
  const mode = random();
  if (mode < 0.15) return Buffer.from(Array.from({ length: Math.floor(random() * 200) }, () => Math.floor(random() * 256)));
  const lines: string[] = [];
  const count = 1 + Math.floor(random() * 4);
  for (let l = 0; l < count; l += 1) {
    let line = mode < 0.5 ? JSONL_LINE : mode < 0.85 ? ATP_LINE : Array.from({ length: Math.floor(random() * 30) }, () => pick(random, TOKENS)).join('');
    const edits = Math.floor(random() * 6);
    for (let e = 0; e < edits; e += 1) {
      const at = Math.floor(random() * (line.length + 1));
      const cut = random() < 0.5 ? Math.floor(random() * 4) : 0;
      line = line.slice(0, at) + (random() < 0.8 ? pick(random, TOKENS) : '') + line.slice(at + cut);
    }
    lines.push(line);
  }
  return Buffer.from(lines.join(pick(random, ['\n', '\r\n', '\r'])), 'utf8');
}

for (const format of ['jsonl', 'atp'] as const) {
  test(`the ${format} parsers: random and mutated text ends in examples and diagnostics, or an InputError`, () => {
    fuzz(`parse .${format}`, datasetBytes, (bytes) => {
      const text = bytes.toString('utf8');
      // The editor's parser never throws: every problem is a diagnostic on an existing line.
      const parsed = parseDatasetText(text, `f.${format}`, format);
      const lines = text.split(/\r\n|\r|\n/).length;
      for (const d of parsed.diagnostics) {
        assert.ok(d.line >= 1 && d.line <= lines && d.startColumn >= 0 && d.endColumn >= d.startColumn, JSON.stringify(d));
      }
      for (const example of parsed.dataset.examples) {
        for (const field of ['clean', 'corrupted', 'correct', 'incorrect'] as const) assert.equal(typeof example[field], 'string');
        if (example.source) assert.equal(example.source.clean.length, example.clean.length + 1);
      }
      if (format === 'jsonl') parseJsonlDataset(text, 'f.jsonl');
      else parsePromptFormatDataset(text, 'f.atp', []);
    });
  });
}

test('readDataset: random files (any bytes, invalid UTF-8 included) end in a Dataset or an InputError', () => {
  let n = 0;
  fuzz('readDataset', datasetBytes, (bytes) => {
    const file = join(root, `d${n++ % 8}.${n % 2 === 0 ? 'jsonl' : 'atp'}`);
    writeFileSync(file, bytes);
    readDataset(file, []);
  });
});

/** A small valid safetensors file, then random edits to its length prefix, header and data, or random bytes. */
function safetensorsBytes(random: () => number): Buffer {
  if (random() < 0.1) return Buffer.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)));
  const header: Record<string, unknown> = {
    __metadata__: { format: 'pt' },
    a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
    b: { dtype: 'BF16', shape: [3], data_offsets: [16, 22] },
  };
  const values: unknown[] = [null, -1, 1e20, 2 ** 53 + 2, 'F32', [], {}, [0], [0, 1e15], [3, 1], [[1]], 'x', true, 0.5];
  for (let e = Math.floor(random() * 4); e > 0; e -= 1) {
    const name = pick(random, ['a', 'b', '__metadata__', '__proto__', 'c']);
    const field = pick(random, ['dtype', 'shape', 'data_offsets', null]);
    const entry = header[name];
    if (field === null || typeof entry !== 'object' || entry === null) header[name] = pick(random, values);
    else (entry as Record<string, unknown>)[field] = pick(random, values);
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  if (random() < 0.3) {
    const at = Math.floor(random() * json.length);
    json = Buffer.concat([json.subarray(0, at), Buffer.from([Math.floor(random() * 256)]), json.subarray(at + 1)]);
  }
  const length = Buffer.alloc(8);
  const lie = random();
  length.writeBigUInt64LE(
    lie < 0.1
      ? BigInt(Math.floor(random() * 2 ** 52)) * 4096n
      : lie < 0.2
        ? BigInt(json.length + Math.floor(random() * 40) - 20 > 0 ? json.length + Math.floor(random() * 40) - 20 : 1)
        : BigInt(json.length),
  );
  const data = Buffer.alloc(Math.floor(random() * 30));
  return Buffer.concat([length, json, data]);
}

test('readSafetensorsHeader: random and mutated files end in tensors within the file, or an InputError', () => {
  const file = join(root, 'w.safetensors');
  fuzz('safetensors', safetensorsBytes, (bytes) => {
    writeFileSync(file, bytes);
    const { tensors } = readSafetensorsHeader(file);
    for (const t of tensors) {
      assert.ok(Number.isSafeInteger(t.offset) && Number.isSafeInteger(t.length) && t.offset + t.length <= bytes.length, JSON.stringify(t));
    }
  });
});
