// Results and shards are files anyone can write: every Result reader accepts finite numbers only, per-example grids
// of the model's and the example's shape, and `atp merge` takes any shard files to a Result that opens again or
// to an InputError — never Infinity in a view, an internal error, a huge allocation or an object with a
// prototype key gone. Seeded and time-bounded like test/unit/fuzz.test.ts: a failure prints the seed and input.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/shared/errors';
import { MAX_SHARD_COUNT, RESULT_SCHEMA, parseResult, serializeResult, summarizeHeads, type ExampleResult, type Result } from '../../src/shared/result';
import { readResultFile } from '../../src/lib/files/resultFile';
import { mergeShards, parseShard, readShards, shardRange } from '../../src/engine/patching/shards';
import { seededRandom } from '../support/random';

const root = mkdtempSync(join(tmpdir(), 'atp-result-fuzz-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

const SEED = 20261207;
const BUDGET_MS = 1500;
const MAX_ITERATIONS = 2000;
const LAYERS = 2;
const HEADS = 3;

function example(line: number, tokens: number, random: () => number): ExampleResult {
  const value = () => Math.round((random() * 2 - 1) * 1000) / 1000;
  const grid = (width: number) => Array.from({ length: LAYERS }, () => Array.from({ length: tokens }, () => Array.from({ length: width }, value)));
  const rows = () => Array.from({ length: LAYERS }, () => Array.from({ length: tokens }, value));
  const list = Array.from({ length: tokens }, (_, t) => ({ id: t + 1, text: 'ab'[t % 2], start: t, end: t + 1 }));
  return {
    line,
    clean: 'ab'.repeat(tokens).slice(0, tokens),
    corrupted: 'ba'.repeat(tokens).slice(0, tokens),
    correct: ' c',
    incorrect: ' d',
    cleanIds: list.map((t) => t.id),
    corruptedIds: list.map((t) => t.id + 1),
    correctId: 7,
    incorrectId: 8,
    tokens: list,
    corruptedTokens: list,
    cleanLogitDiff: 2 + value(),
    corruptedLogitDiff: -1 + value(),
    tokenScores: {
      kind: 'token-patch',
      method: 'atp',
      values: Array.from({ length: tokens }, value),
      exact: new Array<boolean>(tokens).fill(false),
      joint: value(),
    },
    attributions: { z: grid(HEADS), residPre: rows(), attnOut: rows(), mlpOut: rows() },
  };
}

/** A Result (a shard of `count` when `shard` is given) with `n` examples, as the engine writes one. */
function makeResult(n: number, random: () => number, shard?: { index: number; count: number; total: number }): Result {
  const first = shard ? shardRange(shard.total, shard.index, shard.count).first : 0;
  const examples = Array.from({ length: n }, (_, i) => example(first + i + 1, 2 + ((first + i) % 3), random));
  return {
    schema: RESULT_SCHEMA,
    ...(shard ? { shard: { index: shard.index, count: shard.count, firstExample: first, datasetExamples: shard.total, datasetHash: 'sha256:00' } } : {}),
    createdAt: new Date(0).toISOString(),
    dataset: { file: 'x.jsonl', examples: n },
    model: { source: 'm', architecture: 'gpt2', modelType: 'gpt2', layers: LAYERS, heads: HEADS, dModel: 12, dHead: 4, dtype: 'F32' },
    device: 'cpu',
    metric: { name: 'normalized-logit-diff', cleanLogitDiff: 2, corruptedLogitDiff: -1 },
    run: { requested: 'atp', method: 'atp', passes: { forward: 2, backward: 1 }, reason: 'asked for' },
    methods: { attributions: 'atp', heads: 'atp', positions: 'atp', tokenScores: 'atp' },
    heads: summarizeHeads(examples),
    positions: null,
    examples,
    warnings: [],
    timings: { loadSeconds: 1, runSeconds: 2 },
  };
}

/** Every path to a number in a JSON value, as the field name a checker reports (`examples[0].attributions.z[1][0][2]`). */
function numberPaths(value: unknown, at = ''): string[] {
  if (typeof value === 'number') return [at];
  if (Array.isArray(value)) return value.flatMap((item, i) => numberPaths(item, `${at}[${i}]`));
  if (typeof value === 'object' && value !== null) return Object.entries(value).flatMap(([key, item]) => numberPaths(item, at === '' ? key : `${at}.${key}`));
  return [];
}

/** JSON text with the number at `path` written as `literal` (1e999: what JSON.parse reads as Infinity). */
function withLiteral(result: unknown, path: string, literal: string): string {
  const marker = '"__ATP_MARKER__"';
  const copy = structuredClone(result) as Record<string, unknown>;
  const keys = path.match(/[^.[\]]+/g)!;
  let parent: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) parent = parent[key] as Record<string, unknown>;
  parent[keys[keys.length - 1]] = '__ATP_MARKER__';
  return JSON.stringify(copy).replace(marker, literal);
}

function everyNumberFinite(value: unknown): boolean {
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(everyNumberFinite);
  if (typeof value === 'object' && value !== null) return Object.values(value).every(everyNumberFinite);
  return true;
}

test('1e999 or -1e999 in any number of a Result is refused, naming the file and that field', () => {
  const result = makeResult(2, seededRandom(SEED));
  const paths = numberPaths(result);
  assert.ok(paths.length > 100);
  for (const path of paths) {
    for (const literal of ['1e999', '-1e999']) {
      assert.throws(
        () => parseResult(withLiteral(result, path, literal), 'r.json'),
        (error: unknown) => error instanceof InputError && error.message.startsWith(`r.json: field "`) && /finite|integer/.test(error.message),
        `${path} = ${literal} was accepted`,
      );
    }
  }
});

test("1e999 in a shard file is refused by atp merge's reader, naming the file", () => {
  const random = seededRandom(SEED);
  const file = join(root, `inf-${counter++}.json`);
  const shard = makeResult(1, random, { index: 1, count: 1, total: 1 });
  writeFileSync(file, withLiteral(shard, 'examples[0].attributions.mlpOut[1][0]', '1e999'));
  assert.throws(() => readShards([file]), /inf-\d+\.json: field "examples\[0\]\.attributions\.mlpOut" must be an array of arrays of finite numbers/);
});

test("per-example grids must have the model's layers and heads and the example's tokens", () => {
  const result = makeResult(1, seededRandom(SEED));
  const cases: Array<[(e: ExampleResult) => void, RegExp]> = [
    [
      (e) => e.attributions.z[1].pop(),
      /field "examples\[0\]\.attributions\.z\[1\]": has 1 entries, expected 2 \(examples\[0\]\.attributions\.z has shape \[2, 2, 3\] \(layers, clean tokens, heads\)\)/,
    ],
    [(e) => e.attributions.z[0][1].push(0), /field "examples\[0\]\.attributions\.z\[0\]\[1\]": has 4 entries, expected 3/],
    [(e) => e.attributions.residPre[0].push(0), /field "examples\[0\]\.attributions\.residPre\[0\]": has 3 entries, expected 2/],
    [(e) => e.cleanIds.push(1), /field "examples\[0\]\.cleanIds": has 3 entries, expected 2/],
    [(e) => e.corruptedIds.pop(), /field "examples\[0\]\.corruptedIds": has 1 entries, expected 2/],
  ];
  for (const [damage, message] of cases) {
    const copy = structuredClone(result);
    damage(copy.examples[0]);
    assert.throws(() => parseResult(JSON.stringify(copy), 'r.json'), message);
  }
});

test('shard counts are capped: --shard and shard.count above MAX_SHARD_COUNT are refused at once', () => {
  assert.throws(() => parseShard(`1/${MAX_SHARD_COUNT + 1}`), new RegExp(`1 ≤ i ≤ n ≤ ${MAX_SHARD_COUNT}`));
  assert.deepEqual(parseShard(`3/${MAX_SHARD_COUNT}`), { index: 3, count: MAX_SHARD_COUNT });
  for (const count of [2 ** 53 - 1, 5e7, MAX_SHARD_COUNT + 1]) {
    const file = join(root, `count-${counter++}.json`);
    const shard = makeResult(1, seededRandom(SEED), { index: 1, count: 1, total: 1 });
    shard.shard!.count = count;
    writeFileSync(file, JSON.stringify(shard));
    const started = performance.now();
    assert.throws(
      () => mergeShards(readShards([file])),
      new RegExp(`count-\\d+\\.json: field "shard\\.count" must be an integer from 1 to ${MAX_SHARD_COUNT}`),
    );
    assert.ok(performance.now() - started < 1000);
  }
});

test('timing keys "constructor" and "__proto__" merge into a Result that opens again', () => {
  const random = seededRandom(SEED);
  const files = [1, 2].map((index) => {
    const shard = makeResult(1, random, { index, count: 2, total: 2 });
    const file = join(root, `proto-${counter++}.json`);
    writeFileSync(file, serializeResult(shard).replace('"loadSeconds"', index === 1 ? '"constructor"' : '"__proto__"'));
    return file;
  });
  const merged = mergeShards(readShards(files));
  const out = join(root, `merged-${counter++}.json`);
  writeFileSync(out, serializeResult(merged));
  const back = readResultFile(out);
  assert.equal(Object.getPrototypeOf(back.timings), Object.prototype);
  assert.deepEqual(Object.entries(back.timings!).sort(), [
    ['__proto__', 1],
    ['constructor', 1],
    ['runSeconds', 4],
  ]);
});

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)];

