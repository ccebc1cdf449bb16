// End to end, in code-server: a Result with a circuit (a real `atp patch` run of the built-in TinySQL demo model,
// plus a hand-made circuit over its 4 × 4 heads: the engine's `atp circuit` is built elsewhere) opens with the circuit
// view in the heatmap panel; the slider changes the edges drawn and the faithfulness shown (measured, interpolated
// and labelled so); clicking a node, or Enter on it, recolours the editor; the circuit exports as SVG and EAP-IG JSON. Screenshots go to test-output/e2e-circuit/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Frame, Page } from 'playwright-core';
import { topEdges, type Circuit } from '../../src/shared/circuit';
import { parseResult, serializeResult } from '../../src/shared/result';
import { readResultFile } from '../../src/lib/files/resultFile';
import { toEapIgJson } from '../../src/shared/circuitFormats';
import { syntheticCircuit } from '../support/circuitFixture';
import { requireBuiltCli, runCli } from '../support/cli';
import {
  type CodeServer,
  closeWorkbench,
  colouredTokens,
  findFrame,
  E2E_SKIP,
  e2eFolders,
  openFile,
  openWorkbench,
  REPO,
  runCommand,
} from './support/codeServer';

const OUT = join(REPO, 'test-output', 'e2e-circuit');
const skip = E2E_SKIP;

let root: string;
let workspace: string;
let server: CodeServer | undefined;
let browser: Browser | undefined;
let page: Page;
let circuit: Circuit;
const DATASET = 'tinysql-cs1.jsonl';

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(OUT, `${name}.png`) });
}

async function editorColours(): Promise<string> {
  return (await colouredTokens(page)).map((box) => `${box.background}@${Math.round(box.x)},${Math.round(box.y)}`).join(';');
}

async function waitForChange(previous: string, what: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = await editorColours();
    if (now !== previous && now !== '') return now;
    if (Date.now() > deadline) throw new Error(`the editor colours did not change after ${what}`);
    await page.waitForTimeout(200);
  }
}

const faithfulness = (frame: Frame) => frame.locator('#circuit-faithfulness').textContent();
/** Sets the range input as a drag does (Playwright cannot fill a range), firing its input event. */
const setSlider = (frame: Frame, value: number) =>
  // A string, evaluated in the page (this project's type check has no DOM library).
  frame.evaluate(
    `(() => { const input = document.getElementById('circuit-edges'); input.value = '${value}'; input.dispatchEvent(new Event('input', { bubbles: true })); })()`,
  );
const drawnEdges = (frame: Frame) => frame.$$eval('#circuit-graph path.edge', (paths) => paths.length);

