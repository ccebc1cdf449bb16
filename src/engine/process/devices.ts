// Which devices this machine can run on, and which one `--device auto` picks. No onnxruntime import here: the
// choice is pure logic over what the host shows (files, platform), so tests inject a host and check every branch.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';

export type Provider = 'cpu' | 'cuda' | 'dml' | 'coreml' | 'webgpu';

/** The WebGPU adapter, as far as the host shows it (onnxruntime-node does not report Dawn's adapter). */
export interface AdapterInfo {
  name: string;
  vendor: string;
  /** A CPU implementation (SwiftShader, llvmpipe): correct but slower than ONNX Runtime's own CPU kernels. */
  software: boolean;
}

/** What the device choice reads from the machine; `realHost` reads the real one. */
export interface HostView {
  platform: NodeJS.Platform;
  env: Record<string, string | undefined>;
  readText(path: string): string | undefined;
  list(dir: string): string[];
  exists(path: string): boolean;
}

export const realHost: HostView = {
  platform: process.platform,
  env: process.env,
  readText: (path) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  },
  list: (dir) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  },
  exists: (path) => existsSync(path),
};

/** Vulkan driver manifests the loader would read: VK_DRIVER_FILES / VK_ICD_FILENAMES replace the search path. */
export function vulkanDriverManifests(host: HostView): string[] {
  const override = host.env.VK_DRIVER_FILES || host.env.VK_ICD_FILENAMES;
  if (override) return override.split(':').filter((file) => file && host.exists(file));
  const dataDirs = (host.env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').split(':').filter(Boolean);
  const dirs = ['/etc/vulkan/icd.d', ...dataDirs.map((dir) => join(dir, 'vulkan/icd.d')), join(host.env.HOME ?? homedir(), '.local/share/vulkan/icd.d')];
  return dirs.flatMap((dir) =>
    host
      .list(dir)
      .filter((file) => file.endsWith('.json'))
      .map((file) => join(dir, file)),
  );
}

const PCI_VENDORS: Record<string, string> = {
  '0x10de': 'NVIDIA',
  '0x1002': 'AMD',
  '0x8086': 'Intel',
  '0x5143': 'Qualcomm',
  '0x13b5': 'ARM',
  '0x106b': 'Apple',
  '0x1af4': 'virtio',
};

/** Mesa's hardware Vulkan drivers, by library name, and the PCI vendor of the devices they drive. */
const MESA_DRIVERS: Array<{ library: RegExp; vendor: string }> = [
  { library: /radeon/, vendor: '0x1002' },
  { library: /intel/, vendor: '0x8086' },
  { library: /nouveau/, vendor: '0x10de' },
  { library: /freedreno/, vendor: '0x5143' },
  { library: /panfrost/, vendor: '0x13b5' },
  { library: /asahi/, vendor: '0x106b' },
  { library: /virtio/, vendor: '0x1af4' },
];

/** DRM render nodes (/dev/dri/renderD*) with their PCI vendor and device ids. */
function renderNodes(host: HostView): Array<{ vendor: string; device: string; driver: string }> {
  return host
    .list('/sys/class/drm')
    .filter((name) => /^renderD\d+$/.test(name))
    .map((name) => {
      const dir = `/sys/class/drm/${name}/device`;
      const driver = /^DRIVER=(.*)$/m.exec(host.readText(`${dir}/uevent`) ?? '')?.[1] ?? 'unknown driver';
      return { vendor: (host.readText(`${dir}/vendor`) ?? '').trim(), device: (host.readText(`${dir}/device`) ?? '').trim(), driver };
    });
}

function nvidiaGpus(host: HostView): string[] {
  return host
    .list('/proc/driver/nvidia/gpus')
    .map((bus) => /^Model:\s*(.*)$/m.exec(host.readText(`/proc/driver/nvidia/gpus/${bus}/information`) ?? '')?.[1]?.trim() || 'NVIDIA GPU');
}

/**
 * The adapter Dawn (WebGPU in onnxruntime-node) would use. Dawn prefers a hardware GPU over a CPU implementation,
 * so: the first Vulkan driver with a device actually present (NVIDIA's driver with /proc/driver/nvidia/gpus
 * entries, a Mesa driver with a render node of its vendor), else a software driver. On Windows (Direct3D 12) and
 * macOS (Metal) the system GPU is assumed: there Dawn does not pick a software adapter unless asked to.
 */
export function webgpuAdapter(host: HostView = realHost): AdapterInfo | undefined {
  if (host.platform === 'win32') return { name: 'the default Direct3D 12 adapter', vendor: 'unknown', software: false };
  if (host.platform === 'darwin') return { name: 'the default Metal device', vendor: 'unknown', software: false };
  if (host.platform !== 'linux') return undefined;
  const hardware: AdapterInfo[] = [];
  const software: AdapterInfo[] = [];
  for (const manifest of vulkanDriverManifests(host)) {
    let library: string;
    try {
      library = basename(String((JSON.parse(host.readText(manifest) ?? '') as { ICD?: { library_path?: unknown } }).ICD?.library_path ?? ''));
    } catch {
      continue;
    }
    if (/swiftshader/i.test(library)) software.push({ name: 'SwiftShader', vendor: 'Google', software: true });
    else if (/lvp|lavapipe|llvmpipe/i.test(library)) software.push({ name: 'llvmpipe (lavapipe)', vendor: 'Mesa', software: true });
    else if (/nvidia/i.test(library)) hardware.push(...nvidiaGpus(host).map((name) => ({ name, vendor: 'NVIDIA', software: false })));
    else {
      const driver = MESA_DRIVERS.find((d) => d.library.test(library));
      for (const node of renderNodes(host)) {
        if (driver && node.vendor !== driver.vendor) continue;
        const vendor = PCI_VENDORS[node.vendor] ?? node.vendor;
        hardware.push({ name: `${vendor} GPU ${node.device} (${node.driver})`, vendor, software: false });
      }
    }
  }
  return hardware[0] ?? software[0];
}

/** What `auto` needs to know about the machine. */
export interface DeviceFacts {
  platform: NodeJS.Platform;
  /** onnxruntime-node's CUDA provider libraries are installed (they are a separate download: `atp install-cuda`). */
  cudaInstalled: boolean;
  /** The NVIDIA libraries (CUDA 12, cuDNN 9) the CUDA provider needs that do not load here; checked only when it is installed. */
  nvidiaMissing?: readonly string[];
  webgpu: AdapterInfo | undefined;
}

/**
 * Providers `auto` tries, best first, and why, in words for the log: CUDA when its provider is installed and the
 * NVIDIA libraries it needs load →
 * DirectML (Windows) → CoreML (macOS) → WebGPU on a hardware adapter → CPU, which always works. A software
 * WebGPU adapter is never chosen automatically: it computes the same numbers as the CPU, only slower.
 */
export function autoChoice(facts: DeviceFacts): { candidates: Provider[]; reasons: string[] } {
  const candidates: Provider[] = [];
  const reasons: string[] = [];
  if (facts.cudaInstalled && (facts.nvidiaMissing ?? []).length === 0) {
    candidates.push('cuda');
    reasons.push("cuda: onnxruntime-node's CUDA provider libraries are installed and the NVIDIA libraries load");
  } else if (facts.cudaInstalled)
    reasons.push(`no cuda: the CUDA provider is installed but these NVIDIA libraries do not load: ${facts.nvidiaMissing!.join(', ')}`);
  else reasons.push("no cuda: onnxruntime-node's CUDA provider libraries are not installed (atp install-cuda)");
  if (facts.platform === 'win32') {
    candidates.push('dml');
    reasons.push('dml: DirectML ships with onnxruntime-node on Windows');
  }
  if (facts.platform === 'darwin') {
    candidates.push('coreml');
    reasons.push('coreml: macOS');
  }
  const adapter = facts.webgpu;
  if (adapter && !adapter.software) {
    candidates.push('webgpu');
    reasons.push(`webgpu: hardware adapter ${adapter.name} (${adapter.vendor})`);
  } else if (adapter) reasons.push(`no webgpu: its only adapter is ${adapter.name}, a software renderer (use --device webgpu to run on it anyway)`);
  else reasons.push('no webgpu: no GPU adapter found');
  candidates.push('cpu');
  return { candidates, reasons };
}

/** One line for the log: what auto will try, in order, and why. */
export function describeAutoChoice(choice: { candidates: Provider[]; reasons: string[] }): string {
  return `device auto: trying ${choice.candidates.join(' → ')} (${choice.reasons.join('; ')})`;
}
