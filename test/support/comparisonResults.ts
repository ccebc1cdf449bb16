// Small hand-made Results for the comparison tests: a head map (and optionally a position map) and one example,
// enough for every view of a comparison.
import { RESULT_SCHEMA, type Result } from '../../src/shared/result';

/** A Result with the given head map (and position map), enough for every comparison. */
export function comparisonResult(heads: number[][], positions: number[][] | null = null, source = 'm'): Result {
  const layers = heads.length;
  const tokens = [{ id: 1, text: 'a', start: 0, end: 1 }];
  return {
    schema: RESULT_SCHEMA,
    createdAt: new Date(0).toISOString(),
    dataset: { file: 'x.jsonl', examples: 1 },
    model: { source, architecture: 'gpt2', modelType: 'gpt2', layers, heads: heads[0].length, dModel: 8, dHead: 4, dtype: 'F32' },
    device: 'cpu',
    metric: { name: 'normalized-logit-diff', cleanLogitDiff: 2, corruptedLogitDiff: -1 },
    run: { requested: 'atp', method: 'atp', passes: { forward: 2, backward: 1 }, reason: 'asked for' },
    methods: { attributions: 'atp', heads: 'atp', positions: 'atp', tokenScores: 'atp' },
    heads,
    positions,
    examples: [
      {
        line: 1,
        clean: 'a',
        corrupted: 'b',
        correct: ' c',
        incorrect: ' d',
        cleanIds: [1],
        corruptedIds: [2],
        correctId: 3,
        incorrectId: 4,
        tokens,
        corruptedTokens: tokens,
        cleanLogitDiff: 2,
        corruptedLogitDiff: -1,
        tokenScores: { kind: 'token-patch', method: 'atp', values: [0], exact: [false], joint: 1 },
        attributions: {
          z: heads.map((row) => [row]),
          residPre: positions ?? heads.map(() => [0]),
          attnOut: heads.map(() => [0]),
          mlpOut: heads.map(() => [0]),
        },
      },
    ],
    warnings: [],
  };
}
