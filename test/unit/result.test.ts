import { test, mock, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
// The module object itself (not an ES namespace copy), so that mock.method patches what the engine calls.
import fs = require('node:fs');
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/shared/errors';
import {
  describeRuntime,
  methodsOf,
  parseResult,
  refuseShard,
  RESULT_SCHEMA,
  serializeResult,
  summarizeHeads,
  summarizePositions,
  topHeads,
  type ExampleResult,
  type Result,
} from '../../src/shared/result';
import { writeResultAtomically } from '../../src/lib/files/resultFile';

const root = mkdtempSync(join(tmpdir(), 'atp-result-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
function freshDir(): string {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  return dir;
}

const LAYERS = 2;
const HEADS = 2;

/** An example whose attributions are filled by `value(layer, pos, head)`; prompts of `length` tokens. */
function example(line: number, length: number, value: (layer: number, pos: number, head: number) => number): ExampleResult {
  const positions = Array.from({ length }, (_, pos) => pos);
  const layers = Array.from({ length: LAYERS }, (_, layer) => layer);
  const words = positions.map((pos) => `w${pos}`);
  const tokens = words.map((text, pos) => ({ id: 100 + pos, text, start: pos * 3, end: pos * 3 + 2 }));
  return {
    line,
    clean: words.join(' '),
    corrupted: words.join(' '),
    correct: ' A',
    incorrect: ' B',
    cleanIds: tokens.map((token) => token.id),
    corruptedIds: tokens.map((token) => token.id),
    correctId: 317,
    incorrectId: 347,
    tokens,
    corruptedTokens: tokens,
    cleanLogitDiff: 2.5,
    corruptedLogitDiff: -1.25,
    tokenScores: { kind: 'token-patch', method: 'exact', values: positions.map((pos) => (pos === 1 ? 0.75 : 0)), exact: positions.map(() => true), joint: 0.9 },
    attributions: {
      z: layers.map((layer) => positions.map((pos) => Array.from({ length: HEADS }, (_, head) => value(layer, pos, head)))),
      residPre: layers.map((layer) => positions.map((pos) => value(layer, pos, 0) * 10)),
      attnOut: layers.map((layer) => positions.map((pos) => -value(layer, pos, 1))),
      mlpOut: layers.map((layer) => positions.map((pos) => value(layer, pos, 1) / 2)),
    },
  };
}

function makeResult(sharedExamples: ExampleResult[]): Result {
  // A copy, so that a test may break its result without touching the shared examples.
  const examples = structuredClone(sharedExamples);
  return {
    schema: RESULT_SCHEMA,
    createdAt: '2025-01-02T03:04:05.000Z',
    dataset: { file: 'ioi.jsonl', examples: examples.length },
    model: { source: 'models/tiny', architecture: 'gpt2', modelType: 'gpt2', layers: LAYERS, heads: HEADS, dModel: 8, dHead: 4, dtype: 'F32' },
    device: 'cpu',
    metric: { name: 'normalized-logit-diff', cleanLogitDiff: 2.5, corruptedLogitDiff: -1.25 },
    run: { requested: 'auto', method: 'atp', passes: { forward: 8, backward: 4 }, reason: 'test' },
    methods: { attributions: 'atp', heads: 'atp', positions: 'atp', tokenScores: 'exact' },
    checks: {
      k: 1,
      seed: 0,
      candidates: ['heads', 'positions'],
      pearson: 1,
      spearman: 1,
      items: [
        { hook: 'z', layer: 1, position: null, head: 0, pick: 'top', attribution: 0.5, exact: 0.25 },
        { hook: 'resid_pre', layer: 0, position: 2, head: null, pick: 'random', attribution: -0.125, exact: 0 },
      ],
    },
    heads: summarizeHeads(examples),
    positions: summarizePositions(examples),
    examples,
    warnings: ['a warning'],
    timings: { load: 0.5, forward: 0.125 },
  };
}

// value(l, p, h) = 100·l + 10·p + h makes every sum traceable by hand.
const first = example(1, 3, (l, p, h) => 100 * l + 10 * p + h);
const second = example(2, 3, (l, p, h) => -(l + p + h) / 4);
const longer = example(5, 4, (l, p, h) => l * p * h);

test("summarizeHeads sums z at each example's last position over examples", () => {
  // first at pos 2: 100l + 20 + h; second at pos 2: -(l + 2 + h)/4
  assert.deepEqual(summarizeHeads([first, second]), [
    [20 - 0.5, 21 - 0.75],
    [120 - 0.75, 121 - 1],
  ]);
  // Examples of different lengths each use their own last position (pos 3 for `longer`: l·3·h).
  assert.deepEqual(summarizeHeads([first, longer]), [
    [20, 21],
    [120, 121 + 3],
  ]);
  assert.deepEqual(summarizeHeads([]), []);
});

test('summarizePositions sums resid_pre when all examples have one length, else null', () => {
  // resid_pre = 10·value(l, p, 0)
  assert.deepEqual(summarizePositions([first, second]), [
    [0 - 0, 100 - 2.5, 200 - 5],
    [1000 - 2.5, 1100 - 5, 1200 - 7.5],
  ]);
  assert.equal(summarizePositions([first, longer]), null);
  assert.equal(summarizePositions([]), null);
});

test('topHeads orders by |value|, largest first, and stops at k', () => {
  const result = makeResult([first]);
  result.heads = [
    [0.1, -5],
    [3, -0.2],
  ];
  assert.deepEqual(topHeads(result, 3), [
    { layer: 0, head: 1, value: -5 },
    { layer: 1, head: 0, value: 3 },
    { layer: 1, head: 1, value: -0.2 },
  ]);
  assert.equal(topHeads(result, 10).length, 4);
  assert.deepEqual(topHeads(result, 0), []);
  result.heads = [[2, -2]];
  assert.deepEqual(
    topHeads(result, 2).map(({ layer, head }) => [layer, head]),
    [
      [0, 0],
      [0, 1],
    ],
    'ties keep layer/head order',
  );
});

test('serialize → parse round trip, with stable key order and one-line numeric rows', () => {
  const result = makeResult([first, second]);
  const text = serializeResult(result);
  assert.deepEqual(parseResult(text, 'result.json'), JSON.parse(JSON.stringify(result)));
  assert.ok(text.endsWith('}\n'));
  assert.ok(text.startsWith(`{\n  "schema": "${RESULT_SCHEMA}",\n  "createdAt"`));
  assert.match(text, /\n {4}\[19\.5, 20\.25\],\n/, 'a [layer][head] row is one line');
  assert.match(text, /\{ "id": 100, "text": "w0", "start": 0, "end": 2 \}/, 'a token is one line');

  // The same data built in another key order serializes identically.
  const reordered = JSON.parse(JSON.stringify(result), (_key, value) =>
    value && typeof value === 'object' && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).reverse()) : value,
  ) as Result;
  assert.notEqual(JSON.stringify(reordered), JSON.stringify(result));
  assert.equal(serializeResult(reordered), text);
  // Numbers print as JS prints them.
  const tiny = makeResult([example(1, 1, () => 1e-7)]);
  assert.match(serializeResult(tiny), /1e-7/);
});

test('serializeResult refuses non-finite numbers, naming where they are', () => {
  const broken = makeResult([first]);
  broken.examples[0].attributions.z[1][2][0] = NaN;
  assert.throws(() => serializeResult(broken), /result\.examples\[0\]\.attributions\.z\[1\]\[2\]\[0\] is NaN/);
});

test('parseResult names the file and the field that is wrong', () => {
  const good = JSON.parse(serializeResult(makeResult([first]))) as Record<string, unknown>;
  const cases: Array<[unknown, string]> = [
    [
      { ...good, schema: 'something-else@1' },
      'r.json: not an attribution-patching result: it has schema "something-else@1", expected "attribution-patching/result@2" (or the older "attribution-patching/result@1")',
    ],
    [
      { ...good, schema: undefined },
      'r.json: not an attribution-patching result: it has no "schema", expected "attribution-patching/result@2" (or the older "attribution-patching/result@1")',
    ],
    [{ ...good, run: undefined }, 'r.json: field "run" must be an object'],
    [{ ...good, methods: { ...(good.methods as object), heads: 'guess' } }, 'r.json: field "methods.heads" must be "atp", "atpstar" or "exact"'],
    [
      { ...good, examples: [{ ...(good.examples as Array<Record<string, unknown>>)[0], tokenScores: undefined }] },
      'r.json: field "examples[0].tokenScores" must be an object',
    ],
    [
      {
        ...good,
        examples: [
          {
            ...(good.examples as Array<Record<string, unknown>>)[0],
            tokenScores: { kind: 'token-patch', method: 'exact', joint: 1, values: [1], exact: [true] },
          },
        ],
      },
      'r.json: field "examples[0].tokenScores.values" must be an array of 3 numbers (one per clean token)',
    ],
    [
      { ...good, checks: { ...(good.checks as object), items: [{ hook: 'z', layer: 9, position: null, head: 0, pick: 'top', attribution: 1, exact: 1 }] } },
      'r.json: field "checks.items[0].layer" must be below model.layers (2)',
    ],
    [
      {
        ...good,
        checks: { ...(good.checks as object), items: [{ hook: 'resid_pre', layer: 0, position: 1, head: 1, pick: 'top', attribution: 1, exact: 1 }] },
      },
      'r.json: field "checks.items[0].head" must be null (only hook_z has heads)',
    ],
    [[1], 'r.json: not an attribution-patching result (expected a JSON object)'],
    [{ ...good, model: { ...(good.model as object), layers: 'two' } }, 'r.json: field "model.layers" must be a non-negative integer'],
    [{ ...good, heads: [[1, 2]] }, 'r.json: field "heads" must be an array of arrays of finite numbers with 2 rows (one per layer)'],
    [{ ...good, heads: [[1, 2], [3]] }, 'r.json: field "heads[1]" must be an array of 2 numbers (model.heads)'],
    [{ ...good, positions: 'none' }, 'r.json: field "positions" must be an array of arrays of finite numbers'],
    [{ ...good, examples: [{ ...(good.examples as object[])[0], clean: 3 }] }, 'r.json: field "examples[0].clean" must be a string'],
    [
      { ...good, examples: [{ ...(good.examples as Array<Record<string, unknown>>)[0], attributions: { z: [[[1]]], residPre: [], attnOut: [], mlpOut: [] } }] },
      'r.json: field "examples[0].attributions.z" must be an array of arrays of arrays of finite numbers with 2 rows (one per layer)',
    ],
    [{ ...good, warnings: [1] }, 'r.json: field "warnings[0]" must be a string'],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => parseResult(JSON.stringify(value), 'r.json'),
      (error: unknown) => error instanceof InputError && error.message === message,
      message,
    );
  }
  assert.throws(
    () => parseResult('{"schema":', 'r.json'),
    (error: unknown) => error instanceof InputError && error.message.startsWith('r.json: not valid JSON: '),
  );
  // positions may be null
  assert.equal(parseResult(JSON.stringify({ ...good, positions: null }), 'r.json').positions, null);
});

