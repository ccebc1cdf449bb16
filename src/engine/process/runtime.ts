import * as ort from 'onnxruntime-node';
import { cacheRoot } from '../../lib/files/cacheRoot';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, mkdirSync, realpathSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { writeFilesAtomically } from '../../lib/files/atomicWrite';
import { dirname, join, basename } from 'node:path';
import { CUDA_NOT_INSTALLED, InputError } from '../../shared/errors';
import { DEVICES, type DeviceRequest } from '../../shared/devices';
import { autoChoice, describeAutoChoice, type Provider, webgpuAdapter } from './devices';
import { activeCudaRuntime, missingNvidiaLibraries, NVIDIA_REQUIREMENT } from '../../lib/cuda/cudaRuntime';
import { SessionObserver } from './runtimeInfo';
import { GraphBuilder } from '../graph/builder';
import { readInputFile } from '../../lib/files/readInput';

export function parseDevice(text: string): DeviceRequest {
  if ((DEVICES as readonly string[]).includes(text)) return text as DeviceRequest;
  throw InputError.about('device', `unknown device "${text}"; choose one of ${DEVICES.join(', ')}`);
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

/**
 * CUDA needs provider libraries that are a separate download: in the per-user runtime this process loaded ONNX
 * Runtime from (`atp install-cuda`, see cudaRuntime.ts), or in onnxruntime-node's own folder (its install script
 * with ONNXRUNTIME_NODE_INSTALL=cuda12). 'auto' only tries CUDA when they are there.
 */
function cudaProviderInstalled(): boolean {
  if (activeCudaRuntime() !== undefined) return true;
  const binding = dirname(require.resolve('onnxruntime-node/package.json'));
  const library = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  return existsSync(join(binding, 'bin', 'napi-v6', process.platform, process.arch, library));
}

/** Providers tried for 'auto', best first, on this machine (see devices.ts for the order and why). */
function autoCandidates(): { candidates: Array<Exclude<DeviceRequest, 'auto'>>; why: string } {
  const cudaInstalled = cudaProviderInstalled();
  const nvidiaMissing = cudaInstalled && process.platform === 'linux' ? missingNvidiaLibraries() : [];
  const choice = autoChoice({ platform: process.platform, cudaInstalled, nvidiaMissing, webgpu: webgpuAdapter() });
  return { candidates: choice.candidates, why: describeAutoChoice(choice) };
}

/** Why the CUDA provider did not start, in words that say what to do (ONNX Runtime only says "Failed to load shared library"). */
function cudaFailureReason(ortMessage: string): string {
  if (!cudaProviderInstalled()) return `${CUDA_NOT_INSTALLED}: run \`atp install-cuda\` (in VS Code: Attribution Patching: Install CUDA Support)`;
  const missing = process.platform === 'linux' ? missingNvidiaLibraries() : [];
  if (missing.length > 0) return `NVIDIA libraries not found: ${missing.join(', ')}; ${NVIDIA_REQUIREMENT}`;
  return ortMessage;
}

export interface SessionSettings {
  /**
   * 'all' in normal use. 'basic' keeps our ops as written: the extended fusions rewrite e.g. LayerNorm into a
   * kernel whose epsilon attribute is float32, which is harmless in float32 but visible (~1e-9) in float64
   * validation runs.
   */
  optimization: 'basic' | 'all';
  /**
   * Whether ONNX Runtime pre-packs the weight matrices (default true): faster MatMuls on every run, but a second copy
   * of them (1.6 GB for Qwen2.5-0.5B) and a slower build. Short runs leave it off (see run.ts, PREPACK_MIN_TOKENS).
   */
  prepacking?: boolean;
}

function sessionOptions(provider: string, settings: SessionSettings, extra: Record<string, string> = {}): ort.InferenceSession.SessionOptions {
  const config = settings.prepacking === false ? { ...extra, 'session.disable_prepacking': '1' } : extra;
  return {
    executionProviders: [provider],
    graphOptimizationLevel: settings.optimization,
    logSeverityLevel: 3,
    // No memory pattern on the CPU: from a shape's first run ONNX Runtime plans one block for all its activations and
    // allocates it in the second run, on top of the arena chunks the first run left; that second run was the peak
    // (GPT-2-small 8×128: 3.5 GB with it, 2.3 GB without) and the slow "first timed run" (docs/BENCHMARKS.md).
    ...(provider === 'cpu' ? { enableMemPattern: false } : {}),
    ...(Object.keys(config).length > 0 ? { extra: config } : {}),
  };
}

/**
 * Creates a session on the requested device; when that provider cannot start (missing libraries, no adapter),
 * says why in `notes` and falls back to CPU rather than failing the run.
 */
export async function createSession(
  model: string | Uint8Array,
  device: DeviceRequest,
  settings: SessionSettings = { optimization: 'all' },
  extra?: Record<string, string>,
): Promise<SessionHandle> {
  const auto = device === 'auto' ? autoCandidates() : undefined;
  const candidates: Provider[] = auto ? auto.candidates : device === 'cpu' ? ['cpu'] : [device as Provider, 'cpu'];
  const notes: string[] = [];
  for (const provider of candidates) {
    const observer = new SessionObserver(provider, provider === 'webgpu' ? webgpuAdapter() : undefined);
    try {
      const options = { ...sessionOptions(provider, settings, extra), ...observer.profilingOptions() };
      const session = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
      return { session: observer.observe(session), device: provider, notes, choice: auto?.why, observer };
    } catch (error) {
      observer.discard();
      if (provider === 'cpu') throw error;
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      const reason = provider === 'cuda' ? cudaFailureReason(message) : message;
      notes.push(`${provider} could not start (${reason}); running on CPU instead`);
    }
  }
  throw new Error('unreachable: CPU is always the last candidate');
}

const float16Probes = new Map<string, Promise<string | undefined>>();

/**
 * Why this provider cannot compute in float16 here, or undefined when it can. WebGPU needs the adapter's
 * shader-f16 feature, which ONNX Runtime only finds missing when a float16 kernel runs ("Program Mul requires
 * f16 but the device does not support it"; SwiftShader lacks it), so a one-node float16 graph is run there once
 * per process. The CPU provider runs float16 nodes, converting around those it has no float16 kernel for; CUDA
 * has float16 kernels for every op the graphs use; DirectML and CoreML are taken at their word (unmeasured).
 */
export function float16Unsupported(provider: Exclude<DeviceRequest, 'auto'>): Promise<string | undefined> {
  if (provider !== 'webgpu') return Promise.resolve(undefined);
  let probe = float16Probes.get(provider);
  if (!probe) {
    probe = (async () => {
      const b = new GraphBuilder('float16');
      const x = b.input('x', 'float16', [4]);
      b.output(b.node('Mul', [x, x], {}, { dtype: 'float16', shape: [4] }), 'y');
      const session = await ort.InferenceSession.create(b.toBytes(), { ...sessionOptions(provider, { optimization: 'all' }), logSeverityLevel: 4 });
      try {
        // 1.5 in float16 bits (0x3e00); its square is 2.25 (0x4080).
        const y = (await session.run({ x: new ort.Tensor('float16', Uint16Array.from([0x3e00, 0x3e00, 0x3e00, 0x3e00]), [4]) })).y.data as Uint16Array;
        return y[0] === 0x4080 ? undefined : `a float16 product came out wrong (bits ${y[0].toString(16)} for 1.5²)`;
      } catch (error) {
        return (error instanceof Error ? error.message : String(error)).split('\n')[0].replace(/^.*Status Message: (.*GenerateSourceCode )?/, '');
      } finally {
        await session.release();
      }
    })();
    float16Probes.set(provider, probe);
  }
  return probe;
}

/** Sessions by graph file, device and optimisation; each remembers whether it pre-packed its weights. */
const sessionCache = new Map<string, { handle: Promise<SessionHandle>; prepacking: boolean }>();

/** Sessions cachedSession built and returned from the cache in this process: what `atp serve` reports per request. */
const sessionCounts = { built: 0, reused: 0 };

export function sessionStatistics(): { built: number; reused: number; held: number } {
  return { ...sessionCounts, held: sessionCache.size };
}

/** Whether a cached session serves a request: a pre-packed one serves any; an unpacked one all but those that ask for pre-packing. */
const serves = (cached: { prepacking: boolean }, settings: SessionSettings) => cached.prepacking || settings.prepacking !== true;

const sessionKey = (graphFile: string, device: DeviceRequest, settings: SessionSettings) => `${graphFile}|${device}|${settings.optimization}`;

/** Whether cachedSession would return a session this process already made (its weights are already in memory). */
export function hasCachedSession(graphFile: string, device: DeviceRequest, settings: SessionSettings = { optimization: 'all' }): boolean {
  const cached = sessionCache.get(sessionKey(graphFile, device, settings));
  return cached !== undefined && serves(cached, settings);
}

/**
 * One session per (graph file, device): building a session for a large model takes seconds. A session built
 * without pre-packing serves later runs that would pre-pack too, except long ones (settings.prepacking true),
 * for which it is rebuilt with pre-packing: the process keeps one copy of the weights either way.
 */
export async function cachedSession(graphFile: string, device: DeviceRequest, settings: SessionSettings = { optimization: 'all' }): Promise<SessionHandle> {
  const key = sessionKey(graphFile, device, settings);
  const prepacking = settings.prepacking ?? true;
  const cached = sessionCache.get(key);
  if (cached && serves(cached, settings)) {
    sessionCounts.reused += 1;
    return cached.handle;
  }
  sessionCounts.built += 1;
  if (cached) {
    sessionCache.delete(key);
    await (await cached.handle.catch(() => null))?.session.release();
  }
  const source = sessionSource(graphFile);
  const handle = createSession(source.model, device, { ...settings, prepacking }, source.extra).then((h) => ({ ...h, notes: [...source.notes, ...h.notes] }));
  handle.catch(() => sessionCache.delete(key));
  sessionCache.set(key, { handle, prepacking });
  return handle;
}

export async function releaseSessions(): Promise<void> {
  const entries = [...sessionCache.values()];
  sessionCache.clear();
  for (const entry of entries) await (await entry.handle.catch(() => null))?.session.release();
}

// ---- where graph files live --------------------------------------------------------------------------------

export { cacheRoot };

/**
 * Graph files live only in our cache (cacheRoot()/graphs), never in a model folder (which may be read-only, or the
 * Hugging Face cache). ONNX Runtime reads external data only from inside the folder it is told about, after
 * resolving symlinks. So the graph folder gets hard links to the weight files (no copy, same inode, graph loaded
 * by path); where links are impossible (another file system, a file system without them), the graph is loaded
 * from memory with ONNX Runtime's external-initializers folder set to the weights' own folder, still without a
 * copy; only shards spread over several folders are copied into the cache, with a note.
 */
export interface GraphDir {
  /** Where the graph files are written: always inside cacheRoot(). */
  readonly dir: string;
  /** Location (relative to the external data folder) to use in the ONNX external data of each weight file, by its given path. */
  readonly locations: ReadonlyMap<string, string>;
  /** Where ONNX Runtime reads the weights when that is not `dir`: the weights' real folder. */
  readonly externalDataFolder?: string;
  /** What the user should know about how the weights are reached (a copy, say). */
  readonly notes: readonly string[];
}

/** How graph files are loaded, by path: the folder for external data when it is not the graph's own, and notes. */
const graphFileInfo = new Map<string, { externalDataFolder?: string; notes: readonly string[] }>();

/** The file-system calls prepareGraphDir makes; replaceable so that tests can stand in for a file system without hard links. */
export const graphFileSystem = { link: (existing: string, created: string): void => linkSync(existing, created) };

/**
 * The graph folder prepareGraphDir uses for these weight files, named by their identity (real path, size, mtime,
 * inode), without creating or linking anything: what a memory check may ask before a run that it could still refuse.
 */
export function graphDirFor(weightFiles: readonly string[]): string {
  const identity = weightFiles.map((file) => {
    const real = realpathSync(file);
    const s = statSync(real);
    return `${real}:${s.size}:${s.mtimeMs}:${s.ino}`;
  });
  const key = createHash('sha256').update(identity.join('\n')).digest('hex').slice(0, 16);
  return join(cacheRoot(), 'graphs', key);
}

export function prepareGraphDir(weightFiles: readonly string[]): GraphDir {
  const link = graphFileSystem.link;
  const real = weightFiles.map((file) => realpathSync(file));
  const dir = graphDirFor(weightFiles);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new InputError(`cannot create the graph cache folder ${dir}: ${(error as Error).message}; set ATP_CACHE_DIR to a writable folder`);
  }
  const location = (i: number) => `weights-${i}.safetensors`;
  try {
    weightFiles.forEach((_, i) => {
      const target = join(dir, location(i));
      if (!existsSync(target) || statSync(target).ino !== statSync(real[i]).ino) {
        if (existsSync(target)) unlinkSync(target);
        link(real[i], target);
      }
    });
    return { dir, locations: new Map(weightFiles.map((file, i) => [file, location(i)])), notes: [] };
  } catch {
    // No hard links here: reach the weights where they are (ONNX Runtime's external-initializers folder).
  }
  const weightDir = dirname(real[0]);
  if (real.every((file) => dirname(file) === weightDir)) {
    return { dir, locations: new Map(weightFiles.map((file, i) => [file, basename(real[i])])), externalDataFolder: weightDir, notes: [] };
  }
  // Shards in several folders: one external data folder cannot name them all, so they are copied, once.
  weightFiles.forEach((_, i) => {
    const target = join(dir, location(i));
    if (existsSync(target) && statSync(target).size === statSync(real[i]).size) return;
    try {
      writeFileAtomically(target, () => copyFileSync(real[i], `${target}.${process.pid}.tmp`), `${target}.${process.pid}.tmp`);
    } catch (error) {
      throw new InputError(
        `cannot copy the weights ${real[i]} into the graph cache ${dir}: ${(error as Error).message}; set ATP_CACHE_DIR to a folder with room`,
      );
    }
  });
  return {
    dir,
    locations: new Map(weightFiles.map((file, i) => [file, location(i)])),
    notes: [
      `the weight files are in different folders and cannot be hard-linked into ${dir}, so they were copied there (delete that folder to reclaim the space)`,
    ],
  };
}

