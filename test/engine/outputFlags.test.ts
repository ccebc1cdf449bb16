// Every output flag of every command against every input path of that command (issue #26): each pairing is
// refused with exit 2 and one sentence, and the input is left byte for byte as it was. The commands and their
// output flags come from OUTPUT_FLAGS (src/lib/files/outputPaths.ts), the one table checkCommandOutputs reads;
// a string flag of src/cli that is neither there nor in NOT_OUTPUTS below fails the first test, so a new output
// flag cannot go unchecked, and a command in OUTPUT_FLAGS without a row in INVOCATIONS fails the second.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { OUTPUT_FLAGS, type CommandWithOutputs } from '../../src/lib/files/outputPaths';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { requireBuiltCli, runCli } from '../support/cli';

const IOI = resolve(__dirname, '../../examples/ioi.jsonl');

/** String flags that name no file the command writes: inputs or values. */
const NOT_OUTPUTS = new Set([
  'batch-size',
  'check',
  'check-seed',
  'cs',
  'curve-points',
  'data', // input
  'device',
  'edges',
  'feature',
  'features',
  'format',
  'from', // input (install-cuda)
  'greedy',
  'idle',
  'method',
  'min-share',
  'model', // input
  'models', // inputs
  'n',
  'name',
  'precision',
  'seed',
  'sha512',
  'shard',
  'steps',
  'threshold',
  'top',
  'wandb',
]);

let root: string;
let model: string;
let dataset: string;
let result: string;
let result2: string;
let shards: string[];
let claims: string;
let claimsDataset: string;
let nupkg: string;
const atp = (args: string[]) => runCli(join(root, 'cache'), args, root);

