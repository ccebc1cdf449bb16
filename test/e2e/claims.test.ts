// End to end, in code-server: the shipped model's claims files appear in the Test Explorer (one item per claim),
// "Run All Tests" runs them through the engine, and a deliberately false claim is marked failed at its line in the
// editor, with the "Run claim" CodeLenses above each claim. Screenshots go to test-output/e2e-claims/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { type CodeServer, closeWorkbench, E2E_SKIP, e2eFolders, openFile, openWorkbench, REPO, runCommand } from './support/codeServer';

const OUT = join(REPO, 'test-output', 'e2e-claims');
const skip = E2E_SKIP;

let root: string;
let workspace: string;
let server: CodeServer | undefined;
let browser: Browser | undefined;
let page: Page;
const FALSE_CLAIM = 'a deliberately false claim';
const claimsFile = () => join(workspace, 'tinysql-demo', 'claims', 'tables.claims.yaml');

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(OUT, `${name}.png`) });
}

before(async () => {
  const folders = e2eFolders('claims', OUT);
  if (!folders) return;
  ({ root, workspace } = folders);
  cpSync(join(REPO, 'models', 'tinysql-demo'), join(workspace, 'tinysql-demo'), {
    recursive: true,
    filter: (path) => !/\.atp-(result|passes)\.json$/.test(path),
  });
  // The shipped claims plus one that is false on this model: L3H3 is not its top head.
  appendFileSync(claimsFile(), `  - name: ${FALSE_CLAIM}\n    top_heads: {k: 1, include: [L3H3]}\n`);
  ({ server, browser, page } = await openWorkbench({ workspace, userDataDir: join(root, 'user-data'), extensionsDir: join(root, 'extensions'), out: OUT }));
});

after(() => closeWorkbench(server, browser, root, OUT));

/** A row of the Test Explorer's tree. */
const row = (text: string) => page.locator('.test-explorer .monaco-list-row', { hasText: text }).first();

test(
  'the Test Explorer lists the claims files and their claims, runs them, and marks the false claim failed at its line',
  { skip, timeout: 240_000 },
  async () => {
    await runCommand(page, 'Testing: Focus on Test Explorer View');
    await row('tables.claims.yaml').waitFor({ timeout: 45_000 });
    await row('fields.claims.yaml').waitFor({ timeout: 15_000 });
    // Expand the tables file: its six claims are listed by name.
    await row('tables.claims.yaml').click();
    await page.keyboard.press('ArrowRight');
    for (const name of ['L0H3 and L0H1 carry the table name', 'AtP agrees with exact patching on every head', FALSE_CLAIM])
      await row(name).waitFor({ timeout: 15_000 });
    await shot('01-test-explorer-lists-claims');

    await runCommand(page, 'Test: Run All Tests');
    const result = join(workspace, 'tinysql-demo', 'claims', 'tables.claims.atp-result.json');
    const deadline = Date.now() + 150_000;
    while (!(existsSync(result) && existsSync(join(workspace, 'tinysql-demo', 'claims', 'fields.claims.atp-result.json'))) && Date.now() < deadline)
      await page.waitForTimeout(500);
    assert.ok(existsSync(result), 'the run stored its Result beside the claims file');
    await row(FALSE_CLAIM).locator('.codicon-testing-failed-icon').waitFor({ timeout: 60_000 });
    await row('L0H3 and L0H1 carry the table name').locator('.codicon-testing-passed-icon').waitFor({ timeout: 15_000 });
    // Failed: the false claim and the file that holds it; every other claim and file passed.
    const failedRows = await page.locator('.test-explorer .monaco-list-row', { has: page.locator('.codicon-testing-failed-icon') }).allTextContents();
    assert.deepEqual(
      failedRows.map((text) => (text.includes(FALSE_CLAIM) ? FALSE_CLAIM : text.includes('tables.claims.yaml') ? 'tables.claims.yaml' : text)).sort(),
      [FALSE_CLAIM, 'tables.claims.yaml'],
    );
    await shot('02-test-explorer-after-run');

    // The claims file: CodeLenses above each claim, and the failure at the false claim's line.
    await openFile(page, 'tables.claims.yaml');
    await page.locator('.contentWidgets .codelens-decoration', { hasText: 'Run claim' }).first().waitFor({ timeout: 30_000 });
    assert.ok((await page.locator('.codelens-decoration', { hasText: 'Run claim' }).count()) >= 6, 'a "Run claim" above each claim');
    const falseLine =
      readFileSync(claimsFile(), 'utf8')
        .split('\n')
        .findIndex((line) => line.includes(FALSE_CLAIM)) + 1;
    // The shipped file is longer than the editor: go to the false claim's line, as a user would.
    await page.keyboard.press('Control+G');
    await page.keyboard.type(String(falseLine));
    await page.keyboard.press('Enter');
    await page.locator('.monaco-editor .codicon-testing-failed-icon').first().waitFor({ timeout: 30_000 });
    const gutterLines = await page.locator('.margin-view-overlays .line-numbers').allTextContents();
    assert.ok(gutterLines.includes(String(falseLine)), `line ${falseLine} is on screen`);
    // The peek (or the inline message) shows expected against actual.
    await runCommand(page, 'Test: Peek Output').catch(() => undefined);
    await page.locator('.monaco-editor', { hasText: 'missing L3H3' }).first().waitFor({ timeout: 30_000 });
    await shot('03-false-claim-failed-at-its-line');
  },
);

test('a claims file with a mistake is underlined at the field, and the Problems panel names it', { skip, timeout: 90_000 }, async () => {
  const broken = join(workspace, 'tinysql-demo', 'claims', 'broken.claims.yaml');
  writeFileSync(broken, 'model: ..\ndataset: tables.jsonl\nclaims:\n  - top_heads: {k: three, include: [L0H3]}\n');
  // By absolute path: a file written while the workbench runs may not be in Quick Open's index yet.
  await openFile(page, broken);
  await page.locator('.monaco-editor .squiggly-error').first().waitFor({ timeout: 30_000 });
  await runCommand(page, 'View: Focus Problems (Errors, Warnings, Infos)');
  await page
    .locator('.markers-panel .monaco-list-row', { hasText: 'claims[0].top_heads.k: expected an integer ≥ 1, got "three"' })
    .first()
    .waitFor({ timeout: 15_000 });
  await shot('04-claims-file-problem-located');
});
