import * as ort from 'onnxruntime-node';
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, basename } from 'node:path';
import { InputError } from './errors';
import { autoChoice, describeAutoChoice, type Provider, webgpuAdapter } from './devices';
import { SessionObserver } from './runtimeInfo';

export const DEVICES = ['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'] as const;
export type DeviceRequest = (typeof DEVICES)[number];

export function parseDevice(text: string): DeviceRequest {
  if ((DEVICES as readonly string[]).includes(text)) return text as DeviceRequest;
  throw new InputError(`--device: unknown device "${text}"; choose one of ${DEVICES.join(', ')}`);
}

export interface SessionHandle {
  readonly session: ort.InferenceSession;
  /** The execution provider the session really runs on. */
  readonly device: Exclude<DeviceRequest, 'auto'>;
  /** Why a requested provider was not used, for the user to read. */
  readonly notes: string[];
  /** What `auto` tried and why (absent for an explicit device). */
  readonly choice?: string;
  /** Provider, adapter and (after the first run) where the nodes ran: see runtimeInfo.ts. */
  readonly observer: SessionObserver;
}

// ONNX Runtime's own logger prints provider failures in red on stderr; we report them ourselves, once, in words.
ort.env.logLevel = 'fatal';

/** CUDA needs provider libraries that onnxruntime-node downloads separately; 'auto' only tries it when present. */
function cudaProviderInstalled(): boolean {
  const binding = dirname(require.resolve('onnxruntime-node/package.json'));
  const library = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  return existsSync(join(binding, 'bin', 'napi-v6', process.platform, process.arch, library));
}

/** Providers tried for 'auto', best first, on this machine (see devices.ts for the order and why). */
function autoCandidates(): { candidates: Array<Exclude<DeviceRequest, 'auto'>>; why: string } {
  const choice = autoChoice({ platform: process.platform, cudaInstalled: cudaProviderInstalled(), webgpu: webgpuAdapter() });
  return { candidates: choice.candidates, why: describeAutoChoice(choice) };
}

export interface SessionSettings {
  /**
   * 'all' in normal use. 'basic' keeps our ops as written: the extended fusions rewrite e.g. LayerNorm into a
   * kernel whose epsilon attribute is float32, which is harmless in float32 but visible (~1e-9) in float64
   * validation runs.
   */
  optimization: 'basic' | 'all';
}

const sessionOptions = (provider: string, settings: SessionSettings): ort.InferenceSession.SessionOptions => ({
  executionProviders: [provider],
  graphOptimizationLevel: settings.optimization,
  logSeverityLevel: 3,
});

/**
 * Creates a session on the requested device; when that provider cannot start (missing libraries, no adapter),
 * says why in `notes` and falls back to CPU rather than failing the run.
 */
export async function createSession(model: string | Uint8Array, device: DeviceRequest, settings: SessionSettings = { optimization: 'all' }): Promise<SessionHandle> {
  const auto = device === 'auto' ? autoCandidates() : undefined;
  const candidates: Provider[] = auto ? auto.candidates : device === 'cpu' ? ['cpu'] : [device as Provider, 'cpu'];
  const notes: string[] = [];
  for (const provider of candidates) {
    const observer = new SessionObserver(provider, provider === 'webgpu' ? webgpuAdapter() : undefined);
    try {
      const options = { ...sessionOptions(provider, settings), ...observer.profilingOptions() };
      const session = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
      return { session: observer.observe(session), device: provider, notes, choice: auto?.why, observer };
    } catch (error) {
      observer.discard();
      if (provider === 'cpu') throw error;
      const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
      notes.push(`${provider} could not start (${reason}); running on CPU instead`);
    }
  }
  throw new Error('unreachable: CPU is always the last candidate');
}

const sessionCache = new Map<string, Promise<SessionHandle>>();

/** One session per (graph file, device): building a session for a large model takes seconds. */
export function cachedSession(graphFile: string, device: DeviceRequest, settings: SessionSettings = { optimization: 'all' }): Promise<SessionHandle> {
  const key = `${graphFile}|${device}|${settings.optimization}`;
  let handle = sessionCache.get(key);
  if (!handle) {
    handle = createSession(graphFile, device, settings);
    handle.catch(() => sessionCache.delete(key));
    sessionCache.set(key, handle);
  }
  return handle;
}

export async function releaseSessions(): Promise<void> {
  const handles = [...sessionCache.values()];
  sessionCache.clear();
  for (const handle of handles) await (await handle.catch(() => null))?.session.release();
}

// ---- where graph files live --------------------------------------------------------------------------------

export function cacheRoot(): string {
  return process.env.ATP_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'attribution-patching');
}

/**
 * ONNX Runtime only reads external data from files inside the model file's own directory, after resolving
 * symlinks. So a graph directory gets hard links to the weight files (no copy, same inode), and when that is
 * impossible (another filesystem) the graph is written beside the weights themselves.
 */
export interface GraphDir {
  readonly dir: string;
  /** Location (relative to dir) to use in the ONNX external data of each weight file, by its given path. */
  readonly locations: ReadonlyMap<string, string>;
}

export function prepareGraphDir(weightFiles: readonly string[]): GraphDir {
  const real = weightFiles.map((file) => realpathSync(file));
  const identity = real.map((file) => {
    const s = statSync(file);
    return `${file}:${s.size}:${s.mtimeMs}:${s.ino}`;
  });
  const key = createHash('sha256').update(identity.join('\n')).digest('hex').slice(0, 16);
  const dir = join(cacheRoot(), 'graphs', key);
  try {
    mkdirSync(dir, { recursive: true });
    const locations = new Map<string, string>();
    weightFiles.forEach((file, i) => {
      const location = `weights-${i}.safetensors`;
      const link = join(dir, location);
      if (!existsSync(link) || statSync(link).ino !== statSync(real[i]).ino) {
        if (existsSync(link)) unlinkSync(link);
        linkSync(real[i], link);
      }
      locations.set(file, location);
    });
    return { dir, locations };
  } catch {
    const weightDir = dirname(real[0]);
    if (real.some((file) => dirname(file) !== weightDir)) {
      throw new InputError(`cannot place the model graph next to the weights: the shards are in different folders and cannot be hard-linked into ${dir}`);
    }
    return { dir: weightDir, locations: new Map(weightFiles.map((file, i) => [file, basename(real[i])])) };
  }
}

/** Writes the graph into its directory under a content-addressed name (atomically) and returns its path. */
export function writeGraphFile(graphDir: GraphDir, bytes: Uint8Array, label: string): string {
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const file = join(graphDir.dir, `.atp-${label}-${hash}.onnx`);
  if (!existsSync(file)) {
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, bytes);
    renameSync(temp, file);
  }
  return file;
}
