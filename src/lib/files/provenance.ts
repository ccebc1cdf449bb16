// What a Result was computed from (Result.provenance): the model files' and tokenizer's hashes, the engine version,
// method, device and seed, so a claim knows what it was checked against and a Result can be reused while its
// inputs are unchanged. Hashes are cached by (path, size, mtime) in memory and in the engine's cache folder, so a
// multi-gigabyte safetensors file is hashed once, not on every run.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { Method, Provenance } from '../../shared/result';
import { cacheRoot } from './cacheRoot';
import { writeTextAtomically } from './atomicWrite';
import { version } from '../../../package.json';
import { readInputText, streamInputFile } from './readInput';

export const ENGINE_VERSION: string = version;

interface CachedHash {
  size: number;
  mtimeMs: number;
  hash: string;
}

const memory = new Map<string, CachedHash>();
let diskLoaded = false;

const cacheFile = () => join(cacheRoot(), 'file-hashes.json');

function loadDiskCache(): void {
  if (diskLoaded) return;
  diskLoaded = true;
  try {
    const stored = JSON.parse(readInputText(cacheFile(), 'json')) as Record<string, CachedHash>;
    for (const [path, entry] of Object.entries(stored)) {
      if (typeof entry?.hash === 'string' && typeof entry.size === 'number' && typeof entry.mtimeMs === 'number' && !memory.has(path)) memory.set(path, entry);
    }
  } catch {
    // No cache yet, or an unreadable one: hashing again is only slower.
  }
}

function saveDiskCache(): void {
  try {
    mkdirSync(cacheRoot(), { recursive: true });
    writeTextAtomically(cacheFile(), JSON.stringify(Object.fromEntries(memory), null, 1), 'the file-hash cache');
  } catch {
    // A read-only cache folder costs a re-hash next time, nothing else.
  }
}

/** "sha256:<hex>" of a file's bytes, streamed; reused while the file's size and modification time are unchanged. */
export async function hashFile(path: string): Promise<string> {
  loadDiskCache();
  const { size, mtimeMs } = statSync(path);
  const cached = memory.get(path);
  if (cached && cached.size === size && cached.mtimeMs === mtimeMs) return cached.hash;
  const hash = createHash('sha256');
  // Only a regular file: a model file that is a symlink to /dev/zero or a FIFO is refused, not hashed forever.
  for await (const chunk of streamInputFile(path, 'stream')) hash.update(chunk);
  const entry = { size, mtimeMs, hash: `sha256:${hash.digest('hex')}` };
  memory.set(path, entry);
  saveDiskCache();
  return entry.hash;
}

/** Files of a model folder that decide its outputs besides the weights. */
const MODEL_METADATA = ['config.json', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

/** The model's files (config, weights, tokenizer) by name relative to its folder, each with its hash. */
export async function modelFileHashes(dir: string, weightFiles: readonly string[]): Promise<Record<string, string>> {
  const files = [...MODEL_METADATA.map((name) => join(dir, name)).filter((path) => existsSync(path)), ...weightFiles];
  const hashes: Record<string, string> = {};
  for (const path of [...new Set(files)]) {
    const name = relative(dir, path);
    hashes[name.startsWith('..') ? basename(path) : name] = await hashFile(path);
  }
  return Object.fromEntries(Object.entries(hashes).sort(([a], [b]) => a.localeCompare(b)));
}

/** Provenance of a run of `method` on `device` with the model in `dir` (its tokenizer is tokenizer.json there). */
export async function computeProvenance(
  model: { dir: string; weightFiles: readonly string[] },
  run: { method: Method; device: string; seed: number },
): Promise<Provenance> {
  const modelFiles = await modelFileHashes(model.dir, model.weightFiles);
  return {
    engineVersion: ENGINE_VERSION,
    modelFiles,
    tokenizerHash: modelFiles['tokenizer.json'] ?? 'none',
    method: run.method,
    device: run.device,
    seed: run.seed,
  };
}
