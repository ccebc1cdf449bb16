// End to end, in code-server: writing datasets in the editor. The .atp grammar colours the prompt format; parse
// problems and (with the built-in model's tokenizer) token-count mismatches show as diagnostics while typing, before
// any run; "Generate TinySQL Dataset…" writes a new dataset file and opens it. Screenshots go to
// test-output/e2e-datasets/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { diagnoseWithTokenizer, parseDatasetText, parsePromptFormat } from '../../src/lib/dataset';
import { ModelTokenizer } from '../../src/engine/model/tokenizer';
import { type CodeServer, closeWorkbench, E2E_SKIP, e2eFolders, openFile as openFileInEditor, openWorkbench, REPO, runCommand } from './support/codeServer';

const OUT = join(REPO, 'test-output', 'e2e-datasets');
const skip = E2E_SKIP;

// Words of the demo model's vocabulary (its tokenizer is whole-word for TinySQL and spells other words letter by letter).
const SQL_LINE =
  '\\### Instruction: show me the price and name from the people table ### Context: CREATE TABLE {people|orders} ( price INT, name CHAR ) ### Response: SELECT price, name FROM => " people" | " orders"';
const ESCAPES_LINE =
  '\\### Instruction: show me the {price|name} from the people table ### Context: CREATE TABLE people \\{ price INT, name CHAR \\} ### Response: SELECT => " price" | " name"';
const PROMPTS = ['# Prompt pairs for the built-in TinySQL model', SQL_LINE, '# escapes: \\{ \\| \\} and a literal \\=>', ESCAPES_LINE, ''].join('\n');

let root: string;
let workspace: string;
let server: CodeServer | undefined;
let browser: Browser | undefined;
let page: Page;
const demoTokenizer = () => ModelTokenizer.fromDir(join(REPO, 'models', 'tinysql-demo'));

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(OUT, `${name}.png`) });
}

const openFile = (name: string) => openFileInEditor(page, name);

/** Focuses the editor (a click could land off the line when the editor is scrolled sideways). */
async function focusEditor(): Promise<void> {
  await runCommand(page, 'View: Focus First Editor Group');
  await page.waitForTimeout(200);
}

/** Puts the cursor at a 1-based line and column with "Go to Line/Column". */
async function goTo(line: number, column: number): Promise<void> {
  await page.keyboard.press('Control+G');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`:${line}:${column}`);
  await page.keyboard.press('Enter');
  await page.waitForTimeout(200);
}

/** The Problems panel's rows (message and "[Ln x, Col y]"), once `expected` of them are listed. */
async function problems(expected: number, timeoutMs = 15_000): Promise<string[]> {
  const rows = page.locator('.markers-panel .monaco-list-row');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const texts = (await rows.allTextContents()).filter((t) => /Ln \d+, Col \d+/.test(t));
    if (texts.length >= expected) return texts;
    if (Date.now() > deadline) throw new Error(`expected ${expected} problems, saw: ${texts.join(' / ')}`);
    await page.waitForTimeout(200);
  }
}

async function waitForNoProblems(timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await page.locator('.editor-instance .squiggly-error, .editor-instance .squiggly-warning').count()) > 0) {
    if (Date.now() > deadline) throw new Error('the diagnostics did not go away');
    await page.waitForTimeout(200);
  }
}

/** The editor's rendered tokens with their colours (Monaco draws each token as a span inside a view-line). */
async function renderedTokens(): Promise<Array<{ text: string; color: string }>> {
  return page.evaluate(`
    Array.from(document.querySelectorAll('.editor-instance .view-line > span > span'))
      .map((s) => ({ text: s.textContent, color: getComputedStyle(s).color }))
  `);
}

