import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autoChoice, describeAutoChoice, type HostView, vulkanDriverManifests, webgpuAdapter } from '../../src/engine/process/devices';
import { placementFromProfile } from '../../src/engine/process/runtimeInfo';
import { libraryLoadError, missingNvidiaLibraries } from '../../src/lib/cuda/cudaRuntime';

/** A fake machine: files by path (directories are listed from the paths under them). */
function host(files: Record<string, string>, env: Record<string, string> = {}, platform: NodeJS.Platform = 'linux'): HostView {
  return {
    platform,
    env: { HOME: '/home/u', ...env },
    readText: (path) => files[path],
    list: (dir) => [
      ...new Set(
        Object.keys(files)
          .filter((p) => p.startsWith(`${dir}/`))
          .map((p) => p.slice(dir.length + 1).split('/')[0]),
      ),
    ],
    exists: (path) => path in files || Object.keys(files).some((p) => p.startsWith(`${path}/`)),
  };
}

const icd = (library: string) => JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: library, api_version: '1.3.0' } });
const SWIFTSHADER = { '/usr/lib/chromium/vk_swiftshader_icd.json': icd('./libvk_swiftshader.so') };
const MESA = {
  '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json': icd('/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so'),
  '/usr/share/vulkan/icd.d/radeon_icd.x86_64.json': icd('/usr/lib/x86_64-linux-gnu/libvulkan_radeon.so'),
  '/usr/share/vulkan/icd.d/intel_icd.x86_64.json': icd('/usr/lib/x86_64-linux-gnu/libvulkan_intel.so'),
};
const NVIDIA_ICD = { '/usr/share/vulkan/icd.d/nvidia_icd.json': icd('libGLX_nvidia.so.0') };
const H200 = { '/proc/driver/nvidia/gpus/0000:01:00.0/information': 'Model: \t\t NVIDIA H200\nIRQ:   42\n' };
const AMD_RENDER_NODE = {
  '/sys/class/drm/renderD128/device/vendor': '0x1002\n',
  '/sys/class/drm/renderD128/device/device': '0x744c\n',
  '/sys/class/drm/renderD128/device/uevent': 'DRIVER=amdgpu\nPCI_ID=1002:744C\n',
};

test('Vulkan drivers: VK_ICD_FILENAMES replaces the search path; otherwise /etc, XDG data dirs and ~/.local are searched', () => {
  const files = { ...SWIFTSHADER, ...MESA, '/home/u/.local/share/vulkan/icd.d/own.json': icd('libown.so') };
  assert.deepEqual(vulkanDriverManifests(host(files, { VK_ICD_FILENAMES: '/usr/lib/chromium/vk_swiftshader_icd.json:/missing.json' })), [
    '/usr/lib/chromium/vk_swiftshader_icd.json',
  ]);
  assert.deepEqual(vulkanDriverManifests(host(files, { VK_DRIVER_FILES: '/usr/lib/chromium/vk_swiftshader_icd.json' })), [
    '/usr/lib/chromium/vk_swiftshader_icd.json',
  ]);
  assert.deepEqual(vulkanDriverManifests(host(files)).sort(), [...Object.keys(MESA), '/home/u/.local/share/vulkan/icd.d/own.json'].sort());
});

test('the adapter: SwiftShader and lavapipe are software; a hardware driver counts only with its device present', () => {
  assert.deepEqual(webgpuAdapter(host(SWIFTSHADER, { VK_ICD_FILENAMES: '/usr/lib/chromium/vk_swiftshader_icd.json' })), {
    name: 'SwiftShader',
    vendor: 'Google',
    software: true,
  });
  // Debian's mesa-vulkan-drivers on a machine without a GPU (this project's CI machine): only lavapipe is real.
  assert.deepEqual(webgpuAdapter(host(MESA)), { name: 'llvmpipe (lavapipe)', vendor: 'Mesa', software: true });
  assert.deepEqual(webgpuAdapter(host({ ...MESA, ...AMD_RENDER_NODE })), { name: 'AMD GPU 0x744c (amdgpu)', vendor: 'AMD', software: false });
  // NVIDIA's driver in a container without the GPU passed through: no device, so not an adapter.
  assert.equal(webgpuAdapter(host(NVIDIA_ICD)), undefined);
  assert.deepEqual(webgpuAdapter(host({ ...NVIDIA_ICD, ...H200, ...MESA })), { name: 'NVIDIA H200', vendor: 'NVIDIA', software: false });
  assert.equal(webgpuAdapter(host({})), undefined, 'no Vulkan driver at all');
  assert.equal(webgpuAdapter(host({ '/usr/share/vulkan/icd.d/broken.json': '{ not json' })), undefined);
  assert.equal(webgpuAdapter(host({}, {}, 'win32'))?.software, false);
  assert.equal(webgpuAdapter(host({}, {}, 'darwin'))?.software, false);
});

