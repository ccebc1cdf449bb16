import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { InputError } from '../../shared/errors';

/** One file to write: its path, its contents, and what it is (for error messages: "the result", "the report"). */
export interface FileToWrite {
  file: string;
  contents: string | Uint8Array;
  what: string;
}

/**
 * Writes text so that readers (the editor watches result files) never see a partial file:
 * temp file in the same directory → fsync → rename over the target. On failure the previous file is untouched
 * and the temp file is removed; file-system errors become an InputError naming the file and `what` was written.
 */
export function writeTextAtomically(file: string, text: string, what = 'the file'): void {
  writeFilesAtomically([{ file, contents: text, what }]);
}

/**
 * Writes several files as one step, as far as a file system allows: every temp file is written and synced first,
 * and only when all of them are complete are they renamed into place. A failure while staging (a full disk, a
 * folder without write permission) leaves every target as it was.
 */
export function writeFilesAtomically(files: readonly FileToWrite[]): void {
  const staged: Array<{ temp: string; target: string; entry: FileToWrite }> = [];
  try {
    for (const entry of files) {
      const target = path.resolve(entry.file);
      // The one rename failure we can foresee: found now, before any target has been replaced.
      if (isFolder(target)) throw new InputError(`${entry.file}: cannot write ${entry.what}: it is a folder`);
      removeStaleTempFiles(target);
      const temp = tempFileFor(target);
      staged.push({ temp, target, entry });
      writeSynced(temp, entry);
    }
    for (const { temp, target, entry } of staged) {
      try {
        fs.renameSync(temp, target);
      } catch (error) {
        throw asInputError(error, entry);
      }
    }
  } catch (error) {
    for (const { temp } of staged) {
      try {
        fs.unlinkSync(temp);
      } catch {
        // Never created, or already renamed into place.
      }
    }
    throw error;
  }
  for (const dir of new Set(staged.map((s) => path.dirname(s.target)))) syncDirectory(dir);
}

function isFolder(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
}

/** Our temp files are `.<name>.<pid>.<random>.tmp` next to the target. */
function tempFileFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

function writeSynced(temp: string, entry: FileToWrite): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(temp, 'wx');
    const bytes = typeof entry.contents === 'string' ? Buffer.from(entry.contents, 'utf8') : entry.contents;
    let written = 0;
    while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written);
    fs.fsyncSync(fd);
  } catch (error) {
    throw asInputError(error, entry);
  } finally {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // Already failing or done; the write's own error is the one to report.
      }
    }
  }
}

function asInputError(error: unknown, entry: FileToWrite): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? new InputError(`${entry.file}: cannot write ${entry.what}: ${(error as Error).message}`) : error;
}

/**
 * A process killed mid-write (kill -9, a power cut) leaves its temp file behind; the next write of the same target
 * removes those of processes that no longer exist. Only our own pattern, only for this target, never a live writer's.
 */
export function removeStaleTempFiles(target: string): void {
  const prefix = `.${path.basename(target)}.`;
  removeOrphans(path.dirname(target), (name) => {
    if (!name.startsWith(prefix)) return undefined;
    const match = /^(\d+)\.[0-9a-f]{12}\.tmp$/.exec(name.slice(prefix.length));
    return match ? Number(match[1]) : undefined;
  });
}

/**
 * The extension's runs write `.<result>.<host pid>.<time>.pending` (through a temp file of its own) and rename it
 * over the result; a host or worker killed meanwhile leaves either behind. Removes those whose process is gone.
 */
export function removeStalePendingFiles(resultFile: string): void {
  const base = path.basename(resultFile);
  removeOrphans(path.dirname(path.resolve(resultFile)), (name) => {
    const pending = name.startsWith(`.${base}.`) ? /^(\d+)\.\d+\.pending$/.exec(name.slice(base.length + 2)) : null;
    const temp = name.startsWith(`..${base}.`) ? /^\d+\.\d+\.pending\.(\d+)\.[0-9a-f]{12}\.tmp$/.exec(name.slice(base.length + 3)) : null;
    const match = pending ?? temp;
    return match ? Number(match[1]) : undefined;
  });
}

/** Removes the files of `dir` whose owner (the pid `ownerOf` reads from the name; undefined: not ours) is gone. */
function removeOrphans(dir: string, ownerOf: (name: string) => number | undefined): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = ownerOf(name);
    if (pid === undefined || !Number.isSafeInteger(pid) || pid === process.pid || processExists(pid)) continue;
    try {
      fs.unlinkSync(path.join(dir, name));
    } catch {
      // Someone else cleaned it up first, or we may not: either way not this write's problem.
    }
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
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