function writeFileAtomically(target: string, write: () => void, temp: string): void {
  try {
    write();
    renameSync(temp, target);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/** Writes the graph into its directory (in our cache) under a content-addressed name, atomically, and returns its path. */
export function writeGraphFile(graphDir: GraphDir, bytes: Uint8Array, label: string, notes: readonly string[] = []): string {
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const file = join(graphDir.dir, `.atp-${label}-${hash}.onnx`);
  if (!existsSync(file)) writeFilesAtomically([{ file, contents: bytes, what: 'the model graph' }]);
  // Notes travel with the file: every session made from it reports them (see cachedSession).
  graphFileInfo.set(file, { externalDataFolder: graphDir.externalDataFolder, notes: [...graphDir.notes, ...notes] });
  return file;
}

/**
 * What to give InferenceSession.create for a graph file: its path, or (weights reached in their own folder) its
 * bytes and the session option naming that folder.
 */
export function sessionSource(graphFile: string): { model: string | Uint8Array; extra?: Record<string, string>; notes: readonly string[] } {
  const info = graphFileInfo.get(graphFile);
  if (info?.externalDataFolder === undefined) return { model: graphFile, notes: info?.notes ?? [] };
  return {
    model: readInputFile(graphFile, 'stream'),
    extra: { 'session.model_external_initializers_file_folder_path': info.externalDataFolder },
    notes: info.notes,
  };
}
