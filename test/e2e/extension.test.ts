// End to end, in a real VS Code (code-server) driven by headless Chromium: install the packaged .vsix, open the
// example dataset, run "Attribution Patch Current File" from the palette, and check what the user sees: coloured
// tokens, a hover with the numbers, heatmap cells carrying the Result's values, linked selection, light and dark
// themes, restoring after a reload without rerunning, staleness after an edit, and diagnostics for a bad file.
// Screenshots of every step go to test-output/e2e/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { type Result } from '../../src/shared/result';
import { modelLabel } from '../../src/shared/modelNames';
import { readResultFile } from '../../src/lib/files/resultFile';
import { cellNumber, formatValue } from '../../src/shared/colorScale';
import { VISIBLE_FRACTION } from '../../src/shared/resultViews';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { requireWebGpu } from '../support/webgpu';
import {
  type CodeServer,
  colouredTokens,
  findFrame,
  openWorkbench,
  openFile as openFileInEditor,
  closeWorkbench,
  E2E_SKIP,
  e2eFolders,
  REPO,
  runCommand,
} from './support/codeServer';

const OUT = join(REPO, 'test-output', 'e2e');
const skip = E2E_SKIP;

let root: string;
let workspace: string;
let userDataDir: string;
let server: CodeServer | undefined;
let browser: Browser | undefined;
let page: Page;
const dataset = () => join(workspace, 'ioi.jsonl');
const resultFile = () => `${dataset()}.atp-result.json`;
const readResult = (): Result => readResultFile(resultFile());

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(OUT, `${name}.png`) });
}

const openFile = (name: string) => openFileInEditor(page, name);

async function waitForColours(minimum = 1, timeoutMs = 60_000): Promise<Awaited<ReturnType<typeof colouredTokens>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const spans = await colouredTokens(page);
    if (spans.length >= minimum) return spans;
    if (Date.now() > deadline) {
      await shot(`timeout-colours-${Date.now()}`);
      throw new Error(`no coloured tokens after ${timeoutMs} ms (${spans.length} of ${minimum} boxes)`);
    }
    await page.waitForTimeout(300);
  }
}

/** Lines with a coloured token under the default colours: examples whose token effect reaches 1% of the largest. */
function colouredLines(result: Result): number {
  const largest = Math.max(...result.examples.flatMap((e) => e.tokenScores!.values.map(Math.abs)));
  return result.examples.filter((e) => e.tokenScores!.values.some((v) => Math.abs(v) >= VISIBLE_FRACTION * largest)).length;
}

async function dismissNotifications(): Promise<void> {
  await runCommand(page, 'Notifications: Clear All Notifications').catch(() => undefined);
  await page.waitForTimeout(200);
}

async function setTheme(theme: string): Promise<void> {
  // The theme picker's own key chord (the palette's fuzzy match may pick "Browse Color Themes in Marketplace").
  // At the line's start: a click in the middle of a long line would scroll the editor sideways.
  await page
    .locator('.editor-instance .view-line')
    .first()
    .click({ position: { x: 2, y: 5 } });
  await page.keyboard.press('Control+K');
  await page.keyboard.press('Control+T');
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'High Contrast' }).first().waitFor({ timeout: 10_000 });
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.fill(theme);
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: theme }).first().waitFor({ timeout: 10_000 });
  await page.keyboard.press('Enter');
  await page.keyboard.press('Control+Home');
  const themeClass = theme.includes('High Contrast') ? (theme.includes('Light') ? 'hc-light' : 'hc-black') : theme.includes('Dark') ? 'vs-dark' : 'vs';
  await page.locator(`.monaco-workbench.${themeClass}`).waitFor({ timeout: 20_000 });
  await page.waitForTimeout(500);
}

before(async () => {
  const folders = e2eFolders('extension', OUT);
  if (!folders) return;
  ({ root, workspace } = folders);
  userDataDir = join(root, 'user-data');
  const extensionsDir = join(root, 'extensions');
  const model = join(root, 'model-gpt2-random');
  copyFileSync(join(REPO, 'examples', 'ioi.jsonl'), dataset());
  const lines = readFileSync(dataset(), 'utf8').split('\n');
  writeFileSync(join(workspace, 'mismatch.jsonl'), `${lines[0]}\n${lines[1].replace('John gave the bag', 'John-Paul gave the bag')}\n`);
  writeRandomGpt2(model, { nLayers: 2, nHeads: 4, dModel: 32, seed: 1 });

  // The model goes in the workspace settings, where "Select Model" writes (so that choosing the built-in model works).
  mkdirSync(join(workspace, '.vscode'), { recursive: true });
  writeFileSync(join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'attributionPatching.model': model }, null, 2));
  copyFileSync(join(REPO, 'examples', 'ioi.atp'), join(workspace, 'ioi.atp'));
  ({ server, browser, page } = await openWorkbench({ workspace, userDataDir, extensionsDir, out: OUT, settings: { 'editor.hover.delay': 200 } }));
});

after(() => closeWorkbench(server, browser, root, OUT));

