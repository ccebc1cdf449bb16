// A run, top to bottom: plan (plan.ts, methods.ts) → fit (fit.ts) → sessions (sessions.ts) → passes (atp.ts, atpStar.ts,
// activationPatching.ts, tokenEffects.ts, checks.ts) → Result (assemble.ts). docs/ARCHITECTURE.md draws it.
import type { LoadedModel } from '../model/load';
import type { Dataset } from '../../lib/dataset/jsonl';
import type { Result } from '../../shared/result';
import { runAtpStar } from './atpStar';
import { runActivationPatching } from './activationPatching';
import { assembleResult, exampleResults, summarize } from './assemble';
import { runAtpBatches, scaleAttributionsInPlace } from './atp';
import { runChecks } from './checks';
import { fitPlannedRun } from './fit';
import { mean, runScale } from './normalisation';
import { checkCancelled, type PatchingOptions } from './options';
import { planPatchingRun } from './plan';
import { releaseOtherModels, sessionFor } from './sessions';
import { computeTokenScores } from './tokenEffects';
import { methodsOfMaps, putExactHeads, putExactTokenEffects } from './exactRows';

/**
 * Attribution patching over a dataset: per batch, one session run (clean forward, corrupted forward, backward to
 * the hooks, reductions in the graph); then normalisation by the dataset's baselines on the host.
 */
export async function runAttributionPatching(model: LoadedModel, dataset: Dataset, requested: PatchingOptions): Promise<Result> {
  const started = performance.now();
  // Plan: the examples, the method, exact token effects and checks, the cost; said before anything runs.
  const planned = planPatchingRun(model, dataset, requested);
  const { prepared, options, warnings } = planned;
  // A long-lived process holding another model's sessions lets them go first: the memory check counts them as used.
  await releaseOtherModels(model);
  // Fit: the batch and pre-packing lowered to what memory holds (with a note), the exact head map dropped if only
  // it does not fit, or the run refused.
  const { plan, graphs, notes } = fitPlannedRun(model, prepared, planned.plan, options);
  warnings.push(...notes);
  // Session creation (seconds for a large model) is the load time; AtP* creates its own inside its run.
  const handle = plan.method === 'atpstar' ? undefined : await sessionFor(model, 'attribution', options);
  const loaded = performance.now();

  // Passes: AtP or AtP*, the estimates and both logit differences of every example.
  const star = plan.method === 'atpstar' ? await runAtpStar(model, dataset, { ...options, gradDrop: plan.gradDrop, prepared }) : undefined;
  const estimates = star ?? (await runAtpBatches(handle!, model, prepared, options));
  warnings.push(...estimates.warnings);
  const cleanLds = estimates.examples.map((e) => e.cleanLogitDiff);
  const corruptedLds = estimates.examples.map((e) => e.corruptedLogitDiff);
  checkCancelled(options.signal);

  const cleanLogitDiff = mean(cleanLds);
  const corruptedLogitDiff = mean(corruptedLds);
  const scale = runScale(options, dataset, cleanLogitDiff, corruptedLogitDiff, prepared.length);
  // AtP* reports its attributions normalised already; the plain AtP batches leave that to here.
  // Scaled in place: the unscaled arrays are not needed again, and a large dataset would otherwise hold both.
  let attributions = star ? star.examples.map((e) => e.attributions) : estimates.examples.map((e) => scaleAttributionsInPlace(e.attributions, scale));
  // The exact sweep replaces the estimates.
  if (plan.method === 'exact') {
    attributions = (await runActivationPatching(model, dataset, options)).examples;
  }
  const tokenScores = await computeTokenScores(model, prepared, plan, graphs.tokens, attributions, { cleanLds, corruptedLds, scale }, options);
  // The head map exact when auto found it cheap: each head at the answer patched (exactRows.ts, suffix passes).
  const headsExact = plan.exactHeads !== undefined;
  if (headsExact) await putExactHeads(model, prepared, attributions, scale, options);
  // resid_pre at layer 0 is the token patch: the exact token effects replace its estimates (exactRows.ts).
  const mapMethods = methodsOfMaps(plan.method, putExactTokenEffects(attributions, tokenScores), headsExact);
  const examples = exampleResults(prepared, { cleanLds, corruptedLds, tokenScores, attributions, star });
  const maps = summarize(examples, star);
  const checks = plan.checks > 0 ? await runChecks(model, prepared, plan.checks, examples, maps, mapMethods, scale, options) : undefined;
  checkCancelled(options.signal);

  // Result: what the passes computed, with the run's records.
  return assembleResult(model, dataset, plan, options, {
    estimates,
    metric: { cleanLogitDiff, corruptedLogitDiff },
    examples,
    maps,
    checks,
    mapMethods,
    warnings,
    times: { started, loaded },
  });
}
