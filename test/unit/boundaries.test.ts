// The import-boundary rules of `npm run lint` (.dependency-cruiser.cjs and .dependency-cruiser-runtime.cjs) bite:
// run on small fixture trees written to a temp folder, a tree that keeps every rule passes both passes, and the
// same tree plus one file breaking each rule reports exactly those violations, no more, no fewer.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const DEPCRUISE = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const STATIC = join(ROOT, '.dependency-cruiser.cjs');
const RUNTIME = join(ROOT, '.dependency-cruiser-runtime.cjs');
const temp = mkdtempSync(join(tmpdir(), 'atp-boundaries-'));
after(() => rmSync(temp, { recursive: true, force: true }));

type Tree = Record<string, string>;

/** Every import here is allowed; the packages do not resolve in the temp folder, which the rules allow for. */
const GOOD: Tree = {
  'src/shared/methods.ts': `import type { Other } from './other';\nimport { other } from './other';\nexport const f = (s: Other) => other(s);\n`,
  'src/shared/other.ts': `export type Other = 'cpu';\nexport const other = (x: unknown) => x;\n`,
  'src/shared/result.ts': `import { f } from './methods';\nexport type Result = { a: number };\nexport const g = f;\n`,
  'src/shared/panelProtocol.ts': `import type { Result } from './result';\nexport type Message = { result: Result };\n`,
  'src/shared/colorScale.ts': `export const scale = 1;\n`,
  'src/shared/resultViews.ts': `import { f } from './methods';\nimport { scale } from './colorScale';\nexport const v = [f, scale];\n`,
  'src/engine/process/runtime.ts': `import * as ort from 'onnxruntime-node';\nexport type Session = 'cpu';\nexport const session = ort;\n`,
  'src/engine/model/tokenizer.ts': `import { Tokenizer } from '@huggingface/tokenizers';\nexport const t = Tokenizer;\n`,
  'src/engine/typesOnly.ts': `import type { Session } from './process/runtime';\nexport type Request = { device: Session };\n`,
  'src/engine/process/worker.ts': `import { session } from './runtime';\nimport { t } from '../model/tokenizer';\nimport { g } from '../../shared/result';\nexport const w = [session, t, g];\n`,
  'src/lib/files/contentHash.ts': `import { createHash } from 'node:crypto';\nexport const hash = createHash;\n`,
  'src/engine/sweep/plan.ts': `export const plan = 1;\n`,
  'src/cli/main.ts': `import { session } from '../engine/process/runtime';\nimport { t } from '../engine/model/tokenizer';\nexport const cli = [session, t];\n`,
  'src/extension.ts': `import * as vscode from 'vscode';\nimport { s } from './services/settings';\nexport const e = [vscode, s];\n`,
  'src/services/settings.ts':
    `import type { Session } from '../engine/process/runtime';\nimport type { Request } from '../engine/typesOnly';\n` +
    `import { g } from '../shared/result';\nimport { hash } from '../lib/files/contentHash';\nexport const s = (d: Session, r: Request) => [d, r, g, hash];\n`,
  'src/panel/heatmapPanel.ts': `import * as vscode from 'vscode';\nimport { v } from '../shared/resultViews';\nexport const p = [vscode, v];\n`,
  'webview/main.ts':
    `import * as d3 from 'd3';\nimport '@vscode-elements/elements/dist/vscode-button/index.js';\n` +
    `import type { Result } from '../src/shared/result';\nimport type { Message } from '../src/shared/panelProtocol';\n` +
    `import type { Session } from '../src/engine/process/runtime';\n` +
    `import { v } from '../src/shared/resultViews';\nimport { scale } from '../src/shared/colorScale';\n` +
    `import { f } from '../src/shared/methods';\nimport { h } from './heatmap';\n` +
    `export const m = (r: Result, msg: Message, s: Session) => [d3, v, scale, f, h, r, msg, s];\n`,
  'webview/heatmap.ts': `export const h = 1;\n`,
};

/** One file per rule (two for the webview's allow-list), each breaking it and nothing else. */
const BAD: Tree = {
  'src/engine/usesVscode.ts': `import type { Uri } from 'vscode';\nexport type U = Uri;\n`,
  'src/editor/loadsOrt.ts': `import * as ort from 'onnxruntime-node';\nexport const o = ort;\n`,
  'src/views/valueImportOfType.ts': `import { Session } from '../engine/process/runtime';\nexport type D = Session;\n`,
  'src/engine/reachesRuntime.ts': `import { session } from './process/runtime';\nexport const r = session;\n`,
  'src/services/transitive.ts': `import { r } from '../engine/reachesRuntime';\nexport const x = r;\n`,
  'src/commands/usesCli.ts': `import { cli } from '../cli/main';\nexport const c = cli;\n`,
  'webview/nodeFs.ts': `import { readFileSync } from 'node:fs';\nexport const rf = readFileSync;\n`,
  'webview/engineValue.ts': `import { hash } from '../src/lib/files/contentHash';\nexport const ev = hash;\n`,
  // The rules follow folders: any module of src/engine/ is the engine, for the host and for src/lib/.
  'src/editor/usesEngineModule.ts': `import { plan } from '../engine/sweep/plan';\nexport const u = plan;\n`,
  'src/lib/loadsEngine.ts': `import { session } from '../engine/process/runtime';\nexport const le = session;\n`,
  'src/shared/importsNode.ts': `import { createHash } from 'node:crypto';\nexport const ie = createHash;\n`,
  // src/shared/ imports nothing from the rest of src/, types included.
  'src/shared/typeFromEngine.ts': `import type { Session } from '../engine/process/runtime';\nexport type TE = Session;\n`,
  // Two modules that import each other, through a type-only import too.
  'src/engine/circleA.ts': `import { b } from './circleB';\nexport const a = () => b;\n`,
  'src/engine/circleB.ts': `import type { a } from './circleA';\nexport const b = 1;\nexport type A = typeof a;\n`,
  'src/engine/importsCli.ts': `import type { cli } from '../cli/main';\nexport type C = typeof cli;\n`,
  'src/cli/usesServices.ts': `import { s } from '../services/settings';\nexport const us = s;\n`,
};

