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
  /** Per map, its method and the rows that are exact although that method estimates (absent in results made before it). */
  maps?: MapMethods;
}

/** The Result's maps: the head map at the answer and the three layer × position maps (per example and summed). */
export const MAP_KINDS = ['heads', 'residPre', 'attnOut', 'mlpOut'] as const;
export type MapKind = (typeof MAP_KINDS)[number];

/**
 * How one map's cells were computed: `method` for every cell except the rows of `exactLayers`, which are exact
 * (activation patching) in every example. resid_pre at layer 0 depends only on the token and its position, so
 * patching it is the token effect: exact wherever the run computed exact token effects.
 */
export interface MapMethod {
  method: Method;
  exactLayers: number[];
}
export type MapMethods = Record<MapKind, MapMethod>;

export const METHOD_NAMES: Record<Method, string> = { atp: 'AtP estimate', atpstar: 'AtP* estimate (QK fix)', exact: 'exact (activation patching)' };

/** The method of each array; a @1 result is attribution patching throughout. */
export function methodsOf(result: { methods?: ArrayMethods }): ArrayMethods {
  return result.methods ?? { attributions: 'atp', heads: 'atp', positions: 'atp', tokenScores: 'atp' };
}

/**
 * Each map's method and exact rows. A Result without `methods.maps` (older files) has every cell of a map by that
 * map's method: the head map by `heads`, the position maps by `positions`, no exact rows.
 */
export function mapMethodsOf(result: { methods?: ArrayMethods }): MapMethods {
  const methods = methodsOf(result);
  if (methods.maps) return methods.maps;
  const of = (method: Method): MapMethod => ({ method, exactLayers: [] });
  return { heads: of(methods.heads), residPre: of(methods.positions), attnOut: of(methods.positions), mlpOut: of(methods.positions) };
}

/** Whether a row of a map is exact in every example: the map is exact, or the row is one of its exact layers. */
export function isExactRow(map: MapMethod, layer: number): boolean {
  return map.method === 'exact' || map.exactLayers.includes(layer);
}

/** A map's method in words, e.g. "AtP estimate, L0 exact" or "exact (activation patching)". */
export function mapMethodLabel(map: MapMethod): string {
  if (map.method === 'exact' || map.exactLayers.length === 0) return METHOD_NAMES[map.method];
  return `${METHOD_NAMES[map.method]}, ${map.exactLayers.map((layer) => `L${layer}`).join(', ')} exact`;
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