before(async () => {
  const folders = e2eFolders('datasets', OUT);
  if (!folders) return;
  ({ root, workspace } = folders);
  const userDataDir = join(root, 'user-data');
  const extensionsDir = join(root, 'extensions');
  writeFileSync(join(workspace, 'prompts.atp'), PROMPTS);
  // For the IOI-with-the-TinySQL-model test: there from the start, so that Quick Open's file index has it.
  writeFileSync(join(workspace, 'names.jsonl'), readFileSync(join(REPO, 'examples', 'ioi.jsonl'), 'utf8'));
  assert.deepEqual(parsePromptFormat(PROMPTS, 'prompts.atp').diagnostics, [], 'the starting file is clean');

  // No model setting: the built-in tinysql-demo model's tokenizer checks the prompts.
  ({ server, browser, page } = await openWorkbench({
    workspace,
    userDataDir,
    extensionsDir,
    out: OUT,
    settings: { 'editor.wordWrap': 'off', '[atp]': { 'editor.wordWrap': 'off' } },
  }));
});

after(() => closeWorkbench(server, browser, root, OUT));

test('the .atp grammar colours comments, the clean and corrupted sides of spans, the arrow, answers and escapes', { skip, timeout: 60_000 }, async () => {
  await openFile('prompts.atp');
  await page.locator('.editor-instance .view-line span', { hasText: 'orders' }).first().waitFor();
  await page.waitForTimeout(1000); // the grammar loads after the document opens
  const tokens = await renderedTokens();
  // Monaco draws spaces as no-break spaces and cuts long tokens into pieces.
  const colour = (match: (text: string) => boolean, what: string) => {
    const found = tokens.find((t) => match(t.text.replace(/\u00a0/g, ' ')));
    assert.ok(found, `a token ${what} in ${JSON.stringify(tokens.map((t) => t.text))}`);
    return found.color;
  };
  const exactly = (text: string) => colour((t) => t === text, JSON.stringify(text));
  const plain = colour((t) => t.startsWith(' ( price INT'), 'after the span');
  const clean = exactly('people');
  const corrupted = exactly('orders');
  const arrow = exactly('=>');
  const answer = exactly('" people"');
  const comment = colour((t) => t.startsWith('# Prompt pairs'), 'comment');
  // An escaped brace is one token (the grammar marks escapes as strings, so bracket-pair colouring skips them).
  const escape = exactly('\\{');
  for (const [name, value] of Object.entries({ clean, corrupted, arrow, answer, comment, escape })) assert.notEqual(value, plain, `${name} is coloured`);
  assert.notEqual(clean, corrupted, 'the clean and corrupted sides differ');
  assert.notEqual(answer, clean);
  assert.notEqual(answer, corrupted);
  await page.keyboard.press('Escape');
  await shot('01-atp-syntax-light');
  // No problems in a correct file, with the tokenizer's checks done.
  await page.waitForTimeout(1500);
  assert.equal(await page.locator('.editor-instance .squiggly-error').count(), 0);
});

test('typing an unbalanced brace shows a parse diagnostic at its place at once, without running anything', { skip, timeout: 60_000 }, async () => {
  // Line 2, before "CHAR": a closing brace outside any span.
  const column = SQL_LINE.indexOf('CHAR') + 1;
  await goTo(2, column);
  await page.keyboard.type('}');
  const edited = PROMPTS.split('\n');
  edited[1] = `${SQL_LINE.slice(0, column - 1)}}${SQL_LINE.slice(column - 1)}`;
  const expected = parsePromptFormat(edited.join('\n'), 'prompts.atp').diagnostics;
  assert.equal(expected.length, 1, JSON.stringify(expected));
  const started = Date.now();
  await page.locator('.editor-instance .squiggly-error').first().waitFor({ timeout: 10_000 });
  const seconds = (Date.now() - started) / 1000;
  await runCommand(page, 'View: Focus Problems');
  const [row] = await problems(1);
  assert.ok(row.includes(expected[0].message), `${row} vs ${expected[0].message}`);
  assert.ok(row.includes(`[Ln 2, Col ${expected[0].startColumn + 1}]`), row);
  assert.equal(expected[0].startColumn, column - 1, 'the parser points at the typed brace');
  assert.ok(!existsSync(join(workspace, 'prompts.atp.atp-result.json')), 'nothing ran');
  assert.ok(seconds < 10, `shown after ${seconds} s`);
  await shot('02-unbalanced-brace-diagnostic');
  await focusEditor();
  await page.keyboard.press('Control+Z');
  await waitForNoProblems();
});

