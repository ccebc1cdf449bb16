import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/engine/model/load';
import type { Dataset } from '../../src/lib/dataset/jsonl';
import { runAttributionPatching } from '../../src/engine/patching/run';
import type { Result } from '../../src/shared/result';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { flattenAttributions } from '../support/attributions';

/**
 * Batching and padding never change a number: examples of different lengths, in batches of 1, 2, 3 and all,
 * in two orders. Float32 results may differ only by GEMM blocking over different row counts: 1e-5 relative.
 */

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-batch-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

const pairs: Array<[string, string, string, string]> = [
  ['When John and Mary went to the shops, John gave the bag to', 'When John and Mary went to the shops, Mary gave the bag to', ' Mary', ' John'],
  ['Alice met Bob. Alice thanked', 'Alice met Bob. Bob thanked', ' Bob', ' Alice'],
  [
    'After Martin and Amy went to the park for a long walk, Amy gave a drink to',
    'After Martin and Amy went to the park for a long walk, Martin gave a drink to',
    ' Martin',
    ' Amy',
  ],
  ['Tom saw Sid and Tom waved at', 'Tom saw Sid and Sid waved at', ' Sid', ' Tom'],
  ['The cat sat on the', 'The dog sat on the', ' mat', ' rug'],
];

function dataset(order: number[]): Dataset {
  return {
    file: 'mixed.jsonl',
    examples: order.map((i) => ({ clean: pairs[i][0], corrupted: pairs[i][1], correct: pairs[i][2], incorrect: pairs[i][3], line: i + 1 })),
  };
}

function byLine(result: Result) {
  return [...result.examples].sort((a, b) => a.line - b.line);
}

test('batch size, padding and order do not change any number', async () => {
  const dir = join(root, 'model');
  writeRandomGpt2(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 21 });
  const model = loadModel(dir);
  const forward = [0, 1, 2, 3, 4];
  const baseline = await runAttributionPatching(model, dataset(forward), { device: 'cpu', batchSize: 1 });
  const lengths = new Set(baseline.examples.map((e) => e.tokens.length));
  assert.ok(lengths.size >= 3, 'the examples really have different lengths, so batches are padded');
  const expected = flattenAttributions(byLine(baseline).map((e) => e.attributions));
  for (const [batchSize, order] of [
    [2, forward],
    [3, [4, 2, 0, 3, 1]],
    [5, [3, 1, 4, 0, 2]],
  ] as const) {
    const result = await runAttributionPatching(model, dataset([...order]), { device: 'cpu', batchSize });
    assert.ok(Math.abs(result.metric.cleanLogitDiff - baseline.metric.cleanLogitDiff) < 1e-5 * Math.abs(baseline.metric.cleanLogitDiff) + 1e-6);
    const examples = byLine(result);
    examples.forEach((e, i) => assert.deepEqual(e.cleanIds, byLine(baseline)[i].cleanIds));
    const actual = flattenAttributions(examples.map((e) => e.attributions));
    for (const kind of ['z', 'resid_pre', 'attn_out', 'mlp_out'] as const) {
      const scale = Math.max(...expected[kind].map(Math.abs));
      actual[kind].forEach((v, i) =>
        assert.ok(Math.abs(v - expected[kind][i]) <= 1e-5 * scale, `batch ${batchSize}, ${kind}[${i}]: ${v} vs ${expected[kind][i]}`),
      );
    }
  }
});
