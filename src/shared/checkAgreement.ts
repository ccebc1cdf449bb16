// Checks summarised per map, led by the error: a correlation cannot see a scale error (AtP at 12% of the exact
// effect everywhere still has Pearson 1), so each map's agreement starts with the largest error relative to the
// largest exact value and the top cell's estimate/exact ratio. Shared by the engine (the Result), the CLI's summary,
// claims and the panel. Imports nothing at run time but src/shared/.
import { HOOKS } from './hooks';
import { MAP_KINDS, type CheckItem, type Checks, type Component, type MapAgreement, type MapKind } from './result';
import { pearson, spearman } from './statistics';

/**
 * An exact value below this fraction of the map's largest checked |exact| is too small for its sign to mean anything
 * (float noise around 0): a sign that differs there is not flagged.
 */
export const SIGN_FLOOR = 0.01;

/** The map a checked component belongs to: hook_z is the head map, the others their layer × position maps. */
export function mapOfComponent(component: Pick<Component, 'hook'>): MapKind {
  return HOOKS[component.hook].field === 'z' ? 'heads' : (HOOKS[component.hook].field as MapKind);
}

/** Each checked item with `signDiffers` set (true only where it holds; absent otherwise), per its map's largest exact value. */
export function flagSigns(items: readonly CheckItem[]): CheckItem[] {
  const largest = new Map<MapKind, number>();
  for (const item of items) largest.set(mapOfComponent(item), Math.max(largest.get(mapOfComponent(item)) ?? 0, Math.abs(item.exact)));
  return items.map((item) => {
    const { signDiffers: _old, ...rest } = item;
    const differs = item.attribution * item.exact < 0 && Math.abs(item.exact) >= SIGN_FLOOR * (largest.get(mapOfComponent(item)) ?? 0);
    return differs ? { ...rest, signDiffers: true } : rest;
  });
}

/** One map's agreement over its checked items (see MapAgreement); undefined when none of them is in this map. */
export function mapAgreement(map: MapKind, items: readonly CheckItem[]): MapAgreement | undefined {
  const mine = items.filter((item) => mapOfComponent(item) === map);
  if (mine.length === 0) return undefined;
  const largestExact = Math.max(...mine.map((item) => Math.abs(item.exact)));
  const largestError = Math.max(...mine.map((item) => Math.abs(item.attribution - item.exact)));
  // Ties keep the first (items are in pick order: top picks first, largest first).
  const top = mine.reduce((best, item) => (Math.abs(item.attribution) > Math.abs(best.attribution) ? item : best));
  const estimates = mine.map((item) => item.attribution);
  const exact = mine.map((item) => item.exact);
  return {
    map,
    count: mine.length,
    maxError: largestExact > 0 ? largestError / largestExact : null,
    topRatio: top.exact !== 0 ? top.attribution / top.exact : null,
    pearson: pearson(estimates, exact),
    spearman: spearman(estimates, exact),
    signDiffers: mine.filter((item) => item.signDiffers).length,
  };
}

/** Every checked map's agreement, in map order. */
export function mapAgreements(items: readonly CheckItem[]): MapAgreement[] {
  return MAP_KINDS.flatMap((map) => mapAgreement(map, items) ?? []);
}

/** The Result's own per-map agreement, or one computed from its items (results written before it was recorded). */
export function agreementsOf(checks: Checks): MapAgreement[] {
  return checks.maps ?? mapAgreements(flagSigns(checks.items));
}

export const MAP_TITLES: Record<MapKind, string> = {
  heads: 'heads (hook_z at the answer)',
  residPre: 'hook_resid_pre',
  attnOut: 'hook_attn_out',
  mlpOut: 'hook_mlp_out',
};

const percent = (value: number) => `${(100 * value).toFixed(value < 0.1 ? 1 : 0)}%`;

/**
 * "max error 89% of the largest exact · top cell 0.11× exact · Pearson 0.992 · Spearman 1.000 (10 checked, 1 sign
 * differs)": the error first, then the correlations.
 */
export function describeAgreement(agreement: MapAgreement): string {
  const error = agreement.maxError === null ? 'max error: every exact value is 0' : `max error ${percent(agreement.maxError)} of the largest exact`;
  const ratio = agreement.topRatio === null ? 'top cell: exact 0' : `top cell ${agreement.topRatio.toFixed(2)}× exact`;
  const flips = agreement.signDiffers > 0 ? `, ${agreement.signDiffers} sign${agreement.signDiffers === 1 ? ' differs' : 's differ'}` : '';
  return `${error} · ${ratio} · Pearson ${agreement.pearson.toFixed(3)} · Spearman ${agreement.spearman.toFixed(3)} (${agreement.count} checked${flips})`;
}
