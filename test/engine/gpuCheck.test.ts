import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { webgpuAvailability } from '../support/webgpu';

/**
 * scripts/gpu-check.sh's path that runs without a GPU: small shapes, the CPU as reference, WebGPU where an adapter
 * exists (SwiftShader in CI), CUDA reported as unavailable without its libraries. The full shapes are for GPU
 * machines (docs/BENCHMARKS.md).
 */

const root = resolve(__dirname, '../..');
let work: string;
before(() => (work = mkdtempSync(join(tmpdir(), 'atp-gpu-check-test-'))));
after(() => rmSync(work, { recursive: true, force: true }));

interface Entry {
  shape: string;
  device: string;
  precision: 'float32' | 'float16';
  available: boolean;
  ok?: boolean;
  notes?: string[];
  medianRunSeconds?: number;
  relativeErrorVsCpu?: number;
  runtime?: { provider: string; placement?: Record<string, number> };
}

test('gpu-check --tiny runs every available device against the CPU and reports the rest as unavailable', async () => {
  const json = join(work, 'report.json');
  const run = spawnSync('bash', [join(root, 'scripts/gpu-check.sh'), '--tiny', '--repeats', '1', '--devices', 'cpu,cuda,webgpu', '--json', json], {
    cwd: root,
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  const { report } = JSON.parse(readFileSync(json, 'utf8')) as { report: Entry[] };
  const webgpu = (await webgpuAvailability()).ok;
  for (const shape of ['GPT-2 tiny', 'Qwen2 tiny']) {
    const cpu = report.find((e) => e.shape === shape && e.device === 'cpu' && e.precision === 'float32')!;
    assert.equal(cpu.available, true);
    assert.equal(cpu.runtime?.provider, 'CPUExecutionProvider');
    assert.ok(cpu.medianRunSeconds! > 0);
    // float16 on the CPU (--tiny runs it there: the numbers, not the speed) against the CPU's float32.
    const half = report.find((e) => e.shape === shape && e.device === 'cpu' && e.precision === 'float16')!;
    assert.equal(half.available, true);
    assert.equal(half.ok, true);
    assert.ok(half.relativeErrorVsCpu! > 0 && half.relativeErrorVsCpu! <= 3e-2, `${shape} float16: ${half.relativeErrorVsCpu}`);
    const gpu = report.find((e) => e.shape === shape && e.device === 'webgpu' && e.precision === 'float32')!;
    assert.ok(gpu, `${shape}: the report has a webgpu float32 entry, available or not`);
    assert.equal(gpu.available, webgpu, 'WebGPU ran exactly when an adapter exists');
    // Unavailable says why; without a Vulkan loader (a fresh machine: .ci/run checks it with the loader hidden) it
    // names the loader.
    if (!webgpu) assert.ok(gpu.notes && gpu.notes.length > 0, `${shape}: no reason given for WebGPU being unavailable`);
    if (process.env.ATP_VULKAN_HIDDEN === '1') assert.match(gpu.notes!.join(' '), /no usable Vulkan loader \(.*libvulkan\.so\.1.*\): install libvulkan1/);
    if (webgpu) {
      assert.ok(gpu.relativeErrorVsCpu! <= 1e-4, `${shape}: ${gpu.relativeErrorVsCpu}`);
      assert.ok((gpu.runtime?.placement?.WebGpuExecutionProvider ?? 0) > 0);
      // Where the adapter lacks shader-f16 (SwiftShader) float16 is reported unavailable with the reason; else checked.
      const gpuHalf = report.find((e) => e.shape === shape && e.device === 'webgpu' && e.precision === 'float16')!;
      if (gpuHalf.available) assert.equal(gpuHalf.ok, true, `${shape}: webgpu float16 ${gpuHalf.relativeErrorVsCpu}`);
      else assert.match(gpuHalf.notes!.join(' '), /requires f16/);
    }
  }
  assert.match(run.stdout, /all devices that ran agree with the CPU/);
});