test('the command from the palette colours every clean token and writes the Result next to the dataset', { skip, timeout: 180_000 }, async () => {
  await openFile('ioi.jsonl');
  await shot('01-dataset-open-light');
  await runCommand(page, 'Attribution Patch Current File');
  const deadline = Date.now() + 60_000;
  while (!existsSync(resultFile()) && Date.now() < deadline) await page.waitForTimeout(300);
  const result = readResult();
  const spans = await waitForColours(colouredLines(result));
  assert.equal(result.examples.length, 8);
  assert.ok(result.dataset.contentHash?.startsWith('sha256:'));
  // By default the colours are the exact effect of patching each token: only the differing token of each example
  // (" John"/" Mary") has one, every other token is exactly 0 and uncoloured, and so are effects under 1% of the
  // largest. (Touching tokens of the same colour step are drawn as one box, so count lines, not boxes.)
  // The default (auto) run's head map is exact patching of each head at the answer; the position maps estimate.
  assert.deepEqual({ ...result.methods, maps: undefined }, { attributions: 'atp', heads: 'exact', positions: 'atp', tokenScores: 'exact', maps: undefined });
  assert.deepEqual(result.methods?.maps?.heads, { method: 'exact', exactLayers: [] });
  assert.deepEqual(result.methods?.maps?.residPre, { method: 'atp', exactLayers: [0] }, 'resid_pre at layer 0 is the exact token effect');
  const largest = Math.max(...result.examples.flatMap((e) => e.tokenScores!.values.map(Math.abs)));
  for (const example of result.examples) assert.equal(example.tokenScores!.values.filter((v) => v !== 0).length, 1);
  const rows = new Set(spans.map((span) => Math.round(span.y)));
  assert.equal(rows.size, colouredLines(result), `coloured boxes on ${rows.size} lines`);
  assert.ok(colouredLines(result) >= 4);
  const statusBar = await page.locator('.statusbar-item', { hasText: 'AtP:' }).first().textContent();
  assert.match(statusBar ?? '', /AtP: .* · cpu · LD clean [+−]\d/);
  // The legend says what the colours are, that they are exact, and their scale.
  const legend = await page.locator('.statusbar-item', { hasText: 'token effect' }).first().textContent();
  assert.ok((legend ?? '').includes(`token effect · exact · ±${formatValue(largest).slice(1)}`), legend ?? '');
  await shot('02-tokens-coloured-light');
  await dismissNotifications();
});

test('hovering a token shows its numbers from the Result', { skip, timeout: 60_000 }, async () => {
  const result = readResult();
  const spans = await colouredTokens(page);
  const target = spans[0];
  await page.mouse.move(target.x + target.width / 2, target.y + target.height / 2);
  const hover = page.locator('.monaco-hover-content:visible', { hasText: 'Attribution patching' }).first();
  await hover.waitFor({ state: 'visible', timeout: 15_000 });
  const text = (await hover.textContent()) ?? '';
  const where = /position (\d+) of \d+ · example on line (\d+)/.exec(text);
  assert.ok(where, text);
  const example = result.examples.find((e) => e.line === Number(where[2]))!;
  const pos = Number(where[1]);
  const value = formatValue(example.tokenScores!.values[pos]);
  assert.ok(
    text.includes(`token effect (patching this token into the corrupted prompt): ${value} · exact`),
    `hover shows the exact token effect ${value}: ${text}`,
  );
  assert.match(text, /differs/);
  assert.match(text, /AtP estimates: each a linear estimate/);
  assert.match(text, /resid_pre/);
  assert.match(text, /top heads here: L\dH\d/);
  assert.ok(text.includes(`id ${example.tokens[pos].id}`));
  await page.waitForTimeout(600); // the hover fades in
  await shot('03-hover-light');
  await page.mouse.move(5, 5);
  await page.keyboard.press('Escape');
});

