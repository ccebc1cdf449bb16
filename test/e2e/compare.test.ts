// End to end, in code-server: two runs of the built-in model (two TinySQL features), then "Compare Runs…": both
// ticked in the list of runs, the Compare view shows the B − A head map (B the newer run) with every cell equal to
// the difference of the two Result files, "Export JSON" saves the comparison, and the view (and a sweep's summary)
// comes back after a window reload. Screenshots go to
// test-output/e2e-compare/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Frame, Page } from 'playwright-core';
import { readResultFile } from '../../src/lib/files/resultFile';
import { type CodeServer, findFrame, closeWorkbench, E2E_SKIP, e2eFolders, openFile, openWorkbench, REPO, runCommand } from './support/codeServer';

const OUT = join(REPO, 'test-output', 'e2e-compare');
const skip = E2E_SKIP;

let root: string;
let workspace: string;
let server: CodeServer | undefined;
let browser: Browser | undefined;
let page: Page;
const DATASETS = ['tinysql-cs1.jsonl', 'fields.jsonl'];

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(OUT, `${name}.png`) });
}

async function waitFor(file: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!existsSync(file) && Date.now() < deadline) await page.waitForTimeout(300);
  assert.ok(existsSync(file), `${file} was written`);
}

before(async () => {
  const folders = e2eFolders('compare', OUT);
  if (!folders) return;
  ({ root, workspace } = folders);
  const userDataDir = join(root, 'user-data');
  const extensionsDir = join(root, 'extensions');
  copyFileSync(join(REPO, 'examples', 'tinysql-cs1.jsonl'), join(workspace, DATASETS[0]));
  // A second feature for the same (built-in) model: one shape, so the view shows B − A cell by cell.
  const generate = spawnSync(
    process.execPath,
    [
      join(REPO, 'dist', 'cli.js'),
      'generate',
      'tinysql',
      '--feature',
      'DefFieldName',
      '-n',
      '6',
      '--seed',
      '1',
      '--model',
      join(REPO, 'models', 'tinysql-demo'),
      '--out',
      join(workspace, DATASETS[1]),
    ],
    { encoding: 'utf8' },
  );
  assert.equal(generate.status, 0, generate.stderr);
  ({ server, browser, page } = await openWorkbench({ workspace, userDataDir, extensionsDir, out: OUT }));
});

after(() => closeWorkbench(server, browser, root, OUT));

test(
  '"Compare Runs…": two runs ticked, the B − A head map equals the difference of the Result files; Export JSON saves it',
  { skip, timeout: 240_000 },
  async () => {
    for (const name of DATASETS) {
      await openFile(page, name);
      await runCommand(page, 'Attribution Patch Current File');
      await waitFor(join(workspace, `${name}.atp-result.json`));
      // createdAt orders the runs: A is the older.
      await page.waitForTimeout(1100);
    }
    await runCommand(page, 'Notifications: Clear All Notifications').catch(() => undefined);

    await runCommand(page, 'Attribution Patching: Compare Runs…');
    for (const name of DATASETS) {
      const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first();
      await row.waitFor({ timeout: 15_000 });
      await row.click();
    }
    await shot('01-compare-runs-picked');
    await page.keyboard.press('Enter');

    const frame = await findFrame(page, '#compare-pairs');
    await page.waitForTimeout(500);
    await shot('02-compare-view');
    const [a, b] = DATASETS.map((name) => {
      const file = join(workspace, `${name}.atp-result.json`);
      return readResultFile(file);
    });
    const checkDifferenceMap = async (view: Frame) => {
      const cells = (await view.$$eval('svg.compare-heads rect[data-value]', (rects) =>
        rects.map((r) => ({
          layer: Number(r.getAttribute('data-layer')),
          head: Number(r.getAttribute('data-head')),
          value: Number(r.getAttribute('data-value')),
        })),
      )) as Array<{ layer: number; head: number; value: number }>;
      assert.equal(cells.length, 16, 'the built-in model has 4 × 4 heads');
      for (const cell of cells) {
        const expected = b.heads[cell.layer][cell.head] - a.heads[cell.layer][cell.head];
        assert.ok(Math.abs(cell.value - expected) <= 1e-12 * Math.max(1, Math.abs(expected)), `L${cell.layer}H${cell.head}: ${cell.value} vs ${expected}`);
      }
      const title = (await view.textContent('#compare-title')) ?? '';
      assert.match(title, /Compare 2 runs against tinysql-cs1\.jsonl/);
      assert.match((await view.textContent('#compare-pairs')) ?? '', /fields\.jsonl.*yes/);
    };
    await checkDifferenceMap(frame);

    await frame.click('#export-comparison-json');
    await page.locator('.quick-input-widget .quick-input-box input').waitFor({ state: 'visible', timeout: 15_000 });
    await page.waitForTimeout(300);
    await page.keyboard.press('Enter');
    const exported = join(workspace, 'comparison.json');
    await waitFor(exported, 15_000);
    const comparison = JSON.parse(readFileSync(exported, 'utf8'));
    assert.equal(comparison.schema, 'attribution-patching/comparison@1');
    assert.deepEqual(comparison.pairs[0].headDifference.flat().length, 16);
    copyFileSync(exported, join(OUT, '03-comparison.json'));

    // A window reload brings the view back: the same two runs, A first, compared again from their files. The
    // workbench's own reload (it saves the open editors first, as desktop VS Code does on every reload; a bare page
    // reload loses what the web workbench has not flushed yet).
    await runCommand(page, 'Developer: Reload Window');
    await checkDifferenceMap(await findFrame(page, '#compare-pairs'));
    await shot('04-compare-view-after-reload');
  },
);