test("a token-count mismatch typed into a line is an error at its span, from the built-in model's tokenizer", { skip, timeout: 60_000 }, async () => {
  const line =
    '\\### Instruction: show me the price from the people table ### Context: CREATE TABLE {people|big orders} ( price INT ) ### Response: SELECT price FROM => " people" | " orders"';
  const expected = diagnoseWithTokenizer(parseDatasetText(`${PROMPTS}${line}\n`, 'prompts.atp').dataset, demoTokenizer());
  assert.equal(expected.length, 1, JSON.stringify(expected));
  assert.equal(expected[0].severity, 'error');
  await focusEditor();
  await page.keyboard.press('Control+End');
  // One input event (as a paste), so that auto-closing quotes and braces do not change what is typed.
  await page.keyboard.insertText(line);
  await page.locator('.editor-instance .squiggly-error').first().waitFor({ timeout: 20_000 });
  const rows = await problems(1, 20_000);
  const row = rows.find((r) => r.includes('tokens'));
  assert.ok(row, rows.join(' / '));
  assert.ok(row.includes(expected[0].message), `${row} vs ${expected[0].message}`);
  assert.ok(row.includes(`[Ln ${PROMPTS.split('\n').length}, Col ${expected[0].startColumn + 1}]`), row);
  await shot('03-token-count-mismatch');
  await page.keyboard.press('Control+Z');
  await page.keyboard.press('Control+S');
});

test('a failed run keeps the live diagnostics and quotes the blocking error; a bad model offers Select Model', { skip, timeout: 120_000 }, async () => {
  // prompts.atp is still the active editor (the previous test ends there).
  await page.locator('.tab.active[aria-label*="prompts.atp"]').waitFor({ timeout: 10_000 });
  const line =
    '\\### Instruction: show me the price from the people table ### Context: CREATE TABLE {people|big orders} ( price INT ) ### Response: SELECT price FROM => " people" | " orders"';
  await focusEditor();
  await page.keyboard.press('Control+End');
  await page.keyboard.insertText(line);
  await page.keyboard.press('Control+S');
  await page.locator('.editor-instance .squiggly-error').first().waitFor({ timeout: 20_000 });
  await runCommand(page, 'Attribution Patch Current File');
  const toast = page.locator('.notification-toast', { hasText: 'Attribution Patching:' }).first();
  await toast.waitFor({ timeout: 30_000 });
  const message = (await toast.textContent()) ?? '';
  // The first error of the file, by its name and line (never a warning, never the full path).
  const expected = diagnoseWithTokenizer(parseDatasetText(readFileSync(join(workspace, 'prompts.atp'), 'utf8'), 'prompts.atp').dataset, demoTokenizer())
    .concat(parseDatasetText(readFileSync(join(workspace, 'prompts.atp'), 'utf8'), 'prompts.atp').diagnostics)
    .filter((d) => d.severity === 'error')
    .sort((x, y) => x.line - y.line);
  assert.ok(expected.length > 0);
  assert.match(message, /prompts\.atp:\d+: /);
  assert.ok(
    expected.some((d) => message.includes(`prompts.atp:${d.line}: ${d.message}`)),
    `the toast quotes an error of the file: ${message}`,
  );
  assert.ok(!message.includes(workspace), 'not the full path');
  await page.waitForTimeout(1500);
  assert.ok((await page.locator('.editor-instance .squiggly-error').count()) > 0, 'the live diagnostic is still there after the failed run');
  await shot('05-failed-run-keeps-diagnostics');
  await runCommand(page, 'Notifications: Clear All Notifications').catch(() => undefined);

  // A model folder that does not exist: the editor's words, and a way out. (A clean file first: the run checks the
  // dataset before it looks for the model.)
  await focusEditor();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(PROMPTS);
  await page.keyboard.press('Control+S');
  await waitForNoProblems(20_000).catch(async (error) => {
    await shot('05b-diagnostics-stayed');
    throw error;
  });
  mkdirSync(join(workspace, '.vscode'), { recursive: true });
  writeFileSync(join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'attributionPatching.model': join(root, 'no-such-model') }));
  await page.waitForTimeout(1500);
  await runCommand(page, 'Attribution Patch Current File');
  const bad = page.locator('.notification-toast', { hasText: 'attributionPatching.model' }).first();
  await bad.waitFor({ timeout: 30_000 });
  assert.match((await bad.textContent()) ?? '', /the model \(setting attributionPatching\.model\): folder .*no-such-model does not exist/);
  await shot('06-bad-model-actions');
  await bad.locator('.monaco-button', { hasText: 'Select Model' }).first().click();
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Built-in TinySQL demo model' }).first().click();
  const deadline = Date.now() + 15_000;
  while (readFileSync(join(workspace, '.vscode', 'settings.json'), 'utf8').includes('no-such-model') && Date.now() < deadline) await page.waitForTimeout(200);
  assert.ok(!readFileSync(join(workspace, '.vscode', 'settings.json'), 'utf8').includes('no-such-model'), 'Select Model replaced the bad setting');
});

