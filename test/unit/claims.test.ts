import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CLAIM_KINDS, formatProblem, parseClaims, readClaimsFile, type Claim } from '../../src/lib/claims/schema';
import { evaluateClaim } from '../../src/lib/claims/evaluate';
import { inputChanges, type InputsRecord } from '../../src/lib/claims/inputs';
import { circuitOptionsFor } from '../../src/lib/claims/state';
import { exactSizes } from '../../src/engine/circuits/curve';
import { junitXml } from '../../src/lib/claims/junit';
import { hashFile } from '../../src/lib/files/provenance';
import { parseResult, RESULT_SCHEMA, serializeResult, type Result } from '../../src/shared/result';
import { CIRCUIT_METHOD_NAMES, type Circuit } from '../../src/shared/circuit';

const work = mkdtempSync(join(tmpdir(), 'atp-claims-unit-'));
process.env.ATP_CACHE_DIR = join(work, 'cache');
after(() => rmSync(work, { recursive: true, force: true }));

const VALID = `model: ../model
dataset: data.jsonl
method: atp
claims:
  - name: heads
    top_heads: {k: 2, include: [L0H1], exclude: [L1H*]}
  - not_in_top: {k: 1, heads: [L1H0]}
  - baselines: {clean: {greater_than: 0}, corrupted: {less_than: 0}, gap: {at_least: 2}}
  - agreement: {with: exact, spearman: 0.9}
  - token_score: {total: {at_least: 0.5}, each: {greater_than: 0}}
  - faithfulness: {edges: 20, at_least: 0.8}
`;

test('a valid YAML claims file parses: paths resolved against its folder, each claim with its line, ids and default names', () => {
  const file = join(work, 'claims', 'x.claims.yaml');
  const { claims, problems } = parseClaims(VALID, file);
  assert.deepEqual(problems, []);
  assert.ok(claims);
  assert.equal(claims.dataset, resolve(work, 'claims', 'data.jsonl'));
  assert.equal(claims.model, '../model', 'a folder that does not exist stays as written (a preset or hub id)');
  assert.equal(claims.method, 'atp');
  assert.deepEqual(
    claims.claims.map((c) => c.line),
    [5, 7, 8, 9, 10, 11],
  );
  assert.deepEqual(
    claims.claims.map((c) => c.id),
    ['heads', 'not_in_top #2', 'baselines #3', 'agreement #4', 'token_score #5', 'faithfulness #6'],
  );
  assert.equal(claims.claims[1].name, 'L1H0 not in the top 1 heads');
  assert.deepEqual(claims.claims[0].claim, {
    kind: 'top_heads',
    k: 2,
    include: [{ layer: 0, head: 1, text: 'L0H1' }],
    exclude: [{ layer: 1, head: null, text: 'L1H*' }],
  });
  assert.deepEqual(claims.claims[2].claim, { kind: 'baselines', clean: { greaterThan: 0 }, corrupted: { lessThan: 0 }, gap: { atLeast: 2 } });
  assert.deepEqual(claims.claims[5].claim, { kind: 'faithfulness', edges: 20, atLeast: 0.8 });
});

test('the same claims as JSON parse the same, with JSON lines', () => {
  const json = JSON.stringify(
    { model: 'm', dataset: 'd.jsonl', claims: [{ top_heads: { k: 3, include: ['L0H3'] } }, { agreement: { with: 'exact', pearson: 0.5 } }] },
    null,
    2,
  );
  const { claims, problems } = parseClaims(json, join(work, 'a.claims.json'));
  assert.deepEqual(problems, []);
  assert.equal(claims!.method, 'atp', 'atp by default');
  assert.deepEqual(
    claims!.claims.map((c) => c.line),
    [5, 13],
  );
  assert.deepEqual(claims!.claims[1].claim, { kind: 'agreement', with: 'exact', spearman: undefined, pearson: 0.5, maxError: undefined });
});

/** Every problem of a text, as "line:col field: message". */
const problemsOf = (text: string) => parseClaims(text, 'f.claims.yaml').problems.map((p) => `${p.line}:${p.column} ${p.field}: ${p.message}`);

