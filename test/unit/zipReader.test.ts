// The minimal zip reader that takes the CUDA provider libraries out of a NuGet package: read against archives
// written by Python's zipfile (an independent implementation), and refusing damaged ones.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractZipEntry, listZip, MAX_ENTRY_BYTES } from '../../src/lib/files/zipReader';
import { crc32 } from '../../src/lib/files/crc32';
import { InputError } from '../../src/shared/errors';
import { seededRandom } from '../support/random';
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

/** A stored or deflated archive written by Python's zipfile, as bytes. */
function pythonZip(name: string, deflated: boolean, contents: string): Buffer {
  const file = join(dir, `${name}.zip`);
  const made = spawnSync('/usr/bin/python3', [
    '-c',
    `import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w',zipfile.${deflated ? 'ZIP_DEFLATED' : 'ZIP_STORED'})\nz.writestr('lib.so', ${contents})\nz.writestr('b.txt', b'hello '*50)\nz.close()`,
    file,
  ]);
  assert.equal(made.status, 0, String(made.stderr));
  return readFileSync(file);
}

test('a zip bomb stops at its declared size: nothing past it is written, and the error names the archive', async () => {
  // 10 MB of zeros deflate to about 10 kB; the directory (and local header) then declare 1000 bytes.
  const bytes = pythonZip('bomb-source', true, "b'\\0'*10_000_000");
  const [entry] = listZip(join(dir, 'bomb-source.zip'));
  // The first central directory entry (lib.so's) is where the end-of-central-directory record says it starts.
  const central = bytes.readUInt32LE(bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06])) + 16);
  bytes.writeUInt32LE(1000, central + 24);
  bytes.writeUInt32LE(1000, entry.localHeaderOffset + 22);
  writeFileSync(join(dir, 'bomb.zip'), bytes);
  const [declared] = listZip(join(dir, 'bomb.zip'));
  assert.equal(declared.size, 1000);
  const out = join(dir, 'bomb.out');
  await assert.rejects(extractZipEntry(join(dir, 'bomb.zip'), declared, out), (error: unknown) => {
    assert.ok(error instanceof InputError);
    assert.match(error.message, /bomb\.zip: not a usable zip archive: lib\.so inflates to more than the 1000 bytes its directory declares/);
    return true;
  });
  assert.ok(!existsSync(out) || statSync(out).size <= 1000, 'at most the declared size was written');
  // A declared size over the cap is refused before anything is written.
  await assert.rejects(extractZipEntry(join(dir, 'bomb.zip'), { ...declared, size: MAX_ENTRY_BYTES + 1 }, join(dir, 'huge.out')), /declares 4000000001 bytes/);
  assert.equal(existsSync(join(dir, 'huge.out')), false);
});

test('a folder or /dev/zero given as the archive is refused at once, naming it', { skip: !existsSync('/dev/zero') }, async () => {
  assert.throws(
    () => listZip(dir),
    (error: unknown) => error instanceof InputError && error.message === `${dir} is not a regular file (a folder)`,
  );
  assert.throws(() => listZip('/dev/zero'), /\/dev\/zero is not a regular file \(a character device\)/);
  const entry = { name: 'x', method: 0, crc32: 0, compressedSize: 1, size: 1, localHeaderOffset: 0 };
  await assert.rejects(extractZipEntry('/dev/zero', entry, join(dir, 'zero.out')), /\/dev\/zero is not a regular file/);
});

test('fuzzed archives (bytes flipped, fields set to extremes, cut short): entries or a ZipError naming the archive, never another error', async () => {
  const sources = [pythonZip('fuzz-stored', false, "b'x'*3000"), pythonZip('fuzz-deflated', true, "b'attribution '*2000")];
  const random = seededRandom(20261207);
  const deadline = performance.now() + 3000;
  let iterations = 0;
  for (; iterations < 600 && performance.now() < deadline; iterations++) {
    const bytes = Buffer.from(sources[iterations % 2]);
    const archive = join(dir, `fuzz-${iterations}.zip`);
    const mutations = 1 + Math.floor(random() * 4);
    let cut = bytes.length;
    for (let m = 0; m < mutations; m++) {
      const at = Math.floor(random() * bytes.length);
      const kind = random();
      if (kind < 0.4) bytes[at] ^= 1 << Math.floor(random() * 8);
      else if (kind < 0.7 && at + 4 <= bytes.length) bytes.writeUInt32LE(random() < 0.5 ? 0xffffffff : Math.floor(random() * 2 ** 32), at);
      else if (kind < 0.85 && at + 2 <= bytes.length) bytes.writeUInt16LE(0xffff, at);
      else cut = Math.min(cut, at);
    }
    writeFileSync(archive, bytes.subarray(0, cut));
    try {
      for (const entry of listZip(archive)) await extractZipEntry(archive, entry, join(dir, 'fuzz.out'));
    } catch (error) {
      if (error instanceof InputError && error.message.includes(archive)) continue;
      assert.fail(`iteration ${iterations}: ${(error as Error).stack}\narchive (base64): ${bytes.subarray(0, cut).toString('base64')}`);
    } finally {
      rmSync(archive);
    }
  }
  assert.ok(iterations >= 50, `only ${iterations} iterations`);
});
