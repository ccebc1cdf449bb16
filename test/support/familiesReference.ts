// Runs test/reference/families_reference.py (the float64 PyTorch reference for every supported family) on
// several requests in one interpreter start. Same request/response types as gpt2_reference.py.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { Result } from '../../src/shared/result';
import { REFERENCE_PYTHON, requireTorchReference, type ReferenceRequest, type ReferenceResponse } from './reference';

export const FAMILIES_REFERENCE_SCRIPT = resolve(__dirname, '../reference/families_reference.py');
export const FAMILIES_SELF_CHECK = resolve(__dirname, '../reference/families_self_check.py');

export function runFamiliesReference(requests: ReferenceRequest[]): ReferenceResponse[] {
  requireTorchReference();
  const result = spawnSync(REFERENCE_PYTHON, [FAMILIES_REFERENCE_SCRIPT], {
    input: JSON.stringify({ requests }),
    encoding: 'utf8',
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (result.error) throw new Error(`families_reference.py could not run: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`families_reference.py exited with ${result.status ?? result.signal}: ${result.stderr.trim()}`);
  return (JSON.parse(result.stdout) as { responses: ReferenceResponse[] }).responses;
}

/** A reference request for the examples of an engine Result (the engine's own token ids). */
export function requestFor(result: Pick<Result, 'examples'>, modelDir: string, activationPatching = false): ReferenceRequest {
  return {
    modelDir,
    activationPatching,
    examples: result.examples.map((e) => ({ cleanIds: e.cleanIds, corruptedIds: e.corruptedIds, correctId: e.correctId, incorrectId: e.incorrectId })),
  };
}

/** Largest |a − b| over all values, and the largest |b|, for a relative comparison. */
export function maxError(actual: number[], expected: number[]): { error: number; scale: number } {
  if (actual.length !== expected.length) throw new Error(`${actual.length} values vs ${expected.length} expected`);
  let error = 0;
  let scale = 0;
  actual.forEach((a, i) => {
    error = Math.max(error, Math.abs(a - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  });
  return { error, scale };
}