test('every problem is located at its line and column and names its field', () => {
  const text = `model: m
dataset: d.jsonl
method: fast
colour: red
claims:
  - top_heads: {k: three, include: [L0H3, head7]}
  - baselines: {clean: {greater_than: 5, less_than: 1}}
  - agreement: {with: atp, spearman: 1.5}
  - {}
  - top_heads: {k: 1, include: [L0H0]}
    faithfulness: {edges: 3}
  - token_score: {}
  - name: twice
    baselines: {gap: {at_least: 1}}
  - name: twice
    baselines: {gap: {at_most: 1}}
`;
  assert.deepEqual(problemsOf(text), [
    '4:1 colour: unknown field; expected model, dataset, method, seed, circuit, claims',
    '3:9 method: expected one of auto, atp, atpstar, exact, got "fast"',
    '6:20 claims[0].top_heads.k: expected an integer ≥ 1, got "three"',
    '6:43 claims[0].top_heads.include[1]: expected a head such as L0H3 or L2H*, got "head7"',
    '7:24 claims[1].baselines.clean: no number satisfies this bound (lower 5 > upper 1)',
    '8:23 claims[2].agreement.with: expected "exact" (agreement with exact activation patching)',
    '8:38 claims[2].agreement.spearman: a correlation is between −1 and 1, got 1.5',
    '9:5 claims[3]: no claim: expected one of top_heads, not_in_top, baselines, agreement, token_score, faithfulness',
    '10:5 claims[4]: one claim per item, got top_heads and faithfulness',
    '12:18 claims[5].token_score: expected at least one of total, each',
    '15:5 claims[7].name: another claim is named "twice": names must be unique in a file',
  ]);
});

test('missing fields, a YAML syntax error, a duplicate key and a non-mapping are located too', () => {
  assert.deepEqual(problemsOf('claims:\n  - baselines: {clean: {greater_than: 0}}\n'), [
    '1:1 model: missing (expected a model folder, preset or Hugging Face repo id)',
    '1:1 dataset: missing (expected the dataset file (.jsonl or .atp))',
  ]);
  assert.match(problemsOf('model: m\ndataset: [d\nclaims: []\n')[0], /^\d+:\d+ : /);
  assert.match(problemsOf('model: m\nmodel: n\ndataset: d\nclaims: []\n')[0], /^2:1 : Map keys must be unique/);
  assert.deepEqual(problemsOf('- 1\n- 2\n'), ['1:1 : expected a mapping with model, dataset and claims, got a list']);
  assert.deepEqual(problemsOf('model: m\ndataset: d\nclaims: []\n'), ['3:9 claims: expected a non-empty list of claims, got a list']);
});

test('readClaimsFile throws one InputError with every problem as file:line:col: field: message', () => {
  const file = join(work, 'bad.claims.yaml');
  writeFileSync(file, 'model: m\ndataset: d\nclaims:\n  - top_heads: {k: 0, include: [L0H0]}\n  - not_in_top: {k: 2}\n');
  assert.throws(
    () => readClaimsFile(file),
    (error: Error) => {
      assert.equal(error.name, 'InputError');
      assert.equal(
        error.message,
        `${file}:4:20: claims[0].top_heads.k: expected an integer ≥ 1, got 0\n${file}:5:17: claims[1].not_in_top.heads: missing (the heads that must not be in the top k)`,
      );
      return true;
    },
  );
  assert.equal(formatProblem('f', { line: 1, column: 2, field: '', message: 'm' }), 'f:1:2: m');
});

// ---- evaluation against hand-made Results (values chosen so each claim's answer is known) ----

function makeResult(overrides: Partial<Result> = {}): Result {
  return {
    schema: RESULT_SCHEMA,
    createdAt: '2026-01-01T00:00:00.000Z',
    dataset: { file: 'd.jsonl', examples: 2 },
    model: { source: 'm', architecture: 'gpt2', modelType: 'gpt2', layers: 2, heads: 2, dModel: 4, dHead: 2, dtype: 'float32' },
    device: 'cpu',
    metric: { cleanLogitDiff: 3, corruptedLogitDiff: -1, name: 'normalized-logit-diff' },
    run: { requested: 'atp', method: 'atp', passes: { forward: 2, backward: 1 }, reason: 'asked' },
    methods: { attributions: 'atp', heads: 'atp', positions: 'atp', tokenScores: 'exact' },
    // Ranked by |value|: L1H1 (−0.9), L0H1 (0.5), L0H0 (0.2), L1H0 (0.1).
    heads: [
      [0.2, 0.5],
      [0.1, -0.9],
    ],
    positions: null,
    examples: [example(1, [1, 2, 3], [1, 9, 3], [0, 0.4, 0]), example(2, [4, 5], [6, 5], [0.7, 0])],
    warnings: [],
    ...overrides,
  };
}

