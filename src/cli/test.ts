// atp test [FILES…]: checks the claims in claims files (issue #15) and says, claim by claim, what was expected and
// what the Result shows. Exit 0 when every claim passes, 1 when one fails or cannot be settled (or a file cannot be
// run), 2 for bad flags. --junit writes JUnit XML for CI.
import { parseArgs } from 'node:util';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { InputError } from '../shared/errors';
import { CIRCUIT_METHODS } from '../shared/circuit';
import { parseIntegerFlag } from '../engine/integers';
import { parseDevice } from '../engine/process/runtime';
import { isClaimsFile, readClaimsFile } from '../lib/claims/schema';
import { resultForClaims } from '../engine/claims/runClaims';
import { checkClaims, claimsFileTwin, describeLastPass, passesFileFor, resultFileFor, writeFilesAtomically } from '../lib/claims/state';
import { junitXml, type SuiteReport } from '../lib/claims/junit';
import { writeTextAtomically } from '../lib/files/atomicWrite';
import { checkCommandOutputs, modelFolderInputs, type NamedPath } from '../lib/files/outputPaths';
import type { ClaimsFile } from '../lib/claims/schema';

export const TEST_USAGE = `  atp test [FILE|FOLDER ...] [--junit REPORT.xml] [--rerun | --reuse] [--device D] [--batch-size N] [--offline]`;

export const TEST_HELP = `atp test checks the claims of claims files (*.claims.yaml, *.claims.yml, *.claims.json; folders are searched,
default: the current folder) against a run of their model on their dataset, and prints each claim's expected and
actual values. A faithfulness claim (or a circuit: block) makes the run a circuit run (atp circuit, EAP-IG with 5
steps by default) measured at exactly the claimed sizes. The Result is kept beside the claims file
(NAME.claims.atp-result.json) and reused while its inputs (model and tokenizer files, dataset, engine version,
method, seed, circuit options) are unchanged; --rerun runs anyway. A stored Result is a file anyone can commit, not
proof: when CI is set (CI=true, as CI services set it) the model always runs, unless --reuse. A claim that
fails says when it last passed and what changed since. Exit status: 0 when every claim passes, 1 otherwise.
Schema: docs/CLAIMS.md.`;

export interface TestIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

const SKIP = new Set(['node_modules', '.git', 'dist', 'out']);

/**
 * The claims files named, folders searched recursively (skipping node_modules, .git, dist, out), sorted. A folder
 * search follows no symbolic link (one could lead out of the tree or round in a loop): each is skipped with a note,
 * as is a broken one; a path named on the command line is taken as given.
 */
export function findClaimsFiles(paths: readonly string[], note: (text: string) => void = () => undefined): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    } catch (error) {
      throw new InputError(`${dir}: cannot list the folder (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    for (const entry of entries) {
      if (SKIP.has(entry.name)) continue;
      const path = join(dir, entry.name);
      if (entry.isSymbolicLink()) {
        if (!existsSync(path)) note(`note: skipped ${path}: a broken symbolic link`);
        else if (isClaimsFile(entry.name) || statSync(path).isDirectory())
          note(`note: skipped ${path}: a symbolic link (a folder search follows none; name it to test it)`);
      } else if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && isClaimsFile(entry.name)) found.push(path);
    }
  };
  for (const path of paths) {
    if (!existsSync(path)) throw new InputError(`${path}: no such file or folder`);
    const stat = statSync(path);
    if (stat.isDirectory()) walk(path);
    // A FIFO, a device or a socket named NAME.claims.yaml is a usage error like a missing file, not a failed suite.
    else if (!stat.isFile()) throw new InputError(`${path}: not a regular file (a claims file must be one)`);
    else if (isClaimsFile(path)) found.push(path);
    else throw new InputError(`${path}: not a claims file (expected NAME.claims.yaml, .claims.yml or .claims.json)`);
  }
  return [...new Set(found)];
}

/** A path as the user would type it from here: relative inside the current folder, else absolute. */
function shownPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : resolve(path);
}

/**
 * --junit and each claims file's stored Result and pass record, against every claims file, dataset and model
 * folder file (and each other): the report can replace none of them. A claims file with a twin of another
 * extension (a.claims.yaml and a.claims.json) is refused: both would keep their Result in one file.
 */
function checkTestOutputs(values: { junit?: string }, parsed: ReadonlyMap<string, ClaimsFile | InputError>): void {
  const inputs: NamedPath[] = [];
  const outputs: NamedPath[] = [];
  for (const [file, claims] of parsed) {
    const twin = claimsFileTwin(file);
    if (twin !== undefined) throw new InputError(`${file} and ${twin} would keep their Results in the same ${resultFileFor(file)}; rename one of them`);
    inputs.push({ path: file, role: 'the claims file' });
    outputs.push({ path: resultFileFor(file), role: `${file}'s stored Result` }, { path: passesFileFor(file), role: `${file}'s pass record` });
    if (claims instanceof InputError) continue;
    inputs.push({ path: claims.dataset, role: `${file}'s dataset` });
    if (existsSync(claims.model) && statSync(claims.model).isDirectory()) inputs.push(...modelFolderInputs(claims.model));
  }
  checkCommandOutputs('test', values, inputs, { outputs });
}

