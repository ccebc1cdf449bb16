// Whether this process can run ONNX Runtime's WebGPU execution provider, and what WebGPU tests do when it cannot:
// skip with the reason, or fail when ATP_WEBGPU_REQUIRED=1 (CI, where SwiftShader must be there).
import * as ort from 'onnxruntime-node';
import type { TestContext } from 'node:test';
import { GraphBuilder } from '../../src/engine/graph/builder';

/** Debian's chromium package ships SwiftShader, a software Vulkan device Dawn accepts. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

let availability: Promise<{ ok: true } | { ok: false; reason: string }> | undefined;

/** One tiny session on ['webgpu'] and one run, once per process (Dawn's adapter choice does not change). */
export function webgpuAvailability(): Promise<{ ok: true } | { ok: false; reason: string }> {
  availability ??= (async () => {
    const b = new GraphBuilder('float32');
    const x = b.input('x', 'float32', [4]);
    b.output(b.node('Neg', [x], {}, { dtype: 'float32', shape: [4] }), 'y');
    try {
      const session = await ort.InferenceSession.create(b.toBytes(), { executionProviders: ['webgpu'], logSeverityLevel: 4 });
      const y = (await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [4]) })).y.data as Float32Array;
      await session.release();
      if (y[3] !== -4) return { ok: false as const, reason: `the WebGPU probe computed ${Array.from(y)} for −[1, 2, 3, 4]` };
      return { ok: true as const };
    } catch (error) {
      const message = (error instanceof Error ? error.message : String(error)).split('\n')[0];
      return { ok: false as const, reason: message.replace(/^.*?(Failed to get a WebGPU adapter)/, '$1') };
    }
  })();
  return availability;
}

/**
 * Call first in every WebGPU test: true when WebGPU runs here; otherwise marks the test skipped with the reason
 * and returns false, or throws when ATP_WEBGPU_REQUIRED=1.
 */
export async function requireWebGpu(t: TestContext): Promise<boolean> {
  const found = await webgpuAvailability();
  if (found.ok) return true;
  const hint = `VK_ICD_FILENAMES=${SWIFTSHADER_ICD} with the chromium and libvulkan1 packages gives a software adapter`;
  if (process.env.ATP_WEBGPU_REQUIRED === '1') throw new Error(`ATP_WEBGPU_REQUIRED=1 but WebGPU cannot run: ${found.reason} (${hint})`);
  t.skip(`no WebGPU adapter: ${found.reason} (${hint}; set ATP_WEBGPU_REQUIRED=1 to fail instead of skipping)`);
  return false;
}
