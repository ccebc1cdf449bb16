// The checks: each estimated map's k largest |attribution| cells and k random others, patched exactly (exact.ts
// patchComponents) and compared with their attributions, per map (mapChecks.ts).
import type { LoadedModel } from '../model/load';
import type { ExampleResult, MapMethods, Result } from '../../shared/result';
import type { PatchingOptions } from './options';
import type { PreparedExample } from './examples';
import { checkMaps, mapCandidates } from './mapChecks';

/** k top and k random cells of each estimated map (the head map only with checkOver 'heads'), exactly, in normalised units (× scale). */
export async function runChecks(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  k: number,
  examples: readonly ExampleResult[],
  maps: Pick<Result, 'heads'>,
  methods: MapMethods,
  scale: number,
  options: PatchingOptions,
): Promise<NonNullable<Result['checks']>> {
  const candidates = mapCandidates(examples, maps.heads, methods, options.checkOver ?? 'heads-and-positions');
  return checkMaps(model, prepared, candidates, k, options.checkSeed ?? 0, scale, options);
}