function example(line: number, cleanIds: number[], corruptedIds: number[], values: number[]): Result['examples'][number] {
  const tokens = cleanIds.map((id, i) => ({ id, text: `t${id}`, start: i, end: i + 1 }));
  return {
    line,
    clean: '',
    corrupted: '',
    correct: ' a',
    incorrect: ' b',
    cleanIds,
    corruptedIds,
    correctId: 0,
    incorrectId: 1,
    tokens,
    corruptedTokens: tokens,
    cleanLogitDiff: 3,
    corruptedLogitDiff: -1,
    tokenScores: { kind: 'token-patch', method: 'exact', values, exact: values.map(() => true), joint: 0.5 },
    // [layer][clean token][head]: 2 layers, 2 heads.
    attributions: {
      z: [0, 1].map(() => cleanIds.map(() => [0, 0])),
      residPre: [0, 1].map(() => cleanIds.map(() => 0)),
      attnOut: [0, 1].map(() => cleanIds.map(() => 0)),
      mlpOut: [0, 1].map(() => cleanIds.map(() => 0)),
    },
  };
}

const head = (text: string) => {
  const [, layer, h] = /^L(\d+)H(\d+|\*)$/.exec(text)!;
  return { layer: Number(layer), head: h === '*' ? null : Number(h), text };
};

test('top_heads and not_in_top: pass when the named heads are (not) among the k largest |value|, fail naming what is missing or intruding', () => {
  const result = makeResult();
  const top = (include: string[], exclude: string[] = [], k = 2): Claim => ({ kind: 'top_heads', k, include: include.map(head), exclude: exclude.map(head) });
  const pass = evaluateClaim(top(['L1H1', 'L0H1']), result);
  assert.equal(pass.status, 'passed');
  assert.equal(pass.actual, 'top 2 by |attribution|: L1H1 -0.9000, L0H1 +0.5000');
  assert.deepEqual(evaluateClaim(top(['L0H0']), result), {
    status: 'failed',
    expected: 'L0H0 in the top 2 heads',
    actual: 'top 2 by |attribution|: L1H1 -0.9000, L0H1 +0.5000 (missing L0H0)',
  });
  assert.equal(evaluateClaim(top([], ['L1H*']), result).actual, 'top 2 by |attribution|: L1H1 -0.9000, L0H1 +0.5000 (L1H1 in the top 2)');
  assert.equal(evaluateClaim(top(['L0H*'], [], 3), result).status, 'passed', 'L0H* in the top 3: both heads of layer 0');
  assert.equal(evaluateClaim({ kind: 'not_in_top', k: 3, heads: [head('L1H0')] }, result).status, 'passed');
  assert.equal(evaluateClaim({ kind: 'not_in_top', k: 1, heads: [head('L1H*')] }, result).status, 'failed');
  const outside = evaluateClaim(top(['L5H0']), result);
  assert.equal(outside.status, 'unverified');
  assert.match(outside.actual, /L5H0 is not a head of this model \(2 layers × 2 heads\)/);
  assert.match(
    evaluateClaim(top(['L1H1']), makeResult({ methods: { attributions: 'exact', heads: 'exact', positions: 'exact', tokenScores: 'exact' } })).actual,
    /by \|exact effect\|/,
  );
});

