// A real VS Code for the end-to-end tests: code-server 4.100.3 (installed by scripts/setup-e2e.sh) with the
// packaged extension installed, driven by playwright-core in Debian's headless Chromium.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';

export const REPO = resolve(__dirname, '../../..');
export const E2E_DIR = process.env.ATP_E2E_DIR ?? join(REPO, '.atp-cache', 'e2e');
export const CODE_SERVER = join(E2E_DIR, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const CHROMIUM = process.env.ATP_CHROMIUM ?? '/usr/bin/chromium';

/** Why the end-to-end tests cannot run here, or undefined when they can. */
export function missingPrerequisite(): string | undefined {
  if (!existsSync(CODE_SERVER)) return `code-server is not installed in ${E2E_DIR} (run scripts/setup-e2e.sh)`;
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing (run scripts/setup-e2e.sh)`;
  return undefined;
}

/**
 * Whether an end-to-end file's tests run: false, or why they are skipped. With ATP_E2E_REQUIRED=1 they never skip:
 * a missing prerequisite fails them instead (e2eFolders, at the top of each file's `before`).
 */
export const E2E_SKIP: string | false = (() => {
  const missing = missingPrerequisite();
  return missing && process.env.ATP_E2E_REQUIRED !== '1' ? missing : false;
})();

/** At the top of `before`: false when the tests skip; throws when they are required and cannot run. */
export function startsE2e(): boolean {
  if (E2E_SKIP) return false;
  const missing = missingPrerequisite();
  if (missing) throw new Error(`end-to-end tests required (ATP_E2E_REQUIRED=1) but ${missing}`);
  return true;
}

/**
 * The start of each file's `before`: undefined when its tests skip (startsE2e); else `out` emptied (kept with keepOut)
 * and a fresh temporary root holding an empty workspace folder (named `workspace` unless given).
 */
export function e2eFolders(
  name: string,
  out: string,
  options: { keepOut?: boolean; workspace?: string } = {},
): { root: string; workspace: string } | undefined {
  if (!startsE2e()) return undefined;
  if (!options.keepOut) rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const root = mkdtempSync(join(tmpdir(), `atp-e2e-${name}-`));
  const workspace = join(root, options.workspace ?? 'workspace');
  mkdirSync(workspace, { recursive: true });
  return { root, workspace };
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? done(address.port) : fail(new Error('no port'))));
    });
  });
}

export function installExtension(vsix: string, extensionsDir: string, userDataDir: string): void {
  const run = spawnSync(
    process.execPath,
    [CODE_SERVER, '--extensions-dir', extensionsDir, '--user-data-dir', userDataDir, '--install-extension', vsix, '--force'],
    { encoding: 'utf8' },
  );
  if (run.status !== 0) throw new Error(`installing ${vsix} failed:\n${run.stdout}\n${run.stderr}`);
}

export interface CodeServer {
  url: string;
  process: ChildProcess;
  output: string[];
  stop(): Promise<void>;
}

/**
 * `env` is added to the server's environment (an undefined value removes a variable): the extension host, and so the
 * engine's worker, inherit it.
 */
export async function startCodeServer(options: {
  userDataDir: string;
  extensionsDir: string;
  workspace: string;
  settings: Record<string, unknown>;
  env?: Record<string, string | undefined>;
}): Promise<CodeServer> {
  mkdirSync(join(options.userDataDir, 'User'), { recursive: true });
  writeSettings(options.userDataDir, options.settings);
  const configFile = join(options.userDataDir, 'config.yaml');
  writeFileSync(configFile, 'auth: none\ncert: false\n');
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      CODE_SERVER,
      '--config',
      configFile,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir',
      options.userDataDir,
      '--extensions-dir',
      options.extensionsDir,
      options.workspace,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ATP_CACHE_DIR: join(options.userDataDir, 'atp-cache'), ...options.env } },
  );
  const output: string[] = [];
  child.stdout!.on('data', (data: Buffer) => output.push(data.toString()));
  child.stderr!.on('data', (data: Buffer) => output.push(data.toString()));
  const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(options.workspace)}`;
  const deadline = Date.now() + 60_000;
  while (!output.join('').includes('HTTP server listening')) {
    if (child.exitCode !== null) throw new Error(`code-server exited:\n${output.join('')}`);
    if (Date.now() > deadline) throw new Error(`code-server did not start:\n${output.join('')}`);
    await new Promise((done) => setTimeout(done, 200));
  }
  return {
    url,
    process: child,
    output,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        // Our own child, by its process id.
        child.kill('SIGTERM');
        setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

export function writeSettings(userDataDir: string, settings: Record<string, unknown>): void {
  writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Runs a command from the palette by its title, as a user does. */
export async function runCommand(page: Page, title: string): Promise<void> {
  // The palette can be closed under us while the workbench is still settling (an editor taking focus, extensions
  // activating): then close whatever is open and ask again, as a user would.
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible' });
    await input.fill(`>${title}`);
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
    try {
      await row.waitFor({ state: 'visible', timeout: 10_000 });
      break;
    } catch (error) {
      if (attempt === 3) throw error;
      await page.keyboard.press('Escape');
      await page.waitForTimeout(1000);
    }
  }
  await page.waitForTimeout(150);
  await page.keyboard.press('Enter');
}

/** The webview frame that holds `selector` (webviews sit in nested iframes). */
export async function findFrame(page: Page, selector: string, timeoutMs = 30_000): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const frame of page.frames()) {
      if (await frame.$(selector).catch(() => null)) return frame;
    }
    if (Date.now() > deadline) throw new Error(`no frame with ${selector}`);
    await page.waitForTimeout(250);
  }
}