test('a @1 result (before methods, token scores and checks) still opens, and reads as AtP throughout', () => {
  const current = JSON.parse(serializeResult(makeResult([first]))) as Record<string, unknown>;
  const { run: _run, methods: _methods, checks: _checks, ...rest } = current;
  const v1 = {
    ...rest,
    schema: 'attribution-patching/result@1',
    examples: (current.examples as Array<Record<string, unknown>>).map(({ tokenScores: _scores, ...example }) => example),
  };
  const parsed = parseResult(JSON.stringify(v1), 'old.json');
  assert.equal(parsed.schema, 'attribution-patching/result@1');
  assert.equal(parsed.examples[0].tokenScores, undefined);
  assert.deepEqual(methodsOf(parsed), { attributions: 'atp', heads: 'atp', positions: 'atp', tokenScores: 'atp' });
  // The current schema requires what @1 lacked.
  assert.throws(() => parseResult(JSON.stringify({ ...v1, schema: RESULT_SCHEMA }), 'new.json'), /field "examples\[0\]\.tokenScores" must be an object/);
});

test('check items and token scores serialize one per line', () => {
  const text = serializeResult(makeResult([first]));
  assert.match(text, /\{ "hook": "z", "layer": 1, "position": null, "head": 0, "pick": "top", "attribution": 0\.5, "exact": 0\.25 \}/);
  assert.match(
    text,
    /"tokenScores": \{\n\s+"kind": "token-patch",\n\s+"method": "exact",\n\s+"joint": 0\.9,\n\s+"values": \[0, 0\.75, 0\],\n\s+"exact": \[true, true, true\]/,
  );
});

test('writeResultAtomically replaces the file and leaves no temp files', () => {
  const dir = freshDir();
  const file = join(dir, 'result.json');
  writeResultAtomically(file, makeResult([first]));
  writeResultAtomically(file, makeResult([first, second]));
  assert.deepEqual(readdirSync(dir), ['result.json']);
  assert.equal(parseResult(readFileSync(file, 'utf8'), file).examples.length, 2);
});

/** Runs `write`, expecting it to fail, then checks that the previous file is intact and alone in its folder. */
function assertFailedWriteLeavesPrevious(write: (file: string) => void, expected: (error: unknown) => boolean): void {
  const dir = freshDir();
  const file = join(dir, 'result.json');
  writeFileSync(file, 'previous contents');
  assert.throws(() => write(file), expected);
  assert.equal(readFileSync(file, 'utf8'), 'previous contents');
  assert.deepEqual(readdirSync(dir), ['result.json']);
}

test('a result that throws while serializing leaves the previous file intact', () => {
  const throwing = makeResult([first]);
  Object.defineProperty(throwing, 'device', {
    enumerable: true,
    get: () => {
      throw new Error('device exploded');
    },
  });
  assertFailedWriteLeavesPrevious(
    (file) => writeResultAtomically(file, throwing),
    (error) => error instanceof Error && error.message === 'device exploded',
  );

  const notFinite = makeResult([first]);
  notFinite.heads[0][0] = Infinity;
  assertFailedWriteLeavesPrevious(
    (file) => writeResultAtomically(file, notFinite),
    (error) => error instanceof Error && /heads\[0\]\[0\] is Infinity/.test(error.message),
  );
});

test('a failure after the temp file was written removes it and keeps the previous file', () => {
  for (const step of ['writeSync', 'fsyncSync', 'renameSync'] as const) {
    const failing = mock.method(fs, step, () => {
      throw Object.assign(new Error(`${step} failed: ENOSPC`), { code: 'ENOSPC' });
    });
    try {
      assertFailedWriteLeavesPrevious(
        (file) => writeResultAtomically(file, makeResult([first])),
        (error) => error instanceof InputError && error.message.includes('result.json: cannot write the result: ') && error.message.includes(`${step} failed`),
      );
      assert.equal(failing.mock.callCount(), 1, step);
    } finally {
      failing.mock.restore();
    }
  }
});

test('writing into a folder that was removed is an InputError naming the file', () => {
  const dir = freshDir();
  const file = join(dir, 'result.json');
  writeResultAtomically(file, makeResult([first]));
  rmSync(dir, { recursive: true });
  assert.throws(
    () => writeResultAtomically(file, makeResult([first])),
    (error: unknown) => error instanceof InputError && error.message.startsWith(`${file}: cannot write the result: `) && /ENOENT/.test(error.message),
  );
  assert.equal(fs.existsSync(dir), false);
});

test('runtime (where the run happened) is optional, round-trips after device, and is validated when present', () => {
  const plain = makeResult([first]);
  assert.equal(parseResult(serializeResult(plain), 'r.json').runtime, undefined, 'results without it still open');
  const result = makeResult([first]);
  result.runtime = {
    provider: 'WebGpuExecutionProvider',
    adapter: { name: 'SwiftShader', vendor: 'Google', software: true },
    placement: { WebGpuExecutionProvider: 792, CPUExecutionProvider: 17 },
  };
  const text = serializeResult(result);
  assert.deepEqual(parseResult(text, 'r.json').runtime, result.runtime);
  const keys = Object.keys(JSON.parse(text) as object);
  assert.equal(keys.indexOf('runtime'), keys.indexOf('device') + 1);
  assert.ok(text.indexOf('"name"') < text.indexOf('"vendor"') && text.indexOf('"vendor"') < text.indexOf('"software"'));
  assert.equal(describeRuntime(result.runtime), 'WebGpuExecutionProvider on SwiftShader (Google, software): 792 nodes on WebGpu, 17 nodes on CPU');
  assert.equal(describeRuntime({ provider: 'CPUExecutionProvider' }), 'CPUExecutionProvider');
  const broken = (edit: (runtime: Record<string, unknown>) => void, field: string) => {
    const copy = JSON.parse(text) as Record<string, Record<string, unknown>>;
    edit(copy.runtime);
    assert.throws(
      () => parseResult(JSON.stringify(copy), 'r.json'),
      (error: unknown) => error instanceof InputError && error.message.includes(field),
      field,
    );
  };
  broken((r) => delete r.provider, 'runtime.provider');
  broken((r) => ((r.adapter as Record<string, unknown>).software = 'yes'), 'runtime.adapter.software');
  broken((r) => delete (r.adapter as Record<string, unknown>).name, 'runtime.adapter.name');
  broken((r) => ((r.placement as Record<string, unknown>).CPUExecutionProvider = 1.5), 'runtime.placement.CPUExecutionProvider');
  broken((r) => (r.placement = [1, 2]), 'runtime.placement');
});

test('shard and merged: optional, placed after schema, validated when present; a shard may be empty and is refused as a Result', () => {
  const shardInfo = { index: 2, count: 3, firstExample: 3, datasetExamples: 8, datasetHash: 'sha256:ab' };
  const shard = { ...makeResult([first]), shard: shardInfo };
  const text = serializeResult(shard);
  assert.ok(
    text.startsWith(
      `{\n  "schema": "${RESULT_SCHEMA}",\n  "shard": {\n    "index": 2,\n    "count": 3,\n    "firstExample": 3,\n    "datasetExamples": 8,\n    "datasetHash": "sha256:ab"\n  },\n  "createdAt"`,
    ),
  );
  const parsed = parseResult(text, 's.json');
  assert.deepEqual(parsed.shard, shardInfo);
  assert.throws(() => refuseShard(parsed, 's.json'), /s\.json: this is shard 2\/3 of a run \(field "shard"\)/);
  const plain = makeResult([first]);
  assert.equal(refuseShard(plain, 'r.json'), plain);
  // An empty shard (more shards than examples) parses; an empty Result does not.
  const empty = serializeResult({ ...shard, examples: [], positions: null });
  assert.equal(parseResult(empty, 's.json').examples.length, 0);
  assert.throws(() => parseResult(serializeResult({ ...plain, examples: [], positions: null }), 'r.json'), /field "examples"/);

  const merged = serializeResult({ ...plain, merged: { shards: 3 } });
  assert.match(merged, /^\{\n {2}"schema": "[^"]+",\n {2}"merged": \{\n {4}"shards": 3\n {2}\},\n {2}"createdAt"/);
  assert.deepEqual(parseResult(merged, 'm.json').merged, { shards: 3 });

  const good = JSON.parse(text) as Record<string, unknown>;
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...good, shard: 'x' }, /s\.json: field "shard" must be an object/],
    [{ ...good, shard: { ...shardInfo, index: 4 } }, /field "shard\.index" must be an integer from 1 to shard\.count \(3\)/],
    [{ ...good, shard: { ...shardInfo, index: 0 } }, /field "shard\.index"/],
    [{ ...good, shard: { ...shardInfo, count: 0 } }, /field "shard\.count" must be an integer from 1 to 10000/],
    [{ ...good, shard: { ...shardInfo, firstExample: -1 } }, /field "shard\.firstExample"/],
    [{ ...good, shard: { ...shardInfo, datasetExamples: 1.5 } }, /field "shard\.datasetExamples"/],
    [{ ...good, shard: { ...shardInfo, datasetHash: 3 } }, /field "shard\.datasetHash" must be a string/],
    [{ ...good, shard: undefined, merged: { shards: 0 } }, /field "merged\.shards" must be an integer from 1 to 10000/],
    [{ ...good, shard: undefined, merged: [] }, /field "merged" must be an object/],
  ];
  for (const [value, message] of cases) assert.throws(() => parseResult(JSON.stringify(value), 's.json'), message);
});
