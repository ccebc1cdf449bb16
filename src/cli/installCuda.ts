// atp install-cuda: the CUDA provider libraries for the installed onnxruntime-node, into the per-user runtime
// folder (src/lib/cuda/cudaInstall.ts does the work). Progress on stderr; the installed folder on stdout.
import { parseArgs } from 'node:util';
import { installCuda, type InstallProgress } from '../lib/cuda/cudaInstall';
import { cudaRuntimeRoot } from '../lib/cuda/cudaRuntime';
import { InputError } from '../shared/errors';
import type { CommandIo } from './generate';
import { checkCommandOutputs } from '../lib/files/outputPaths';

export const INSTALL_CUDA_USAGE = `Usage:
  atp install-cuda [--from FILE_OR_URL] [--sha512 HASH] [--dir DIR]

Downloads the CUDA provider libraries of ONNX Runtime that match the installed onnxruntime-node (the NuGet package
Microsoft.ML.OnnxRuntime.Gpu.Linux of the same version, from nuget.org, as onnxruntime-node's own install script
does), checks it against the SHA-512 NuGet publishes for it, and installs them with a copy of onnxruntime-node's
runtime into DIR/<version> (default ${cudaRuntimeRoot()}; set ATP_CUDA_DIR=DIR when you choose another). An
interrupted download resumes when run again. --device cuda and auto then use it. --from takes a .nupkg you
downloaded (or another URL for it); --sha512 gives the hash to check it against (hex or base64) when nuget.org
cannot be reached. A mirror named by ATP_CUDA_FEED needs --sha512 (it is never asked for its own package's hash);
plain http:// mirrors and URLs need ATP_CUDA_ALLOW_HTTP=1. CUDA 12 and cuDNN 9 themselves are not part of the
download: the machine must have them.`;

function progressWriter(io: CommandIo): (progress: InstallProgress) => void {
  return (progress) => {
    const percent = progress.done !== undefined && progress.total ? ` ${((100 * progress.done) / progress.total).toFixed(0)}%` : '';
    io.stderr(`${progress.message}${percent}\n`);
  };
}

export async function installCudaCommand(args: string[], io: CommandIo): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: { from: { type: 'string' }, sha512: { type: 'string' }, dir: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    throw new InputError(`${(error as Error).message}\n\n${INSTALL_CUDA_USAGE}`);
  }
  if (values.help) {
    io.stdout(`${INSTALL_CUDA_USAGE}\n`);
    return;
  }
  // A --from file is an input: --dir may not be it, nor a folder inside the folder holding it.
  const from = values.from !== undefined && !/^[a-z][a-z0-9+.-]*:\/\//i.test(values.from) ? [{ path: values.from, role: '--from' }] : [];
  checkCommandOutputs('install-cuda', values, from);
  const outcome = await installCuda({ from: values.from, sha512: values.sha512, root: values.dir, onProgress: progressWriter(io) });
  for (const note of outcome.notes) io.stderr(`note: ${note}\n`);
  if (values.dir !== undefined && values.dir !== cudaRuntimeRoot()) io.stderr(`note: set ATP_CUDA_DIR=${values.dir} for atp and the editor to use it\n`);
  io.stdout(`${outcome.dir}\n`);
}
