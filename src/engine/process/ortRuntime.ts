// Imported first by the engine's entry points (src/cli/main.ts, worker.ts), before anything loads onnxruntime-node:
// chooses where ONNX Runtime is loaded from (the per-user CUDA runtime when installed; see cudaRuntime.ts).
import { useInstalledCudaRuntime } from '../../lib/cuda/cudaRuntime';

export const ortRuntimeChoice: string = useInstalledCudaRuntime();
