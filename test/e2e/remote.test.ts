// End to end, in code-server as a remote server: code-server is VS Code's server half (the same split as Remote-SSH,
// WSL, Dev Containers and Dev Tunnels), the browser its client. A run must happen entirely on the server: the engine's
// worker is a child of the server's extension host, the model and graph caches go under the SERVER's home, the Result
// is written into the server's workspace, and the client only talks to the server — it never reads a file itself
// (no file: URL, no request to any other origin). The server gets a home of its own here, so "server side" is a
// path we can check.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { readResultFile } from '../../src/lib/files/resultFile';
import { type CodeServer, closeWorkbench, colouredTokens, E2E_SKIP, e2eFolders, openFile, openWorkbench, REPO, runCommand } from './support/codeServer';

const OUT = join(REPO, 'test-output', 'e2e-remote');
const skip = E2E_SKIP;

let root: string;
let workspace: string;
let serverHome: string;
let extensionsDir: string;
let server: CodeServer | undefined;
let browser: Browser | undefined;
let page: Page;
const requests: string[] = [];
const dataset = () => join(workspace, 'tinysql-cs1.jsonl');
const resultFile = () => `${dataset()}.atp-result.json`;

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Process id → (parent id, command line), from ps. */
function processTable(): Map<number, { parent: number; command: string }> {
  const table = new Map<number, { parent: number; command: string }>();
  for (const line of execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' }).split('\n')) {
    const match = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (match) table.set(Number(match[1]), { parent: Number(match[2]), command: match[3] });
  }
  return table;
}

function descendsFrom(table: ReturnType<typeof processTable>, pid: number, ancestor: number): boolean {
  for (let current = pid, hops = 0; current > 1 && hops < 64; hops++) {
    if (current === ancestor) return true;
    current = table.get(current)?.parent ?? 0;
  }
  return false;
}

before(async () => {
  const folders = e2eFolders('remote', OUT, { keepOut: true, workspace: 'server-workspace' });
  if (!folders) return;
  ({ root, workspace } = folders);
  serverHome = join(root, 'server-home');
  extensionsDir = join(root, 'extensions');
  mkdirSync(serverHome, { recursive: true });
  copyFileSync(join(REPO, 'examples', 'tinysql-cs1.jsonl'), dataset());
  // The server's own home and caches; no cache override, so the default locations are what is checked.
  const env = { HOME: serverHome, XDG_CACHE_HOME: join(serverHome, '.cache'), ATP_CACHE_DIR: undefined, HF_HOME: undefined, HF_HUB_CACHE: undefined };
  ({ server, browser, page } = await openWorkbench({ workspace, userDataDir: join(root, 'user-data'), extensionsDir, out: OUT, env }));
  page.context().on('request', (request) => requests.push(request.url()));
});

after(() => closeWorkbench(server, browser, root, OUT));

test(
  'a run happens on the server: worker under the extension host, caches in the server home, result in the server workspace, client talks only to the server',
  { skip, timeout: 180_000 },
  async () => {
    await openFile(page, 'tinysql-cs1.jsonl');
    await runCommand(page, 'Attribution Patch Current File');
    const deadline = Date.now() + 90_000;
    while (!existsSync(resultFile()) && Date.now() < deadline) await page.waitForTimeout(300);
    assert.ok(existsSync(resultFile()), 'the Result is written next to the dataset, in the server workspace');
    const result = readResultFile(resultFile());
    assert.ok(result.examples.length > 0);
    for (let waited = 0; (await colouredTokens(page)).length === 0; waited += 300) {
      assert.ok(waited < 60_000, 'the client shows the colours the server computed');
      await page.waitForTimeout(300);
    }
    await page.screenshot({ path: join(OUT, '01-run-on-server.png') });

    // The engine's worker: a process of the installed extension, a descendant of the code-server process.
    const table = processTable();
    const workers = [...table].filter(([, p]) => p.command.includes(join('dist', 'worker.js')) && p.command.includes(extensionsDir));
    assert.equal(workers.length, 1, `one engine worker from ${extensionsDir}: ${workers.map(([, p]) => p.command).join(' | ')}`);
    assert.ok(descendsFrom(table, workers[0][0], server!.process.pid!), 'the worker runs under the server (its extension host)');

    // Graph and session caches went to the server's default cache folder.
    const cache = join(serverHome, '.cache', 'attribution-patching');
    assert.ok(
      filesUnder(cache).some((file) => file.endsWith('.onnx')),
      `graphs cached under the server home (${cache})`,
    );

    // The client only ever spoke to the server: every request went to its origin (or stayed inside the browser).
    const origin = new URL(server!.url).origin;
    // The one exception is the workbench's own: code-server's extension gallery (Open VSX), asked by VS Code itself.
    const workbenchOwn = (url: string) => url.startsWith('https://open-vsx.org/vscode/gallery/');
    const elsewhere = requests.filter((url) => !url.startsWith(origin) && !/^(data|blob|vscode-webview|about):/.test(url) && !workbenchOwn(url));
    assert.deepEqual(elsewhere, [], 'no request to another origin and no file: URL from the client');
    assert.ok(requests.length > 0);
  },
);
