// The Hugging Face cache, laid out as huggingface_hub lays it out, so that Python and this engine share one copy of
// every file, and the environment variables that move it.
//
// Cache layout (huggingface_hub's, unchanged): <cache>/models--<org>--<name>/
//   blobs/<etag>                       file contents, named by the hub's ETag (git blob sha1, or sha256 for LFS files)
//   blobs/<etag>.incomplete            a download in progress; resumed with a Range request, renamed when whole
//   refs/<revision>                    the commit a branch or tag pointed to when last resolved
//   snapshots/<commit>/<file>          relative symlink → ../../blobs/<etag> (a hard link or copy where symlinks fail)
// <cache> is HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { expandHome } from '../../lib/model/modelSource';
import { streamInputFile } from '../../lib/files/readInput';

// ---- environment ---------------------------------------------------------------------------------------------

export type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** The hub's base URL: HF_ENDPOINT, else https://huggingface.co. */
export function hubEndpoint(env: Env = process.env): string {
  return (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** The hub cache folder, resolved as huggingface_hub resolves it. */
export function hubCacheDir(env: Env = process.env): string {
  const explicit = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  if (explicit) return path.resolve(expandHome(explicit));
  const hfHome = env.HF_HOME
    ? expandHome(env.HF_HOME)
    : path.join(env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : path.join(homedir(), '.cache'), 'huggingface');
  return path.resolve(hfHome, 'hub');
}

/** HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to 1/true/yes/on. */
export function isOfflineByEnv(env: Env = process.env): boolean {
  const value = (env.HF_HUB_OFFLINE || env.TRANSFORMERS_OFFLINE || '').trim().toUpperCase();
  return ['1', 'ON', 'YES', 'TRUE'].includes(value);
}

/** The repo's folder in the cache: models--org--name. */
export function repoCacheDir(repo: string, env: Env = process.env): string {
  return path.join(hubCacheDir(env), `models--${repo.split('/').join('--')}`);
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of streamInputFile(file, 'stream')) hash.update(chunk);
  return hash.digest('hex');
}

/**
 * snapshots/<commit>/<file> → a relative symlink to the blob (as huggingface_hub makes it); where symlinks are not
 * allowed (Windows without developer mode) a hard link, else a copy. Replaced atomically.
 */
export function linkIntoSnapshot(blob: string, pointer: string): void {
  fs.mkdirSync(path.dirname(pointer), { recursive: true });
  const temp = `${pointer}.${process.pid}.tmp`;
  fs.rmSync(temp, { force: true });
  try {
    fs.symlinkSync(path.relative(path.dirname(pointer), blob), temp);
  } catch {
    try {
      fs.linkSync(blob, temp);
    } catch {
      fs.copyFileSync(blob, temp);
    }
  }
  fs.renameSync(temp, pointer);
}
