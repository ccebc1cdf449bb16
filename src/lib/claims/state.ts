// Where a claims file's run is kept, beside it: the Result it was checked against (tables.claims.atp-result.json, a
// normal Result the panel opens) and each claim's last pass with the inputs it passed on (tables.claims.atp-passes.json).
// A stored Result is reused while it is current: same model files, tokenizer, dataset text, engine version, method
// and seed, and it holds what the claims need. Node's fs only (the extension host uses it too); no run here.
import { existsSync } from 'node:fs';
import type { Result } from '../../shared/result';
import { writeFilesAtomically, type FileToWrite } from '../files/atomicWrite';
import { type ClaimOutcome, evaluateClaim } from './evaluate';
import { currentInputs, inputChanges, inputsOf, type InputsRecord, modelFileNamesProblem } from './inputs';
import type { ClaimEntry, ClaimsFile } from './schema';
import { readResultFile, resultFilesToWrite } from '../files/resultFile';
import type { CircuitOptions } from '../../shared/circuit';
import { readInputText } from '../files/readInput';
import { parseModelSource } from '../model/modelSource';

const PASSES_SCHEMA = 'attribution-patching/claims-passes@1';

const stem = (claimsFile: string) => claimsFile.replace(/\.(ya?ml|json)$/i, '');
export const resultFileFor = (claimsFile: string) => `${stem(claimsFile)}.atp-result.json`;
export const passesFileFor = (claimsFile: string) => `${stem(claimsFile)}.atp-passes.json`;

/** Another claims file whose stored Result would be this one's (a.claims.json beside a.claims.yaml), or undefined. */
export function claimsFileTwin(claimsFile: string): string | undefined {
  const own = claimsFile.slice(stem(claimsFile).length);
  return ['.yaml', '.yml', '.json']
    .filter((extension) => extension !== own.toLowerCase())
    .map((extension) => `${stem(claimsFile)}${extension}`)
    .find((twin) => existsSync(twin));
}

/** Checks against exact patching are needed by agreement claims: every head, at the answer position. */
export const needsHeadChecks = (claims: ClaimsFile) => claims.claims.some((c) => c.claim.kind === 'agreement');

/** The circuit run a claims file asks for (atp circuit's options), or undefined when it needs none. */
export function circuitOptionsFor(claims: ClaimsFile): CircuitOptions | undefined {
  const c = claims.circuit;
  if (!c) return undefined;
  return {
    method: c.method,
    steps: c.steps,
    selection: { rule: 'top-n', edges: c.edges },
    curveSizes: c.sizes,
    randomDraws: c.randomDraws,
    randomSeed: claims.seed,
  };
}

/** What the stored circuit lacks for these claims (the method and steps are compared as inputs, inputChanges). */
function circuitShortfalls(claims: ClaimsFile, result: Result): string[] {
  const want = claims.circuit;
  if (!want) return [];
  const circuit = result.circuit;
  if (!circuit) return ['the stored Result has no circuit (a faithfulness claim or the circuit block needs one)'];
  const why: string[] = [];
  const curve = circuit.curve;
  const total = circuit.edges.length;
  const missing = want.sizes.filter((n) => n <= total && !curve?.edges.includes(n));
  if (missing.length > 0) why.push(`the stored circuit did not measure ${missing.join(', ')} edges`);
  if (curve && (curve.randomDraws !== want.randomDraws || curve.randomSeed !== claims.seed)) {
    why.push(`random baseline ${curve.randomDraws} draws, seed ${curve.randomSeed} → ${want.randomDraws} draws, seed ${claims.seed}`);
  }
  if (circuit.selection.rule !== 'top-n' || circuit.selection.requested !== want.edges)
    why.push(`the stored circuit keeps ${circuit.selection.rule} ${circuit.selection.requested}, the file asks for top-n ${want.edges}`);
  return why;
}

function hasEveryHeadChecked(result: Result): boolean {
  const checks = result.checks;
  return !!checks && checks.candidates.length === 1 && checks.candidates[0] === 'heads' && checks.items.length === result.model.layers * result.model.heads;
}

/** The claims' model as a folder whose files can be compared: a folder as written, a built-in model's by its name (ioi-demo). */
function localModelFolder(model: string): string {
  try {
    const source = parseModelSource(model);
    return source.kind === 'folder' ? source.path : model;
  } catch {
    return model;
  }
}

