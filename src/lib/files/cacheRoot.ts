import { homedir } from 'node:os';
import { join } from 'node:path';

/** The engine's cache folder (graph files, file hashes): ATP_CACHE_DIR, else the XDG cache. */
export function cacheRoot(): string {
  return process.env.ATP_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'attribution-patching');
}
