// Checks of every estimated map against exact activation patching (atp patch --check K): per map, its K largest
// |estimate| cells and K random others, so each map's agreement is measured on its own cells (a map whose values are
// small would otherwise never be checked). Cells whose exact value the run already has (exact rows) are not
// candidates. Prompts of several lengths are checked at positions aligned at the answer (Component.fromEnd).
import type { CheckItem, Checks, ExampleResult, MapKind, MapMethods } from '../../shared/result';
import { type PositionField } from '../../shared/hooks';
import { isExactRow } from '../../shared/resultMethods';
import { flagSigns, mapAgreements } from '../../shared/checkAgreement';
import { pearson, spearman } from '../../shared/statistics';
import type { LoadedModel } from '../model/load';
import type { PreparedExample } from './examples';
import type { RunOptions } from './options';
import { type Candidate, chooseChecks, patchComponents } from './exact';

const POSITION_MAPS: ReadonlyArray<{ map: MapKind & PositionField; hook: 'resid_pre' | 'attn_out' | 'mlp_out' }> = [
  { map: 'residPre', hook: 'resid_pre' },
  { map: 'attnOut', hook: 'attn_out' },
  { map: 'mlpOut', hook: 'mlp_out' },
];

/** How many maps a run checks: the head map alone (a claim's agreement over every head), or it and the three position maps. */
export const checkedMapCount = (over: 'heads' | 'heads-and-positions') => (over === 'heads' ? 1 : 1 + POSITION_MAPS.length);

/**
 * The candidate cells of each map, with their estimates summed over examples. Position maps: by position when every
 * prompt has one length, else by offset from the answer over the positions every example has (fromEnd 0 … shortest − 1).
 */
export function mapCandidates(
  examples: readonly ExampleResult[],
  heads: number[][],
  maps: MapMethods,
  over: 'heads' | 'heads-and-positions',
): Array<{ map: MapKind; candidates: Candidate[] }> {
  const estimated = (map: MapKind, layer: number) => !isExactRow(maps[map], layer);
  const result: Array<{ map: MapKind; candidates: Candidate[] }> = [];
  if (maps.heads.method !== 'exact') {
    const candidates: Candidate[] = [];
    heads.forEach((row, layer) => {
      if (estimated('heads', layer)) row.forEach((attribution, head) => candidates.push({ hook: 'z', layer, position: null, head, attribution }));
    });
    result.push({ map: 'heads', candidates });
  }
  if (over === 'heads' || examples.length === 0) return result;
  const lengths = examples.map((e) => e.tokens.length);
  const oneLength = lengths.every((length) => length === lengths[0]);
  const columns = Math.min(...lengths);
  for (const { map, hook } of POSITION_MAPS) {
    if (maps[map].method === 'exact') continue;
    const candidates: Candidate[] = [];
    const layers = examples[0].attributions[map].length;
    for (let layer = 0; layer < layers; layer++) {
      if (!estimated(map, layer)) continue;
      for (let column = 0; column < columns; column++) {
        let attribution = 0;
        // Aligned at the answer: column k is each example's position length − 1 − k.
        for (const e of examples) attribution += e.attributions[map][layer][oneLength ? column : e.tokens.length - 1 - column];
        candidates.push(
          oneLength ? { hook, layer, position: column, head: null, attribution } : { hook, layer, position: null, fromEnd: column, head: null, attribution },
        );
      }
    }
    result.push({ map, candidates });
  }
  return result;
}

/**
 * Chooses each map's checks (k top, k random: the seed shifted per map so maps draw independently), patches them
 * exactly and summarises per map. `scale` turns the summed ΔLD of patchComponents into the maps' units.
 */
export async function checkMaps(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  perMap: ReadonlyArray<{ map: MapKind; candidates: Candidate[] }>,
  k: number,
  seed: number,
  scale: number,
  options: RunOptions,
): Promise<Checks> {
  const chosen = perMap.flatMap(({ candidates }, i) => chooseChecks(candidates, k, seed + i));
  const exact = await patchComponents(model, prepared, chosen, options);
  const items: CheckItem[] = flagSigns(
    chosen.map((c, i) => ({
      hook: c.hook,
      layer: c.layer,
      position: c.position,
      ...(c.fromEnd !== undefined ? { fromEnd: c.fromEnd } : {}),
      head: c.head,
      pick: c.pick,
      attribution: c.attribution,
      exact: exact[i] * scale,
    })),
  );
  const attribution = items.map((item) => item.attribution);
  const exactValues = items.map((item) => item.exact);
  return {
    k,
    seed,
    candidates: perMap.some(({ map }) => map !== 'heads') ? ['heads', 'positions'] : ['heads'],
    items,
    pearson: pearson(attribution, exactValues),
    spearman: spearman(attribution, exactValues),
    maps: mapAgreements(items),
  };
}
