// Cells of the maps whose exact value a run already has, put in place of their estimates. resid_pre at layer 0 is
// the token embedding (plus the position's, in models that add one): patching it at a position is exactly patching
// that token, whose effect the run computes exactly (exact.ts patchTokens) unless that is over budget. So every
// method's resid_pre row at layer 0 holds the token effects, and the Result says which rows are exact (MapMethods).
import type { ExampleAttributions, MapMethods, Method, TokenScores } from '../../shared/result';

/** The layer whose resid_pre is the token embedding: its patch is the token patch. */
export const TOKEN_LAYER = 0;

/**
 * Writes each example's exact token effects into its resid_pre row at layer 0 (in place) and says whether the row is
 * now exact in every example: only when every token score of every example is exact. Where a token's effect is an
 * estimate, the row keeps the method's own estimate there (both are estimates; the row is not called exact).
 */
export function putExactTokenEffects(attributions: readonly ExampleAttributions[], tokenScores: readonly TokenScores[]): boolean {
  let everyCellExact = attributions.length > 0;
  attributions.forEach((a, i) => {
    const scores = tokenScores[i];
    const row = a.residPre[TOKEN_LAYER];
    if (!row) {
      everyCellExact = false;
      return;
    }
    for (let pos = 0; pos < row.length; pos++) {
      if (scores.exact[pos]) row[pos] = scores.values[pos];
      else everyCellExact = false;
    }
  });
  return everyCellExact;
}

/** Each map's method and exact rows for a run of `method` (AtP*'s hook-point maps are AtP). */
export function methodsOfMaps(method: Method, tokenRowExact: boolean): MapMethods {
  const arrays: Method = method === 'atpstar' ? 'atp' : method;
  const estimate = arrays !== 'exact';
  return {
    heads: { method: arrays, exactLayers: [] },
    residPre: { method: arrays, exactLayers: estimate && tokenRowExact ? [TOKEN_LAYER] : [] },
    attnOut: { method: arrays, exactLayers: [] },
    mlpOut: { method: arrays, exactLayers: [] },
  };
}
