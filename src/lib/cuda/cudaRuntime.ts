// The per-user CUDA runtime: where `atp install-cuda` puts it, whether it is complete, and how the engine uses it.
//
// ONNX Runtime loads an execution provider's library (libonnxruntime_providers_cuda.so) only from the folder of the
// libonnxruntime.so it runs from, i.e. onnxruntime-node's own bin folder, which may be read-only (the extension's
// folder). So the install holds a copy of that bin folder (the N-API binding and libonnxruntime.so.1, which the
// binding finds through its RUNPATH $ORIGIN) plus the provider libraries, and the engine's processes (CLI, worker)
// load the binding from there: `useInstalledCudaRuntime()` redirects the one require of onnxruntime_binding.node
// made by onnxruntime-node's dist/binding.js. Same ORT build, same JS, so CPU runs are unchanged.
//
// No onnxruntime import here: the extension host reads the install's state through this module.
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import Module from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { readInputText } from '../files/readInput';

/** The only platform with a CUDA provider package matching onnxruntime-node's Linux build. */
export const CUDA_PLATFORM = 'linux/x64';

/** The provider libraries taken from the NuGet package (TensorRT's is left out: the engine never asks for it). */
export const PROVIDER_LIBRARIES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'] as const;

/** What the install records; its presence (written last, inside the folder that is renamed into place) marks a complete install. */
export const MANIFEST_FILE = 'install.json';
export const MANIFEST_SCHEMA = 'attribution-patching/onnxruntime-cuda@1';

export interface InstallManifest {
  schema: typeof MANIFEST_SCHEMA;
  onnxruntimeVersion: string;
  package: { id: string; version: string; sha512: string; source: string };
  /** Every file of the folder with its size in bytes. */
  files: Record<string, number>;
  installedAt: string;
}

export interface OrtBundle {
  version: string;
  /** onnxruntime-node's bin folder for this platform (binding and libonnxruntime.so.1). */
  binDir: string;
}

/** The onnxruntime-node this build runs with (read from its package.json; nothing is loaded). */
export function bundledOrt(): OrtBundle {
  const packageFile = require.resolve('onnxruntime-node/package.json');
  const version = (JSON.parse(readFileSync(packageFile, 'utf8')) as { version: string }).version;
  return { version, binDir: join(dirname(packageFile), 'bin', 'napi-v6', process.platform, process.arch) };
}

/** ATP_CUDA_DIR, else $XDG_CACHE_HOME (or ~/.cache)/attribution-patching/onnxruntime-cuda. One folder per ORT version below it. */
export function cudaRuntimeRoot(env: Record<string, string | undefined> = process.env): string {
  return env.ATP_CUDA_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'attribution-patching', 'onnxruntime-cuda');
}

export function cudaRuntimeDir(ortVersion: string, env: Record<string, string | undefined> = process.env): string {
  return join(cudaRuntimeRoot(env), ortVersion);
}

export type CudaRuntimeState =
  { state: 'absent'; dir: string } | { state: 'broken'; dir: string; problem: string } | { state: 'installed'; dir: string; manifest: InstallManifest };

/** Whether the per-user runtime for `ortVersion` is complete: its manifest names this version and every file has its recorded size. */
export function cudaRuntimeState(ortVersion: string, env: Record<string, string | undefined> = process.env): CudaRuntimeState {
  const dir = cudaRuntimeDir(ortVersion, env);
  const manifestFile = join(dir, MANIFEST_FILE);
  if (!existsSync(manifestFile)) return { state: 'absent', dir };
  let manifest: InstallManifest;
  try {
    manifest = JSON.parse(readInputText(manifestFile, 'json')) as InstallManifest;
  } catch (error) {
    return { state: 'broken', dir, problem: `${manifestFile}: ${(error as Error).message}` };
  }
  if (manifest?.schema !== MANIFEST_SCHEMA) return { state: 'broken', dir, problem: `${manifestFile}: schema is not ${MANIFEST_SCHEMA}` };
  if (manifest.onnxruntimeVersion !== ortVersion)
    return { state: 'broken', dir, problem: `${manifestFile}: onnxruntimeVersion is ${manifest.onnxruntimeVersion}, not ${ortVersion}` };
  for (const name of ['onnxruntime_binding.node', ...PROVIDER_LIBRARIES]) {
    if (!(name in (manifest.files ?? {}))) return { state: 'broken', dir, problem: `${manifestFile}: files does not list ${name}` };
  }
  for (const [name, size] of Object.entries(manifest.files)) {
    const file = join(dir, name);
    if (!existsSync(file)) return { state: 'broken', dir, problem: `${file} is missing` };
    if (statSync(file).size !== size) return { state: 'broken', dir, problem: `${file} is ${statSync(file).size} bytes, the install recorded ${size}` };
  }
  return { state: 'installed', dir, manifest };
}