test('the heatmap panel shows cells carrying the Result values; clicking a head recolours the editor', { skip, timeout: 90_000 }, async () => {
  const result = readResult();
  await runCommand(page, 'Attribution Patching: Open Heatmap');
  const frame = await findFrame(page, 'rect[data-head]');
  const heads = await frame.$$eval('#heads-heatmap rect[data-head]', (cells) =>
    cells.map((c) => ({ layer: Number(c.getAttribute('data-layer')), head: Number(c.getAttribute('data-head')), value: Number(c.getAttribute('data-value')) })),
  );
  assert.equal(heads.length, result.model.layers * result.model.heads);
  for (const cell of heads) assert.equal(cell.value, result.heads[cell.layer][cell.head]);
  // auto picked AtP* (exact patching is over budget, the prompts are short): its query/key/value maps are shown.
  assert.equal(result.run!.method, 'atpstar');
  const queries = await frame.$$eval('#atpstar-query rect[data-head]', (cells) =>
    cells.map((c) => ({ layer: Number(c.getAttribute('data-layer')), head: Number(c.getAttribute('data-head')), value: Number(c.getAttribute('data-value')) })),
  );
  assert.equal(queries.length, result.model.layers * result.model.heads);
  for (const cell of queries) assert.equal(cell.value, result.atpStar!.maps.q[cell.layer][cell.head]);
  assert.equal(await frame.locator('#atpstar-key rect[data-head]').count(), result.model.layers * result.atpStar!.kvHeads);
  const positionCells = () =>
    frame.$$eval('rect[data-pos]', (cells) =>
      cells.map((c) => ({ layer: Number(c.getAttribute('data-layer')), pos: Number(c.getAttribute('data-pos')), value: Number(c.getAttribute('data-value')) })),
    );
  assert.ok(result.positions, 'the IOI prompts have one length');
  // Positions before the first differing token (9) are exactly 0 and folded away, with a note; a button shows them.
  const folded = await positionCells();
  assert.equal(Math.min(...folded.map((c) => c.pos)), 9);
  assert.equal(folded.length, result.model.layers * (result.positions![0].length - 9));
  assert.match((await frame.locator('#folded-positions').textContent()) ?? '', /Positions 0–8 are hidden: every value there is exactly 0/);
  await frame.click('#toggle-positions');
  await frame.locator('#toggle-positions', { hasText: 'Hide the zero positions' }).waitFor({ timeout: 10_000 });
  const positions = await positionCells();
  assert.equal(positions.length, result.model.layers * result.positions![0].length);
  for (const cell of positions) assert.equal(cell.value, result.positions![cell.layer][cell.pos]);
  // Every cell honest (issue #24): layer 0's resid_pre is the token patch, so at the changed token the map shows the
  // exact token effects (summed here; one example's against its colour below), and the row and the title say exact.
  const changed = result.examples[0].cleanIds.findIndex((id, pos) => id !== result.examples[0].corruptedIds[pos]);
  const effects = result.examples.map((e) => e.tokenScores!.values[changed]);
  const layer0 = positions.find((c) => c.layer === 0 && c.pos === changed)!;
  assert.ok(
    Math.abs(layer0.value - effects.reduce((a, b) => a + b, 0)) <= 1e-6,
    `L0 at ${changed}: ${layer0.value} vs the token effects ${effects.join(', ')}`,
  );
  assert.equal(await frame.locator('#positions-heatmap text.exact-row-mark[data-layer="0"]', { hasText: 'exact' }).count(), 1);
  assert.equal(await frame.locator('#positions-heatmap text.exact-row-mark').count(), 1, 'only layer 0 is exact');
  assert.match((await frame.locator('#positions-heatmap text.title').textContent()) ?? '', /hook_resid_pre.* — AtP estimate, L0 exact/);
  assert.match((await frame.locator(`#positions-heatmap rect[data-layer="0"][data-pos="${changed}"]`).getAttribute('class')) ?? '', /exact-row/);
  await frame.locator('#positions-heatmap').scrollIntoViewIfNeeded();
  await shot('04c-position-map-layer0-exact');
  const tokenLabels = await frame.$$eval('svg[data-kind="pos"] .column-labels text', (labels) =>
    labels.map((l) => ({ text: l.firstChild?.textContent ?? '', title: l.querySelector('title')?.textContent ?? '' })),
  );
  // Position 2 is " and" in every example; position 0 differs ("When", "After"): the first example's whole token,
  // with the others in its tooltip.
  assert.equal(tokenLabels[2].text, ' and');
  assert.equal(tokenLabels[2].title, 'pos 2 " and"');
  assert.equal(tokenLabels[0].text, 'When');
  assert.match(tokenLabels[0].title, /^pos 0 "When"; other examples: .*"After"/);

  // A map wider than the panel scrolls sideways; its row labels and title stay in view.
  const scroll = await frame.$eval('#positions-heatmap', (section) => ({ scrollWidth: section.scrollWidth, clientWidth: section.clientWidth }));
  assert.ok(scroll.scrollWidth > scroll.clientWidth + 100, `the position map is wider than the panel: ${JSON.stringify(scroll)}`);
  await frame.$eval('#positions-heatmap', (section) => section.scrollTo({ left: section.scrollWidth }));
  await page.waitForTimeout(300);
  // A string, evaluated in the webview (this project's type check has no DOM library).
  const pinned = (await frame.evaluate(`(() => {
    const section = document.getElementById('positions-heatmap');
    const box = section.getBoundingClientRect();
    const label = section.querySelector('.row-label[data-layer="1"]').getBoundingClientRect();
    const title = section.querySelector('text.title').getBoundingClientRect();
    const legend = section.querySelector('.legend-bar').getBoundingClientRect();
    // What is drawn at the label's centre: the label itself, not a cell scrolled under it.
    const top = document.elementFromPoint(label.x + label.width / 2, label.y + label.height / 2);
    return { scrollLeft: section.scrollLeft, left: box.left, right: box.right, label: label.left, labelRight: label.right, title: title.left, legend: legend.left, legendRight: legend.right, onTop: top ? top.closest('.row-labels') !== null : false };
  })()`)) as {
    scrollLeft: number;
    left: number;
    right: number;
    label: number;
    labelRight: number;
    title: number;
    legend: number;
    legendRight: number;
    onTop: boolean;
  };
  assert.ok(pinned.scrollLeft > 100, JSON.stringify(pinned));
  assert.ok(pinned.label >= pinned.left && pinned.labelRight <= pinned.right, `row label in view: ${JSON.stringify(pinned)}`);
  assert.ok(pinned.title >= pinned.left - 1, `title in view: ${JSON.stringify(pinned)}`);
  assert.ok(pinned.onTop, 'the row label is drawn over the scrolled cells');
  assert.ok(pinned.legend >= pinned.left && pinned.legendRight <= pinned.right, `legend in view: ${JSON.stringify(pinned)}`);
  await shot('04a-positions-scrolled');

  // Exported with every position: the header names the run, and nothing is cut off at the right.
  await frame.click('#export-svg');
  await page.locator('.quick-input-widget .quick-input-box input').waitFor({ state: 'visible', timeout: 15_000 });
  await page.waitForTimeout(300);
  await page.keyboard.press('Enter');
  const exported = join(workspace, 'ioi.heatmap.all.svg');
  const exportDeadline = Date.now() + 15_000;
  while (!existsSync(exported) && Date.now() < exportDeadline) await page.waitForTimeout(200);
  const svgText = readFileSync(exported, 'utf8');
  copyFileSync(exported, join(OUT, '04b-export-ioi-wide.svg'));
  assert.ok(svgText.includes(`Dataset: ${dataset()}`), 'the dataset in the header');
  assert.ok(svgText.includes(`Model: ${modelLabel(result.model.source)}`), 'the model in the header, by its name');
  assert.ok(svgText.includes(`Examples: all ${result.examples.length} examples, summed`));
  assert.ok(svgText.includes(`Baselines: logit difference clean ${formatValue(result.metric.cleanLogitDiff)}`));
  assert.match(svgText, /Heatmaps: head map exact \(activation patching\), position maps AtP estimate/);
  const outerWidth = Number(/^<svg[^>]*\swidth="([\d.]+)"/.exec(svgText)![1]);
  const charts = [...svgText.matchAll(/<svg [^>]*class="heatmap"[^>]*>/g)].map((m) => ({
    x: Number(/\sx="([\d.]+)"/.exec(m[0])![1]),
    width: Number(/\swidth="([\d.]+)"/.exec(m[0])![1]),
    kind: /data-kind="(\w+)"/.exec(m[0])![1],
  }));
  assert.ok(charts.some((c) => c.kind === 'pos'));
  for (const chart of charts)
    assert.ok(chart.x >= 0 && chart.x + chart.width <= outerWidth, `chart inside the image: ${JSON.stringify(chart)} in ${outerWidth}`);
  assert.equal((svgText.match(/data-pos=/g) ?? []).length, result.model.layers * result.positions![0].length);
  await dismissNotifications();

  // Mean over examples: the sums / 8, said in the title; back to the sums (the default).
  await frame.click('#toggle-aggregate');
  await frame.locator('#heads-heatmap text.title', { hasText: `mean over ${result.examples.length} examples` }).waitFor({ timeout: 10_000 });
  const means = await frame.$$eval('#heads-heatmap rect[data-head]', (cells) =>
    cells.map((c) => ({ layer: Number(c.getAttribute('data-layer')), head: Number(c.getAttribute('data-head')), value: Number(c.getAttribute('data-value')) })),
  );
  for (const cell of means) assert.equal(cell.value, result.heads[cell.layer][cell.head] / result.examples.length);
  assert.match((await frame.locator('#baselines').textContent()) ?? '', /mean over 8 examples/);
  await frame.click('#toggle-aggregate');
  await frame.locator('#heads-heatmap text.title', { hasText: 'summed over examples' }).waitFor({ timeout: 10_000 });
  // Numbers in the cells, on request: one per head cell, the cell's value in two significant figures.
  await frame.click('#toggle-numbers');
  await frame.locator('#heads-heatmap text.cell-value').first().waitFor({ timeout: 10_000 });
  const written = await frame.$$eval('#heads-heatmap text.cell-value', (texts) => texts.map((t) => t.textContent));
  assert.deepEqual(
    written,
    result.heads.flatMap((row) => row.map(cellNumber)),
  );
  await page.waitForTimeout(300);
  await shot('04b-heatmap-numbers');
  await frame.click('#toggle-numbers');
  await frame.locator('#heads-heatmap text.cell-value').first().waitFor({ state: 'detached', timeout: 10_000 });
  await page.waitForTimeout(500);
  await shot('04-heatmap-light');

  const before = (await colouredTokens(page)).map((s) => s.background).join();
  await frame.click('#heads-heatmap rect[data-layer="1"][data-head="2"]');
  await frame.locator('#selection-label', { hasText: 'L1H2' }).waitFor({ timeout: 10_000 });
  const deadline = Date.now() + 10_000;
  let after = before;
  while (after === before && Date.now() < deadline) {
    await page.waitForTimeout(200);
    after = (await colouredTokens(page)).map((s) => s.background).join();
  }
  assert.notEqual(after, before, 'the editor colours follow the head chosen in the panel');
  await shot('05-head-selected-light');

  // Keyboard: arrows move the focus between cells, Enter selects.
  await frame.focus('#heads-heatmap rect[data-layer="0"][data-head="0"]');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await frame.locator('#selection-label', { hasText: 'L1H1' }).waitFor({ timeout: 10_000 });

  // A key node colours the editor by that key at every token.
  await frame.click('#atpstar-key rect[data-layer="0"][data-head="1"]');
  await frame.locator('#selection-label', { hasText: 'L0 key KV1' }).waitFor({ timeout: 10_000 });
  // Back to the token effects.
  await frame.click('#show-token');
  await frame.locator('#selection-label', { hasText: 'token effect' }).waitFor();
  assert.match(
    (await frame.locator('#method-line').textContent()) ?? '',
    /Heatmaps: head map exact \(activation patching\), position maps AtP estimate .* token colours: exact/,
  );
});

