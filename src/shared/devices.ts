// The devices a run may ask for: the contract of RunRequest.device, the --device flag and the attributionPatching.device
// setting; the engine (process/runtime.ts) implements each.
export const DEVICES = ['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'] as const;
export type DeviceRequest = (typeof DEVICES)[number];
