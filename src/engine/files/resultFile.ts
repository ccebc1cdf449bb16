// Writing a Result to disk: the engine's side of src/shared/result.ts (which stays free of Node imports).
import { serializeResult, type Result } from '../../shared/result';
import { writeTextAtomically } from './atomicWrite';

/** Writes the result atomically (see writeTextAtomically): a failed write leaves the previous file intact. */
export function writeResultAtomically(file: string, result: Result): void {
  // Serialize first: a result that cannot be written must not touch the disk at all.
  writeTextAtomically(file, serializeResult(result), 'the result');
}
