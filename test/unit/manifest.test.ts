// package.json as VS Code and npm read it: activation only where the extension is useful (never on startup), the
// workspace-trust and virtual-workspace capabilities with the run commands gated on trust, vsce's prepublish build,
// and onnxruntime-node's CUDA download skipped by the .npmrc key (or the variable) its install script reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(ROOT, path)).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : [];
  });
}

test('activation: its languages, claims and Result files, its view and restored panels; never on startup', () => {
  const events: string[] = manifest.activationEvents;
  assert.ok(!events.includes('onStartupFinished') && !events.includes('*'), JSON.stringify(events));
  for (const { id } of manifest.contributes.languages) assert.ok(events.includes(`onLanguage:${id}`), id);
  for (const views of Object.values(manifest.contributes.views) as Array<Array<{ id: string }>>)
    for (const { id } of views) assert.ok(events.includes(`onView:${id}`), id);
  for (const pattern of ['**/*.atp-result.json', '**/*.claims.yaml', '**/*.claims.yml', '**/*.claims.json'])
    assert.ok(events.includes(`workspaceContains:${pattern}`), pattern);
  // Every panel the host restores (registerWebviewPanelSerializer(VIEW_TYPE)) activates the extension by its view type.
  const hostFiles = sources('src/panel').map(read).join('\n');
  const serialized = [...hostFiles.matchAll(/registerWebviewPanelSerializer\((\w+)/g)].map(([, constant]) => {
    const value = new RegExp(`export const ${constant} = '([^']+)'`).exec(hostFiles);
    assert.ok(value, `${constant} is a string constant in src/panel/`);
    return value[1];
  });
  assert.ok(serialized.length >= 2);
  for (const viewType of serialized) assert.ok(events.includes(`onWebviewPanel:${viewType}`), viewType);
  // Commands activate it through the events VS Code generates from contributes.commands (engines.vscode ≥ 1.74).
  assert.match(manifest.engines.vscode, /^\^1\.(7[4-9]|[89]\d)\./);
});

test('untrusted workspaces: limited, described, the settings that steer a run restricted; no virtual workspaces', () => {
  const { untrustedWorkspaces, virtualWorkspaces } = manifest.capabilities;
  assert.equal(untrustedWorkspaces.supported, 'limited');
  assert.match(untrustedWorkspaces.description, /diagnostics/);
  assert.match(untrustedWorkspaces.description, /trusted workspace/);
  const settings = Object.keys(manifest.contributes.configuration.properties);
  for (const setting of untrustedWorkspaces.restrictedConfigurations) assert.ok(settings.includes(setting), setting);
  assert.deepEqual(untrustedWorkspaces.restrictedConfigurations.sort(), [
    'attributionPatching.model',
    'attributionPatching.resultLocation',
    'attributionPatching.wandb.project',
  ]);
  assert.equal(virtualWorkspaces.supported, false);
});

test('every run entry point asks for workspace trust before it starts', () => {
  for (const file of ['src/commands/patchCurrentFile.ts', 'src/commands/findCircuit.ts', 'src/commands/runSweep.ts', 'src/testing/claimsTesting.ts']) {
    assert.match(read(file), /if \(!requireWorkspaceTrust\([^)]+\)\) return;/, file);
  }
  assert.match(read('src/commands/workspaceTrust.ts'), /vscode\.workspace\.isTrusted/);
});

test('vsce builds before it packs', () => {
  assert.equal(manifest.scripts['vscode:prepublish'], 'node scripts/build.mjs');
});

// The README's plain `npm ci` must pass offline on a fresh machine: only .npmrc reaches the install script from a
// file (as npm_config_onnxruntime_node_install). npm warns that it does not know the key; that is the price.
test("onnxruntime-node's install script skips its CUDA download for the repository's .npmrc key and for ONNXRUNTIME_NODE_INSTALL=skip", () => {
  assert.match(readFileSync(join(ROOT, '.npmrc'), 'utf8'), /^onnxruntime-node-install=skip$/m);
  const { parseInstallFlag } = require('onnxruntime-node/script/install-utils.js') as { parseInstallFlag: () => unknown };
  const saved = { env: process.env.ONNXRUNTIME_NODE_INSTALL, npm: process.env.npm_config_onnxruntime_node_install };
  try {
    delete process.env.npm_config_onnxruntime_node_install;
    process.env.ONNXRUNTIME_NODE_INSTALL = 'skip';
    assert.equal(parseInstallFlag(), false, 'false: install.js exits before downloading');
    delete process.env.ONNXRUNTIME_NODE_INSTALL;
    process.env.npm_config_onnxruntime_node_install = 'skip';
    assert.equal(parseInstallFlag(), false, 'the .npmrc key, as npm passes it to install scripts');
    delete process.env.npm_config_onnxruntime_node_install;
    assert.notEqual(parseInstallFlag(), false, 'without it the script would install (on Linux x64: CUDA from NuGet)');
  } finally {
    for (const [name, value] of [
      ['ONNXRUNTIME_NODE_INSTALL', saved.env],
      ['npm_config_onnxruntime_node_install', saved.npm],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  assert.match(read('README.md'), /^npm ci && npm run demo$/m);
  assert.match(read('.ci/run'), /^export ONNXRUNTIME_NODE_INSTALL=skip$/m);
});
