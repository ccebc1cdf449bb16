// Runs one claims file for the editor: the stored Result when it is current (no engine run), else one run in the
// engine's child process (the host never loads the model), then every claim checked against that Result and the
// Result and pass record written beside the claims file, as `atp test` does. No 'vscode' import: tested under Node.
import { rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Result } from '../shared/result';
import type { CircuitRequest, RunRequest } from '../shared/workerProtocol';
import type { RunHandlers, RunOutcome } from '../services/engineClient';
import { formatProblem, parseClaims, type ClaimsFile } from '../lib/claims/schema';
import {
  checkClaims,
  circuitOptionsFor,
  type ClaimReport,
  needsHeadChecks,
  resultFileFor,
  storedResultIfCurrent,
  writeFilesAtomically,
} from '../lib/claims/state';
import { readResultFile } from '../lib/files/resultFile';
import { readInputText } from '../lib/files/readInput';

export interface ClaimsEngine {
  /** With `circuit`: a circuit run (the worker's 'circuit' request). */
  run(request: Omit<RunRequest, 'type' | 'runId'>, handlers?: RunHandlers, circuit?: CircuitRequest['circuit']): Promise<RunOutcome>;
}

export interface ClaimsRunSettings {
  device: RunRequest['device'];
  batchSize: number;
  hfToken?: string;
}

export type ClaimsFileRun =
  | { kind: 'checked'; claims: ClaimsFile; reports: ClaimReport[]; reused: boolean; why: string[]; resultFile: string }
  | { kind: 'invalid'; message: string }
  | { kind: 'failed'; message: string }
  | { kind: 'cancelled' };

export async function runClaimsFile(
  file: string,
  text: string,
  engine: ClaimsEngine,
  settings: ClaimsRunSettings,
  handlers: RunHandlers = {},
): Promise<ClaimsFileRun> {
  const parsed = parseClaims(text, file);
  if (!parsed.claims) return { kind: 'invalid', message: parsed.problems.map((p) => formatProblem(file, p)).join('\n') };
  const claims = parsed.claims;
  const resultFile = resultFileFor(file);
  const stored = await storedResultIfCurrent(claims);
  let result: Result;
  let why: string[] = [];
  if ('result' in stored) result = stored.result;
  else {
    why = stored.why;
    let datasetText: string;
    try {
      datasetText = readInputText(claims.dataset, 'dataset').replace(/^\uFEFF/, '');
    } catch (error) {
      return { kind: 'failed', message: `${file}: dataset ${claims.dataset} cannot be read (${(error as Error).message})` };
    }
    const pendingFile = join(dirname(resultFile), `.${basename(resultFile)}.${process.pid}.${Date.now()}.pending`);
    const outcome = await engine.run(
      {
        model: claims.model,
        hfToken: settings.hfToken,
        datasetFile: claims.dataset,
        datasetText,
        device: settings.device,
        batchSize: settings.batchSize,
        method: claims.method,
        checkEveryHead: needsHeadChecks(claims),
        seed: claims.seed,
        pendingFile,
        resultFile,
      },
      handlers,
      circuitOptionsFor(claims),
    );
    if (outcome.kind === 'cancelled') return outcome;
    if (outcome.kind === 'failed') return { kind: 'failed', message: outcome.message };
    try {
      result = readResultFile(outcome.pendingFile);
    } finally {
      rmSync(outcome.pendingFile, { force: true });
    }
  }
  const { reports, files } = checkClaims(claims, result, { writeResult: why.length > 0 });
  writeFilesAtomically(files);
  return { kind: 'checked', claims, reports, reused: why.length === 0, why, resultFile };
}
