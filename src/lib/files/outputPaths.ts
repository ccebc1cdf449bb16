// Refuses outputs that would replace an input (or each other) before anything is written: `--out` equal to
// `--data`, a report over its own Result, a dataset written over the tokenizer it was generated with. Paths are
// compared as the file system sees them (symlinks followed, hard links and case-insensitive names caught by
// device and inode), so a second name for the same file is caught as well as the same spelling.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../../shared/errors';

/** A path the command reads or writes, with what the user called it (a flag, "the model's tokenizer.json"). */
export interface NamedPath {
  path: string;
  role: string;
}

interface Resolved {
  /** The real path, or for a file that does not exist yet, its real parent joined with its name. */
  real: string;
  /** dev:ino when the file exists. */
  identity?: string;
}

/**
 * Inputs are resolved as the kernel opens them (realpath of the path as given: "link/../x" goes through the
 * link); outputs as our writers do (writeTextAtomically resolves the path lexically first), so that each side
 * is compared where it really is.
 */
function resolvePath(file: string, as: 'input' | 'output'): Resolved {
  const given = as === 'output' ? path.resolve(file) : path.isAbsolute(file) ? file : `${process.cwd()}${path.sep}${file}`;
  try {
    const real = fs.realpathSync(given);
    const stat = fs.statSync(real);
    return { real, identity: `${stat.dev}:${stat.ino}` };
  } catch {
    // Not there yet (or unreadable): resolve the nearest existing ancestor, so that a symlinked folder still
    // counts as the folder it points to.
    const parent = path.dirname(given);
    if (parent === given) return { real: given };
    return { real: path.join(resolvePath(parent, as).real, path.basename(given)) };
  }
}

function same(a: Resolved, b: Resolved): boolean {
  if (a.identity !== undefined && b.identity !== undefined) return a.identity === b.identity;
  return a.real === b.real;
}

/**
 * Throws an InputError naming both paths when an output resolves to an input or to another output. Call it
 * before the run: a refusal must cost nothing and write nothing.
 */
export function checkOutputPaths(inputs: readonly NamedPath[], outputs: readonly NamedPath[]): void {
  const resolvedInputs = inputs.map((input) => ({ ...input, resolved: resolvePath(input.path, 'input') }));
  const resolvedOutputs = outputs.map((output) => ({ ...output, resolved: resolvePath(output.path, 'output') }));
  for (const [i, output] of resolvedOutputs.entries()) {
    for (const input of resolvedInputs) {
      if (same(output.resolved, input.resolved)) {
        throw new InputError(
          `${output.role} ${output.path} is the same file as ${input.role} ${input.path}; writing it would destroy the input, so choose another output path`,
        );
      }
    }
    for (const other of resolvedOutputs.slice(0, i)) {
      if (same(output.resolved, other.resolved)) {
        throw new InputError(
          `${output.role} ${output.path} is the same file as ${other.role} ${other.path}; one would overwrite the other, so give them different paths`,
        );
      }
    }
  }
}

/** Every file in a model folder (config, tokenizer, weights, index, anything else the folder holds) as inputs. */
export function modelFolderInputs(dir: string): NamedPath[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.map((name) => ({ path: path.join(dir, name), role: `the model's ${name}` }));
}

/**
 * Creates the folder an output goes into; InputError naming the flag and path when it cannot (a parent that is
 * a file, no permission) rather than a stack trace.
 */
export function prepareOutputFolder(file: string, role: string): void {
  let isFolder = false;
  try {
    isFolder = fs.statSync(file).isDirectory();
  } catch {
    // Not there yet: the usual case.
  }
  // Said before the run rather than after it, when the write would fail.
  if (isFolder) throw new InputError(`${role} ${file} is a folder; give a file path`);
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOTDIR' || code === 'EEXIST' ? 'a part of its folder path is a file, not a folder' : (error as Error).message;
    throw new InputError(`${role} ${file}: cannot create its folder: ${why}`);
  }
}