test('baselines: the mean clean and corrupted logit differences and their gap against strict and inclusive bounds', () => {
  const result = makeResult();
  assert.equal(
    evaluateClaim({ kind: 'baselines', clean: { greaterThan: 0 }, corrupted: { lessThan: 0 }, gap: { atLeast: 4, atMost: 4 } }, result).status,
    'passed',
  );
  const failed = evaluateClaim({ kind: 'baselines', clean: { greaterThan: 3 }, corrupted: { atLeast: -1 } }, result);
  assert.equal(failed.status, 'failed', 'greater_than is strict: 3 is not > 3');
  assert.equal(failed.expected, 'clean logit diff > 3; corrupted logit diff ≥ -1');
  assert.equal(failed.actual, 'clean logit diff +3.0000 (not > 3); corrupted logit diff -1.0000');
});

test('agreement: reads the checks against exact patching; without checks it cannot be settled', () => {
  const items = [0.1, 0.2, 0.3, 0.4].map((attribution, i) => ({
    hook: 'z' as const,
    layer: i >> 1,
    position: null,
    head: i & 1,
    attribution,
    exact: [0.1, 0.3, 0.2, 0.4][i],
    pick: 'top' as const,
  }));
  const result = makeResult({ checks: { k: 4, seed: 0, candidates: ['heads'], items, pearson: 0.8, spearman: 0.8 } });
  assert.deepEqual(evaluateClaim({ kind: 'agreement', with: 'exact', spearman: 0.8 }, result), {
    status: 'passed',
    expected: 'heads agree with exact patching: Spearman ≥ 0.8',
    actual: 'Spearman 0.800 over 4 heads',
  });
  const failed = evaluateClaim({ kind: 'agreement', with: 'exact', spearman: 0.5, pearson: 0.9 }, result);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.actual, 'Spearman 0.800, Pearson 0.800 over 4 heads');
  const none = evaluateClaim({ kind: 'agreement', with: 'exact', spearman: 0.5 }, makeResult());
  assert.equal(none.status, 'unverified');
  assert.match(none.actual, /no checks against exact patching/);
  const exactHeads = makeResult({ checks: result.checks, methods: { attributions: 'exact', heads: 'exact', positions: 'exact', tokenScores: 'exact' } });
  assert.match(evaluateClaim({ kind: 'agreement', with: 'exact', spearman: 0.5 }, exactHeads).actual, /the head map is exact patching itself/);
  const nan = makeResult({ checks: { k: 4, seed: 0, candidates: ['heads'], items, pearson: NaN, spearman: NaN } });
  assert.equal(evaluateClaim({ kind: 'agreement', with: 'exact', spearman: 0 }, nan).status, 'failed', 'an undefined correlation never passes');
});

test('agreement max_error: a scale error that the correlations cannot see fails the bound; a close map passes', () => {
  // The head map at 12% of the exact effects everywhere: Pearson 1, yet every estimate is 88% off.
  const exact = [1.018, 0.5, 0.2, 0.05];
  const items = exact.map((value, i) => ({
    hook: 'z' as const,
    layer: i >> 1,
    position: null,
    head: i & 1,
    attribution: value * 0.115,
    exact: value,
    pick: 'top' as const,
  }));
  const scaled = makeResult({ checks: { k: 4, seed: 0, candidates: ['heads'], items, pearson: 1, spearman: 1 } });
  const claim = { kind: 'agreement' as const, with: 'exact' as const, pearson: 0.9, maxError: 0.2 };
  const failed = evaluateClaim(claim, scaled);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.expected, 'heads agree with exact patching: Pearson ≥ 0.9, max error ≤ 0.2 of the largest exact');
  // (1.018 − 0.117) / 1.018 = 0.885; the top head is 0.115× its exact value.
  assert.equal(failed.actual, 'Pearson 1.000, max error 0.885 of the largest exact (top head 0.12× exact) over 4 heads');
  assert.equal(evaluateClaim({ ...claim, pearson: undefined }, scaled).status, 'failed', 'the error bound alone fails too');
  const close = makeResult({
    checks: { k: 4, seed: 0, candidates: ['heads'], items: items.map((item) => ({ ...item, attribution: item.exact * 0.9 })), pearson: 1, spearman: 1 },
  });
  const passed = evaluateClaim(claim, close);
  assert.equal(passed.status, 'passed', passed.actual);
  assert.match(passed.actual, /max error 0\.100 of the largest exact \(top head 0\.90× exact\)/);
});

