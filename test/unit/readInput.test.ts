// The one read helper (src/lib/files/readInput.ts) and every reader that goes through it: a path that is a
// symlink to /dev/zero, a FIFO, a folder or a file over its kind's cap is refused at once with a sentence naming
// the file, never read forever (memory without bound) or waited on forever (a FIFO nobody writes).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/shared/errors';
import { openInputFile, readInputFile, streamInputFile } from '../../src/lib/files/readInput';
import { readDataset } from '../../src/lib/dataset';
import { readClaimsFile } from '../../src/lib/claims/schema';
import { readResultFile, resultFilesToWrite } from '../../src/lib/files/resultFile';
import { writeFilesAtomically } from '../../src/lib/files/atomicWrite';
import { readModelSpec } from '../../src/engine/model/config';
import { readSafetensorsHeader } from '../../src/lib/model/safetensors';
import { hashFile } from '../../src/lib/files/provenance';
import { fileHash } from '../../src/engine/patching/shards';
import { comparisonResult } from '../support/comparisonResults';

const root = mkdtempSync(join(tmpdir(), 'atp-read-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const fresh = () => {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  return dir;
};
const posix = process.platform !== 'win32';
const hasZero = posix && existsSync('/dev/zero');

function fifo(file: string): void {
  const made = spawnSync('mkfifo', [file]);
  assert.equal(made.status, 0, `mkfifo ${file}: ${made.stderr}`);
}

/** The kinds of non-file a hostile or careless path can name: how to make one at a path, and the refusal. */
const HOSTILE: Array<{ what: string; make: (file: string) => void; refusal: RegExp }> = [
  { what: 'a symlink to /dev/zero', make: (file) => symlinkSync('/dev/zero', file), refusal: /is not a regular file \(a character device\)/ },
  { what: 'a FIFO', make: fifo, refusal: /is not a regular file \(a FIFO\)/ },
  { what: 'a folder', make: (file) => mkdirSync(file), refusal: /is not a regular file \(a folder\)/ },
];

function assertRefused(read: () => unknown, file: string, pattern: RegExp): void {
  assert.throws(read, (error: unknown) => {
    assert.ok(error instanceof InputError, `expected an InputError, got ${String(error)}`);
    assert.ok(error.message.includes(file), `the message names ${file}: ${error.message}`);
    assert.match(error.message, pattern);
    return true;
  });
}

test('the helper refuses a symlink to /dev/zero, a FIFO and a folder at once, naming the file and what it is', { skip: !hasZero, timeout: 10_000 }, () => {
  for (const { make, refusal } of HOSTILE) {
    const file = join(fresh(), 'input.jsonl');
    make(file);
    assertRefused(() => readInputFile(file, 'dataset'), file, refusal);
  }
});

test('a file over its kind cap is refused before a byte is read, with its size and the cap', { skip: !posix }, () => {
  const file = join(fresh(), 'huge.claims.yaml');
  // A sparse file: 20 MB long, no blocks on disk.
  const fd = openSync(file, 'w');
  ftruncateSync(fd, 20_000_000);
  closeSync(fd);
  assertRefused(() => readInputFile(file, 'claims'), file, /is 20 MB, over the 16 MB limit for a claims file/);
  const dataset = join(fresh(), 'huge.jsonl');
  const big = openSync(dataset, 'w');
  ftruncateSync(big, 3.2e9);
  closeSync(big);
  assertRefused(() => readDataset(dataset), dataset, /huge\.jsonl is 3\.2 GB, over the 1 GB limit for a dataset/);
});

test('a regular file reads whole; a symlink to one is followed; a missing file is "file not found"', () => {
  const dir = fresh();
  writeFileSync(join(dir, 'a.txt'), 'hello');
  symlinkSync(join(dir, 'a.txt'), join(dir, 'link.txt'));
  assert.equal(readInputFile(join(dir, 'link.txt'), 'json').toString(), 'hello');
  assertRefused(() => openInputFile(join(dir, 'none'), 'json'), join(dir, 'none'), /file not found/);
});

test(
  'every reader routes through the helper: datasets, claims, Results, sidecars, config.json, safetensors, hashes',
  { skip: !hasZero, timeout: 30_000 },
  async () => {
    for (const { make, refusal: pattern } of HOSTILE) {
      const readers: Array<[string, (file: string) => unknown]> = [
        ['data.jsonl', (f) => readDataset(f)],
        ['data.atp', (f) => readDataset(f)],
        ['a.claims.yaml', (f) => readClaimsFile(f)],
        ['r.atp-result.json', (f) => readResultFile(f)],
        ['model.safetensors', (f) => readSafetensorsHeader(f)],
        ['data.jsonl', (f) => fileHash(f)],
      ];
      for (const [name, read] of readers) {
        const file = join(fresh(), name);
        make(file);
        assertRefused(() => read(file), file, pattern);
      }
      const model = fresh();
      make(join(model, 'config.json'));
      assertRefused(() => readModelSpec(model), join(model, 'config.json'), pattern);
      const weights = join(fresh(), 'model.safetensors');
      make(weights);
      await assert.rejects(hashFile(weights), (error: unknown) => error instanceof InputError && pattern.test(error.message));
      await assert.rejects(
        (async () => {
          for await (const chunk of streamInputFile(weights, 'stream')) void chunk;
        })(),
        (error: unknown) => error instanceof InputError && pattern.test(error.message),
      );
    }
  },
);

test("a Result's sidecar that is a symlink to /dev/zero or a FIFO is refused, naming the sidecar", { skip: !hasZero, timeout: 10_000 }, () => {
  for (const { make, refusal: pattern } of HOSTILE) {
    const dir = fresh();
    const file = join(dir, 'r.atp-result.json');
    const files = resultFilesToWrite(file, comparisonResult([[1, 2]]), { layout: 'sidecar' });
    writeFilesAtomically(files);
    const sidecar = files[0].file;
    rmSync(sidecar);
    make(sidecar);
    assertRefused(() => readResultFile(file), sidecar, pattern);
  }
});