/** A value a careless or hostile writer might put anywhere. */
function hostileValue(random: () => number, original: unknown): unknown {
  const choices: Array<() => unknown> = [
    () => null,
    () => 'x',
    () => -1,
    () => 0,
    () => 2 ** 53 - 1,
    () => 1.5,
    () => [],
    () => ({}),
    () => ({ __proto__: 1, constructor: 2 }),
    () => (Array.isArray(original) ? original.slice(1) : original),
    () => (Array.isArray(original) ? [...original, original[0]] : original),
    () => (Array.isArray(original) ? [original[0]] : [original]),
    () => (typeof original === 'number' ? -original : original),
  ];
  return pick(random, choices)();
}

/** A random node of a JSON value and a way to set it. */
function mutate(value: Record<string, unknown>, random: () => number): void {
  let parent: Record<string, unknown> | unknown[] = value;
  let key: string | number = pick(random, Object.keys(value));
  for (let depth = 0; depth < 8; depth++) {
    const child: unknown = (parent as Record<string, unknown>)[key];
    if (typeof child !== 'object' || child === null || random() < 0.25) break;
    const keys: Array<string | number> = Array.isArray(child) ? child.map((_, i) => i) : Object.keys(child);
    if (keys.length === 0) break;
    parent = child as Record<string, unknown>;
    key = pick(random, keys);
  }
  (parent as Record<string, unknown>)[key] = hostileValue(random, (parent as Record<string, unknown>)[key]);
}