test('agreement max_error is read from the claims file; a negative bound is an error at its place', () => {
  const ok = parseClaims('model: m\ndataset: d.jsonl\nclaims:\n  - agreement: {with: exact, max_error: 0.25}\n', join(work, 'c.claims.yaml'));
  assert.deepEqual(ok.claims!.claims[0].claim, { kind: 'agreement', with: 'exact', spearman: undefined, pearson: undefined, maxError: 0.25 });
  const bad = parseClaims('model: m\ndataset: d.jsonl\nclaims:\n  - agreement: {with: exact, max_error: -1}\n', join(work, 'c.claims.yaml'));
  assert.deepEqual(
    bad.problems.map((p) => `${p.line}:${p.column} ${p.field}: ${p.message}`),
    ['4:41 claims[0].agreement.max_error: an error bound is at least 0 (a share of the largest exact value), got -1'],
  );
});

test('token_score: sums the exact effects of the changed tokens only, checks each, and refuses estimates', () => {
  const result = makeResult();
  // Changed tokens: example 1 position 1 (0.4), example 2 position 0 (0.7); the unchanged ones are not counted.
  const pass = evaluateClaim({ kind: 'token_score', total: { atLeast: 1.1, atMost: 1.1 }, each: { greaterThan: 0 } }, result);
  assert.equal(pass.status, 'passed');
  assert.equal(pass.actual, '2 changed tokens, summed +1.1000');
  const each = evaluateClaim({ kind: 'token_score', each: { greaterThan: 0.5 } }, result);
  assert.equal(each.status, 'failed');
  assert.equal(each.actual, '2 changed tokens, summed +1.1000; 1 not > 0.5: line 1 "t2" +0.4000');
  const estimated = makeResult();
  estimated.examples[1].tokenScores!.exact = [false, true];
  const refused = evaluateClaim({ kind: 'token_score', total: { greaterThan: 0 } }, estimated);
  assert.equal(refused.status, 'unverified');
  assert.match(refused.actual, /line 2 is an AtP estimate/);
});

test('faithfulness: read from the circuit curve (interpolated between measured sizes); without a circuit it asks for atp circuit', () => {
  const none = evaluateClaim({ kind: 'faithfulness', edges: 20, atLeast: 0.8 }, makeResult());
  assert.equal(none.status, 'unverified');
  assert.equal(none.actual, 'needs a circuit run (atp circuit): this Result has no circuit');
  const circuit: Circuit = {
    method: 'eap-ig',
    steps: 5,
    nodes: [],
    edges: [],
    inCircuit: [],
    selection: { rule: 'top-n', requested: 10, edges: 10 },
    faithfulness: { circuit: 0.7, full: 1, empty: 0 },
    curve: { edges: [0, 10, 30, 50], faithfulness: [0, 0.6, 0.9, 1], random: [0, 0.1, 0.3, 1], randomDraws: 3, randomSeed: 0, area: 0.8, randomArea: 0.3 },
  };
  const result = makeResult({ circuit });
  const at20 = evaluateClaim({ kind: 'faithfulness', edges: 20, atLeast: 0.75 }, result);
  assert.equal(at20.status, 'passed');
  assert.equal(at20.actual, 'faithfulness 0.750 at 20 edges (interpolated between measured sizes, eap-ig)');
  assert.equal(evaluateClaim({ kind: 'faithfulness', edges: 10, atLeast: 0.61 }, result).status, 'failed');
  assert.equal(evaluateClaim({ kind: 'faithfulness', edges: 60, atLeast: 0.5 }, result).status, 'unverified');
  assert.equal(
    evaluateClaim({ kind: 'faithfulness', edges: 10, atLeast: 0.5 }, makeResult({ circuit: { ...circuit, curve: undefined } })).status,
    'unverified',
  );
});

test('a shard is never tested: its values are raw', () => {
  const shard = makeResult({ shard: { index: 1, count: 2, firstExample: 0, datasetExamples: 4, datasetHash: 'sha256:0' } });
  assert.equal(evaluateClaim({ kind: 'baselines', clean: { greaterThan: 0 } }, shard).status, 'unverified');
});

// ---- provenance ----

