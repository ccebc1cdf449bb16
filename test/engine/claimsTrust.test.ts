// A stored claims Result (NAME.claims.atp-result.json) is a file anyone can commit (issue #26): its model-file names
// decide which files are read and hashed, so only plain names of the model folder are accepted (never "../x", "."
// or "__proto__"); and its values are not proof, so under CI the model always runs (--reuse says otherwise).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { requireBuiltCli, runCli } from '../support/cli';

const IOI = resolve(__dirname, '../../examples/ioi.jsonl');
let root: string;
let model: string;
let folder: string;
let claims: string;
let stored: string;
let genuine: string;
const atp = (args: string[], env: Record<string, string> = { CI: '' }) => runCli(join(root, 'cache'), args, folder, env);

before(() => {
  requireBuiltCli();
  root = mkdtempSync(join(tmpdir(), 'atp-claims-trust-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 1, nHeads: 2, dModel: 8, seed: 1 });
  folder = join(root, 'claims');
  mkdirSync(folder);
  copyFileSync(IOI, join(folder, 'ioi.jsonl'));
  claims = join(folder, 'heads.claims.yaml');
  writeFileSync(claims, `model: ${model}\ndataset: ioi.jsonl\nclaims:\n  - baselines: {clean: {greater_than: -1000000}}\n`);
  stored = join(folder, 'heads.claims.atp-result.json');
  const first = atp(['test', claims, '--device', 'cpu']);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  genuine = readFileSync(stored, 'utf8');
  assert.match(atp(['test', claims, '--device', 'cpu']).stdout, /reused .*heads\.claims\.atp-result\.json \(inputs unchanged\)/);
});
after(() => rmSync(root, { recursive: true, force: true }));

/** The genuine stored Result with `name` added to provenance.modelFiles (through JSON text, so "__proto__" stays an own key). */
function forgeModelFiles(name: string): void {
  const entries = `${JSON.stringify(name)}: "sha256:${'0'.repeat(64)}"`;
  const result = JSON.parse(genuine) as { provenance: { modelFiles: Record<string, string> } };
  result.provenance.modelFiles = JSON.parse(`{${entries}, ${JSON.stringify(result.provenance.modelFiles).slice(1)}`) as Record<string, string>;
  writeFileSync(stored, JSON.stringify(result));
  assert.ok(readFileSync(stored, 'utf8').includes(`${JSON.stringify(name)}:`), 'the forged name is in the stored Result');
}

test('a stored Result naming files outside the model folder (or "." or "__proto__") is not trusted: nothing of them is read, the model runs', () => {
  const secret = join(root, 'secret.txt');
  writeFileSync(secret, 'the contents of a file the user never named\n');
  const secretHash = createHash('sha256').update(readFileSync(secret)).digest('hex');
  for (const name of ['../secret.txt', `${root}/secret.txt`, '.', '..', '__proto__', 'sub/../../secret.txt']) {
    forgeModelFiles(name);
    const run = atp(['test', claims, '--device', 'cpu']);
    const what = `modelFiles name ${name}`;
    assert.equal(run.code, 0, `${what}: ${run.stdout}${run.stderr}`);
    assert.doesNotMatch(run.stderr, /internal error/, what);
    assert.ok(!run.stdout.includes(secretHash.slice(0, 12)), `${what}: no digit of the file's hash is printed`);
    assert.match(
      run.stdout,
      /ran the model \(the stored Result is not trusted: its provenance\.modelFiles names .*, not a plain file name of a model folder\)/,
      what,
    );
    // The run wrote a genuine Result again.
    assert.ok(!Object.hasOwn(JSON.parse(readFileSync(stored, 'utf8')).provenance.modelFiles, name), what);
  }
});

test('under CI (CI=true) a current stored Result is not reused, so forged values cannot decide what CI reports; --reuse reuses it', () => {
  writeFileSync(stored, genuine);
  // Genuine provenance, forged values: the clean logit difference far below the claim's bound.
  const forged = JSON.parse(genuine);
  const inputsUnchanged = atp(['test', claims, '--device', 'cpu']);
  assert.match(inputsUnchanged.stdout, /reused/);
  forged.metric.cleanLogitDiff = -1e7;
  writeFileSync(stored, JSON.stringify(forged));
  // Outside CI the stored Result is a cache, trusted as the user's own file (docs/CLAIMS.md): the forgery decides.
  const local = atp(['test', claims, '--device', 'cpu']);
  assert.match(local.stdout, /reused/);
  assert.equal(local.code, 1, local.stdout);
  const ci = atp(['test', claims, '--device', 'cpu'], { CI: 'true' });
  assert.equal(ci.code, 0, ci.stdout + ci.stderr);
  assert.match(ci.stdout, /ran the model \(CI is set: a stored Result is not reused there \(--reuse reuses it\)\)/);
  assert.match(ci.stdout, /1 passed, 0 failed/);
  // The genuine run replaced the forgery; --reuse under CI takes it as it is.
  const reuse = atp(['test', claims, '--device', 'cpu', '--reuse'], { CI: 'true' });
  assert.equal(reuse.code, 0, reuse.stdout);
  assert.match(reuse.stdout, /reused/);
  for (const value of ['false', '0', '']) assert.match(atp(['test', claims, '--device', 'cpu'], { CI: value }).stdout, /reused/, `CI=${value}`);
  const both = atp(['test', claims, '--rerun', '--reuse']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /^atp: give at most one of --rerun and --reuse$/m);
});