test('Check top 5 reruns with exact checks: a scatter of AtP against exact, and the checked cells outlined', { skip, timeout: 120_000 }, async () => {
  const frame = await findFrame(page, 'rect[data-head]');
  await frame.click('#check-top');
  await frame.locator('#check-scatter').waitFor({ timeout: 60_000 });
  const result = readResult();
  const checks = result.checks!;
  assert.equal(checks.k, 5);
  // Per estimated map: 5 top and up to 5 random cells (the head map is exact and resid_pre's layer 0 is the exact
  // token effect, so neither is checked).
  const { layers } = result.model;
  const length = result.positions![0].length;
  assert.deepEqual(
    checks.maps!.map((m) => [m.map, m.count]),
    [
      ['residPre', Math.min(10, (layers - 1) * length)],
      ['attnOut', Math.min(10, layers * length)],
      ['mlpOut', Math.min(10, layers * length)],
    ],
  );
  assert.ok(!checks.items.some((i) => i.hook === 'resid_pre' && i.layer === 0));
  const points = await frame.$$eval('#check-scatter circle.point', (circles) =>
    circles.map((c) => ({ attribution: Number(c.getAttribute('data-attribution')), exact: Number(c.getAttribute('data-exact')) })),
  );
  assert.deepEqual(
    points,
    checks.items.map((i) => ({ attribution: i.attribution, exact: i.exact })),
  );
  const agreement = (await frame.locator('#check-agreement').textContent()) ?? '';
  assert.ok(agreement.includes(`Pearson ${checks.pearson.toFixed(3)} · Spearman ${checks.spearman.toFixed(3)}`), agreement);
  // Each map's agreement, led by its error; the map titles carry it too.
  const perMap = await frame.$$eval('#check-agreement-maps li', (items) => items.map((li) => li.textContent ?? ''));
  assert.equal(perMap.length, 3);
  assert.match(perMap[0], /^hook_resid_pre: max error \d+(\.\d)?% of the largest exact · top cell -?\d+\.\d\d× exact · Pearson/);
  assert.match((await frame.locator('#heads-heatmap text.title').textContent()) ?? '', /— exact \(activation patching\)/);
  assert.match((await frame.locator('#positions-heatmap text.title').textContent()) ?? '', /L0 exact · checked: max error \d/);
  // The scatter's axes carry values and names.
  assert.ok((await frame.locator('#check-scatter .x-axis .tick text').count()) >= 2);
  assert.ok((await frame.locator('#check-scatter .y-axis .tick text').count()) >= 2);
  assert.equal(await frame.locator('#check-scatter text.axis-label', { hasText: 'exact (activation patching)' }).count(), 1);
  // Outlined cells carry the exact value of their check; every check of a head or a resid_pre cell is outlined.
  const outlinedCells = () =>
    frame.$$eval('#heads-heatmap rect.cell.checked, #positions-heatmap rect.cell.checked', (cells) =>
      cells.map((c) => ({
        layer: Number(c.getAttribute('data-layer')),
        head: c.getAttribute('data-head'),
        pos: c.getAttribute('data-pos'),
        exact: Number(c.getAttribute('data-exact')),
        value: Number(c.getAttribute('data-value')),
        signDiffers: c.getAttribute('data-sign-differs') === 'true',
      })),
    );
  const outlined = await outlinedCells();
  // The head map and the position map shown (resid_pre): their checks, each outlined.
  assert.equal(outlined.length, checks.items.filter((i) => i.hook === 'z' || i.hook === 'resid_pre').length);
  for (const cell of outlined) {
    const item = checks.items.find(
      (i) =>
        i.layer === cell.layer &&
        (cell.head !== null ? i.hook === 'z' && i.head === Number(cell.head) : i.hook === 'resid_pre' && i.position === Number(cell.pos)),
    );
    assert.ok(item, `a check for the outlined cell ${JSON.stringify(cell)}`);
    assert.equal(cell.exact, item.exact);
    // Shown in place: the cell's value is the exact one, and a sign that differs is flagged in the cell.
    assert.equal(cell.value, item.exact);
    assert.equal(cell.signDiffers, item.signDiffers === true);
  }
  assert.equal(await frame.locator('#heads-heatmap text.sign-flag, #positions-heatmap text.sign-flag').count(), outlined.filter((c) => c.signDiffers).length);
  await shot('05a-checked-exact-in-place');
  // One click: the estimates back in the checked cells, and the title says so; another: exact again.
  await frame.click('#toggle-checked');
  await frame.locator('#toggle-checked', { hasText: 'Checked cells: estimates (show exact)' }).waitFor({ timeout: 10_000 });
  for (const cell of await outlinedCells()) {
    const item = checks.items.find(
      (i) =>
        i.layer === cell.layer &&
        (cell.head !== null ? i.hook === 'z' && i.head === Number(cell.head) : i.hook === 'resid_pre' && i.position === Number(cell.pos)),
    )!;
    assert.equal(cell.value, item.attribution);
  }
  assert.match((await frame.locator('#positions-heatmap text.title').textContent()) ?? '', /checked cells show their estimate/);
  await frame.click('#toggle-checked');
  await frame.locator('#toggle-checked', { hasText: 'Checked cells: exact (show estimates)' }).waitFor({ timeout: 10_000 });
  assert.ok((await frame.locator('#check-disagreements li').count()) === 5);
  // With the panel focused, the legend still describes the dataset editor beside it.
  await page.locator('.statusbar-item', { hasText: 'token effect · exact' }).first().waitFor({ timeout: 10_000 });
  await frame.locator('#check-scatter').scrollIntoViewIfNeeded();
  await page.waitForTimeout(400);
  await shot('05b-checks-scatter');
  await dismissNotifications();
});

