// The Hugging Face token, found where huggingface_hub finds it (huggingface_hub/utils/_auth.py, get_token):
// HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the file `huggingface-cli login` / `hf auth login` writes:
// HF_TOKEN_PATH, else $HF_HOME/token, with HF_HOME defaulting to $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface.
// The token itself is never put in a message: errors name the variable or the file.
import * as path from 'node:path';
import { homedir } from 'node:os';
import { InputError } from '../../shared/errors';
import type { Env } from './hubCache';
import { expandHome } from '../../lib/model/modelSource';
import { inputErrorCode, readInputText } from '../../lib/files/readInput';

export interface FoundToken {
  readonly token: string;
  /** Where it came from, in words for messages: "HF_TOKEN", "the token file /home/u/.cache/huggingface/token". */
  readonly source: string;
}

/** Where `hf auth login` saves the token: HF_TOKEN_PATH, else $HF_HOME/token. */
export function hubTokenPath(env: Env = process.env): string {
  if (env.HF_TOKEN_PATH) return path.resolve(expandHome(env.HF_TOKEN_PATH));
  const hfHome = env.HF_HOME
    ? expandHome(env.HF_HOME)
    : path.join(env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : path.join(homedir(), '.cache'), 'huggingface');
  return path.resolve(hfHome, 'token');
}

/** A token goes into an Authorization header: printable ASCII without spaces (a second line would break every request). */
function usable(token: string): boolean {
  return /^[\x21-\x7e]+$/.test(token);
}

/** The token as huggingface_hub would use it, or undefined when none is set; a malformed one is an InputError. */
export function findHubToken(env: Env = process.env): FoundToken | undefined {
  for (const name of ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN'] as const) {
    const value = env[name]?.trim();
    if (!value) continue;
    if (!usable(value)) {
      throw new InputError(`${name} is not a usable Hugging Face token: it must be one word of printable characters (it was not shown)`, {
        field: 'hfToken',
      });
    }
    return { token: value, source: name };
  }
  const file = hubTokenPath(env);
  let text: string;
  try {
    // Through the one read helper: a FIFO or /dev/zero in HF_TOKEN_PATH is refused, never read without end.
    text = readInputText(file, 'credentials');
  } catch (error) {
    const code = inputErrorCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined; // never logged in: no token, as in huggingface_hub
    throw new InputError(`the Hugging Face token file ${file} cannot be read (${code ?? (error as Error).message}); fix it or set HF_TOKEN`, {
      field: 'hfToken',
    });
  }
  const token = text.trim();
  if (token === '') return undefined;
  if (!usable(token)) {
    throw new InputError(
      `the Hugging Face token file ${file} is malformed: it must hold one token on one line (its contents were not shown); ` +
        'log in again with `hf auth login`, or set HF_TOKEN',
      { field: 'hfToken' },
    );
  }
  return { token, source: `the token file ${file}` };
}
