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

/**
 * Every output flag of every command (parseArgs names): each one a command is given goes through
 * checkCommandOutputs, against that command's inputs. test/engine/outputFlags.test.ts walks this table against
 * every input of each command, and fails on a string flag of src/cli that is neither here nor in its list of flags
 * that name no output, so a new output flag cannot go unchecked.
 */
export const OUTPUT_FLAGS = {
  patch: ['out', 'html'],
  merge: ['out', 'html'],
  report: ['out'],
  circuit: ['out'],
  compare: ['json', 'html', 'svg'],
  export: ['out'],
  generate: ['out'],
  test: ['junit'],
  /** A folder: every file the sweep will write there is checked (checkCommandOutputs' `outputs`). */
  sweep: ['out'],
  /** A folder: the runtime is installed in a folder of its own inside it. */
  'install-cuda': ['dir'],
} as const satisfies Record<string, readonly string[]>;

export type CommandWithOutputs = keyof typeof OUTPUT_FLAGS;

const FOLDER_FLAGS: ReadonlySet<string> = new Set(['sweep --out', 'install-cuda --dir']);

/**
 * The one output check of the command line: each of `command`'s output flags given in `values` (and `more.outputs`,
 * the files the command writes on its own, such as a claims file's stored Result) against `inputs` and each other,
 * a folder output against `more.inputFolders` (nothing is written into a model folder); then each output's folder
 * is created. Call it before anything runs or is written.
 */
export function checkCommandOutputs(
  command: CommandWithOutputs,
  values: Readonly<Record<string, unknown>>,
  inputs: readonly NamedPath[],
  more: { outputs?: readonly NamedPath[]; inputFolders?: readonly NamedPath[] } = {},
): void {
  const given = (OUTPUT_FLAGS[command] as readonly string[]).flatMap((flag) =>
    typeof values[flag] === 'string' && values[flag] !== '' ? [{ path: values[flag] as string, role: `--${flag}` }] : [],
  );
  const files = given.filter((output) => !FOLDER_FLAGS.has(`${command} ${output.role}`));
  const folders = given.filter((output) => FOLDER_FLAGS.has(`${command} ${output.role}`));
  for (const folder of folders) checkOutputFolder(folder, [...inputs, ...(more.inputFolders ?? [])]);
  checkOutputPaths(inputs, [...files, ...(more.outputs ?? [])]);
  for (const output of files) prepareOutputFolder(output.path, output.role);
}

/** A folder output: not an existing file, not an input, and neither an input folder nor inside one. */
function checkOutputFolder(folder: NamedPath, inputs: readonly NamedPath[]): void {
  const out = resolvePath(folder.path, 'output');
  if (out.identity !== undefined && !fs.statSync(out.real).isDirectory()) throw new InputError(`${folder.role} ${folder.path} is a file; give a folder`);
  for (const input of inputs) {
    const resolved = resolvePath(input.path, 'input');
    if (same(out, resolved)) throw new InputError(`${folder.role} ${folder.path} is ${input.role} ${input.path}; choose a folder of its own for the outputs`);
    const inside = path.relative(resolved.real, out.real);
    if (resolved.identity !== undefined && inside !== '' && !inside.startsWith('..') && !path.isAbsolute(inside))
      throw new InputError(
        `${folder.role} ${folder.path} is inside ${input.role} ${input.path}; nothing is written into a model folder, so choose another folder`,
      );
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