/** CI=true (GitHub Actions, GitLab CI and most others set it); CI=false, 0 or empty is not CI. */
export function underCi(env: NodeJS.ProcessEnv): boolean {
  const value = env.CI?.trim().toLowerCase();
  return value !== undefined && value !== '' && value !== 'false' && value !== '0';
}

const MARK = { passed: '✓', failed: '✗', unverified: '?' } as const;

export async function testCommand(args: string[], io: TestIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      junit: { type: 'string' },
      rerun: { type: 'boolean', default: false },
      reuse: { type: 'boolean', default: false },
      device: { type: 'string', default: 'auto' },
      'batch-size': { type: 'string' },
      offline: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.rerun && values.reuse) throw new InputError('give at most one of --rerun and --reuse');
  // A stored Result is anyone's file (a commit can forge its values): under CI it is not proof, so CI runs the model.
  const rerun = values.rerun || (underCi(process.env) && !values.reuse ? 'CI is set: a stored Result is not reused there (--reuse reuses it)' : false);
  const device = parseDevice(values.device!);
  const batchSize = parseIntegerFlag(values['batch-size'], 'batchSize', 16, 1);
  const files = findClaimsFiles(positionals.length > 0 ? positionals : ['.'], (text) => io.stderr(`${text}\n`));
  if (files.length === 0)
    throw new InputError(`no claims files (*.claims.yaml, *.claims.yml, *.claims.json) in ${positionals.join(', ') || 'the current folder'}`);
  // Every file is read before anything runs: --junit and the stored Results are checked against all their inputs.
  const parsed = new Map<string, ClaimsFile | InputError>();
  for (const file of files) {
    try {
      parsed.set(file, readClaimsFile(file));
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      parsed.set(file, error);
    }
  }
  checkTestOutputs(values, parsed);
  const suites: SuiteReport[] = [];
  const totals = { passed: 0, failed: 0, unverified: 0 };
  for (const file of files) {
    const shown = shownPath(file);
    const started = performance.now();
    try {
      const claims = parsed.get(file)!;
      if (claims instanceof InputError) throw claims;
      const run = await resultForClaims(claims, { device, batchSize, rerun, offline: values.offline, onProgress: (m) => io.stderr(`${m}\n`) });
      const { reports, files: toWrite } = checkClaims(claims, run.result, { writeResult: !run.reused });
      writeFilesAtomically(toWrite);
      const r = run.result;
      io.stdout(
        `${shown}: ${r.model.source}, ${r.dataset.examples} examples, ${r.run?.method ?? 'atp'} on ${r.device}; ` +
          `${r.circuit ? `circuit ${r.circuit.method}${CIRCUIT_METHODS[r.circuit.method].oneGradient ? '' : ` ${r.circuit.steps} steps`}; ` : ''}` +
          `${run.reused ? `reused ${shownPath(resultFileFor(file))} (inputs unchanged)` : `ran the model (${run.why.join('; ')})`}\n`,
      );
      for (const { entry, outcome, lastPass } of reports) {
        totals[outcome.status] += 1;
        io.stdout(
          `  ${MARK[outcome.status]} ${entry.name}${outcome.status === 'passed' ? '' : `  (${shown}:${entry.line}${outcome.status === 'unverified' ? ', unverified' : ''})`}\n`,
        );
        if (outcome.status !== 'passed') {
          io.stdout(`      expected: ${outcome.expected}\n      actual:   ${outcome.actual}\n`);
          if (lastPass) io.stdout(`      ${describeLastPass(lastPass)}\n`);
        }
      }
      suites.push({ file: shown, reports, seconds: (performance.now() - started) / 1000 });
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      totals.unverified += 1;
      io.stdout(`${shown}: cannot be run\n${error.message.replace(/^/gm, '    ')}\n`);
      suites.push({ file: shown, error: error.message, reports: [], seconds: (performance.now() - started) / 1000 });
    }
  }
  io.stdout(
    `${totals.passed} passed, ${totals.failed} failed, ${totals.unverified} not settled (${files.length} claims file${files.length === 1 ? '' : 's'})\n`,
  );
  if (values.junit) {
    writeTextAtomically(resolve(values.junit), junitXml(suites), 'the JUnit report');
    io.stderr(`wrote ${values.junit}\n`);
  }
  return totals.failed + totals.unverified > 0 ? 1 : 0;
}
