import { type FieldId, fieldRef, renderFieldText } from './fields';

/**
 * An error caused by the user's input (a file, a flag, a model folder): shown as is, without a stack trace.
 * `field` says which setting or flag it is about (the editor chooses its actions by it); `detail` is the text with
 * fields named by fieldRef placeholders, for each front end to render in its terms; `message` is the command line's
 * rendering (`--model: folder x does not exist`), so the CLI prints it as it is.
 */
export class InputError extends Error {
  readonly field?: FieldId;
  readonly detail: string;

  constructor(detail: string, options: { field?: FieldId } = {}) {
    super(renderFieldText(detail, 'cli'));
    this.name = 'InputError';
    this.detail = detail;
    if (options.field !== undefined) this.field = options.field;
  }

  /** The common form: the problem with one field's value, `--flag: detail` on the command line. */
  static about(field: FieldId, detail: string): InputError {
    return new InputError(`${fieldRef(field)}: ${detail}`, { field });
  }

  /** The same error, now known to be about a field (a model that failed to load is the model setting's problem). */
  static withField(error: InputError, field: FieldId): InputError {
    if (error.field !== undefined) return error;
    const located = new InputError(error.detail, { field });
    located.stack = error.stack;
    return located;
  }
}

/** What of an InputError crosses from the worker to the host (src/shared/workerProtocol.ts). */
export interface InputProblem {
  field?: FieldId;
  detail: string;
}

export function inputProblem(error: InputError): InputProblem {
  return error.field === undefined ? { detail: error.detail } : { field: error.field, detail: error.detail };
}

/**
 * The words a CUDA fallback note or error starts its reason with when the provider libraries are missing: the
 * editor offers "Install CUDA Support…" on them (src/commands/runFailure.ts).
 */
export const CUDA_NOT_INSTALLED = 'the CUDA provider libraries are not installed';
