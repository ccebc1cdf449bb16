// The one way the engine and the CLI open a file someone else may have written: a dataset, a claims file, a
// Result and its sidecar, a shard, a model's JSON, a CUDA package. A path can name something that is not a file:
// a symlink to /dev/zero (git keeps symlinks) reads forever and grows memory without bound, a FIFO blocks the
// open or the read forever. So the file is opened (through symlinks) without blocking, the OPENED descriptor is
// checked with fstat (no race with a swap after a stat), anything but a regular file is refused, and the size is
// compared with a cap for its kind before a byte is read. Reads then stop at the size fstat gave, so a file
// growing while it is read cannot grow memory either.
import * as fs from 'node:fs';
import { InputError } from '../../shared/errors';

// Decimal units, as messages print them ("over the 1 GB limit").
const MB = 1e6;
const GB = 1e9;

/**
 * What a file is, with its size cap: generous (far above anything real), only there so that a mistake or a hostile
 * file ends in a sentence instead of an out-of-memory. `what` is how a message names the kind.
 */
export const READ_LIMITS = {
  /** A dataset: a 1 GB JSONL is millions of prompt pairs, more than any run would take. */
  dataset: { bytes: 1 * GB, what: 'a dataset' },
  /** A claims file: a few hundred lines of YAML or JSON. */
  claims: { bytes: 16 * MB, what: 'a claims file' },
  /** A Result's JSON: inline Results stay small (INLINE_VALUE_LIMIT), but old @2 files hold everything inline. */
  result: { bytes: 512 * MB, what: 'a result file' },
  /** A Result's safetensors sidecar (read whole into one buffer). */
  sidecar: { bytes: 2 * GB, what: "a result's sidecar" },
  /** A small JSON or text file the engine keeps or a model ships: config.json, tokenizer.json, an index, a ref, a state file. */
  json: { bytes: 256 * MB, what: 'a JSON or text file' },
  /** A credentials file (a Hugging Face token file, ~/.netrc): a few lines. */
  credentials: { bytes: 1 * MB, what: 'a credentials file' },
  /** The CUDA provider package (about 250 MB today). */
  package: { bytes: 8 * GB, what: 'a package' },
  /** Safetensors weights and anything only hashed or streamed: no cap but the check for a regular file. */
  stream: { bytes: Number.POSITIVE_INFINITY, what: 'a file' },
} as const;

export type ReadKind = keyof typeof READ_LIMITS;

/** What fstat's mode says a path is, in words, for the refusal. */
function describe(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a folder';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a plain file';
}

/** "3.2 GB", "512 MB", "900 bytes": sizes for messages (decimal units, as people read them). */
export function formatBytes(bytes: number): string {
  const unit = (scale: number, name: string) => `${Number.isInteger(bytes / scale) ? bytes / scale : (bytes / scale).toFixed(1)} ${name}`;
  if (bytes >= 1e9) return unit(1e9, 'GB');
  if (bytes >= 1e6) return unit(1e6, 'MB');
  if (bytes >= 1e3) return unit(1e3, 'kB');
  return `${bytes} bytes`;
}

/** Open without blocking on a FIFO (O_NONBLOCK does nothing to a regular file's reads); Windows has no such flag. */
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

/** The ErrnoException of a failed open, as an InputError naming the file (ENOENT keeps "file not found"). */
function openError(file: string, error: unknown): InputError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return Object.assign(new InputError(`${file}: file not found`), { code });
  if (code === 'ELOOP') return Object.assign(new InputError(`${file}: cannot read: a loop of symbolic links`), { code });
  return Object.assign(new InputError(`${file}: cannot read: ${(error as Error).message}`), { code });
}

/**
 * Opens a file for reading and returns its descriptor and size, refusing anything but a regular file of at most
 * the kind's cap. The caller closes the descriptor. Errors are InputErrors naming the file; one that failed to
 * open carries the errno `code` (ENOENT, EACCES) for callers that treat a missing file apart.
 */
export function openInputFile(file: string, kind: ReadKind, expected?: string): { fd: number; size: number } {
  const wanted = expected === undefined ? '' : `, expected ${expected}`;
  let fd: number;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (error) {
    // A folder opens on Linux; on Windows it fails with EISDIR or EPERM: say what it is either way.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw Object.assign(new InputError(`${file} is not a regular file (a folder)${wanted}`), { code });
    throw openError(file, error);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new InputError(`${file} is not a regular file (${describe(stat)})${wanted}`);
    const limit = READ_LIMITS[kind];
    if (stat.size > limit.bytes) {
      throw new InputError(`${file} is ${formatBytes(stat.size)}, over the ${formatBytes(limit.bytes)} limit for ${limit.what}`);
    }
    return { fd, size: stat.size };
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
}

/** A regular file's bytes (see openInputFile): at most the size it had when opened. */
export function readInputFile(file: string, kind: ReadKind, expected?: string): Buffer {
  const { fd, size } = openInputFile(file, kind, expected);
  try {
    const bytes = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      let read: number;
      try {
        read = fs.readSync(fd, bytes, at, size - at, at);
      } catch (error) {
        throw new InputError(`${file}: cannot read: ${(error as Error).message}`);
      }
      if (read === 0) break; // Truncated while read: what is there is what the file now holds.
      at += read;
    }
    return at === size ? bytes : bytes.subarray(0, at);
  } finally {
    fs.closeSync(fd);
  }
}

/** A regular file's text as UTF-8 (invalid bytes become U+FFFD: for JSON, whose parser then names the problem). */
export function readInputText(file: string, kind: ReadKind, expected?: string): string {
  return readInputFile(file, kind, expected).toString('utf8');
}

/** The errno code an InputError from openInputFile carries (ENOENT for a missing file), if any. */
export function inputErrorCode(error: unknown): string | undefined {
  return (error as { code?: unknown } | null)?.code as string | undefined;
}

/**
 * Streams a regular file's bytes in chunks (for hashing and copying large files), refusing what openInputFile
 * refuses; reading stops at the size the file had when opened.
 */
export async function* streamInputFile(file: string, kind: ReadKind, chunkBytes = 1 << 20): AsyncGenerator<Buffer> {
  // Reads through the descriptor openInputFile checked (never the path again): positional reads, chunk by chunk.
  const { fd, size } = openInputFile(file, kind);
  try {
    let at = 0;
    while (at < size) {
      const length = Math.min(chunkBytes, size - at);
      const buffer = Buffer.allocUnsafe(length);
      const read = await new Promise<number>((resolve, reject) => fs.read(fd, buffer, 0, length, at, (error, n) => (error ? reject(error) : resolve(n))));
      if (read === 0) return;
      at += read;
      yield read === length ? buffer : buffer.subarray(0, read);
    }
  } finally {
    fs.closeSync(fd);
  }
}
