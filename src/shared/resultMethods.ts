// How a Result's values were computed, in words: shared by the engine, the extension host and the webview, so it
// imports nothing at run time (the webview bundle must not pull in Node modules).
import type { Result } from '../engine/result';

/** atp: attribution patching, a linear estimate; exact: activation patching, one patched run per value. */
export type Method = 'atp' | 'exact';

export const METHOD_NAMES: Record<Method, string> = { atp: 'AtP estimate', exact: 'exact (activation patching)' };

/** The method of each array; a @1 result is attribution patching throughout. */
export function methodsOf(result: Result): NonNullable<Result['methods']> {
  return result.methods ?? { attributions: 'atp', heads: 'atp', positions: 'atp', tokenScores: 'atp' };
}