test('choosing an example in the panel highlights its line and colours it alone, on its own scale; the legend says so', { skip, timeout: 60_000 }, async () => {
  const result = readResult();
  await page.locator('.tab', { hasText: 'ioi.jsonl' }).first().click();
  const frame = await findFrame(page, 'rect[data-head]');
  const before = await waitForColours(colouredLines(result), 15_000);
  // An example whose token effect is not the file's largest: on its own scale its colour gets stronger.
  const largest = Math.max(...result.examples.flatMap((e) => e.tokenScores!.values.map(Math.abs)));
  const index = result.examples.findIndex((e) => {
    const top = Math.max(...e.tokenScores!.values.map(Math.abs));
    return top >= VISIBLE_FRACTION * largest && top < 0.75 * largest;
  });
  assert.ok(index >= 0, 'an example with a weaker token effect');
  const example = result.examples[index];
  await frame.$eval(
    '#example-picker',
    (picker, value) => {
      (picker as unknown as { value: string }).value = value;
      picker.dispatchEvent(new Event('change'));
    },
    String(index),
  );
  try {
    await frame.locator('#baselines', { hasText: `Example line ${example.line}` }).waitFor({ timeout: 10_000 });
    await page
      .locator('.statusbar-item', { hasText: `line ${example.line} only` })
      .first()
      .waitFor({ timeout: 10_000 });
    // Only the chosen example's line keeps colours, and its token is drawn in a stronger colour than before.
    // Word wrap may split the example's token over two rows of its line: "one line" is boxes no more than a row apart.
    const oneLine = (spans: typeof before) =>
      spans.length > 0 && Math.max(...spans.map((b) => b.y)) - Math.min(...spans.map((b) => b.y)) <= spans[0].height + 1;
    let after = before;
    const deadline = Date.now() + 10_000;
    while (!oneLine(after) && Date.now() < deadline) {
      await page.waitForTimeout(200);
      after = await colouredTokens(page);
    }
    await shot('05c-example-chosen');
    assert.ok(oneLine(after) && after.length < before.length, `one coloured line: ${JSON.stringify(after)}; before ${JSON.stringify(before)}`);
    // The position map of this example: its layer-0 cell at the changed token is that token's exact effect, with the
    // sign of its colour in the editor (blue positive, red negative), in the row marked exact.
    const changed = example.cleanIds.findIndex((id, pos) => id !== example.corruptedIds[pos]);
    const effect = example.tokenScores!.values[changed];
    const cell = frame.locator(`#positions-heatmap rect[data-layer="0"][data-pos="${changed}"]`);
    await cell.waitFor({ timeout: 10_000 });
    const shown = Number(await cell.getAttribute('data-value'));
    assert.ok(Math.abs(shown - effect) <= 1e-6, `L0 at ${changed}: ${shown} vs the token effect ${effect}`);
    const blue = ['rgba(33, 102, 172,', 'rgba(67, 147, 195,'];
    const hues = after.map((box) => (blue.some((hue) => box.background.startsWith(hue)) ? 1 : -1));
    assert.ok(hues.length > 0 && hues.every((sign) => sign === Math.sign(shown)), `the token's colour ${JSON.stringify(after)} vs the cell ${shown}`);
    assert.equal(await frame.locator('#positions-heatmap text.exact-row-mark[data-layer="0"]').count(), 1);
    assert.match((await frame.locator('#positions-heatmap text.title').textContent()) ?? '', /AtP estimate, L0 exact/);
    for (const box of after) {
      const was = before.find((b) => b.x === box.x && b.y === box.y);
      assert.ok(was, `the chosen example was coloured before at ${box.x},${box.y}`);
      assert.notEqual(box.background, was.background, "recoloured on the example's own scale");
    }
    // The whole line is highlighted (a decoration as wide as the editor's text area, over the coloured token).
    const top = Math.min(...after.map((b) => b.y));
    const highlighted = await page.evaluate(`
      Array.from(document.querySelectorAll('.editor-instance .view-overlays .cdr'))
        .map((box) => box.getBoundingClientRect())
        .some((r) => r.top <= ${top} + 1 && r.bottom >= ${top} + ${after[0].height} - 1 && r.width > 300)
    `);
    assert.ok(highlighted, "the chosen example's line is highlighted");
  } finally {
    // Back to all examples (also after a failure: the later tests colour the whole file).
    await frame.$eval('#example-picker', (picker) => {
      (picker as unknown as { value: string }).value = 'all';
      picker.dispatchEvent(new Event('change'));
    });
  }
  await waitForColours(colouredLines(result), 15_000);
  await page
    .locator('.statusbar-item', { hasText: `line ${example.line} only` })
    .first()
    .waitFor({ state: 'detached', timeout: 10_000 });
});