test('auto: CUDA → DirectML → CoreML → WebGPU on hardware → CPU; never a software WebGPU adapter', () => {
  const hardware = { name: 'NVIDIA H200', vendor: 'NVIDIA', software: false };
  const software = { name: 'SwiftShader', vendor: 'Google', software: true };
  const order = (platform: NodeJS.Platform, cudaInstalled: boolean, webgpu: typeof hardware | undefined) =>
    autoChoice({ platform, cudaInstalled, webgpu }).candidates;
  assert.deepEqual(order('linux', true, hardware), ['cuda', 'webgpu', 'cpu']);
  assert.deepEqual(order('linux', false, hardware), ['webgpu', 'cpu']);
  assert.deepEqual(order('linux', false, software), ['cpu']);
  assert.deepEqual(order('linux', true, software), ['cuda', 'cpu']);
  assert.deepEqual(order('linux', false, undefined), ['cpu']);
  assert.deepEqual(order('win32', true, hardware), ['cuda', 'dml', 'webgpu', 'cpu']);
  assert.deepEqual(order('win32', false, hardware), ['dml', 'webgpu', 'cpu']);
  assert.deepEqual(order('darwin', false, hardware), ['coreml', 'webgpu', 'cpu']);
  // The reasons say why WebGPU was left out, for the log.
  const said = describeAutoChoice(autoChoice({ platform: 'linux', cudaInstalled: false, webgpu: software }));
  assert.match(said, /^device auto: trying cpu \(/);
  assert.match(said, /no cuda: .*not installed/);
  assert.match(said, /no webgpu: its only adapter is SwiftShader, a software renderer/);
  assert.match(
    describeAutoChoice(autoChoice({ platform: 'linux', cudaInstalled: false, webgpu: hardware })),
    /trying webgpu → cpu .*webgpu: hardware adapter NVIDIA H200 \(NVIDIA\)/,
  );
});

test('auto: the CUDA provider installed is not enough; the NVIDIA libraries it needs must load', () => {
  const hardware = { name: 'NVIDIA H200', vendor: 'NVIDIA', software: false };
  const choice = autoChoice({ platform: 'linux', cudaInstalled: true, nvidiaMissing: ['libcudnn.so.9 (cuDNN 9)'], webgpu: hardware });
  assert.deepEqual(choice.candidates, ['webgpu', 'cpu']);
  assert.match(describeAutoChoice(choice), /no cuda: the CUDA provider is installed but these NVIDIA libraries do not load: libcudnn\.so\.9 \(cuDNN 9\)/);
  assert.deepEqual(autoChoice({ platform: 'linux', cudaInstalled: true, nvidiaMissing: [], webgpu: hardware }).candidates, ['cuda', 'webgpu', 'cpu']);
  assert.match(describeAutoChoice(autoChoice({ platform: 'linux', cudaInstalled: false, webgpu: undefined })), /no cuda: .*not installed \(atp install-cuda\)/);
});

test('NVIDIA libraries: a library that loads counts as present (a non-addon fails only Node registration), a missing one is named with what it is', () => {
  // Real loader calls: libz is on every Linux machine; the second name exists nowhere.
  assert.equal(libraryLoadError('libz.so.1'), undefined);
  assert.match(libraryLoadError('libatp-no-such-library.so.12') ?? '', /libatp-no-such-library\.so\.12: cannot open shared object file/);
  const present = new Set(['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcufft.so.11', 'libcurand.so.10']);
  assert.deepEqual(
    missingNvidiaLibraries((file) => (present.has(file) ? undefined : 'cannot open')),
    ['libcudnn.so.9 (cuDNN 9)'],
  );
  assert.deepEqual(
    missingNvidiaLibraries(() => undefined),
    [],
  );
});

test('placement from an ONNX Runtime profile: nodes counted once per provider; float-producing CPU nodes are the fallback', () => {
  const node = (name: string, provider: string, op: string, type: string) => ({
    cat: 'Node',
    name: `${name}_kernel_time`,
    args: { provider, op_name: op, output_type_shape: [{ [type]: [2, 3] }] },
  });
  const profile = [
    { cat: 'Session', name: 'model_run', args: {} },
    node('MatMul_1', 'WebGpuExecutionProvider', 'MatMul', 'float'),
    node('MatMul_1', 'WebGpuExecutionProvider', 'MatMul', 'float'), // a second run of the same node
    node('Softmax_2', 'WebGpuExecutionProvider', 'Softmax', 'float'),
    node('Shape_3', 'CPUExecutionProvider', 'Shape', 'int64'),
    node('ConstantOfShape_4', 'CPUExecutionProvider', 'ConstantOfShape', 'float'),
    node('TopK_5', 'CPUExecutionProvider', 'TopK', 'float'),
    node('TopK_6', 'CPUExecutionProvider', 'TopK', 'float'),
  ];
  assert.deepEqual(placementFromProfile(JSON.stringify(profile)), {
    placement: { WebGpuExecutionProvider: 2, CPUExecutionProvider: 4 },
    cpuCompute: { TopK: 2 },
  });
});