before(() => {
  requireBuiltCli();
  root = mkdtempSync(join(tmpdir(), 'atp-output-flags-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 1, nHeads: 2, dModel: 8, seed: 1 });
  // A file of the model folder that generate's --out could name (a .jsonl).
  writeFileSync(join(model, 'notes.jsonl'), '{"a": 1}\n');
  dataset = join(root, 'ioi.jsonl');
  copyFileSync(IOI, dataset);
  result = join(root, 'r.json');
  result2 = join(root, 'r2.json');
  for (const out of [result, result2]) assert.equal(atp(['patch', '--model', model, '--data', dataset, '--out', out, '--device', 'cpu']).code, 0);
  shards = [1, 2].map((i) => join(root, `shard${i}.json`));
  for (const [i, shard] of shards.entries())
    assert.equal(atp(['patch', '--shard', `${i + 1}/2`, '--model', model, '--data', dataset, '--out', shard, '--device', 'cpu']).code, 0);
  const claimsFolder = join(root, 'claims');
  mkdirSync(claimsFolder);
  claimsDataset = join(claimsFolder, 'ioi.jsonl');
  copyFileSync(IOI, claimsDataset);
  claims = join(claimsFolder, 'heads.claims.yaml');
  writeFileSync(claims, `model: ${model}\ndataset: ioi.jsonl\nclaims:\n  - top_heads: {k: 2, include: [L0H0]}\n`);
  // Makes the stored Result and pass record, outputs --junit may not replace either.
  const first = atp(['test', claims, '--device', 'cpu']);
  assert.ok(first.code === 0 || first.code === 1, first.stderr);
  assert.ok(existsSync(join(claimsFolder, 'heads.claims.atp-result.json')));
  nupkg = join(root, 'cuda.nupkg');
  writeFileSync(nupkg, 'not really a package');
});
after(() => rmSync(root, { recursive: true, force: true }));

/** The model folder's files, as every command that reads a model takes them. */
const modelFiles = () => readdirSync(model).map((name) => join(model, name));

/**
 * Per command: its command line with each output flag set from `outputs` (fresh paths where not), and every
 * input path it reads.
 */
const INVOCATIONS: Record<CommandWithOutputs, { args: (o: Record<string, string>) => string[]; inputs: () => string[] }> = {
  patch: {
    args: (o) => ['patch', '--model', model, '--data', dataset, '--out', o.out, '--html', o.html, '--device', 'cpu'],
    inputs: () => [dataset, ...modelFiles()],
  },
  circuit: {
    args: (o) => ['circuit', '--model', model, '--data', dataset, '--out', o.out, '--method', 'eap', '--edges', '2', '--device', 'cpu'],
    inputs: () => [dataset, ...modelFiles()],
  },
  merge: { args: (o) => ['merge', ...shards, '--out', o.out, '--html', o.html], inputs: () => shards },
  report: { args: (o) => ['report', '--out', o.out, result], inputs: () => [result] },
  compare: { args: (o) => ['compare', result, result2, '--json', o.json, '--html', o.html, '--svg', o.svg], inputs: () => [result, result2] },
  export: { args: (o) => ['export', result, '--format', 'eap-ig', '--out', o.out], inputs: () => [result] },
  generate: { args: (o) => ['generate', 'ioi', '-n', '2', '--model', model, '--out', o.out], inputs: () => modelFiles() },
  test: {
    args: (o) => ['test', claims, '--junit', o.junit, '--device', 'cpu'],
    inputs: () => [claims, claimsDataset, ...modelFiles(), claims.replace(/\.yaml$/, '.atp-result.json'), claims.replace(/\.yaml$/, '.atp-passes.json')],
  },
  sweep: {
    args: (o) => ['sweep', '--models', model, '--features', 'IOI', '-n', '2', '--out', o.out, '--device', 'cpu'],
    inputs: () => [model, ...modelFiles()],
  },
  'install-cuda': { args: (o) => ['install-cuda', '--from', nupkg, '--dir', o.dir], inputs: () => [nupkg] },
};

/** A path's bytes (a folder: its listing), to show that a refused command left it as it was. */
function fingerprint(path: string): string {
  if (statSync(path).isDirectory()) return readdirSync(path).sort().join('\n');
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

test('every string flag of src/cli is an output flag in OUTPUT_FLAGS or named here as not one', () => {
  const cli = resolve(__dirname, '../../src/cli');
  const flags = new Set<string>();
  for (const name of readdirSync(cli).filter((file) => file.endsWith('.ts'))) {
    for (const match of readFileSync(join(cli, name), 'utf8').matchAll(/['"]?([a-z][a-z0-9-]*)['"]?: \{ type: 'string'/g)) flags.add(match[1]);
  }
  const outputs = new Set(Object.values(OUTPUT_FLAGS).flat() as string[]);
  const unclassified = [...flags].filter((flag) => !outputs.has(flag) && !NOT_OUTPUTS.has(flag));
  assert.deepEqual(unclassified, [], 'a new string flag: an output goes in OUTPUT_FLAGS (and is checked), anything else in NOT_OUTPUTS');
  assert.ok(flags.size > 20, `found ${flags.size} flags`);
});

test('every output flag of every command, pointed at each of its inputs, is refused (exit 2, one sentence) and the input is unchanged', () => {
  assert.deepEqual(Object.keys(INVOCATIONS).sort(), Object.keys(OUTPUT_FLAGS).sort(), 'a row in INVOCATIONS for each command with outputs');
  let pairs = 0;
  for (const [command, flags] of Object.entries(OUTPUT_FLAGS) as Array<[CommandWithOutputs, readonly string[]]>) {
    const invocation = INVOCATIONS[command];
    for (const flag of flags) {
      for (const input of invocation.inputs()) {
        const fresh = join(root, 'fresh', `${command}-${flag}`);
        const outputs = Object.fromEntries(
          flags.map((f) => [f, join(fresh, `${f}.out${f === 'junit' ? '.xml' : f === 'out' && command === 'generate' ? '.jsonl' : ''}`)]),
        );
        outputs[flag] = input;
        const before = fingerprint(input);
        const run = atp(invocation.args(outputs));
        const what = `atp ${command} --${flag} ${input}`;
        assert.equal(run.code, 2, `${what}: exit 2; stderr: ${run.stderr}`);
        assert.doesNotMatch(run.stderr, /internal error|    at /, what);
        const error = run.stderr.split('\n').filter((line) => line.startsWith('atp: '));
        assert.equal(error.length, 1, `${what}: one error line: ${run.stderr}`);
        assert.match(
          error[0],
          // generate takes only .jsonl and .atp outputs: a config.json is refused by its extension first.
          /is the same file as|is a file; give a folder|is the model folder|is inside the model folder|must end with \.jsonl or \.atp/,
          what,
        );
        assert.equal(fingerprint(input), before, `${what}: the input is unchanged`);
        pairs += 1;
      }
    }
  }
  assert.ok(pairs > 40, `${pairs} pairs`);
});

test('atp test: a claims file with a twin of another extension is refused, both named; neither stored Result is written', () => {
  const folder = join(root, 'twins');
  mkdirSync(folder);
  copyFileSync(IOI, join(folder, 'ioi.jsonl'));
  const text = `model: ${model}\ndataset: ioi.jsonl\nclaims:\n  - top_heads: {k: 2, include: [L0H0]}\n`;
  writeFileSync(join(folder, 'a.claims.yaml'), text);
  writeFileSync(join(folder, 'a.claims.json'), JSON.stringify({ model, dataset: 'ioi.jsonl', claims: [{ top_heads: { k: 2, include: ['L0H0'] } }] }));
  for (const args of [[folder], [join(folder, 'a.claims.json')]]) {
    const run = atp(['test', ...args, '--device', 'cpu']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      /a\.claims\.(yaml|json) and .*a\.claims\.(json|yaml) would keep their Results in the same .*a\.claims\.atp-result\.json; rename one of them/,
    );
    assert.ok(!existsSync(join(folder, 'a.claims.atp-result.json')));
  }
});