test('fuzzed Results: parseResult gives a Result whose numbers are finite and which writes and reads back, or an InputError', () => {
  const random = seededRandom(SEED);
  const deadline = performance.now() + BUDGET_MS;
  let iterations = 0;
  for (; iterations < MAX_ITERATIONS && performance.now() < deadline; iterations++) {
    const raw = makeResult(1 + Math.floor(random() * 2), random) as unknown as Record<string, unknown>;
    for (let m = 0, n = 1 + Math.floor(random() * 3); m < n; m++) mutate(raw, random);
    const text = random() < 0.1 ? JSON.stringify(raw).replace(/(\d)(,|\])/, '$1e999$2') : JSON.stringify(raw);
    try {
      const result = parseResult(text, 'r.json');
      assert.ok(everyNumberFinite(result), 'an accepted Result holds only finite numbers');
      assert.ok(everyNumberFinite(summarizeHeads(result.examples)));
      parseResult(serializeResult(result), 'again.json');
    } catch (error) {
      if (error instanceof InputError) continue;
      assert.fail(`seed ${SEED}, iteration ${iterations}: ${(error as Error).stack}\ninput: ${text.slice(0, 4000)}`);
    }
  }
  assert.ok(iterations >= 50, `only ${iterations} iterations`);
});

test('fuzzed shards: atp merge gives a Result that opens again, or an InputError naming a file', () => {
  const random = seededRandom(SEED + 1);
  const deadline = performance.now() + BUDGET_MS * 2;
  let iterations = 0;
  let merged = 0;
  for (; iterations < MAX_ITERATIONS && performance.now() < deadline; iterations++) {
    const count = 1 + Math.floor(random() * 3);
    const total = count + Math.floor(random() * 3);
    const shards = Array.from({ length: count }, (_, i) => {
      const { size } = shardRange(total, i + 1, count);
      return makeResult(size, random, { index: i + 1, count, total }) as unknown as Record<string, unknown>;
    });
    // Mostly one field of one shard: the merge's own checks see most of the damage that the reader lets through.
    const victim = pick(random, shards);
    if (random() < 0.8) mutate(pick(random, [victim, victim.shard as Record<string, unknown>, victim]) as Record<string, unknown>, random);
    const files = shards.map((shard) => {
      const file = join(root, `shard-${counter++}.json`);
      writeFileSync(file, JSON.stringify(shard));
      return file;
    });
    try {
      const result = mergeShards(readShards(files));
      merged++;
      assert.ok(everyNumberFinite(result));
      const out = join(root, `merged-${counter++}.json`);
      writeFileSync(out, serializeResult(result));
      readResultFile(out);
    } catch (error) {
      if (error instanceof InputError && /shard-\d+\.json|shards? \d|every shard/.test(error.message)) continue;
      assert.fail(`seed ${SEED + 1}, iteration ${iterations}: ${(error as Error).stack}\nshards: ${JSON.stringify(shards).slice(0, 4000)}`);
    }
  }
  assert.ok(iterations >= 30, `only ${iterations} iterations`);
  assert.ok(merged > 0, 'some undamaged or harmlessly damaged sets merged');
});