test('dark theme: editor colours and heatmap read on a dark background', { skip, timeout: 90_000 }, async () => {
  await setTheme('Dark Modern');
  const frame = await findFrame(page, 'rect[data-head]');
  await frame.locator('#heads-heatmap').scrollIntoViewIfNeeded();
  await page.waitForTimeout(300);
  await shot('06-heatmap-dark');
  assert.ok(await frame.$('rect[data-head]'));
  // The editor next to the panel: hover a token there too.
  // The leftmost box: with the panel beside it, the editor is narrow and later tokens are scrolled out of view.
  const spans = await waitForColours(colouredLines(readResult()), 20_000);
  const target = [...spans].sort((a, b) => a.x - b.x)[0];
  await page.mouse.move(target.x + target.width / 2, target.y + target.height / 2);
  await page.locator('.monaco-hover-content:visible', { hasText: 'Attribution patching' }).first().waitFor({ state: 'visible', timeout: 15_000 });
  await page.waitForTimeout(600);
  await shot('07-hover-dark');
  await page.mouse.move(5, 5);
  await page.keyboard.press('Escape');
  // High contrast: the same colours over a black background, cells outlined by the theme's contrast border.
  await setTheme('Dark High Contrast');
  await waitForColours(colouredLines(readResult()), 20_000);
  await shot('07b-high-contrast');
  await setTheme('Light Modern');
});

test('after a reload the saved result restores the colours and the panel without rerunning', { skip, timeout: 90_000 }, async () => {
  const written = statSync(resultFile()).mtimeMs;
  // The workbench's own reload, which saves the panel's last state first as desktop VS Code does (a bare page reload
  // can restore a state from before the last scope change, which the web workbench had not flushed yet).
  await runCommand(page, 'Developer: Reload Window');
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  await page.locator('.tab', { hasText: 'ioi.jsonl' }).first().click();
  await waitForColours(colouredLines(readResult()));
  const frame = await findFrame(page, 'rect[data-head]', 45_000);
  assert.ok(await frame.$('rect[data-pos]'));
  assert.equal(statSync(resultFile()).mtimeMs, written, 'no rerun');
  await shot('08-restored-after-reload');
});

test("editing the dataset marks the result stale and hides the colours; the banner's Re-run runs it again", { skip, timeout: 120_000 }, async () => {
  await page.locator('.tab', { hasText: 'ioi.jsonl' }).first().click();
  await page
    .locator('.editor-instance .view-line')
    .first()
    .click({ position: { x: 2, y: 5 } });
  await page.keyboard.press('Control+End');
  await page.keyboard.type('\n');
  await page.locator('.statusbar-item', { hasText: 'stale' }).first().waitFor({ timeout: 15_000 });
  assert.equal((await colouredTokens(page)).length, 0);
  const frame = await findFrame(page, '#stale-banner', 15_000);
  assert.ok(await frame.$('#stale-banner'));
  await shot('09-stale');
  // Undo: the text hashes to the run's again, and the colours come back.
  await page.keyboard.press('Control+Z');
  await page.keyboard.press('Control+Home');
  await page.locator('.statusbar-item', { hasText: 'stale' }).first().waitFor({ state: 'detached', timeout: 15_000 });
  await waitForColours(colouredLines(readResult()), 15_000);

  // Edited again: the banner's Re-run button runs the dataset as it is now, and the result is current again.
  const written = statSync(resultFile()).mtimeMs;
  await page.keyboard.press('Control+End');
  await page.keyboard.type('\n');
  await page.locator('.statusbar-item', { hasText: 'stale' }).first().waitFor({ timeout: 15_000 });
  await frame.locator('#stale-banner #rerun').waitFor({ timeout: 15_000 });
  await frame.click('#stale-banner #rerun');
  await page.locator('.statusbar-item', { hasText: 'stale' }).first().waitFor({ state: 'detached', timeout: 60_000 });
  await frame.locator('#stale-banner').waitFor({ state: 'detached', timeout: 15_000 });
  assert.ok(statSync(resultFile()).mtimeMs > written, 'the Result was written again');
  await waitForColours(colouredLines(readResult()), 15_000);
  await shot('09b-rerun-from-stale-banner');
  await dismissNotifications();
  // The editor group gets the focus back from the panel: the next files open there, not beside it.
  await page.locator('.tab', { hasText: 'ioi.jsonl' }).first().click();
});

