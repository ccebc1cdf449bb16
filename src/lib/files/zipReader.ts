// A minimal zip reader for one job: taking named files out of a NuGet package (.nupkg is a zip). It reads the
// central directory (zip64 included: the CUDA provider library is hundreds of MB), streams each wanted entry
// through inflateRaw to its destination and checks its CRC-32 and size, so a damaged archive never installs.
// Every problem with the archive is a ZipError, an InputError naming the archive: never an internal error.
import { closeSync, createReadStream, createWriteStream, readSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInflateRaw } from 'node:zlib';
import { crc32 } from './crc32';
import { InputError } from '../../shared/errors';
import { openInputFile } from './readInput';

/**
 * The largest entry extracted (declared size): the CUDA provider library is under 1 GB; a directory that declares
 * more is refused before anything is written.
 */
export const MAX_ENTRY_BYTES = 4e9;

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export class ZipError extends InputError {
  constructor(file: string, problem: string) {
    super(`${file}: not a usable zip archive: ${problem}`);
    this.name = 'ZipError';
  }
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  let read = 0;
  while (read < length) {
    const n = readSync(fd, buffer, read, length - read, position + read);
    if (n === 0) break;
    read += n;
  }
  return buffer.subarray(0, read);
}

const EOCD = 0x06054b50;
const ZIP64_EOCD = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** The archive's entries, from its central directory. */
export function listZip(file: string): ZipEntry[] {
  // A regular file only (a folder or /dev/zero is refused with its name), of at most READ_LIMITS.package.
  const { fd, size: fileSize } = openInputFile(file, 'package');
  try {
    // The end-of-central-directory record is in the last 22 + 65535 (comment) bytes.
    const tailLength = Math.min(fileSize, 22 + 0xffff);
    const tail = readAt(fd, fileSize - tailLength, tailLength);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new ZipError(file, 'no end-of-central-directory record (truncated or not a zip)');
    let count = tail.readUInt16LE(eocd + 10);
    let directorySize = tail.readUInt32LE(eocd + 12);
    let directoryOffset = tail.readUInt32LE(eocd + 16);
    if (count === 0xffff || directoryOffset === 0xffffffff) {
      const locator = eocd - 20;
      if (locator < 0 || tail.readUInt32LE(locator) !== ZIP64_LOCATOR) throw new ZipError(file, 'zip64 locator missing');
      const record = readAt(fd, Number(tail.readBigUInt64LE(locator + 8)), 56);
      if (record.readUInt32LE(0) !== ZIP64_EOCD) throw new ZipError(file, 'zip64 end-of-central-directory record missing');
      count = Number(record.readBigUInt64LE(32));
      directorySize = Number(record.readBigUInt64LE(40));
      directoryOffset = Number(record.readBigUInt64LE(48));
    }
    if (directoryOffset + directorySize > fileSize) throw new ZipError(file, 'central directory lies past the end of the file');
    const directory = readAt(fd, directoryOffset, directorySize);
    const entries: ZipEntry[] = [];
    let at = 0;
    for (let i = 0; i < count; i++) {
      if (at + 46 > directory.length || directory.readUInt32LE(at) !== CENTRAL) throw new ZipError(file, `central directory entry ${i} is damaged`);
      const nameLength = directory.readUInt16LE(at + 28);
      const extraLength = directory.readUInt16LE(at + 30);
      const commentLength = directory.readUInt16LE(at + 32);
      const entry: ZipEntry = {
        name: directory.toString('utf8', at + 46, at + 46 + nameLength),
        method: directory.readUInt16LE(at + 10),
        crc32: directory.readUInt32LE(at + 16),
        compressedSize: directory.readUInt32LE(at + 20),
        size: directory.readUInt32LE(at + 24),
        localHeaderOffset: directory.readUInt32LE(at + 42),
      };
      // Zip64: the 0xffffffff fields are in the extra field 0x0001, in this order, only those that overflowed.
      let extra = at + 46 + nameLength;
      const extraEnd = extra + extraLength;
      while (extra + 4 <= extraEnd) {
        const id = directory.readUInt16LE(extra);
        const length = directory.readUInt16LE(extra + 2);
        if (id === 0x0001) {
          let field = extra + 4;
          const next = () => {
            const value = Number(directory.readBigUInt64LE(field));
            field += 8;
            return value;
          };
          if (entry.size === 0xffffffff) entry.size = next();
          if (entry.compressedSize === 0xffffffff) entry.compressedSize = next();
          if (entry.localHeaderOffset === 0xffffffff) entry.localHeaderOffset = next();
        }
        extra += 4 + length;
      }
      entries.push(entry);
      at = extraEnd + commentLength;
    }
    return entries;
  } catch (error) {
    // A field that points past its record (a damaged extra field, a zip64 record cut short): Buffer's RangeError.
    if (error instanceof RangeError) throw new ZipError(file, `a record is damaged (${error.message})`);
    throw error;
  } finally {
    closeSync(fd);
  }
}

/** Writes one entry to `destination`, checking its CRC-32 and size; throws (leaving a partial file) otherwise. */
export async function extractZipEntry(file: string, entry: ZipEntry, destination: string): Promise<void> {
  if (entry.method !== 0 && entry.method !== 8)
    throw new ZipError(file, `${entry.name} uses compression method ${entry.method} (only stored and deflate are read)`);
  if (entry.size > MAX_ENTRY_BYTES) throw new ZipError(file, `${entry.name} declares ${entry.size} bytes, more than the ${MAX_ENTRY_BYTES} extracted`);
  // One descriptor, checked as a regular file, for the header and the data: the path is not opened again.
  const { fd, size: fileSize } = openInputFile(file, 'package');
  let dataStart: number;
  try {
    const header = readAt(fd, entry.localHeaderOffset, 30);
    if (header.length < 30 || header.readUInt32LE(0) !== LOCAL) throw new ZipError(file, `local header of ${entry.name} is damaged`);
    dataStart = entry.localHeaderOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
    if (dataStart + entry.compressedSize > fileSize) throw new ZipError(file, `${entry.name}'s data lies past the end of the file`);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  let crc = 0;
  let size = 0;
  // Counts as it goes and stops the pipeline at the first byte past the declared size, so a zip bomb writes no
  // more than its directory declared (and that is capped above).
  const check = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (size + chunk.length > entry.size)
        return done(new ZipError(file, `${entry.name} inflates to more than the ${entry.size} bytes its directory declares`));
      crc = crc32(chunk, crc);
      size += chunk.length;
      done(null, chunk);
    },
  });
  // createReadStream's end is inclusive: an empty entry reads nothing. It reads (and closes) the checked descriptor.
  let source: Readable;
  if (entry.compressedSize > 0) source = createReadStream('', { fd, start: dataStart, end: dataStart + entry.compressedSize - 1, autoClose: true });
  else {
    closeSync(fd);
    source = Readable.from([]);
  }
  try {
    if (entry.method === 8) await pipeline(source, createInflateRaw(), check, createWriteStream(destination));
    else await pipeline(source, check, createWriteStream(destination));
  } catch (error) {
    if (error instanceof ZipError) throw error;
    throw new ZipError(file, `${entry.name} does not inflate (${(error as Error).message})`);
  }
  if (size !== entry.size) throw new ZipError(file, `${entry.name} is ${size} bytes, the directory says ${entry.size}`);
  if (crc !== entry.crc32) throw new ZipError(file, `${entry.name} fails its CRC-32 check`);
}
