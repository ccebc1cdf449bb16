// `npm run package [-- --target linux-x64|linux-arm64|win32-x64|win32-arm64|darwin-arm64] [--out FILE]`:
// packs (vsce builds first, by vscode:prepublish) a platform-specific .vsix with @vscode/vsce holding only that platform's onnxruntime-node
// binaries (the others would add ~250 MB). The target defaults to this machine's platform.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const TARGETS = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
  'darwin-arm64': 'darwin/arm64',
};
const { values } = parseArgs({ options: { target: { type: 'string', default: `${process.platform}-${process.arch}` }, out: { type: 'string' } } });
const binaries = TARGETS[values.target];
if (!binaries) {
  console.error(`package: unknown --target "${values.target}"; choose one of ${Object.keys(TARGETS).join(', ')}`);
  process.exit(2);
}
const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
const out = resolve(values.out ?? join(root, `attribution-patching-${values.target}-${version}.vsix`));

const run = (command, args) => {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
};
// vsce runs the build itself: package.json's vscode:prepublish.

const temp = mkdtempSync(join(tmpdir(), 'atp-package-'));
const ignoreFile = join(temp, '.vscodeignore');
writeFileSync(ignoreFile, `${readFileSync(join(root, '.vscodeignore'), 'utf8')}\n!node_modules/onnxruntime-node/bin/napi-v6/${binaries}/**\n`);
mkdirSync(dirname(out), { recursive: true });
try {
  run(process.execPath, [
    join(root, 'node_modules', '@vscode', 'vsce', 'vsce'),
    'package',
    '--target',
    values.target,
    '--ignoreFile',
    ignoreFile,
    '--out',
    out,
  ]);
} finally {
  rmSync(temp, { recursive: true, force: true });
}
console.log(`packaged ${out}`);
