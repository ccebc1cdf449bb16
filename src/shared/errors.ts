/** An error caused by the user's input (a file, a flag, a model folder): shown as is, without a stack trace. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/**
 * The words a CUDA fallback note or error starts its reason with when the provider libraries are missing: the
 * editor offers "Install CUDA Support…" on them (src/commands/runFailure.ts).
 */
export const CUDA_NOT_INSTALLED = 'the CUDA provider libraries are not installed';