test('"Generate TinySQL Dataset…" writes a new .atp file and opens it; its content parses with N examples', { skip, timeout: 120_000 }, async () => {
  await runCommand(page, 'Attribution Patching: Generate TinySQL Dataset…');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  const row = (text: string) => page.locator('.quick-input-widget .monaco-list-row', { hasText: text }).first();
  await row('DefTableName').waitFor({ timeout: 15_000 });
  await input.fill('DefTableName');
  await page.waitForTimeout(200);
  await page.keyboard.press('Enter');
  await row('Command set 1').waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget', { hasText: 'How many examples' }).waitFor({ timeout: 15_000 });
  await input.fill('12');
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget', { hasText: 'Random seed' }).waitFor({ timeout: 15_000 });
  await input.fill('5');
  await page.keyboard.press('Enter');
  await row('Novel names').waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
  await row('prompt format').waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
  const name = 'tinysql-DefTableName-cs1-n12-seed5.atp';
  await page.locator(`.tab.active[aria-label*="${name}"]`).waitFor({ timeout: 30_000 });
  const text = readFileSync(join(workspace, name), 'utf8');
  const parsed = parseDatasetText(text, name);
  assert.deepEqual(parsed.diagnostics, []);
  assert.equal(parsed.dataset.examples.length, 12);
  assert.deepEqual(diagnoseWithTokenizer(parsed.dataset, demoTokenizer()), []);
  assert.match(text, /^# TinySQL DefTableName, command set 1: 12 examples, seed 5, tokenizer .*tinysql-demo/);
  await page.waitForTimeout(1500);
  assert.equal(await page.locator('.editor-instance .squiggly-error, .editor-instance .squiggly-warning').count(), 0, 'a generated dataset has no problems');
  await shot('04-generated-tinysql');
});

test(
  'an IOI file with the TinySQL demo model selected: a warning whose quick fix selects the built-in IOI model, and its problems go away',
  { skip, timeout: 120_000 },
  async () => {
    await openFile('names.jsonl');
    await runCommand(page, 'View: Focus Problems');
    // The TinySQL model spells names letter by letter: every answer starts with the token " " (errors, listed first).
    assert.ok((await problems(8, 20_000)).some((row) => row.includes('both answers start with the token')));
    await shot('07-ioi-file-with-tinysql-model');
    await focusEditor();
    await goTo(1, 1);
    // The warning on line 1 (listed after the errors) is what offers the quick fix.
    await page.keyboard.press('Control+.');
    await page.locator('.action-widget', { hasText: 'Use the built-in IOI model' }).first().waitFor({ timeout: 10_000 });
    await shot('07b-quick-fix');
    await page.keyboard.press('Enter');
    const settings = join(workspace, '.vscode', 'settings.json');
    const deadline = Date.now() + 15_000;
    while (!(existsSync(settings) && readFileSync(settings, 'utf8').includes('"ioi-demo"')) && Date.now() < deadline) await page.waitForTimeout(200);
    assert.match(readFileSync(settings, 'utf8'), /"attributionPatching\.model": "ioi-demo"/);
    // Every name is one token for the IOI model, and the file is its task: no problem is left.
    await waitForNoProblems(30_000);
    await page.locator('.statusbar-item', { hasText: 'AtP: ioi-demo' }).first().waitFor({ timeout: 10_000 });
    await shot('08-ioi-file-with-ioi-model');
  },
);
