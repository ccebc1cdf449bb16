// The minimal zip reader that takes the CUDA provider libraries out of a NuGet package: read against archives
// written by Python's zipfile (an independent implementation), and refusing damaged ones.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractZipEntry, listZip } from '../../src/lib/files/zipReader';
import { crc32 } from '../../src/lib/files/crc32';
import { makeNupkg } from '../support/fakeNuget';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'atp-zip-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("CRC-32 matches the standard check value and zlib's, as Python computes it", () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  const bytes = randomBytes(5000);
  const python = spawnSync('/usr/bin/python3', ['-c', 'import sys, zlib; print(zlib.crc32(sys.stdin.buffer.read()))'], { input: bytes, encoding: 'utf8' });
  assert.equal(crc32(bytes), Number(python.stdout.trim()));
  // Chunked, as the extractor computes it.
  assert.equal(crc32(bytes.subarray(1234), crc32(bytes.subarray(0, 1234))), crc32(bytes));
});

test('entries of a deflated archive are listed and extracted byte for byte, empty ones included', async () => {
  const files = { 'a/compressible.txt': Buffer.from('attribution '.repeat(10000)), 'b/random.bin': randomBytes(300_000), 'c/empty': Buffer.alloc(0) };
  const archive = join(dir, 'ok.zip');
  writeFileSync(archive, makeNupkg(files));
  const entries = listZip(archive);
  assert.deepEqual(
    entries.map((e) => [e.name, e.size]),
    Object.entries(files).map(([name, bytes]) => [name, bytes.length]),
  );
  assert.ok(entries[0].compressedSize < entries[0].size / 10, 'really deflated');
  for (const entry of entries) {
    const out = join(dir, entry.name.replaceAll('/', '_'));
    await extractZipEntry(archive, entry, out);
    assert.deepEqual(readFileSync(out), files[entry.name as keyof typeof files]);
  }
});

test('a damaged archive is refused: a flipped byte fails the CRC or the inflate, a truncated one has no directory', async () => {
  const stored = spawnSync('/usr/bin/python3', [
    '-c',
    "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_STORED)\nz.writestr('lib.so', b'x'*1000)\nz.close()",
    join(dir, 'stored.zip'),
  ]);
  assert.equal(stored.status, 0, String(stored.stderr));
  const bytes = readFileSync(join(dir, 'stored.zip'));
  const [entry] = listZip(join(dir, 'stored.zip'));
  bytes[entry.localHeaderOffset + 30 + 'lib.so'.length + 500] ^= 0xff;
  writeFileSync(join(dir, 'flipped.zip'), bytes);
  await assert.rejects(
    extractZipEntry(join(dir, 'flipped.zip'), entry, join(dir, 'flipped.out')),
    /flipped\.zip: not a usable zip archive: lib\.so fails its CRC-32 check/,
  );

  writeFileSync(join(dir, 'truncated.zip'), bytes.subarray(0, 600));
  assert.throws(() => listZip(join(dir, 'truncated.zip')), /truncated\.zip: not a usable zip archive: no end-of-central-directory record/);
});
