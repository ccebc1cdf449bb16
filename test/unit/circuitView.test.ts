// The circuit view's pure parts (src/shared/circuitView.ts): the edges at a slider value, the layout (rows in
// computation order, kv-heads beside their group), edge widths and colours, the faithfulness wording (measured,
// interpolated and labelled so, not measured), what a node click colours the editor by; and its panel message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topEdges } from '../../src/shared/circuit';
import {
  edgeCountText,
  keptEdgeCounts,
  circuitLayout,
  faithfulnessText,
  initialEdgeCount,
  isSelectedNode,
  LAYOUT,
  nodeDescription,
  nodeSelection,
  shownEdges,
} from '../../src/shared/circuitView';
import { colorFor } from '../../src/shared/colorScale';
import { parsePanelState, parseWebviewMessage } from '../../src/shared/panelProtocol';
import { tokenValues, viewCarriesOver } from '../../src/shared/resultViews';
import { resultWithCircuit, syntheticCircuit } from '../support/circuitFixture';

const circuit = syntheticCircuit({ layers: 4, heads: 4, keep: 12 });

test("the view opens at the circuit's own edges; other slider values show the pruned top n", () => {
  assert.equal(initialEdgeCount(circuit), 12);
  assert.deepEqual(shownEdges(circuit, 12), circuit.inCircuit);
  assert.deepEqual(shownEdges(circuit, 30), topEdges(circuit, 30));
  assert.deepEqual(shownEdges(circuit, 0), []);
  // A threshold circuit is shown as stored at its own size, whatever topEdges would give there.
  const threshold = { ...circuit, selection: { rule: 'threshold' as const, requested: 0.2, edges: 2 }, inCircuit: [0, 1] };
  assert.equal(initialEdgeCount(threshold), 2);
  assert.deepEqual(shownEdges(threshold, 2), [0, 1]);
});