const inputs: InputsRecord = {
  engineVersion: '0.1.0',
  modelFiles: { 'config.json': 'sha256:aa', 'model.safetensors': 'sha256:bbbbbbbbbbbbbbbb', 'tokenizer.json': 'sha256:cc' },
  tokenizerHash: 'sha256:cc',
  datasetHash: 'sha256:dd',
  requested: 'atp',
  seed: 0,
};

test('inputChanges names each input that differs, and nothing when none does', () => {
  assert.deepEqual(inputChanges(inputs, { ...inputs }), []);
  const now: InputsRecord = {
    engineVersion: '0.2.0',
    modelFiles: { 'config.json': 'missing', 'model.safetensors': 'sha256:eeeeeeeeeeeeeeee', 'tokenizer.json': 'sha256:ff', 'extra.safetensors': 'sha256:11' },
    tokenizerHash: 'sha256:ff',
    datasetHash: 'sha256:00',
    requested: 'exact',
    seed: 3,
  };
  assert.deepEqual(inputChanges(inputs, now), [
    'engine 0.1.0 → 0.2.0',
    'model file config.json missing',
    'model file extra.safetensors added',
    'model file model.safetensors changed (sha256 bbbbbbbbbbbb… → eeeeeeeeeeee…)',
    'tokenizer changed (sha256 cc… → ff…)',
    'dataset changed',
    'method atp → exact',
    'seed 0 → 3',
  ]);
  // A circuit the claims need must be of the same method and steps; one they do not need is no reason to rerun.
  assert.deepEqual(inputChanges({ ...inputs, circuit: 'eap-ig, 5 steps' }, { ...inputs, circuit: 'eap' }), ['circuit eap-ig, 5 steps → eap']);
  assert.deepEqual(inputChanges(inputs, { ...inputs, circuit: 'eap-ig, 5 steps' }), ['circuit none → eap-ig, 5 steps']);
  assert.deepEqual(inputChanges({ ...inputs, circuit: 'eap-ig, 5 steps' }, inputs), []);
});

test('hashFile streams sha256 and reuses it while size and modification time are unchanged', async () => {
  const file = join(work, 'weights.bin');
  const bytes = Buffer.alloc(3 * 2 ** 20, 7);
  writeFileSync(file, bytes);
  const mtime = new Date('2026-01-01T00:00:00Z');
  utimesSync(file, mtime, mtime);
  const expected = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  assert.equal(await hashFile(file), expected);
  // Same size and mtime, other bytes: the cache answers (what makes a multi-gigabyte file cheap on the next run).
  writeFileSync(file, Buffer.alloc(bytes.length, 8));
  utimesSync(file, mtime, mtime);
  assert.equal(await hashFile(file), expected);
  // The on-disk cache in ATP_CACHE_DIR holds it for the next process.
  assert.equal(JSON.parse(readFileSync(join(work, 'cache', 'file-hashes.json'), 'utf8'))[file].hash, expected);
  // A changed size is hashed again.
  writeFileSync(file, Buffer.alloc(10, 8));
  assert.equal(await hashFile(file), `sha256:${createHash('sha256').update(Buffer.alloc(10, 8)).digest('hex')}`);
});

test('parseResult keeps a valid provenance, writes it after runtime, and names a malformed field', () => {
  const provenance = {
    engineVersion: '0.1.0',
    modelFiles: { 'model.safetensors': 'sha256:ab' },
    tokenizerHash: 'sha256:cd',
    method: 'atp' as const,
    device: 'cpu',
    seed: 0,
  };
  const text = serializeResult(makeResult({ provenance }));
  assert.deepEqual(parseResult(text, 'r.json').provenance, provenance);
  assert.ok(text.indexOf('"provenance"') > text.indexOf('"device"') && text.indexOf('"provenance"') < text.indexOf('"metric"'));
  const bad = (change: object) => () => parseResult(serializeResult(makeResult({ provenance: { ...provenance, ...change } as never })), 'r.json');
  assert.throws(bad({ method: 'fast' }), /r\.json: field "provenance\.method" must be "atp", "atpstar" or "exact"/);
  assert.throws(bad({ seed: -1 }), /field "provenance\.seed" must be a non-negative integer/);
  assert.throws(bad({ modelFiles: { 'a.safetensors': 3 } }), /field "provenance\.modelFiles\.a\.safetensors" must be a string/);
  assert.throws(bad({ engineVersion: 1 }), /field "provenance\.engineVersion" must be a string/);
});