test('a token-count mismatch becomes an error diagnostic at the corrupted prompt', { skip, timeout: 60_000 }, async () => {
  await openFile('mismatch.jsonl');
  await runCommand(page, 'Attribution Patch Current File');
  await page.locator('.editor-instance .squiggly-error').first().waitFor({ timeout: 30_000 });
  await runCommand(page, 'View: Focus Problems');
  const problems = page.locator('.markers-panel .monaco-list-row', { hasText: 'tokens' }).first();
  await problems.waitFor({ timeout: 15_000 });
  assert.match((await problems.textContent()) ?? '', /corrupted prompt/);
  await shot('10-diagnostic');
});

test('.atp prompts: tokens are coloured through the {clean|corrupted} spans', { skip, timeout: 60_000 }, async () => {
  await openFile('ioi.atp');
  await runCommand(page, 'Attribution Patch Current File');
  const atpResult = join(workspace, 'ioi.atp.atp-result.json');
  const deadline = Date.now() + 30_000;
  while (!existsSync(atpResult) && Date.now() < deadline) await page.waitForTimeout(300);
  const result = readResultFile(atpResult);
  assert.equal(result.examples.length, 8);
  const spans = await waitForColours(colouredLines(result), 30_000);
  const rows = new Set(spans.map((span) => Math.round(span.y)));
  assert.equal(rows.size, colouredLines(result), 'one coloured line per visible example (comment lines stay plain)');
  await dismissNotifications();
  await shot('11-atp-coloured');
});

test('walkthrough path: the built-in demo model on the example dataset, and the run listed in the sidebar', { skip, timeout: 90_000 }, async () => {
  await runCommand(page, 'Attribution Patching: Open Example Dataset');
  await page.locator('.tab.active[aria-label*="tinysql-cs1.jsonl"]').waitFor({ timeout: 15_000 });
  await runCommand(page, 'Attribution Patching: Select Model');
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Built-in TinySQL demo model' }).first().click();
  // The result shown is still the random GPT-2's: the status bar says that the next run uses another model.
  await page.locator('.statusbar-item', { hasText: 'result of model-gpt2-random; next run uses tinysql-demo' }).first().waitFor({ timeout: 10_000 });
  await page.waitForTimeout(500);
  await runCommand(page, 'Attribution Patch Current File');
  // Wrapped JSONL lines with CodeLenses beside the panel leave room for few examples on screen: one box will do.
  await waitForColours(1, 60_000);
  await page.locator('.statusbar-item', { hasText: 'AtP: tinysql-demo' }).first().waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('.statusbar-item', { hasText: 'next run uses' }).count(), 0);
  const file = join(workspace, 'tinysql-cs1.jsonl.atp-result.json');
  const result = readResultFile(file);
  assert.match(result.model.source, /tinysql-demo/);
  assert.equal(result.model.layers, 4);
  await dismissNotifications();
  await page.locator('.activitybar .action-item a[aria-label*="Attribution Patching"]').first().click();
  const runs = page.locator('.pane-body .monaco-list-row', { hasText: 'tinysql-cs1.jsonl' }).first();
  await runs.waitFor({ timeout: 15_000 });
  assert.ok(await page.locator('.pane-body .monaco-list-row', { hasText: 'Model: built-in demo' }).count());
  await runCommand(page, 'Attribution Patching: Open Heatmap');
  const frame = await findFrame(page, 'rect[data-head="3"]');
  await page.waitForTimeout(500);
  await shot('12-walkthrough-sidebar-heatmap');

  // Exports: the save dialog (VS Code's own, in the browser) proposes a file next to the dataset; accept it.
  const exportAndAccept = async (button: string, name: string) => {
    await frame.click(button);
    await page.locator('.quick-input-widget .quick-input-box input').waitFor({ state: 'visible', timeout: 15_000 });
    await page.waitForTimeout(300);
    await page.keyboard.press('Enter');
    const target = join(workspace, name);
    const deadline = Date.now() + 15_000;
    while (!existsSync(target) && Date.now() < deadline) await page.waitForTimeout(200);
    assert.ok(existsSync(target), `${name} exported`);
    copyFileSync(target, join(OUT, `13-export-${name}`));
  };
  await exportAndAccept('#export-svg', 'tinysql-cs1.heatmap.all.svg');
  await exportAndAccept('#export-png', 'tinysql-cs1.heatmap.all.png');
  const svg = readFileSync(join(workspace, 'tinysql-cs1.heatmap.all.svg'), 'utf8');
  assert.match(svg, /^<svg/);
  // The head map and AtP*'s query, key and value maps (auto runs AtP* on these short prompts), 4 × 4 each.
  assert.equal((svg.match(/data-head=/g) ?? []).length, 4 * 16);
  assert.deepEqual([...readFileSync(join(workspace, 'tinysql-cs1.heatmap.all.png')).subarray(1, 4)], [...Buffer.from('PNG')]);
  assert.ok(svg.includes('Examples: all ') && svg.includes('Model: ') && svg.includes('Baselines: '), 'the export names its run');
  // CSV exports: the token values the editor shows, and the head map's cells (the sums).
  await exportAndAccept('#export-tokens-csv', 'tinysql-cs1.tokens.all.csv');
  await exportAndAccept('#export-maps-csv', 'tinysql-cs1.maps.all.csv');
  const tokenRows = readFileSync(join(workspace, 'tinysql-cs1.tokens.all.csv'), 'utf8').trimEnd().split('\r\n');
  assert.equal(tokenRows[0], 'line,position,token,token_id,corrupted_token,selection,value,method,exact');
  assert.equal(
    tokenRows.length - 1,
    result.examples.reduce((sum, e) => sum + e.tokens.length, 0),
  );
  const mapRows = readFileSync(join(workspace, 'tinysql-cs1.maps.all.csv'), 'utf8')
    .trimEnd()
    .split('\r\n')
    .slice(1)
    .map((row) => row.split(','));
  const headRows = mapRows.filter((row) => row[0] === 'heads');
  assert.equal(headRows.length, 16);
  for (const row of headRows) assert.equal(Number(row[7]), result.heads[Number(row[2])][Number(row[3])]);
});

