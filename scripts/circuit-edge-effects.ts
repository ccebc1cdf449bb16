// The model cards' edge-patching numbers: how much of the normalised metric is lost when a head's outgoing edges
// carry their corrupted values (all of them, or only those into the logits, the MLPs, m0, later heads) while every
// other edge stays clean. A measurement with the faithfulness graph (exact patching of edges, no gradient), so it
// checks what EAP-IG's scores say about where a head's effect goes.
//   npx tsx scripts/circuit-edge-effects.ts --model models/tinysql-demo --data models/tinysql-demo/claims/tables.jsonl --heads L0H3,L0H1
import { parseArgs } from 'node:util';
import { loadModel } from '../src/engine/model/load';
import { readDataset } from '../src/lib/dataset';
import { circuitLayout, layoutEdges } from '../src/engine/circuits/layout';
import { normalisedMetric, patchedLogitDiffs } from '../src/engine/circuits/run';
import { prepareExamples } from '../src/engine/patching/examples';
import { runAttributionPatching } from '../src/engine/patching/run';
import type { CircuitEdge } from '../src/shared/circuit';

const { values } = parseArgs({ options: { model: { type: 'string' }, data: { type: 'string' }, heads: { type: 'string' } } });
if (!values.model || !values.data || !values.heads) throw new Error('usage: --model DIR --data FILE --heads L0H3,L0H1');

async function main(modelDir: string, data: string, heads: string): Promise<void> {
  const model = loadModel(modelDir);
  const dataset = readDataset(data);
  const options = { device: 'cpu' as const, batchSize: 16 };
  const result = await runAttributionPatching(model, dataset, { ...options, method: 'atp' });
  const prepared = prepareExamples(model, dataset, []);
  const edges = layoutEdges(circuitLayout(model.spec), new Array<number>(circuitLayout(model.spec).edgeCount).fill(0));
  /** 1 − faithfulness of the graph without the picked edges: the share of the metric they carry, measured. */
  const loss = async (pick: (edge: CircuitEdge) => boolean) =>
    1 -
    normalisedMetric(
      await patchedLogitDiffs(
        model,
        prepared,
        edges.map((edge) => (pick(edge) ? 1 : 0)),
        options,
      ),
      result.metric,
    );

  for (const name of heads.split(',')) {
    const match = /^L(\d+)H(\d+)$/.exec(name.trim());
    if (!match) throw new Error(`--heads: expected heads such as L0H3, got ${name}`);
    const node = `a${match[1]}.h${match[2]}`;
    const parts: Array<[string, (edge: CircuitEdge) => boolean]> = [
      ['every edge out', (e) => e.from === node],
      ['into the logits', (e) => e.from === node && e.to === 'logits'],
      ['into m0', (e) => e.from === node && e.to === 'm0'],
      ['into the MLPs', (e) => e.from === node && /^m\d+$/.test(e.to)],
      ['into later heads', (e) => e.from === node && e.to.startsWith('a')],
    ];
    const measured: string[] = [];
    for (const [label, pick] of parts) measured.push(`${label} ${(await loss(pick)).toFixed(3)}`);
    console.log(`${name}: ${measured.join(', ')}`);
  }
  console.log(
    `into the logits from every MLP ${(await loss((e) => /^m\d+$/.test(e.from) && e.to === 'logits')).toFixed(3)}, ` +
      `from every head ${(await loss((e) => e.from.startsWith('a') && e.to === 'logits')).toFixed(3)}, from the input ${(await loss((e) => e.from === 'input' && e.to === 'logits')).toFixed(3)}`,
  );
}

void main(values.model, values.data, values.heads);