interface Violation {
  rule: string;
  from: string;
  to: string;
}

function write(name: string, tree: Tree): string {
  const dir = join(temp, name);
  for (const [path, text] of Object.entries(tree)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

function cruise(dir: string, config: string): Violation[] {
  const result = spawnSync(process.execPath, [DEPCRUISE, 'src', 'webview', '--config', config, '--output-type', 'json'], {
    cwd: dir,
    encoding: 'utf8',
  });
  assert.ok(result.stdout, `depcruise printed nothing: ${result.stderr}`);
  const output = JSON.parse(result.stdout) as {
    summary: { violations: { from: string; to: string; rule: { name: string } }[]; error: number; totalCruised: number };
  };
  assert.equal(result.status, 0, result.stderr);
  assert.ok(output.summary.totalCruised >= Object.keys(GOOD).length, 'every fixture file was read');
  return output.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
}

/** The exit status of the check as `npm run lint` runs it (its text reporter exits with the number of errors). */
function lintStatus(dir: string, config: string): number | null {
  return spawnSync(process.execPath, [DEPCRUISE, 'src', 'webview', '--config', config], { cwd: dir, encoding: 'utf8' }).status;
}

const sorted = (violations: Violation[]) => violations.map((v) => `${v.rule}: ${v.from} → ${v.to}`).sort();

test('a tree that keeps every boundary passes both passes', () => {
  const dir = write('good', GOOD);
  assert.deepEqual(cruise(dir, STATIC), []);
  assert.deepEqual(cruise(dir, RUNTIME), []);
  assert.equal(lintStatus(dir, STATIC), 0);
  assert.equal(lintStatus(dir, RUNTIME), 0);
});

test('each broken boundary is reported, and nothing else', () => {
  const dir = write('bad', { ...GOOD, ...BAD });
  assert.deepEqual(
    sorted(cruise(dir, STATIC)),
    sorted([
      { rule: 'engine-no-vscode', from: 'src/engine/usesVscode.ts', to: 'vscode' },
      { rule: 'host-no-engine-native', from: 'src/editor/loadsOrt.ts', to: 'onnxruntime-node' },
      // The host may name the engine's types, but with `import type`, so the build can never keep the import.
      { rule: 'host-no-engine-native', from: 'src/views/valueImportOfType.ts', to: 'src/engine/process/runtime.ts' },
      { rule: 'host-no-cli', from: 'src/commands/usesCli.ts', to: 'src/cli/main.ts' },
      { rule: 'webview-allowed-imports', from: 'webview/nodeFs.ts', to: 'fs' },
      { rule: 'webview-allowed-imports', from: 'webview/engineValue.ts', to: 'src/lib/files/contentHash.ts' },
      { rule: 'host-no-engine-native', from: 'src/editor/usesEngineModule.ts', to: 'src/engine/sweep/plan.ts' },
      // Any engine module is the engine: the host's import of one that reaches the runtime is reported where it is made too.
      { rule: 'host-no-engine-native', from: 'src/services/transitive.ts', to: 'src/engine/reachesRuntime.ts' },
      { rule: 'lib-no-engine', from: 'src/lib/loadsEngine.ts', to: 'src/engine/process/runtime.ts' },
      { rule: 'shared-only-shared', from: 'src/shared/importsNode.ts', to: 'crypto' },
      { rule: 'shared-no-src-outside', from: 'src/shared/typeFromEngine.ts', to: 'src/engine/process/runtime.ts' },
      // A circle is reported once, from its first module; its way back is the type-only import.
      { rule: 'no-circular', from: 'src/engine/circleA.ts', to: 'src/engine/circleB.ts' },
      { rule: 'engine-no-front-end', from: 'src/engine/importsCli.ts', to: 'src/cli/main.ts' },
      { rule: 'cli-no-extension', from: 'src/cli/usesServices.ts', to: 'src/services/settings.ts' },
    ]),
  );
  // At run time: the host reaching the engine's native side through another module, whichever module imports it.
  // The type-only chain (settings.ts → typesOnly.ts ⇢ runtime.ts) is not reported.
  const reached = sorted(cruise(dir, RUNTIME));
  for (const expected of [
    'host-no-engine-native-transitively: src/services/transitive.ts → src/engine/process/runtime.ts',
    'host-no-engine-native-transitively: src/services/transitive.ts → onnxruntime-node',
    'host-no-engine-native-transitively: src/editor/loadsOrt.ts → onnxruntime-node',
    'host-no-engine-native-transitively: src/editor/usesEngineModule.ts → src/engine/sweep/plan.ts',
  ]) {
    assert.ok(reached.includes(expected), `${expected} missing from:\n${reached.join('\n')}`);
  }
  assert.deepEqual(
    reached.filter((line) => !/src\/(services\/transitive|editor\/(loadsOrt|usesEngineModule)|commands\/usesCli)\.ts →/.test(line)),
    [],
    'only the files that reach the native side at run time',
  );
  assert.equal(lintStatus(dir, STATIC), 14);
  assert.equal(lintStatus(dir, RUNTIME), reached.length);
});
