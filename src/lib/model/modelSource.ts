// What `--model` (and the attributionPatching.model setting) names: a local folder, a preset, or a Hugging Face
// repo id with an optional @revision. Parsing only: nothing is read from the network here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { homedir } from 'node:os';
import { InputError } from '../../shared/errors';
import { BUILT_IN_MODELS, findBuiltInModel, findPreset, resolvePreset } from './presets';
import { BARE_NAME_EXAMPLES, findHubName } from './hubNames';

// ---- sources -------------------------------------------------------------------------------------------------

export type ModelSource =
  | { readonly kind: 'folder'; readonly text: string; readonly path: string }
  | {
      readonly kind: 'hub';
      readonly text: string;
      readonly repo: string;
      readonly revision?: string;
      readonly preset?: string;
      /** What the name stood for, when it was an alias (TransformerLens's gpt2-small): shown with the run's notes. */
      readonly note?: string;
    };

/** Hub rules for each half of org/name: letters, digits, - _ . ; not starting or ending with - or . ; no -- or .. */
const REPO_PART = /^(?![-.])(?!.*(--|\.\.))[A-Za-z0-9_.-]{1,96}(?<![-.])$/;
const COMMIT = /^[0-9a-f]{40}$/;

export function isCommitHash(revision: string): boolean {
  return COMMIT.test(revision);
}

function looksLikePath(text: string): boolean {
  return /^(\.{1,2}([/\\]|$)|[/\\]|~([/\\]|$)|[A-Za-z]:[/\\])/.test(text);
}

export function expandHome(text: string): string {
  return text === '~' || /^~[/\\]/.test(text) ? path.join(homedir(), text.slice(1)) : text;
}

function checkRevision(revision: string, text: string): void {
  const bad =
    revision === '' ||
    /[\s\\:?*\[^~]|\.\.|@\{|\/\/|^\/|\/$|\.lock$|^-/.test(revision) ||
    [...revision].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
  if (bad) {
    throw InputError.about('model', `"${text}": "${revision}" is not a valid revision (a branch, a tag or a 40-character commit hash after the @)`);
  }
}

/**
 * The folder of a built-in model (models/<name>): the first models/ folder above this module that holds it. The
 * bundles live in dist/ and the sources in src/engine/model/, both below the extension's (or repository's) root.
 */
export function builtInModelDir(name: string, from: string = __dirname): string {
  for (let dir = from, i = 0; i < 6; i += 1, dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'models', name);
    if (fs.existsSync(path.join(candidate, 'config.json'))) return candidate;
  }
  throw InputError.about('model', `the built-in model "${name}" is missing from this installation (no models/${name}/config.json above ${from})`);
}

/**
 * The built-in model a folder is — the shipped models/<name>, compared by real path — or undefined for any other
 * folder: Results name a built-in model by its name, never by where this installation keeps it (a path that
 * changes with every update and leaks into shared figures).
 */
export function builtInNameOf(folder: string, from: string = __dirname): string | undefined {
  let real: string;
  try {
    real = fs.realpathSync(folder);
  } catch {
    return undefined;
  }
  for (const model of BUILT_IN_MODELS) {
    try {
      if (fs.realpathSync(builtInModelDir(model.name, from)) === real) return model.name;
    } catch {
      // Not installed here: not this folder.
    }
  }
  return undefined;
}

/**
 * What `--model` names: a local folder (one that exists, or a path starting with ./, ../, /, ~ or a drive letter),
 * a built-in model (tinysql-demo, ioi-demo) or a preset (M0…M5, bm1-cs1, … — both looked up first, so a folder
 * that shares such a name needs ./), a hub repo id org/name, a bare canonical hub id (gpt2) or a TransformerLens
 * alias (gpt2-small; hubNames.ts) — the last four with an optional @revision (branch, tag or commit).
 */
export function parseModelSource(text: string, cwd: string = process.cwd()): ModelSource {
  const trimmed = text.trim();
  if (trimmed === '')
    throw InputError.about(
      'model',
      'empty; give a model folder, a built-in model (tinysql-demo, ioi-demo), a preset such as M0, or a hub repo id such as openai-community/gpt2',
    );
  if (looksLikePath(trimmed)) return { kind: 'folder', text: trimmed, path: path.resolve(cwd, expandHome(trimmed)) };

  const at = trimmed.indexOf('@');
  const base = at < 0 ? trimmed : trimmed.slice(0, at);
  const revision = at < 0 ? undefined : trimmed.slice(at + 1);
  const builtIn = findBuiltInModel(base);
  if (builtIn) {
    if (revision !== undefined)
      throw InputError.about(
        'model',
        `"${trimmed}": ${builtIn.name} is a built-in model shipped with the extension; it has no revisions (drop "@${revision}")`,
      );
    return { kind: 'folder', text: trimmed, path: builtInModelDir(builtIn.name) };
  }
  const preset = findPreset(base);
  if (preset) {
    if (revision !== undefined) checkRevision(revision, trimmed);
    return { kind: 'hub', text: trimmed, repo: preset.repo, revision, preset: preset.name };
  }
  if (fs.existsSync(path.resolve(cwd, trimmed))) return { kind: 'folder', text: trimmed, path: path.resolve(cwd, trimmed) };

  const named = findHubName(base);
  if (named) {
    if (revision !== undefined) checkRevision(revision, trimmed);
    return { kind: 'hub', text: trimmed, repo: named.repo, revision, ...(named.note ? { note: named.note } : {}) };
  }
  const parts = base.split('/');
  if (parts.length === 2 && parts.every((part) => REPO_PART.test(part))) {
    if (revision !== undefined) checkRevision(revision, trimmed);
    return { kind: 'hub', text: trimmed, repo: base, revision };
  }
  resolvePreset(base); // a preset-like name that is no preset (M9, bm1-cs9): the error lists the presets
  throw InputError.about(
    'model',
    `"${trimmed}" is not a folder here, a preset (M0…M5, bm1-cs1, …; see the list in the help) or a Hugging Face repo id ` +
      `org/name[@revision] (e.g. openai-community/gpt2 or Qwen/Qwen2.5-0.5B-Instruct@main; bare names: ${BARE_NAME_EXAMPLES}); ` +
      'a folder path may start with ./',
  );
}
