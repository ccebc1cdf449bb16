// Where a run really happened: the execution provider, the WebGPU adapter, and how many graph nodes each provider
// ran. ONNX Runtime assigns nodes a provider supports to it and silently runs the rest on the CPU; its profile is
// the only place onnxruntime-node reports that assignment, so sessions on a non-CPU provider profile their first
// run and then stop (later runs pay nothing).
import type * as ort from 'onnxruntime-node';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AdapterInfo, Provider } from './devices';
import type { RuntimeRecord } from '../../shared/result';
import { readInputText } from '../../lib/files/readInput';

/** Recorded in the Result as `runtime` (see RuntimeRecord in result.ts). */
export type RuntimeInfo = RuntimeRecord;

export const PROVIDER_NAMES: Record<Provider, string> = {
  cpu: 'CPUExecutionProvider',
  cuda: 'CUDAExecutionProvider',
  dml: 'DmlExecutionProvider',
  coreml: 'CoreMLExecutionProvider',
  webgpu: 'WebGpuExecutionProvider',
};

interface ProfileEvent {
  cat?: string;
  name?: string;
  args?: { provider?: string; op_name?: string; output_type_shape?: Array<Record<string, unknown>> };
}

/** Float element types: a node producing one of these on the CPU is computation, not shape bookkeeping. */
const FLOAT_TYPES = new Set(['float', 'double', 'float16', 'bfloat16']);
/** Fills with a constant: no input data crosses devices, so not worth a warning (WebGPU has no kernel for it). */
const NOT_COMPUTE = new Set(['ConstantOfShape']);

/**
 * Counts each node once (by name) per provider from an ONNX Runtime profile (Chrome trace JSON), and lists the
 * op types of CPU nodes that produce floating-point tensors: those are the compute nodes that fell back to the
 * CPU (int64 shape computations are placed on the CPU on purpose).
 */
export function placementFromProfile(json: string): { placement: Record<string, number>; cpuCompute: Record<string, number> } {
  const events = JSON.parse(json) as ProfileEvent[];
  const seen = new Set<string>();
  const placement: Record<string, number> = {};
  const cpuCompute: Record<string, number> = {};
  for (const event of events) {
    const provider = event.args?.provider;
    if (event.cat !== 'Node' || !provider || !event.name) continue;
    const node = event.name.replace(/_kernel_time$/, '');
    if (seen.has(node)) continue;
    seen.add(node);
    placement[provider] = (placement[provider] ?? 0) + 1;
    const floats = (event.args?.output_type_shape ?? []).some((output) => Object.keys(output).some((type) => FLOAT_TYPES.has(type)));
    if (provider === PROVIDER_NAMES.cpu && floats && !NOT_COMPUTE.has(event.args?.op_name ?? '')) {
      const op = event.args?.op_name ?? 'unknown op';
      cpuCompute[op] = (cpuCompute[op] ?? 0) + 1;
    }
  }
  return { placement, cpuCompute };
}

/** Profile folders not yet removed: a session that never ran or was never released leaves none behind at exit. */
const pendingDirs = new Set<string>();
process.once('exit', () => pendingDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** What a session learns about itself; filled in after its first run. */
export class SessionObserver {
  placement?: Record<string, number>;
  cpuCompute?: Record<string, number>;
  /** Why the placement is unknown, when profiling failed. */
  problem?: string;
  private readonly dir?: string;

  constructor(
    readonly provider: Provider,
    readonly adapter: AdapterInfo | undefined,
  ) {
    if (provider !== 'cpu') pendingDirs.add((this.dir = mkdtempSync(join(tmpdir(), 'atp-profile-'))));
  }

  /** Session options that make ONNX Runtime write the first run's profile into our own temporary folder. */
  profilingOptions(): Pick<ort.InferenceSession.SessionOptions, 'enableProfiling' | 'profileFilePrefix'> {
    return this.dir ? { enableProfiling: true, profileFilePrefix: join(this.dir, 'profile') } : {};
  }

  /** The session, with its first run followed by reading (and deleting) the profile. */
  observe(session: ort.InferenceSession): ort.InferenceSession {
    if (!this.dir) return session;
    let pending = true;
    const finish = () => {
      if (!pending) return;
      pending = false;
      try {
        session.endProfiling();
        const file = readdirSync(this.dir!).find((name) => name.endsWith('.json'));
        if (!file) throw new Error('ONNX Runtime wrote no profile');
        ({ placement: this.placement, cpuCompute: this.cpuCompute } = placementFromProfile(readInputText(join(this.dir!, file), 'json')));
      } catch (error) {
        this.problem = error instanceof Error ? error.message : String(error);
      } finally {
        rmSync(this.dir!, { recursive: true, force: true });
        pendingDirs.delete(this.dir!);
      }
    };
    return new Proxy(session, {
      get(target, property) {
        if (property === 'run') {
          return async (...args: Parameters<ort.InferenceSession['run']>) => {
            const out = await target.run(...args);
            finish();
            return out;
          };
        }
        if (property === 'release') {
          return async () => {
            finish();
            return target.release();
          };
        }
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** Removes the profile folder of a session that never started. */
  discard(): void {
    if (!this.dir) return;
    rmSync(this.dir, { recursive: true, force: true });
    pendingDirs.delete(this.dir);
  }

  info(): RuntimeInfo {
    return {
      provider: PROVIDER_NAMES[this.provider],
      ...(this.provider === 'webgpu' && this.adapter ? { adapter: this.adapter } : {}),
      ...(this.placement ? { placement: this.placement } : {}),
    };
  }

  /** A warning when compute nodes ran on the CPU instead of the requested provider (each op type named once). */
  warnings(): string[] {
    if (this.provider === 'cpu') return [];
    if (this.problem) return [`could not tell which nodes ran on ${this.provider} (${this.problem})`];
    const fallen = Object.entries(this.cpuCompute ?? {});
    if (fallen.length === 0) return [];
    const total = fallen.reduce((sum, [, count]) => sum + count, 0);
    const ops = fallen
      .sort((a, b) => b[1] - a[1])
      .map(([op, count]) => `${op} ×${count}`)
      .join(', ');
    return [
      `${total} compute node(s) ran on the CPU because ${this.provider} does not support them (${ops}); results are still correct, but data moves between the devices`,
    ];
  }
}