/** The stored Result when it is current for these claims, else why not (one phrase per reason). */
export async function storedResultIfCurrent(claims: ClaimsFile): Promise<{ result: Result } | { why: string[] }> {
  const file = resultFileFor(claims.file);
  if (!existsSync(file)) return { why: ['no stored Result yet'] };
  let result: Result;
  try {
    result = readResultFile(file);
  } catch (error) {
    return { why: [`the stored Result cannot be read (${(error as Error).message})`] };
  }
  const recorded = inputsOf(result);
  if (!recorded) return { why: ['the stored Result records no provenance'] };
  const names = modelFileNamesProblem(recorded.modelFiles);
  if (names !== undefined) return { why: [`the stored Result is not trusted: ${names}`] };
  const now = await currentInputs(localModelFolder(claims.model), recorded, {
    dataset: claims.dataset,
    requested: claims.method,
    seed: claims.seed,
    circuit: claims.circuit,
  });
  if (!now) return { why: [`the model ${claims.model} is not a folder, so its files cannot be compared`] };
  const why = inputChanges(recorded, now);
  if (needsHeadChecks(claims) && !hasEveryHeadChecked(result)) why.push('the stored Result has no exact check of every head (an agreement claim needs it)');
  why.push(...circuitShortfalls(claims, result));
  return why.length > 0 ? { why } : { result };
}

export interface LastPass {
  passedAt: string;
  /** What the claim said then (describeClaim): a claim edited since is reported as such. */
  expected: string;
  inputs: InputsRecord;
}

export interface ClaimReport {
  entry: ClaimEntry;
  outcome: ClaimOutcome;
  /** For a claim that does not pass now: when it last passed, and what differs from the inputs it passed on. */
  lastPass?: { passedAt: string; changes: string[]; claimWas?: string };
}

function readPasses(claimsFile: string): Record<string, LastPass> {
  const file = passesFileFor(claimsFile);
  try {
    const stored = JSON.parse(readInputText(file, 'json')) as { schema?: string; claims?: Record<string, LastPass> };
    // Without a prototype: a claim named "__proto__" or "constructor" finds its own record or none.
    const claims = Object.create(null) as Record<string, LastPass>;
    return stored.schema === PASSES_SCHEMA && stored.claims && typeof stored.claims === 'object' ? Object.assign(claims, stored.claims) : claims;
  } catch {
    return {};
  }
}

/**
 * Checks every claim against the Result, and says for each one that does not pass when it last passed and on what
 * other inputs. Returns the files to write (the Result, when `writeResult`, and the passes record) so the caller
 * writes them atomically with its own outputs.
 */
export function checkClaims(
  claims: ClaimsFile,
  result: Result,
  options: { writeResult: boolean; now?: Date },
): { reports: ClaimReport[]; files: FileToWrite[] } {
  const passes = readPasses(claims.file);
  const inputs = inputsOf(result);
  const passedAt = (options.now ?? new Date()).toISOString();
  const reports = claims.claims.map((entry): ClaimReport => {
    const outcome = evaluateClaim(entry.claim, result);
    const previous = passes[entry.id];
    if (outcome.status === 'passed') {
      if (inputs) passes[entry.id] = { passedAt, expected: outcome.expected, inputs };
      return { entry, outcome };
    }
    if (!previous || !inputs) return { entry, outcome };
    const claimWas = typeof previous.expected === 'string' && previous.expected !== outcome.expected ? previous.expected : undefined;
    return { entry, outcome, lastPass: { passedAt: previous.passedAt, changes: inputChanges(previous.inputs, inputs), claimWas } };
  });
  const files: FileToWrite[] = [];
  if (options.writeResult) files.push(...resultFilesToWrite(resultFileFor(claims.file), result));
  // Only the claims still in the file are kept.
  const kept = Object.fromEntries(claims.claims.filter((c) => passes[c.id]).map((c) => [c.id, passes[c.id]]));
  files.push({
    file: passesFileFor(claims.file),
    contents: JSON.stringify({ schema: PASSES_SCHEMA, claims: kept }, null, 2) + '\n',
    what: 'the claims pass record',
  });
  return { reports, files };
}

/** "last passed 2026-11-29T09:00:00Z on other inputs: dataset changed" / "… on the same inputs". */
export function describeLastPass(lastPass: NonNullable<ClaimReport['lastPass']>): string {
  const inputs = lastPass.changes.length > 0 ? `on other inputs: ${lastPass.changes.join('; ')}` : 'on the same inputs';
  return `last passed ${lastPass.passedAt} ${inputs}${lastPass.claimWas ? ` (when the claim said: ${lastPass.claimWas})` : ''}`;
}

export { writeFilesAtomically };
