// The run behind a claims file: the stored Result when it is current, else one run of the model on the dataset with
// the claims file's method, checking every head against exact activation patching when an agreement claim needs it,
// and a circuit run (atp circuit) when a faithfulness claim or the file's circuit: block needs one.
// Engine side (loads the model): the CLI and the worker call it, never the extension host.
import { openModel } from '../model/open';
import { readDataset } from '../../lib/dataset';
import { runAttributionPatching } from '../patching/run';
import type { RunOptions } from '../patching/options';
import type { Result } from '../../shared/result';
import { datasetFileHash } from '../../lib/claims/inputs';
import type { ClaimsFile } from '../../lib/claims/schema';
import { circuitOptionsFor, needsHeadChecks, storedResultIfCurrent } from '../../lib/claims/state';
import { runCircuit } from '../circuits/run';

export interface ClaimsRunOptions extends RunOptions {
  /** Run even when the stored Result is current; the string says why (the default: "--rerun"). */
  rerun?: boolean | string;
  offline?: boolean;
}

export interface ClaimsRun {
  result: Result;
  /** The stored Result was current and no model ran. */
  reused: boolean;
  /** Why the model ran (empty when reused). */
  why: string[];
}

export async function resultForClaims(claims: ClaimsFile, options: ClaimsRunOptions): Promise<ClaimsRun> {
  let why = [typeof options.rerun === 'string' ? options.rerun : '--rerun'];
  if (!options.rerun) {
    const stored = await storedResultIfCurrent(claims);
    if ('result' in stored) return { result: stored.result, reused: true, why: [] };
    why = stored.why;
  }
  const warnings: string[] = [];
  const dataset = readDataset(claims.dataset, warnings);
  const { model, notes } = await openModel(claims.model, { offline: options.offline });
  for (const note of [...notes, ...warnings]) options.onProgress?.(note);
  const { nLayers, nHeads } = model.spec;
  const patching = {
    ...options,
    method: claims.method,
    check: needsHeadChecks(claims) ? nLayers * nHeads : 0,
    checkOver: 'heads' as const,
    checkSeed: claims.seed,
  };
  // A faithfulness claim (or a circuit: block) makes the run a circuit run: the same Result, plus Result.circuit.
  const circuit = circuitOptionsFor(claims);
  const result = circuit ? await runCircuit(model, dataset, patching, circuit) : await runAttributionPatching(model, dataset, patching);
  result.dataset.contentHash = datasetFileHash(claims.dataset);
  result.warnings = [...warnings, ...result.warnings];
  return { result, reused: false, why };
}
