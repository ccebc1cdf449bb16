// A dataset that is not UTF-8 is refused with the line of its first bad byte; decoding it would silently replace
// the byte with U+FFFD and run on a prompt the user never wrote.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDataset } from '../../src/lib/dataset';
import { firstInvalidUtf8 } from '../../src/lib/dataset/text';
import { InputError } from '../../src/shared/errors';
import { seededRandom } from '../support/random';

const root = mkdtempSync(join(tmpdir(), 'atp-encoding-'));
after(() => rmSync(root, { recursive: true, force: true }));

const line = (clean: string) => JSON.stringify({ clean, corrupted: `${clean}!`, correct: ' a', incorrect: ' b' });

test('an invalid byte in a .jsonl or .atp dataset is an InputError naming the file and its line', () => {
  const cases: Array<[string, Buffer, number]> = [
    [
      'latin1.jsonl',
      Buffer.concat([
        Buffer.from(`${line('ok')}\r\n${line('fine')}\n`),
        Buffer.from('{"clean": "caf'),
        Buffer.from([0xe9]),
        Buffer.from(`", "corrupted": "x", "correct": " a", "incorrect": " b"}\n`),
      ]),
      3,
    ],
    [
      'truncated.atp',
      Buffer.concat([Buffer.from('# comment\r'), Buffer.from('a {b|c} => " d" | " e"\n'), Buffer.from([0xe2, 0x82]), Buffer.from(' => " d" | " e"\n')]),
      3,
    ],
    ['surrogate.atp', Buffer.concat([Buffer.from('a {b|c} => " d" | " e"\n'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('{b|c} => " d" | " e"\n')]), 2],
    ['overlong.jsonl', Buffer.concat([Buffer.from([0xc0, 0xaf]), Buffer.from(`${line('x')}\n`)]), 1],
  ];
  for (const [name, bytes, expectedLine] of cases) {
    const file = join(root, name);
    writeFileSync(file, bytes);
    assert.throws(
      () => readDataset(file),
      (error: unknown) => {
        assert.ok(error instanceof InputError);
        assert.match(
          error.message,
          new RegExp(
            `^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${expectedLine}: not valid UTF-8 \\(byte 0x[0-9a-f]{2} at byte \\d+ of the line\\); save the file as UTF-8$`,
          ),
        );
        return true;
      },
    );
  }
});

test('valid UTF-8 (a byte-order mark, accents, emoji, CRLF) still reads as before', () => {
  const file = join(root, 'good.jsonl');
  writeFileSync(file, `\uFEFF${line('café 😀')}\r\n${line('naïve')}\r\n`);
  const dataset = readDataset(file);
  assert.deepEqual(
    dataset.examples.map((e) => [e.line, e.clean]),
    [
      [1, 'café 😀'],
      [2, 'naïve'],
    ],
  );
});

test('firstInvalidUtf8 agrees with a fatal TextDecoder on random bytes (seeded)', () => {
  const random = seededRandom(7);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let trial = 0; trial < 3000; trial += 1) {
    const length = Math.floor(random() * 12);
    // Mostly plausible lead and continuation bytes, so that near-valid sequences are common.
    const pool = [0x41, 0x80, 0x9f, 0xa0, 0xbf, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xc0];
    const bytes = Uint8Array.from({ length }, () => (random() < 0.7 ? pool[Math.floor(random() * pool.length)] : Math.floor(random() * 256)));
    const at = firstInvalidUtf8(bytes);
    let valid = true;
    try {
      decoder.decode(bytes);
    } catch {
      valid = false;
    }
    assert.equal(at === bytes.length, valid, `bytes ${Buffer.from(bytes).toString('hex')}: first invalid at ${at}`);
    if (!valid) assert.doesNotThrow(() => decoder.decode(bytes.subarray(0, at)), `the bytes before ${at} are valid`);
  }
});