let activeRuntimeDir: string | undefined;

/** The per-user runtime this process loaded ONNX Runtime from, if it did. */
export function activeCudaRuntime(): string | undefined {
  return activeRuntimeDir;
}

/**
 * Makes onnxruntime-node load its binding (and so libonnxruntime.so and the providers) from the per-user CUDA
 * runtime, when one is installed for this version. Must run before anything requires onnxruntime-node (the CLI
 * and the worker import ./ortRuntime first). ATP_ORT_RUNTIME=bundled keeps onnxruntime-node's own folder.
 * Returns what it decided, for the log.
 */
export function useInstalledCudaRuntime(env: Record<string, string | undefined> = process.env): string {
  if (env.ATP_ORT_RUNTIME === 'bundled') return 'ONNX Runtime from onnxruntime-node (ATP_ORT_RUNTIME=bundled)';
  if (`${process.platform}/${process.arch}` !== CUDA_PLATFORM) return 'ONNX Runtime from onnxruntime-node';
  let ort: OrtBundle;
  try {
    ort = bundledOrt();
  } catch {
    return 'ONNX Runtime from onnxruntime-node';
  }
  const state = cudaRuntimeState(ort.version, env);
  if (state.state === 'absent') return 'ONNX Runtime from onnxruntime-node (no CUDA runtime installed)';
  if (state.state === 'broken')
    return `ONNX Runtime from onnxruntime-node: the CUDA runtime in ${state.dir} is incomplete (${state.problem}); run \`atp install-cuda\` again`;
  const bundledBinding = realpathSync(join(ort.binDir, 'onnxruntime_binding.node'));
  if (require.cache[bundledBinding]) return 'ONNX Runtime from onnxruntime-node (it was loaded before the CUDA runtime could be chosen)';
  const installedBinding = join(state.dir, 'onnxruntime_binding.node');
  const loader = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const resolve = loader._resolveFilename;
  loader._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
    const resolved = resolve.call(this, request, ...rest);
    return resolved === bundledBinding ? installedBinding : resolved;
  };
  activeRuntimeDir = state.dir;
  return `ONNX Runtime from the CUDA runtime in ${state.dir}`;
}

/**
 * The NVIDIA libraries the CUDA provider of ONNX Runtime 1.2x/1.3x links against (CUDA 12 and cuDNN 9). They are not
 * in the provider package: the system (or pip's nvidia-* wheels on LD_LIBRARY_PATH) must have them.
 */
export const NVIDIA_LIBRARIES: ReadonlyArray<{ file: string; what: string }> = [
  { file: 'libcudart.so.12', what: 'CUDA 12 runtime' },
  { file: 'libcublas.so.12', what: 'cuBLAS (CUDA 12)' },
  { file: 'libcublasLt.so.12', what: 'cuBLASLt (CUDA 12)' },
  { file: 'libcufft.so.11', what: 'cuFFT (CUDA 12)' },
  { file: 'libcurand.so.10', what: 'cuRAND (CUDA 12)' },
  { file: 'libcudnn.so.9', what: 'cuDNN 9' },
];

/**
 * Whether the dynamic loader finds and loads `file` (by soname, on the loader's search path). process.dlopen loads
 * it; a library that is not a Node addon then fails registration, which proves it loaded, so only a loader
 * error ("cannot open shared object file", a missing dependency) counts as absent. Returns undefined when it loads,
 * else the loader's message.
 */
export function libraryLoadError(file: string): string | undefined {
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, file);
    return undefined;
  } catch (error) {
    const message = (error as Error).message;
    if (/did not self-register|napi_register_module|Module did not/i.test(message)) return undefined;
    return message;
  }
}

/** The NVIDIA libraries that do not load here, with what each is. */
export function missingNvidiaLibraries(loadError: (file: string) => string | undefined = libraryLoadError): string[] {
  return NVIDIA_LIBRARIES.filter((library) => loadError(library.file) !== undefined).map((library) => `${library.file} (${library.what})`);
}

/** What the user must have besides the provider libraries, in one sentence. */
export const NVIDIA_REQUIREMENT =
  'the CUDA provider needs an NVIDIA driver, CUDA 12 and cuDNN 9 on the loader path (system packages, or the pip wheels nvidia-cuda-runtime-cu12, nvidia-cublas-cu12, nvidia-cufft-cu12, nvidia-curand-cu12 and nvidia-cudnn-cu12 with their lib folders on LD_LIBRARY_PATH)';