test('JUnit XML: one suite per file, failures and unverified claims as failure and error, escaped', () => {
  const entry = (name: string, line: number) => ({ id: name, name, line, column: 3, claim: { kind: 'baselines', clean: { greaterThan: 0 } } as Claim });
  const xml = junitXml(
    [
      {
        file: 'a.claims.yaml',
        seconds: 1.5,
        reports: [
          { entry: entry('ok <1>', 4), outcome: { status: 'passed', expected: 'e', actual: 'a' } },
          {
            entry: entry('bad & worse', 6),
            outcome: { status: 'failed', expected: 'x > 1', actual: 'x "0"' },
            lastPass: { passedAt: 'T', changes: ['dataset changed'] },
          },
          { entry: entry('open', 8), outcome: { status: 'unverified', expected: 'e', actual: 'needs a circuit run (atp circuit)' } },
        ],
      },
      { file: 'b.claims.yaml', seconds: 0, error: 'b.claims.yaml:1:1: model: missing', reports: [] },
    ],
    new Date('2026-01-02T03:04:05.678Z'),
  );
  assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="atp test" tests="4" failures="1" errors="2" time="1.500">/);
  assert.match(xml, /<testsuite name="a.claims.yaml" tests="3" failures="1" errors="1" skipped="0" time="1.500" timestamp="2026-01-02T03:04:05">/);
  assert.match(xml, /<testcase name="ok &lt;1&gt;" classname="a.claims.yaml" file="a.claims.yaml" line="4" time="0"\/>/);
  assert.match(
    xml,
    /<failure type="claim" message="expected x &gt; 1; actual x &quot;0&quot;">expected: x &gt; 1\nactual: {3}x &quot;0&quot;\nlast passed T on other inputs: dataset changed<\/failure>/,
  );
  assert.match(xml, /name="bad &amp; worse"/);
  assert.match(xml, /<error type="unverified" message="needs a circuit run \(atp circuit\)">/);
  assert.match(
    xml,
    /<testsuite name="b.claims.yaml" tests="1" failures="0" errors="1"[^>]*>\n {4}<testcase name="\(claims file\)"[^>]*>\n {6}<error type="input" message="b.claims.yaml:1:1: model: missing">/,
  );
});

test('schemas/claims.schema.json (the editor completes with it) names the same fields, claim kinds, methods and bounds as the parser', () => {
  const schema = JSON.parse(readFileSync(resolve(__dirname, '../../schemas/claims.schema.json'), 'utf8'));
  assert.deepEqual(Object.keys(schema.properties), ['model', 'dataset', 'method', 'seed', 'circuit', 'claims']);
  assert.deepEqual(Object.keys(schema.properties.circuit.properties), ['method', 'steps', 'edges', 'sizes', 'random_draws']);
  assert.deepEqual(schema.properties.circuit.properties.method.enum, CIRCUIT_METHOD_NAMES);
  assert.deepEqual(schema.properties.method.enum, ['auto', 'atp', 'atpstar', 'exact']);
  assert.deepEqual(Object.keys(schema.definitions.claim.properties), ['name', ...CLAIM_KINDS]);
  assert.deepEqual(Object.keys(schema.definitions.bound.properties), ['greater_than', 'less_than', 'at_least', 'at_most']);
  const claims = schema.definitions.claim.properties;
  assert.deepEqual(Object.keys(claims.top_heads.properties), ['k', 'include', 'exclude']);
  assert.deepEqual(Object.keys(claims.not_in_top.properties), ['k', 'heads']);
  assert.deepEqual(Object.keys(claims.baselines.properties), ['clean', 'corrupted', 'gap']);
  assert.deepEqual(Object.keys(claims.agreement.properties), ['with', 'spearman', 'pearson', 'max_error']);
  assert.deepEqual(Object.keys(claims.token_score.properties), ['total', 'each']);
  assert.deepEqual(Object.keys(claims.faithfulness.properties), ['edges', 'at_least']);
  const head = new RegExp(schema.definitions.head.pattern);
  assert.ok(head.test('L0H3') && head.test('L12H*') && !head.test('H1') && !head.test('L0H'));
  const manifest = JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8'));
  assert.deepEqual(manifest.contributes.jsonValidation, [{ fileMatch: ['*.claims.json'], url: './schemas/claims.schema.json' }]);
});

