// `atp --version`: the engine's version (this package's), ONNX Runtime's (onnxruntime-node's: the two share version
// numbers) and where it is loaded from, and Node's. Read from package files, without loading ONNX Runtime itself.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ortRuntimeChoice } from '../engine/process/ortRuntime';
import { bundledOrt } from '../lib/cuda/cudaRuntime';

const PACKAGE_NAME = 'attribution-patching';

/** This package's version: from the first package.json above this module (dist/ in a build, src/cli/ in a checkout) that is ours. */
export function engineVersion(from: string = __dirname): string {
  for (let dir = from, i = 0; i < 5; i += 1, dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
    if (manifest.name === PACKAGE_NAME && typeof manifest.version === 'string') return manifest.version;
  }
  return 'unknown (no package.json of attribution-patching above the CLI)';
}

export function versionText(): string {
  let ort: string;
  try {
    ort = `ONNX Runtime ${bundledOrt().version} (onnxruntime-node): ${ortRuntimeChoice}`;
  } catch (error) {
    ort = `ONNX Runtime: onnxruntime-node not found (${(error as Error).message.split('\n')[0]})`;
  }
  return [`atp (attribution-patching engine) ${engineVersion()}`, ort, `Node ${process.version}`].join('\n');
}