before(async () => {
  const folders = e2eFolders('circuit', OUT);
  if (!folders) return;
  ({ root, workspace } = folders);
  requireBuiltCli();
  const dataset = join(workspace, DATASET);
  copyFileSync(join(REPO, 'examples', DATASET), dataset);
  // For "Find Circuit…": there from the start, so that Quick Open's file index has it.
  copyFileSync(join(REPO, 'examples', DATASET), join(workspace, 'find-circuit.jsonl'));
  const resultFile = `${dataset}.atp-result.json`;
  const run = runCli(join(root, 'cache'), [
    'patch',
    '--model',
    join(REPO, 'models', 'tinysql-demo'),
    '--data',
    dataset,
    '--out',
    resultFile,
    '--device',
    'cpu',
    '--method',
    'atp',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const result = parseResult(readFileSync(resultFile, 'utf8'), resultFile);
  assert.equal(result.model.layers, 4);
  assert.equal(result.model.heads, 4);
  circuit = syntheticCircuit({ layers: 4, heads: 4, keep: 12 });
  result.circuit = circuit;
  // Written as the engine writes it, and read back through the same validation the editor uses.
  writeFileSync(resultFile, serializeResult(result));
  parseResult(readFileSync(resultFile, 'utf8'), resultFile);
  ({ server, browser, page } = await openWorkbench({ workspace, userDataDir: join(root, 'user-data'), extensionsDir: join(root, 'extensions'), out: OUT }));
});

after(() => closeWorkbench(server, browser, root, OUT));

test(
  'a Result with a circuit opens with the circuit view; the slider changes the edges and the faithfulness shown; a node recolours the editor',
  { skip, timeout: 240_000 },
  async () => {
    await openFile(page, DATASET);
    // The saved Result is found next to the dataset: its token colours show without a run.
    const deadline = Date.now() + 30_000;
    while ((await colouredTokens(page)).length === 0 && Date.now() < deadline) await page.waitForTimeout(300);
    await runCommand(page, 'Attribution Patching: Open Heatmap');
    const frame = await findFrame(page, '#circuit-view #circuit-graph');
    await page.waitForTimeout(800);

    // Every node drawn, the circuit's own edges at its own size.
    assert.equal(await frame.$$eval('#circuit-graph g.node', (nodes) => nodes.length), circuit.nodes.length);
    assert.equal(await drawnEdges(frame), circuit.inCircuit.length);
    assert.equal(await frame.inputValue('#circuit-edges'), '12');
    // The circuit's own size (top 12, between the curve's measured 10 and 20): its own measured faithfulness, the
    // number the heading gives, never an interpolation; sizes are edges kept after pruning.
    const kept = (n: number) => topEdges(circuit, n).length;
    assert.equal(await faithfulness(frame), `Faithfulness of the circuit (${circuit.inCircuit.length} edges kept): 0.732 measured`);
    assert.ok((await frame.textContent('#circuit-heading'))!.includes('faithfulness 0.732'));
    await frame.locator('#circuit-view').scrollIntoViewIfNeeded();
    await shot('01-circuit-view');

    // The slider, from the keyboard: two steps left is 10 edges, a measured size.
    await frame.focus('#circuit-edges');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await frame.locator('#circuit-faithfulness', { hasText: `Faithfulness at ${kept(10)} edges` }).waitFor({ timeout: 10_000 });
    const curve = circuit.curve!;
    const at10 = curve.faithfulness[curve.edges.indexOf(10)].toFixed(3);
    assert.equal(
      await faithfulness(frame),
      `Faithfulness at ${kept(10)} edges: ${at10} measured (random 10 edges drawn: ${curve.random[curve.edges.indexOf(10)].toFixed(3)})`,
    );
    assert.equal(await drawnEdges(frame), topEdges(circuit, 10).length);
    // Further: 50 edges (measured), then End (every edge, measured: 1 by construction).
    await setSlider(frame, 50);
    await frame.locator('#circuit-faithfulness', { hasText: `Faithfulness at ${kept(50)} edges` }).waitFor({ timeout: 10_000 });
    assert.equal(await drawnEdges(frame), topEdges(circuit, 50).length);
    assert.match(
      (await faithfulness(frame)) ?? '',
      new RegExp(`^Faithfulness at ${kept(50)} edges: ${curve.faithfulness[curve.edges.indexOf(50)].toFixed(3)} measured`),
    );
    await shot('02-circuit-50-edges');
    await frame.focus('#circuit-edges');
    await page.keyboard.press('End');
    await frame
      .locator('#circuit-faithfulness', { hasText: `Faithfulness at ${kept(circuit.edges.length)} edges: 1.000 measured` })
      .waitFor({ timeout: 10_000 });
    await page.keyboard.press('Home');
    await frame.locator('#circuit-faithfulness', { hasText: 'Faithfulness at 0 edges: 0.000 measured' }).waitFor({ timeout: 10_000 });
    assert.equal(await drawnEdges(frame), 0);
    await setSlider(frame, 12);
    await frame.locator('#circuit-faithfulness', { hasText: 'Faithfulness of the circuit' }).waitFor({ timeout: 10_000 });

    // A head node colours the editor by that head (hook_z at every token), through the panel's selection.
    const before = await editorColours();
    await frame.click('#circuit-graph g.node[data-node="a0.h1"]');
    await frame.locator('#selection-label', { hasText: 'L0H1' }).waitFor({ timeout: 10_000 });
    const afterHead = await waitForChange(before, 'clicking a0.h1');
    assert.equal(await frame.getAttribute('#circuit-graph g.node[data-node="a0.h1"]', 'class'), 'node head active selected');
    await shot('03-circuit-head-selected');

    // Keyboard: nodes take the focus (tabindex 0), Enter selects (the MLP of layer 0: mlp_out at every token).
    await frame.focus('#circuit-graph g.node[data-node="m0"]');
    await page.keyboard.press('Enter');
    await frame.locator('#selection-label', { hasText: 'L0 mlp_out' }).waitFor({ timeout: 10_000 });
    await waitForChange(afterHead, 'Enter on m0');
    assert.equal(await frame.evaluate('document.activeElement && document.activeElement.getAttribute("data-node")', undefined), 'm0');
    // The input node: back to the token effects.
    await frame.click('#circuit-graph g.node[data-node="input"]');
    await frame.locator('#selection-label', { hasText: 'token effect' }).waitFor({ timeout: 10_000 });
    await frame.locator('#circuit-view').scrollIntoViewIfNeeded();
    await shot('04-circuit-keyboard');

    // Exports: the circuit as an image with the run's header, and as EAP-IG's graph JSON (built by the host).
    await frame.click('#circuit-export-svg');
    await saveDialogDefault();
    const svg = await readWhenWritten(join(workspace, 'tinysql-cs1.circuit.svg'));
    copyFileSync(join(workspace, 'tinysql-cs1.circuit.svg'), join(OUT, '05-export-circuit.svg'));
    assert.ok(svg.includes(`Dataset: ${join(workspace, DATASET)}`), 'the dataset in the header');
    assert.ok(svg.includes('Model: ') && svg.includes('tinysql-demo'), 'the model in the header');
    // The export states the circuit it draws and that circuit's measured faithfulness (before: "not measured; ≈…").
    assert.ok(
      svg.includes(
        `Circuit: eap-ig, ${circuit.inCircuit.length} edges kept (top 12 of ${circuit.edges.length} by |score|, pruned); Faithfulness of the circuit (${circuit.inCircuit.length} edges kept): 0.732 measured`,
      ),
      'the export header',
    );
    assert.ok(svg.includes('id="circuit-graph"') && svg.includes('id="circuit-curve"'));
    assert.ok(!svg.includes('data-head='), 'only the circuit, not the heatmaps');
    await frame.click('#circuit-export-eap-ig');
    await saveDialogDefault();
    const graph = await readWhenWritten(join(workspace, 'tinysql-cs1.eap-ig.json'));
    assert.equal(graph, toEapIgJson(parseResult(readFileSync(`${join(workspace, DATASET)}.atp-result.json`, 'utf8'), 'result')));
  },
);

/** Accepts the save dialog's default file name. */
async function saveDialogDefault(): Promise<void> {
  await page.locator('.quick-input-widget .quick-input-box input').waitFor({ state: 'visible', timeout: 15_000 });
  await page.waitForTimeout(300);
  await page.keyboard.press('Enter');
}

async function readWhenWritten(file: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  while (!existsSync(file) && Date.now() < deadline) await page.waitForTimeout(200);
  return readFileSync(file, 'utf8');
}

test(
  "Find Circuit… runs the engine's edge attribution on the open dataset and the panel opens on the measured circuit",
  { skip, timeout: 240_000 },
  async () => {
    const dataset = join(workspace, 'find-circuit.jsonl');
    await runCommand(page, 'Notifications: Clear All Notifications').catch(() => undefined);
    await openFile(page, 'find-circuit.jsonl');
    await runCommand(page, 'Attribution Patching: Find Circuit…');
    await page.locator('.quick-input-widget', { hasText: 'edge attribution method' }).first().waitFor({ state: 'visible', timeout: 30_000 });
    const pick = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'one gradient, fastest' }).first();
    await pick.waitFor({ timeout: 30_000 });
    await pick.click();
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await page.locator('.quick-input-widget', { hasText: 'edges to keep' }).first().waitFor({ state: 'visible', timeout: 30_000 });
    await input.fill('15');
    await page.keyboard.press('Enter');
    const resultFile = `${dataset}.atp-result.json`;
    const deadline = Date.now() + 150_000;
    while (!existsSync(resultFile) && Date.now() < deadline) await page.waitForTimeout(500);
    // A circuit run keeps every example's arrays: a sidecar pair, read as the editor reads it.
    const result = readResultFile(resultFile);
    assert.ok(result.circuit, 'the Result holds the circuit');
    assert.equal(result.circuit.method, 'eap');
    assert.ok(result.circuit.selection.edges <= 15 && result.circuit.selection.edges > 0);
    assert.ok(Math.abs(result.circuit.faithfulness.full - 1) < 1e-4 && Math.abs(result.circuit.faithfulness.empty) < 1e-4, 'full graph 1, empty 0');
    // The panel opens by itself on the circuit, with the engine's own measured curve.
    const frame = await findFrame(page, '#circuit-graph', 60_000);
    assert.ok((await drawnEdges(frame)) > 0);
    // The line at the circuit's own size is its measured faithfulness, the heading's number, and the engine measured
    // the curve there too (random draws of the same 15 edges).
    const curve = result.circuit.curve!;
    assert.ok(curve.edges.includes(15), `the curve has the circuit's own size: ${curve.edges}`);
    assert.equal(
      await faithfulness(frame),
      `Faithfulness of the circuit (${result.circuit.inCircuit.length} edges kept): ${result.circuit.faithfulness.circuit.toFixed(3)} measured (random 15 edges drawn: ${curve.random[curve.edges.indexOf(15)].toFixed(3)})`,
    );
    await shot('06-find-circuit');
  },
);