test('"Run Sweep…": the built-in model on two features runs in the worker; the summary opens in the panel', { skip, timeout: 180_000 }, async () => {
  await runCommand(page, 'Attribution Patching: Run Sweep…');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  const asked = (text: string) => page.locator('.quick-input-widget', { hasText: text }).first().waitFor({ state: 'visible', timeout: 15_000 });
  await asked('Models, comma-separated');
  assert.match(await input.inputValue(), /tinysql-demo/, 'the configured (built-in) model is proposed');
  await page.keyboard.press('Enter');
  // The features' list (its prompt is a placeholder, not text): tick two.
  for (const feature of ['EngTableName', 'DefTableName']) {
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: feature }).first();
    await row.waitFor({ state: 'visible', timeout: 15_000 });
    await row.click();
  }
  await shot('04a-sweep-features');
  await page.keyboard.press('Enter');
  await asked('Examples per dataset');
  await input.fill('3');
  await page.keyboard.press('Enter');
  await asked('Output folder');
  assert.equal(await input.inputValue(), join(workspace, 'atp-sweep'));
  await page.keyboard.press('Enter');

  await waitFor(join(workspace, 'atp-sweep', 'summary.json'), 90_000);
  const frame = await findFrame(page, '#sweep-cells', 60_000);
  await page.waitForTimeout(500);
  await shot('04b-sweep-summary');
  const rows = (await frame.$$eval('#sweep-cells tr', (trs) => trs.map((tr) => tr.textContent ?? ''))) as string[];
  assert.equal(rows.length, 3, rows.join('\n'));
  assert.match(rows[1], /tinysql-demo.*EngTableName.*1.*ran/);
  assert.match(rows[2], /tinysql-demo.*DefTableName.*1.*ran/);
  assert.match((await frame.textContent('#sweep-title')) ?? '', /Sweep: 2 of 2 cells done/);
  for (const name of ['EngTableName-cs1', 'DefTableName-cs1']) {
    const file = join(workspace, 'atp-sweep', 'tinysql-demo', `${name}.atp-result.json`);
    assert.equal(readResultFile(file).dataset.examples, 3);
  }

  // After a reload the summary is read again from the sweep's folder.
  await runCommand(page, 'Developer: Reload Window');
  const restored = await findFrame(page, '#sweep-cells', 60_000);
  assert.match((await restored.textContent('#sweep-title')) ?? '', /Sweep: 2 of 2 cells done/);
});
