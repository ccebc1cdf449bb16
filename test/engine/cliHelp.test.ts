// Every `atp` command answers --help (and -h, and `atp help COMMAND`) with its own usage, exit status 0, whatever
// else is on the line; `atp --version` prints the engine's, ONNX Runtime's and Node's versions.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { COMMAND_HELP, runCommand } from '../../src/cli/main';
import { requireBuiltCli, runCli } from '../support/cli';

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCommand(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } }, true);
  return { code, stdout, stderr };
}

before(() => requireBuiltCli());

test('the help table covers exactly the commands the overall usage lists', async () => {
  const overall = (await run(['--help'])).stdout;
  const listed = new Set([...overall.matchAll(/^ {2}atp ([a-z][a-z-]*)/gm)].map((m) => m[1]).filter((name) => name !== 'COMMAND'));
  assert.deepEqual([...listed].sort(), Object.keys(COMMAND_HELP).sort());
});

test('every command answers --help, -h and `atp help COMMAND` with its own usage', async () => {
  for (const command of Object.keys(COMMAND_HELP)) {
    for (const argv of [
      [command, '--help'],
      [command, '-h'],
      [command, '--model', 'x', '--help'],
      ['help', command],
    ]) {
      const { code, stdout, stderr } = await run(argv);
      assert.equal(code, 0, `${argv.join(' ')}: ${stderr}`);
      assert.match(stdout, /^Usage:\n/, argv.join(' '));
      assert.ok(stdout.includes(`atp ${command}`), `${argv.join(' ')} shows atp ${command}`);
      assert.equal(stderr, '');
    }
  }
  // After `--`, --help is an argument, not a request for help.
  assert.equal((await run(['compare', '--', '--help'])).code, 2);
  assert.equal((await run(['no-such-command', '--help'])).code, 2);
});

test('the built atp answers `patch --help` and --version', () => {
  const cache = join(tmpdir(), 'atp-help-cache');
  const help = runCli(cache, ['patch', '--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage:\n {2}atp patch --model MODEL/);
  assert.match(help.stdout, /MODEL is a folder/);

  const version = runCli(cache, ['--version']);
  assert.equal(version.code, 0, version.stderr);
  const ours = JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8')).version;
  const ort = JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')).version;
  const lines = version.stdout.trim().split('\n');
  assert.equal(lines[0], `atp (attribution-patching engine) ${ours}`);
  assert.ok(lines[1].startsWith(`ONNX Runtime ${ort} (onnxruntime-node): ONNX Runtime from `), lines[1]);
  assert.equal(lines[2], `Node ${process.version}`);
});
