// The HTML report's position map folds its all-zero prefix as the panel does; the status bar's model words say
// when the model setting no longer names the model of the result shown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderHtmlReport } from '../../src/report/htmlReport';
import { modelLabel, resultModelText, sameModel } from '../../src/shared/modelNames';
import { RESULT_SCHEMA, type Result } from '../../src/shared/result';

function reportResult(positions: number[][]): Result {
  const length = positions[0].length;
  const layers = positions.length;
  const tokens = Array.from({ length }, (_, p) => ({ id: p, text: `t${p}`, start: p, end: p + 1 }));
  return {
    schema: RESULT_SCHEMA,
    createdAt: new Date(0).toISOString(),
    dataset: { file: 'x.jsonl', examples: 1 },
    model: { source: 'm', architecture: 'gpt2', modelType: 'gpt2', layers, heads: 1, dModel: 8, dHead: 8, dtype: 'F32' },
    device: 'cpu',
    metric: { name: 'normalized-logit-diff', cleanLogitDiff: 1, corruptedLogitDiff: 0 },
    heads: Array.from({ length: layers }, () => [0.5]),
    positions,
    examples: [
      {
        line: 1,
        clean: 'c',
        corrupted: 'd',
        correct: ' a',
        incorrect: ' b',
        cleanIds: tokens.map((t) => t.id),
        corruptedIds: tokens.map((t) => t.id),
        correctId: 1,
        incorrectId: 2,
        tokens,
        corruptedTokens: tokens,
        cleanLogitDiff: 1,
        corruptedLogitDiff: 0,
        attributions: {
          z: positions.map((row) => row.map(() => [0])),
          residPre: positions,
          attnOut: positions.map((row) => row.map(() => 0)),
          mlpOut: positions.map((row) => row.map(() => 0)),
        },
      },
    ],
    warnings: [],
  };
}

const positionCells = (html: string) => [...html.matchAll(/data-pos="(\d+)" data-value="([^"]+)"/g)].map((m) => ({ pos: Number(m[1]), value: Number(m[2]) }));

test('HTML report: the all-zero positions before the first difference are folded away with a note; cells keep their positions', () => {
  const html = renderHtmlReport([
    {
      title: 'run',
      result: reportResult([
        [0, 0, 0, 0.25, 0.5],
        [0, 0, 0, 0, -1],
      ]),
    },
  ]);
  const cells = positionCells(html);
  assert.deepEqual([...new Set(cells.map((c) => c.pos))], [3, 4]);
  assert.deepEqual(
    cells.map((c) => c.value),
    [0.25, 0.5, 0, -1],
  );
  assert.match(html, /Positions 0–2 \(3 of 5\) are hidden: every value there is exactly 0/);
  // Token labels of the shown positions only.
  assert.ok(html.includes('>t3</text>') && !html.includes('>t2</text>'));
});

test('HTML report: nothing folded when the prefix is shorter than two positions', () => {
  const html = renderHtmlReport([{ title: 'run', result: reportResult([[0, 0.25, 0.5]]) }]);
  assert.deepEqual(
    positionCells(html).map((c) => c.pos),
    [0, 1, 2],
  );
  assert.doesNotMatch(html, /are hidden/);
});

test('status bar model words: the result\'s model, or "result of X; next run uses Y" once the setting names another', () => {
  assert.equal(modelLabel('/models/gpt2-small/'), 'gpt2-small');
  assert.equal(modelLabel('openai-community/gpt2'), 'openai-community/gpt2');
  assert.equal(modelLabel('C:\\models\\tiny'), 'tiny');
  assert.ok(sameModel('/models/gpt2', '/models/gpt2/'));
  assert.ok(!sameModel('/models/gpt2', '/models/gpt2-medium'));
  assert.equal(resultModelText('/models/gpt2', '/models/gpt2/'), 'gpt2');
  assert.equal(resultModelText('/models/gpt2', 'EleutherAI/pythia-70m'), 'result of gpt2; next run uses EleutherAI/pythia-70m');
});
