// The checks: the components with the largest |attribution| and random others, patched exactly (exact.ts
// patchComponents) and compared with their attributions.
import type { LoadedModel } from '../model/load';
import type { Result } from '../../shared/result';
import type { PatchingOptions } from './options';
import type { PreparedExample } from './examples';
import { checkCandidates, chooseChecks, patchComponents, summarizeChecks } from './exact';

/** k top and k random components of the maps (the head map only with checkOver 'heads'), exactly, in normalised units (× scale). */
export async function runChecks(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  k: number,
  maps: Pick<Result, 'heads' | 'positions'>,
  scale: number,
  options: PatchingOptions,
): Promise<NonNullable<Result['checks']>> {
  const checkPositions = options.checkOver === 'heads' ? null : maps.positions;
  const candidateSources: Array<'heads' | 'positions'> = checkPositions ? ['heads', 'positions'] : ['heads'];
  const seed = options.checkSeed ?? 0;
  const chosen = chooseChecks(checkCandidates(maps.heads, checkPositions), k, seed);
  const exact = await patchComponents(model, prepared, chosen, options);
  return summarizeChecks(
    k,
    seed,
    candidateSources,
    chosen.map((c, i) => ({
      hook: c.hook,
      layer: c.layer,
      position: c.position,
      head: c.head,
      pick: c.pick,
      attribution: c.attribution,
      exact: exact[i] * scale,
    })),
  );
}
