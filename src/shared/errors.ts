/** An error caused by the user's input (a file, a flag, a model folder): shown as is, without a stack trace. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}
