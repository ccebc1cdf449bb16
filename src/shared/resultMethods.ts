// How a Result's values were computed, in words: shared by the engine, the extension host and the webview, so it
// imports nothing (the webview bundle must not pull in Node modules; result.ts imports it, not the other way).

/**
 * atp: attribution patching, a linear estimate; atpstar: AtP* (Kramár et al. 2024), the linear estimate with the
 * attention softmax recomputed exactly for query and key nodes (the QK fix); exact: activation patching, one
 * patched run per value.
 */
export type Method = 'atp' | 'atpstar' | 'exact';

/** The method of each of a Result's arrays (Result.methods). */
export interface ArrayMethods {
  attributions: Method;
  heads: Method;
  positions: Method;
  tokenScores: Method;
}

export const METHOD_NAMES: Record<Method, string> = { atp: 'AtP estimate', atpstar: 'AtP* estimate (QK fix)', exact: 'exact (activation patching)' };

/** The method of each array; a @1 result is attribution patching throughout. */
export function methodsOf(result: { methods?: ArrayMethods }): ArrayMethods {
  return result.methods ?? { attributions: 'atp', heads: 'atp', positions: 'atp', tokenScores: 'atp' };
}

/**
 * Cells where GradDrop is much larger than |AtP|: GradDrop ≥ 2·|AtP| and at least 5% of the map's largest |AtP|
 * (smaller cells cannot change a reading). AtP may hide a cancellation there: a possible false negative to check.
 */
export function suspectCells(atp: number[][], gradDrop: number[][]): Array<{ layer: number; column: number; atp: number; gradDrop: number }> {
  let largest = 0;
  for (const row of atp) for (const value of row) largest = Math.max(largest, Math.abs(value));
  const cells: Array<{ layer: number; column: number; atp: number; gradDrop: number }> = [];
  gradDrop.forEach((row, layer) =>
    row.forEach((value, column) => {
      const estimate = atp[layer]?.[column] ?? 0;
      if (value >= 2 * Math.abs(estimate) && value >= 0.05 * largest && value > 0) cells.push({ layer, column, atp: estimate, gradDrop: value });
    }),
  );
  return cells;
}
