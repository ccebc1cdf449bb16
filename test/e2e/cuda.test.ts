// End to end, in code-server: a run with the device set to cuda and no CUDA support installed falls back to the CPU
// and offers "Install CUDA Support…"; that action downloads the provider package from a fake NuGet feed on
// 127.0.0.1 (ATP_CUDA_FEED; the real one is nuget.org) with progress, installs it into the per-user folder
// (ATP_CUDA_DIR), restarts the engine process, and the next run loads ONNX Runtime from there. No GPU here: the
// next run still falls back, now naming the NVIDIA libraries that are missing. Screenshots go to test-output/e2e-cuda/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, statSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { bundledOrt, cudaRuntimeState } from '../../src/lib/cuda/cudaRuntime';
import type { Result } from '../../src/shared/result';
import { readResultFile } from '../../src/lib/files/resultFile';
import { type FakeNuget, makeNupkg, startFakeNuget } from '../support/fakeNuget';
import { type CodeServer, closeWorkbench, E2E_SKIP, e2eFolders, openFile, openWorkbench, REPO, runCommand } from './support/codeServer';

const OUT = join(REPO, 'test-output', 'e2e-cuda');
const skip = E2E_SKIP;
const ID = 'microsoft.ml.onnxruntime.gpu.linux';
const NATIVE = 'runtimes/linux-x64/native/';

let root: string;
let workspace: string;
let cudaRoot: string;
let feed: FakeNuget | undefined;
let server: CodeServer | undefined;
let browser: Browser | undefined;
let page: Page;
// A dataset the built-in demo model's tokenizer takes as it is (the IOI names are several tokens there).
const dataset = () => join(workspace, 'tinysql-cs1.jsonl');
const resultFile = () => `${dataset()}.atp-result.json`;

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(OUT, `${name}.png`) });
}

async function runAndWaitForResult(): Promise<Result> {
  const before = (() => {
    try {
      return statSync(resultFile()).mtimeMs;
    } catch {
      return 0;
    }
  })();
  await runCommand(page, 'Attribution Patch Current File');
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      if (statSync(resultFile()).mtimeMs > before) return readResultFile(resultFile());
    } catch {
      // not written yet
    }
    if (Date.now() > deadline) {
      await shot(`timeout-${Date.now()}`);
      throw new Error('no result after 90 s');
    }
    await page.waitForTimeout(300);
  }
}

before(async () => {
  const folders = e2eFolders('cuda', OUT);
  if (!folders) return;
  ({ root, workspace } = folders);
  cudaRoot = join(root, 'cuda-runtime');
  copyFileSync(join(REPO, 'examples', 'tinysql-cs1.jsonl'), dataset());
  // A real ELF library (libz) under the provider's name: ONNX Runtime opens it and finds no provider in it.
  const nupkg = makeNupkg({
    [`${NATIVE}libonnxruntime_providers_shared.so`]: readFileSync('/lib/x86_64-linux-gnu/libz.so.1'),
    [`${NATIVE}libonnxruntime_providers_cuda.so`]: randomBytes(2 << 20),
  });
  feed = await startFakeNuget({ [ID]: { [bundledOrt().version]: nupkg } });
  // code-server's extension host and its engine process inherit these.
  process.env.ATP_CUDA_FEED = feed.feed;
  process.env.ATP_CUDA_DIR = cudaRoot;
  // A mirror never supplies the hash it is checked against: the one who set it up does (here the test, which built
  // the package); and this mirror is plain http on 127.0.0.1, allowed explicitly.
  process.env.ATP_CUDA_SHA512 = createHash('sha512').update(nupkg).digest('hex');
  process.env.ATP_CUDA_ALLOW_HTTP = '1';
  ({ server, browser, page } = await openWorkbench({
    workspace,
    userDataDir: join(root, 'user-data'),
    extensionsDir: join(root, 'extensions'),
    out: OUT,
    settings: { 'attributionPatching.device': 'cuda' },
  }));
});

after(async () => {
  await closeWorkbench(server, browser, root, OUT);
  await feed?.close();
});

test(
  'device cuda without CUDA support: the run falls back to the CPU and offers Install CUDA Support…, which installs it; the next run uses it',
  { skip, timeout: 240_000 },
  async () => {
    await openFile(page, 'tinysql-cs1.jsonl');
    const first = await runAndWaitForResult();
    assert.equal(first.device, 'cpu');
    const offer = page.locator('.notification-toast', { hasText: 'CUDA is not installed, so this run used the CPU' }).first();
    await offer.waitFor({ timeout: 30_000 });
    await shot('01-cuda-not-installed');
    await offer.locator('.monaco-button', { hasText: 'Install CUDA Support…' }).first().click();

    const dialog = page.locator('.monaco-dialog-box', { hasText: 'Microsoft.ML.OnnxRuntime.Gpu.Linux' });
    await dialog.waitFor({ timeout: 15_000 });
    assert.match((await dialog.textContent()) ?? '', new RegExp(`into ${cudaRoot.replaceAll('/', '\\/')}\\?.*CUDA 12 and cuDNN 9`));
    await shot('02-install-dialog');
    await dialog.locator('.monaco-button', { hasText: 'Download from nuget.org' }).first().click();

    const done = page.locator('.notification-toast', { hasText: 'CUDA support installed in' }).first();
    await done.waitFor({ timeout: 60_000 });
    await shot('03-installed');
    const dir = join(cudaRoot, bundledOrt().version);
    const said = (await done.textContent()) ?? '';
    assert.ok(said.includes(`CUDA support installed in ${dir}, but not found on this machine: libcudart.so.12`), said);
    assert.equal(cudaRuntimeState(bundledOrt().version, { ATP_CUDA_DIR: cudaRoot }).state, 'installed');
    assert.ok(
      feed!.requests.some((r) => r.path.endsWith('.nupkg') && r.status === 200),
      'downloaded from the feed',
    );
    await runCommand(page, 'Notifications: Clear All Notifications').catch(() => undefined);

    // The engine process was restarted: this run loads ONNX Runtime from the install, so CUDA now fails further on.
    const second = await runAndWaitForResult();
    assert.equal(second.device, 'cpu');
    const note = second.warnings.find((w) => w.startsWith('cuda could not start'));
    assert.ok(note && note.includes('NVIDIA libraries not found: libcudart.so.12'), second.warnings.join('\n'));
    await page.waitForTimeout(1500);
    assert.equal(await page.locator('.notification-toast', { hasText: 'CUDA is not installed' }).count(), 0, 'no install offer once installed');
  },
);
