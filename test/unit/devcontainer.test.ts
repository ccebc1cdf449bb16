// The dev container (README, "A GPU on another machine") installs what CI installs: every Debian package that
// .ci/run and scripts/setup-e2e.sh apt-get install, and the npm install CI does (offline-safe: no CUDA download).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

/** devcontainer.json is JSON with comments (full-line // comments here). */
function readDevcontainer(): { onCreateCommand: string; postCreateCommand: string; hostRequirements?: { gpu?: unknown } } {
  const text = readFileSync(join(ROOT, '.devcontainer', 'devcontainer.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '');
  return JSON.parse(text);
}

/** The package names a script apt-get installs, directly or through a `for pkg in …` list it checks first. */
function aptPackages(script: string): string[] {
  const text = readFileSync(join(ROOT, script), 'utf8');
  const words = (line: string) => line.split(/\s+/).filter((word) => /^[a-z0-9][a-z0-9.+-]+$/.test(word));
  return [
    ...[...text.matchAll(/apt-get install ([^\n]+)/g)].flatMap((m) => words(m[1])),
    ...[...text.matchAll(/for pkg in ([^;\n]+);/g)].flatMap((m) => words(m[1])),
  ];
}

test('the dev container installs every Debian package CI installs', () => {
  const { onCreateCommand } = readDevcontainer();
  const installed = new Set(onCreateCommand.split(/\s+/));
  const needed = [...aptPackages('.ci/run'), ...aptPackages('scripts/setup-e2e.sh')];
  assert.ok(needed.includes('libvulkan1') && needed.includes('python3-torch'), `read the CI packages: ${needed.join(' ')}`);
  assert.deepEqual(
    needed.filter((name) => !installed.has(name)),
    [],
  );
});

test('the dev container installs npm packages as CI does, without the CUDA download, and asks for a GPU only optionally', () => {
  const container = readDevcontainer();
  assert.match(container.postCreateCommand, /ONNXRUNTIME_NODE_INSTALL=skip npm ci/);
  assert.equal(container.hostRequirements?.gpu, 'optional');
});