/**
 * The editor's coloured token boxes (in the colour scale's hues; other extensions' decorations are ignored): decorations with a background colour are drawn by VS Code as boxes in the
 * editor's overlay layer (div.cdr), one per decorated range on screen.
 */
export async function colouredTokens(page: Page): Promise<Array<{ background: string; x: number; y: number; width: number; height: number }>> {
  // A string, evaluated in the page (this project's type check has no DOM library).
  return page.evaluate(`
    Array.from(document.querySelectorAll('.editor-instance .view-overlays .cdr'))
      .map((box) => { const r = box.getBoundingClientRect(); return { background: getComputedStyle(box).backgroundColor, x: r.x, y: r.y, width: r.width, height: r.height }; })
      .filter((box) => ['rgba(33, 102, 172,', 'rgba(178, 24, 43,', 'rgba(67, 147, 195,', 'rgba(214, 96, 77,'].some((hue) => box.background.startsWith(hue)) && box.width > 0 && box.x >= 0)
  `);
}

/** What every e2e workbench starts with: CPU, light theme, nothing on screen but the editor. */
export const BASE_SETTINGS: Readonly<Record<string, unknown>> = {
  'attributionPatching.device': 'cpu',
  'workbench.colorTheme': 'Default Light Modern',
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'security.workspace.trust.enabled': false,
  'editor.minimap.enabled': false,
  'window.commandCenter': false,
  'chat.commandCenter.enabled': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  // Our walkthrough opens on first activation unless this is off; the sidebar test turns it back on to check that.
  'attributionPatching.openWalkthroughOnFirstRun': false,
};

export interface Workbench {
  server: CodeServer;
  browser: Browser;
  page: Page;
}

/**
 * Packages the extension (.vsix into `out`), installs it into a fresh code-server with BASE_SETTINGS plus `settings`,
 * and opens the workspace in headless Chromium, ready for the first command.
 */
export async function openWorkbench(options: {
  workspace: string;
  userDataDir: string;
  extensionsDir: string;
  out: string;
  settings?: Record<string, unknown>;
  env?: Record<string, string | undefined>;
}): Promise<Workbench> {
  const vsix = join(options.out, 'attribution-patching-linux-x64.vsix');
  const pack = spawnSync(process.execPath, [join(REPO, 'scripts', 'package.mjs'), '--target', 'linux-x64', '--out', vsix], { encoding: 'utf8', cwd: REPO });
  if (pack.status !== 0) throw new Error(`packaging failed:\n${pack.stdout}\n${pack.stderr}`);
  installExtension(vsix, options.extensionsDir, options.userDataDir);
  const server = await startCodeServer({ ...options, settings: { ...BASE_SETTINGS, ...options.settings } });
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(server.url);
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  await page.waitForTimeout(1500);
  return { server, browser, page };
}

/** Closes the browser and code-server, keeps code-server's log in `out`, and removes `root` (unless ATP_E2E_KEEP=1). */
export async function closeWorkbench(server: CodeServer | undefined, browser: Browser | undefined, root: string, out: string): Promise<void> {
  await browser?.close();
  await server?.stop();
  if (server && process.env.ATP_E2E_KEEP !== '1') rmSync(root, { recursive: true, force: true });
  if (server) writeFileSync(join(out, 'code-server.log'), server.output.join(''));
}

/**
 * Opens a file through Quick Open. `name` is a file name the workspace index knows, or an absolute path: Quick Open
 * resolves an absolute path on disk directly, so a file a test writes while the workbench runs (which the search
 * index may not list yet) opens without waiting for the index.
 */
export async function openFile(page: Page, name: string): Promise<void> {
  const label = basename(name);
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible' });
  await input.fill(name);
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: label }).first().waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
  await page.locator(`.tab.active[aria-label*="${label}"]`).waitFor({ timeout: 15_000 });
  await page.locator('.editor-instance .view-lines').first().waitFor();
}