test("the shipped models' claims files parse without a problem, each with its circuit at the claimed sizes", () => {
  for (const [model, name, count, sizes] of [
    ['tinysql-demo', 'tables', 7, [23, 34]],
    ['tinysql-demo', 'fields', 7, [23, 34]],
    ['ioi-demo', 'ioi', 5, [14, 23]],
  ] as const) {
    const claims = readClaimsFile(resolve(__dirname, `../../models/${model}/claims/${name}.claims.yaml`));
    assert.equal(claims.model, resolve(__dirname, `../../models/${model}`));
    assert.equal(claims.claims.length, count);
    assert.deepEqual(claims.circuit, { method: 'eap-ig', steps: 5, edges: sizes[0], sizes: [...sizes], randomDraws: 3 });
  }
});

test('a faithfulness claim asks for a circuit run (EAP-IG, 5 steps) measured at exactly its size; a circuit block sets the rest', () => {
  const base = 'model: ..\ndataset: d.jsonl\n';
  assert.equal(
    parseClaims(`${base}claims:\n  - baselines: {clean: {greater_than: 0}}\n`, join(work, 'a.claims.yaml')).claims!.circuit,
    undefined,
    'no circuit claim: no circuit run',
  );
  const defaults = parseClaims(
    `${base}claims:\n  - faithfulness: {edges: 40, at_least: 0.9}\n  - faithfulness: {edges: 12, at_least: 0.5}\n`,
    join(work, 'a.claims.yaml'),
  ).claims!;
  assert.deepEqual(defaults.circuit, { method: 'eap-ig', steps: 5, edges: 12, sizes: [12, 40], randomDraws: 3 });
  assert.deepEqual(circuitOptionsFor(defaults), {
    method: 'eap-ig',
    steps: 5,
    selection: { rule: 'top-n', edges: 12 },
    curveSizes: [12, 40],
    randomDraws: 3,
    randomSeed: 0,
  });
  const block = parseClaims(
    `${base}seed: 4\ncircuit: {method: eap, steps: 9, edges: 30, sizes: [100, 12], random_draws: 1}\nclaims:\n  - faithfulness: {edges: 12, at_least: 0.5}\n`,
    join(work, 'a.claims.yaml'),
  ).claims!;
  assert.deepEqual(block.circuit, { method: 'eap', steps: 1, edges: 30, sizes: [12, 30, 100], randomDraws: 1 }, 'eap has one step');
  assert.equal(circuitOptionsFor(block)!.randomSeed, 4);
  const onlyBlock = parseClaims(`${base}circuit: {}\nclaims:\n  - baselines: {clean: {greater_than: 0}}\n`, join(work, 'a.claims.yaml')).claims!;
  assert.deepEqual(onlyBlock.circuit, { method: 'eap-ig', steps: 5, edges: 20, sizes: [20], randomDraws: 3 }, 'a block alone asks for a circuit');
  const bad = parseClaims(
    `${base}circuit: {method: acdc, steps: 0, sizes: [3, x], width: 2}\nclaims:\n  - faithfulness: {edges: 12, at_least: 0.5}\n`,
    'b.claims.yaml',
  );
  assert.deepEqual(
    bad.problems.map((p) => formatProblem('b.claims.yaml', p)),
    [
      'b.claims.yaml:3:50: circuit.width: unknown field; expected method, steps, edges, sizes, random_draws',
      'b.claims.yaml:3:19: circuit.method: expected one of eap, eap-corrupted, eap-ig, eap-ig-activations, eap-ig-activations-corrupted, got "acdc"',
      'b.claims.yaml:3:32: circuit.steps: expected an integer ≥ 1, got 0',
      'b.claims.yaml:3:46: circuit.sizes[1]: expected an integer ≥ 1, got "x"',
    ],
  );
  // The curve's sizes: exactly the ones asked, with 0 and the whole graph for the area; none beyond the graph.
  assert.deepEqual(exactSizes(479, [34, 23, 23, 600]), [0, 23, 34, 479]);
});