test("layout: input on top, each layer's heads then its MLP, logits at the bottom; every node on its row once", () => {
  const shown = shownEdges(circuit, 12);
  const layout = circuitLayout(circuit, shown, 'light');
  const at = (id: string) => layout.nodes.find((p) => p.node.id === id)!;
  assert.equal(layout.nodes.length, circuit.nodes.length);
  assert.equal(at('input').row, 0);
  assert.equal(at('a0.h2').row, 1);
  assert.equal(at('m0').row, 2);
  assert.equal(at('a3.h0').row, 7);
  assert.equal(at('m3').row, 8);
  assert.equal(at('logits').row, 9);
  assert.ok(at('a0.h0').x < at('a0.h1').x && at('a0.h1').x < at('a0.h3').x);
  assert.equal(layout.height, LAYOUT.top + 9 * LAYOUT.rowHeight + LAYOUT.bottom);
  assert.deepEqual(layout.rowLabels.map((r) => r.label).slice(0, 4), ['input', 'L0 attn', 'L0 MLP', 'L1 attn']);
  // Active: nodes on a shown edge.
  const onEdges = new Set(shown.flatMap((i) => [circuit.edges[i].from, circuit.edges[i].to]));
  for (const placement of layout.nodes) assert.equal(placement.active, onEdges.has(placement.node.id), placement.node.id);
  // Edges: width ∝ |score| (the largest the widest), colour by sign on the shared scale.
  assert.equal(layout.edges.length, shown.length);
  const widest = layout.edges[layout.edges.length - 1];
  assert.equal(Math.abs(widest.edge.score), layout.maxAbs);
  assert.equal(widest.width, LAYOUT.maxEdgeWidth);
  assert.equal(widest.color, colorFor(Math.sign(widest.edge.score), 'light'));
  const negative = layout.edges.find((e) => e.edge.score < 0)!;
  assert.ok(negative, 'the planted circuit has a negative edge');
  assert.match(negative.color, /^rgba\(178, 24, 43,/);
  for (const drawing of layout.edges)
    assert.ok(
      Math.abs(drawing.width - (LAYOUT.minEdgeWidth + (Math.abs(drawing.edge.score) / layout.maxAbs) * (LAYOUT.maxEdgeWidth - LAYOUT.minEdgeWidth))) < 1e-12,
    );
  // q, k and v edges from one sender into one head end apart.
  const q = layout.edges.find((e) => e.edge.from === 'input' && e.edge.to === 'a0.h1' && e.edge.input === 'q')!;
  const v = layout.edges.find((e) => e.edge.from === 'input' && e.edge.to === 'a0.h1' && e.edge.input === 'v')!;
  assert.ok(q && v && q.to.x < v.to.x);
});

test('layout draws at most the strongest maxDrawn shown edges and says how many it left out', () => {
  const shown = shownEdges(circuit, 200);
  const layout = circuitLayout(circuit, shown, 'light', 25);
  assert.equal(layout.edges.length, 25);
  assert.equal(layout.undrawn, shown.length - 25);
  const weakestDrawn = Math.min(...layout.edges.map((e) => Math.abs(e.edge.score)));
  const drawnSet = new Set(layout.edges.map((e) => e.index));
  for (const index of shown) if (!drawnSet.has(index)) assert.ok(Math.abs(circuit.edges[index].score) <= weakestDrawn);
  assert.equal(circuitLayout(circuit, shown, 'light').undrawn, 0);
});

test("layout under grouped-query attention: each kv-head right after its group's query heads, on their row", () => {
  const grouped = syntheticCircuit({ layers: 2, heads: 4, kvHeads: 2, keep: 8 });
  const layout = circuitLayout(grouped, grouped.inCircuit, 'dark');
  const row1 = layout.nodes
    .filter((p) => p.row === 1)
    .sort((a, b) => a.x - b.x)
    .map((p) => p.node.id);
  assert.deepEqual(row1, ['a0.h0', 'a0.h1', 'a0.kv0', 'a0.h2', 'a0.h3', 'a0.kv1']);
});

test('faithfulness wording, in edges kept after pruning: the circuit at its own size reads its own measured value, never an interpolation; curve points say measured, between them the interpolation is labelled, outside "not measured"', () => {
  const curve = circuit.curve!;
  const kept = (n: number) => topEdges(circuit, n).length;
  // The circuit's own size (12) is no point of this curve: before, the line read an interpolation there while the
  // heading gave the measured value. Now both give faithfulness.circuit.
  assert.ok(!curve.edges.includes(12));
  const own = faithfulnessText(circuit, 12);
  assert.deepEqual(own, { text: `Faithfulness of the circuit (${circuit.inCircuit.length} edges kept): 0.732 measured`, how: 'measured' });
  const measured = faithfulnessText(circuit, 10);
  assert.equal(measured.how, 'measured');
  const at10 = curve.edges.indexOf(10);
  assert.equal(
    measured.text,
    `Faithfulness at ${kept(10)} edges: ${curve.faithfulness[at10].toFixed(3)} measured (random 10 edges drawn: ${curve.random[at10].toFixed(3)})`,
  );
  const between = faithfulnessText(circuit, 15);
  assert.equal(between.how, 'interpolated');
  assert.equal(
    between.text.replace(/0\.\d{3}/g, 'F'),
    `Faithfulness at ${kept(15)} edges: not measured; ≈F by linear interpolation between the measured ${kept(10)} edges (F) and ${kept(20)} edges (F)`,
  );
  const partial = {
    ...circuit,
    curve: { ...curve, edges: curve.edges.slice(0, 4), faithfulness: curve.faithfulness.slice(0, 4), random: curve.random.slice(0, 4) },
  };
  assert.deepEqual(faithfulnessText(partial, 50), {
    text: `Faithfulness at ${kept(50)} edges: not measured (the curve covers 0 edges to ${kept(5)} edges kept)`,
    how: 'not-measured',
  });
  const noCurve = { ...circuit, curve: undefined };
  assert.equal(faithfulnessText(noCurve, 12).how, 'measured');
  assert.equal(faithfulnessText(noCurve, 13).how, 'no-curve');
  assert.match(faithfulnessText(noCurve, 13).text, /^Faithfulness at \d+ edges: not measured \(this Result has no faithfulness curve\)$/);
});

test('the curve and the slider speak in edges kept after pruning: recorded counts are used, older Results recompute the top-n ones', () => {
  const curve = circuit.curve!;
  const recomputed = keptEdgeCounts(circuit);
  assert.deepEqual(
    recomputed.kept,
    curve.edges.map((n) => topEdges(circuit, n).length),
  );
  assert.equal(recomputed.randomKept, undefined, 'random draws of an older Result: unknown');
  assert.ok(
    recomputed.kept.some((k, i) => k < curve.edges[i]),
    'pruning drops edges at some size (else this test could not tell the axes apart)',
  );
  const recorded = { ...circuit, curve: { ...curve, kept: curve.edges.map((n) => n + 1000), randomKept: curve.edges.map(() => 7) } };
  assert.deepEqual(keptEdgeCounts(recorded).kept, recorded.curve.kept);
  assert.deepEqual(keptEdgeCounts(recorded).randomKept, recorded.curve.randomKept);
  assert.equal(edgeCountText(circuit, 30), `${topEdges(circuit, 30).length} edges kept (top 30 of ${circuit.edges.length} by |score|, pruned)`);
});

test('clicking a node colours the editor by that node: a head by z[layer][pos][head], an MLP by mlpOut, the input by token effects', () => {
  const result = resultWithCircuit(circuit, { layers: 4, heads: 4, positions: 3 });
  const node = (id: string) => circuit.nodes.find((n) => n.id === id)!;
  const head = nodeSelection(node('a2.h3'), false)!;
  assert.deepEqual(head, { kind: 'head', layer: 2, head: 3 });
  for (const example of result.examples)
    assert.deepEqual(
      tokenValues(example, head),
      example.attributions.z[2].map((row) => row[3]),
    );
  const mlp = nodeSelection(node('m1'), false)!;
  assert.deepEqual(mlp, { kind: 'mlpOut', layer: 1 });
  for (const example of result.examples) assert.deepEqual(tokenValues(example, mlp), example.attributions.mlpOut[1]);
  assert.deepEqual(nodeSelection(node('input'), false), { kind: 'token' });
  assert.equal(nodeSelection(node('logits'), false), undefined);
  const kv = syntheticCircuit({ layers: 1, heads: 4, kvHeads: 2 }).nodes.find((n) => n.id === 'a0.kv1')!;
  assert.equal(nodeSelection(kv, false), undefined);
  assert.deepEqual(nodeSelection(kv, true), { kind: 'key', layer: 0, head: 1 });
  assert.ok(isSelectedNode(node('a2.h3'), { kind: 'head', layer: 2, head: 3 }));
  assert.ok(!isSelectedNode(node('a2.h3'), { kind: 'head', layer: 2, head: 2 }));
  assert.ok(!isSelectedNode(node('logits'), { kind: 'token' }));
  assert.match(nodeDescription(node('a0.h1'), circuit, circuit.inCircuit), /^a0\.h1: head L0H1; \d+ shown edges, in \+0\.\d{4}, out [+−]\d\.\d{4}$/);
});

test("the panel's circuit export message and slider state are checked at run time", () => {
  assert.deepEqual(parseWebviewMessage({ type: 'exportCircuit', format: 'eap-ig' }), { type: 'exportCircuit', format: 'eap-ig' });
  assert.deepEqual(parseWebviewMessage({ type: 'exportCircuit', format: 'qmi', extra: 1 }), { type: 'exportCircuit', format: 'qmi' });
  assert.equal(parseWebviewMessage({ type: 'exportCircuit', format: '../x' }), undefined);
  assert.equal(parseWebviewMessage({ type: 'exportCircuit' }), undefined);
  assert.equal(parsePanelState({ circuitEdges: 7 }).circuitEdges, 7);
  assert.equal(parsePanelState({ circuitEdges: -1 }).circuitEdges, undefined);
  assert.equal(parsePanelState({ circuitEdges: 'x' }).circuitEdges, undefined);
});

test("the panel's choices carry over to a new Result only where they still mean the same: same model, the chosen example still there, AtP* nodes only with AtP*", () => {
  const before = resultWithCircuit(undefined, { layers: 4, heads: 4 });
  const rerun = { ...resultWithCircuit(circuit, { layers: 4, heads: 4 }), createdAt: '2026-12-07T18:00:00Z' };
  const head = { kind: 'head', layer: 2, head: 3 } as const;
  const all = { kind: 'all' } as const;
  // A rerun or a circuit on the same dataset and model keeps what the panel shows (it says so: the label stays).
  assert.equal(viewCarriesOver(before, rerun, all, head), true);
  assert.equal(viewCarriesOver(before, rerun, { kind: 'example', index: 1 }, head), true);
  // Nothing before it, another model, another shape: start again from the token effects over all examples.
  assert.equal(viewCarriesOver(undefined, rerun, all, head), false);
  assert.equal(viewCarriesOver(before, { ...rerun, model: { ...rerun.model, source: 'ioi-demo' } }, all, head), false);
  assert.equal(viewCarriesOver(before, { ...rerun, model: { ...rerun.model, heads: 8 } }, all, head), false);
  // The chosen example gone; an AtP* key chosen where the new Result has no AtP* nodes.
  assert.equal(viewCarriesOver(before, rerun, { kind: 'example', index: rerun.examples.length }, head), false);
  assert.equal(viewCarriesOver(before, { ...rerun, atpStar: undefined }, all, { kind: 'key', layer: 0, head: 1 }), false);
});
