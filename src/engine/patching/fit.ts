// The fit stage: what the run needs in memory, said up front; a batch or pre-packing that does not fit is lowered
// (with a note) before anything is built; nothing fits: refused with the numbers rather than a crash.
import type { LoadedModel } from '../model/load';
import { checkMemory, datasetShape, describeMemoryEstimate, estimateRunMemory, fitRunToMemory, headCounts } from '../model/memory';
import { type PreparedExample, sharedPrefixTokens } from './examples';
import { longestPrompt } from './feeds';
import type { RunPlan } from './methods';
import type { PatchingOptions } from './options';
import { type GraphKind, sessionIsWarm } from './sessions';
import { InputError } from '../../shared/errors';
import { type RunGraphs, runGraphs } from './plan';

/**
 * Fits the planned run, with its exact head map when memory also holds exact patching's two sessions; else without
 * it (the head map then the method's estimate, with a note): an exact map never costs a run that would fit.
 */
export function fitPlannedRun(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  plan: RunPlan,
  options: PatchingOptions,
): { plan: RunPlan; graphs: RunGraphs; notes: string[] } {
  const graphs = runGraphs(model, prepared, plan, options);
  try {
    return { plan, graphs, notes: fitPatchingRun(model, prepared, plan, graphs.held, options) };
  } catch (error) {
    if (!(error instanceof InputError) || !plan.exactHeads) throw error;
    const estimated: RunPlan = { ...plan, exactHeads: undefined };
    const fewer = runGraphs(model, prepared, estimated, options);
    const notes = fitPatchingRun(model, prepared, estimated, fewer.held, options);
    const note = `head map: ${plan.method === 'atpstar' ? 'AtP*' : 'AtP'} estimate; its exact patching needs two more sessions than memory holds (${error.message})`;
    options.onProgress?.(note);
    return { plan: estimated, graphs: fewer, notes: [note, ...notes] };
  }
}

/** Fits the run to memory: lowers options.batchSize and options.prepacking where needed; returns the notes saying so. */
export function fitPatchingRun(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  plan: RunPlan,
  sessions: readonly GraphKind[],
  options: PatchingOptions,
): string[] {
  // Say up front what the run needs, and refuse with the numbers rather than crash when it cannot fit.
  const datasetSize = datasetShape(
    headCounts(model.spec),
    prepared.map((p) => p.tokens.length),
    prepared.reduce((sum, p) => sum + p.corruptedTokens.length, 0),
    plan.method === 'atpstar',
  );
  // Only the attribution graph's corrupted pass starts after the prompts' shared prefix (AtP*, exact patching and checks run every position).
  const sharedPrefix = plan.method === 'atp' && plan.checks === 0 ? sharedPrefixTokens(prepared) : undefined;
  // A batch or pre-packing that does not fit is lowered (with a note) before anything is built; nothing fits: refused.
  const fit = fitRunToMemory(
    { batchSize: Math.min(options.batchSize, prepared.length), prepacking: options.prepacking !== false },
    (batchSize, prepacking) =>
      estimateRunMemory(model, { batchSize, seqLen: longestPrompt(prepared), sharedPrefix, dataset: datasetSize, sessions: sessions.length, prepacking }),
    (estimate, prepacking) =>
      checkMemory(estimate, options.device, { residentSessions: sessions.filter((kind) => sessionIsWarm(model, kind, { ...options, prepacking })).length }),
  );
  options.onProgress?.(describeMemoryEstimate(fit.estimate, options.device));
  if (fit.batchSize < options.batchSize && fit.batchSize < prepared.length) options.batchSize = fit.batchSize;
  if (!fit.prepacking) options.prepacking = false;
  return fit.notes;
}
