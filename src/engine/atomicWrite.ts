import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { InputError } from './errors';

/**
 * Writes text so that readers (the editor watches result files) never see a partial file:
 * temp file in the same directory → fsync → rename over the target. On failure the previous file is untouched
 * and the temp file is removed; file-system errors become an InputError naming the file and `what` was written.
 */
export function writeTextAtomically(file: string, text: string, what = 'the file'): void {
  const target = path.resolve(file);
  const tempFile = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tempFile, 'wx');
    const bytes = Buffer.from(text, 'utf8');
    let written = 0;
    while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tempFile, target);
  } catch (error) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // Already failing; the original error is the one to report.
      }
    }
    try {
      fs.unlinkSync(tempFile);
    } catch {
      // The temp file was never created, or is already gone.
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string') throw new InputError(`${file}: cannot write ${what}: ${(error as Error).message}`);
    throw error;
  }
  syncDirectory(path.dirname(target));
}

/** Makes the rename itself durable; not possible on every platform (Windows), so best effort. */
function syncDirectory(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Best effort only.
  }
}
