// The W&B API key, found where W&B's Python client finds it (wandb/sdk/lib/apikey.py): WANDB_API_KEY, else the
// password of the server's host in the netrc file that `wandb login` writes — NETRC, else ~/.netrc (~/_netrc on
// Windows when there is no ~/.netrc), looked up as requests' get_netrc_auth does: by host name without the port,
// falling back to the file's `default` entry. The key is never put in a message: errors name the file and line.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { homedir } from 'node:os';
import { InputError } from '../../shared/errors';
import { inputErrorCode, readInputText } from '../files/readInput';
import { parseWandbBaseUrl, type WandbTarget, wandbTargetFromEnv } from '../../shared/wandb';

type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_WANDB_HOST = 'api.wandb.ai';

interface NetrcEntry {
  login?: string;
  password?: string;
}

export interface Netrc {
  machines: Map<string, NetrcEntry>;
  default?: NetrcEntry;
}

/** The netrc file in use: NETRC, else ~/.netrc (on Windows ~/_netrc when only that exists). */
export function netrcPath(env: Env = process.env, home: string = homedir()): string {
  if (env.NETRC) return path.resolve(env.NETRC.startsWith('~') ? path.join(home, env.NETRC.slice(1)) : env.NETRC);
  const unix = path.join(home, '.netrc');
  if (process.platform === 'win32' && !fs.existsSync(unix) && fs.existsSync(path.join(home, '_netrc'))) return path.join(home, '_netrc');
  return unix;
}

/**
 * A netrc file, as Python's netrc module reads it: whitespace-separated tokens (double quotes with backslash
 * escapes allowed), `#` comments, entries `machine NAME` or `default` followed by `login`, `password` and `account`
 * pairs, and `macdef` blocks that end at an empty line. Errors name the file and line, never a token's text (it may
 * be the password).
 */
export function parseNetrc(text: string, file: string): Netrc {
  const netrc: Netrc = { machines: new Map() };
  let entry: NetrcEntry | undefined;
  let pos = 0;
  const lineAt = (offset: number) => text.slice(0, offset).split('\n').length;
  const fail = (offset: number, what: string): never => {
    throw new InputError(`the netrc file ${file} is malformed at line ${lineAt(offset)}: ${what} (fix or remove it, or set WANDB_API_KEY)`, {
      field: 'wandbKey',
    });
  };
  const next = (): { value: string; at: number } | undefined => {
    for (;;) {
      while (pos < text.length && /\s/.test(text[pos])) pos++;
      if (pos >= text.length) return undefined;
      if (text[pos] !== '#') break;
      while (pos < text.length && text[pos] !== '\n') pos++;
    }
    const at = pos;
    let value = '';
    if (text[pos] === '"') {
      pos++;
      while (pos < text.length && text[pos] !== '"') {
        if (text[pos] === '\\' && pos + 1 < text.length) pos++;
        value += text[pos++];
      }
      if (pos >= text.length) fail(at, 'a quoted value is not closed');
      pos++;
    } else {
      while (pos < text.length && !/\s/.test(text[pos])) {
        if (text[pos] === '\\' && pos + 1 < text.length) pos++;
        value += text[pos++];
      }
    }
    return { value, at };
  };
  const valueOf = (keyword: string, at: number): string => next()?.value ?? fail(at, `"${keyword}" has no value`);
  for (let token = next(); token; token = next()) {
    const { value: word, at } = token;
    if (word === 'machine') {
      entry = {};
      netrc.machines.set(valueOf(word, at), entry);
    } else if (word === 'default') {
      entry = {};
      netrc.default = entry;
    } else if (word === 'macdef') {
      valueOf(word, at);
      const end = text.indexOf('\n\n', pos);
      pos = end < 0 ? text.length : end;
      entry = undefined;
    } else if (word === 'login' || word === 'user' || word === 'password' || word === 'account') {
      if (!entry) fail(at, `"${word}" comes before any "machine" or "default"`);
      const value = valueOf(word, at);
      if (word === 'password') entry!.password = value;
      else if (word !== 'account') entry!.login = value;
    } else {
      fail(at, 'expected machine, default, macdef, login, password or account (the word found is not shown)');
    }
  }
  return netrc;
}

export interface FoundWandbKey {
  readonly apiKey: string;
  /** Where it came from, for messages: "WANDB_API_KEY", "the netrc file /home/u/.netrc (machine api.wandb.ai)". */
  readonly keySource: string;
}

/** The key W&B's client would use for the server (WANDB_BASE_URL, default https://api.wandb.ai), or undefined. */
export function findWandbKey(env: Env = process.env, home: string = homedir()): FoundWandbKey | undefined {
  const fromEnv = env.WANDB_API_KEY?.trim();
  if (fromEnv) return { apiKey: fromEnv, keySource: 'WANDB_API_KEY' };
  const baseUrl = parseWandbBaseUrl(env.WANDB_BASE_URL);
  const host = baseUrl ? new URL(baseUrl).hostname : DEFAULT_WANDB_HOST;
  const file = netrcPath(env, home);
  let text: string;
  try {
    text = readInputText(file, 'credentials');
  } catch (error) {
    const code = inputErrorCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new InputError(`the netrc file ${file} cannot be read (${code ?? (error as Error).message}); fix it or set WANDB_API_KEY`, { field: 'wandbKey' });
  }
  const netrc = parseNetrc(text, file);
  const machine = netrc.machines.get(host);
  const entry = machine ?? netrc.default;
  const apiKey = entry?.password?.trim();
  if (!apiKey) return undefined;
  return { apiKey, keySource: `the netrc file ${file} (${machine ? `machine ${host}` : 'its default entry'})` };
}

/**
 * The command line's W&B target: `--wandb [entity/]project` with the key W&B's own client would use. Refused
 * before the run when there is none (wandbTargetFromEnv's error).
 */
export function wandbTargetForCommandLine(projectText: string, env: Env = process.env): WandbTarget {
  const found = findWandbKey(env);
  if (!found) return wandbTargetFromEnv(projectText, env);
  return { ...wandbTargetFromEnv(projectText, { ...env, WANDB_API_KEY: found.apiKey }), keySource: found.keySource };
}