test('a Result merged from shards by the command line opens as current in the editor and says it was merged', { skip, timeout: 120_000 }, async () => {
  const dataset = join(workspace, 'ioi-merged.jsonl');
  copyFileSync(join(REPO, 'examples', 'ioi.jsonl'), dataset);
  const cli = (...args: string[]) => {
    const run = spawnSync(process.execPath, [join(REPO, 'dist', 'cli.js'), ...args], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
  };
  const model = join(root, 'model-gpt2-random');
  const shards = [1, 2].map((i) => join(root, `shard-${i}.json`));
  shards.forEach((file, i) => cli('patch', '--shard', `${i + 1}/2`, '--model', model, '--data', dataset, '--out', file, '--device', 'cpu', '--method', 'atp'));
  cli('merge', ...shards, '--out', `${dataset}.atp-result.json`);
  // The Explorer row by its exact name (Quick Open would also offer the result file).
  await runCommand(page, 'View: Show Explorer');
  const row = page.locator('.explorer-folders-view .monaco-list-row[aria-label="ioi-merged.jsonl"]').first();
  await row.waitFor({ timeout: 15_000 });
  await row.click();
  await page.locator('.tab.active[aria-label*="ioi-merged.jsonl"]').waitFor({ timeout: 15_000 });
  await waitForColours(1, 30_000);
  assert.equal(await page.locator('.statusbar-item', { hasText: 'stale' }).count(), 0, "current: the command line stored the text's hash");
  await runCommand(page, 'Attribution Patching: Open Heatmap');
  const frame = await findFrame(page, '#method-line');
  await frame.locator('#method-line', { hasText: 'merged from 2 shards (atp merge)' }).waitFor({ timeout: 15_000 });
  // The status bar follows the result the panel now shows (the random GPT-2's, not the previous tinysql run's).
  await page.locator('.statusbar-item', { hasText: 'model-gpt2-random' }).first().waitFor({ timeout: 10_000 });
  await shot('13b-merged-result');
});

test('with the device set to webgpu the run happens on WebGPU (SwiftShader here) and the Result says where', { skip, timeout: 120_000 }, async (t) => {
  if (!(await requireWebGpu(t))) return;
  const settingsFile = join(workspace, '.vscode', 'settings.json');
  const previous = readFileSync(settingsFile, 'utf8');
  // The random GPT-2 again (the walkthrough test chose the built-in model, whose tokenizer does not fit IOI).
  writeFileSync(
    settingsFile,
    JSON.stringify({ ...JSON.parse(previous), 'attributionPatching.model': join(root, 'model-gpt2-random'), 'attributionPatching.device': 'webgpu' }, null, 2),
  );
  try {
    await page.waitForTimeout(1500);
    // Its tab is usually still open from the first tests; Quick Open also lists the result file by that name.
    const tab = page.locator('.tab', { hasText: 'ioi.jsonl' });
    if ((await tab.count()) > 0) await tab.first().click();
    else await openFile('ioi.jsonl');
    await page.locator('.tab.active[aria-label*="ioi.jsonl"]').waitFor({ timeout: 15_000 });
    const before = statSync(resultFile()).mtimeMs;
    await runCommand(page, 'Attribution Patch Current File');
    const deadline = Date.now() + 90_000;
    while (statSync(resultFile()).mtimeMs === before && Date.now() < deadline) await page.waitForTimeout(300);
    const result = readResult();
    assert.equal(result.device, 'webgpu');
    assert.equal(result.runtime?.provider, 'WebGpuExecutionProvider');
    assert.ok((result.runtime?.placement?.WebGpuExecutionProvider ?? 0) > 0, JSON.stringify(result.runtime));
    await waitForColours(1, 30_000);
    await shot('14-webgpu-run');
  } finally {
    writeFileSync(settingsFile, previous);
  }
});

test('with the precision set to float16 the run computes in mixed precision; the Result and the status bar say so', { skip, timeout: 120_000 }, async () => {
  const settingsFile = join(workspace, '.vscode', 'settings.json');
  const previous = readFileSync(settingsFile, 'utf8');
  writeFileSync(
    settingsFile,
    JSON.stringify(
      {
        ...JSON.parse(previous),
        'attributionPatching.model': join(root, 'model-gpt2-random'),
        'attributionPatching.device': 'cpu',
        'attributionPatching.precision': 'float16',
      },
      null,
      2,
    ),
  );
  try {
    await page.waitForTimeout(1500);
    const tab = page.locator('.tab', { hasText: 'ioi.jsonl' });
    if ((await tab.count()) > 0) await tab.first().click();
    else await openFile('ioi.jsonl');
    // The dataset's own tab (the heatmap panel's tab, "Attribution: ioi.jsonl", may be active in its group too).
    await page.locator('.tab.active[data-resource-name="ioi.jsonl"]').waitFor({ timeout: 15_000 });
    const before = statSync(resultFile()).mtimeMs;
    await runCommand(page, 'Attribution Patch Current File');
    const deadline = Date.now() + 90_000;
    while (statSync(resultFile()).mtimeMs === before && Date.now() < deadline) await page.waitForTimeout(300);
    const result = readResult();
    assert.equal(result.runtime?.precision, 'float16');
    assert.ok(result.runtime?.lossScale, 'the loss scales are recorded');
    await waitForColours(1, 30_000);
    await page.locator('.statusbar-item', { hasText: '· cpu float16 ·' }).first().waitFor({ timeout: 10_000 });
  } finally {
    writeFileSync(settingsFile, previous);
  }
});
