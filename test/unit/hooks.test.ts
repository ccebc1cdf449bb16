// The hook vocabulary table (src/shared/hooks.ts): every row complete, and the spellings that the Result, its
// checks and the views use all go through it and back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byPositionField, HOOK_KINDS, HOOKS, hookOfField, hookOfFieldName, isHookKind, POSITION_FIELDS, transformerLensName } from '../../src/shared/hooks';
import { HOOK_KINDS as ENGINE_HOOK_KINDS } from '../../src/engine/architectures/types';
import { parseResult, RESULT_SCHEMA, serializeResult, summarizeHeads, summarizePositions, type ExampleResult, type Result } from '../../src/shared/result';
import { selectionLabel, type ValueSelection } from '../../src/shared/panelProtocol';
import { mapsCsv, positionHook, positionMatrix, positionMatrixLabel, valueAt } from '../../src/shared/resultViews';

const LAYERS = 2;
const HEADS = 3;
const LENGTH = 4;

/** Every attribution value distinct and traceable: field index·1000 + layer·100 + pos·10 + head. */
function exampleResult(): ExampleResult {
  const tokens = Array.from({ length: LENGTH }, (_, pos) => ({ id: pos, text: `t${pos}`, start: pos * 2, end: pos * 2 + 1 }));
  const grid = (base: number) => Array.from({ length: LAYERS }, (_, l) => Array.from({ length: LENGTH }, (_, p) => base + 100 * l + 10 * p));
  return {
    line: 1,
    clean: tokens.map((t) => t.text).join(' '),
    corrupted: tokens.map((t) => t.text).join(' '),
    correct: ' a',
    incorrect: ' b',
    cleanIds: tokens.map((t) => t.id),
    corruptedIds: tokens.map((t) => (t.id === 1 ? 9 : t.id)),
    correctId: 5,
    incorrectId: 6,
    tokens,
    corruptedTokens: tokens,
    cleanLogitDiff: 1,
    corruptedLogitDiff: 0,
    tokenScores: { kind: 'token-patch', method: 'exact', values: tokens.map(() => 0), exact: tokens.map(() => true), joint: 1 },
    attributions: {
      z: grid(1000).map((row) => row.map((v) => Array.from({ length: HEADS }, (_, h) => v + h))),
      residPre: grid(2000),
      attnOut: grid(3000),
      mlpOut: grid(4000),
    },
  };
}

function resultWithChecks(): Result {
  const examples = [exampleResult()];
  return {
    schema: RESULT_SCHEMA,
    createdAt: '2025-01-02T03:04:05.000Z',
    dataset: { file: 'd.jsonl', examples: 1 },
    model: { source: 'm', architecture: 'gpt2', modelType: 'gpt2', layers: LAYERS, heads: HEADS, dModel: 6, dHead: 2, dtype: 'F32' },
    device: 'cpu',
    metric: { name: 'normalized-logit-diff', cleanLogitDiff: 1, corruptedLogitDiff: 0 },
    run: { requested: 'auto', method: 'exact', passes: { forward: 1, backward: 0 }, reason: 'test' },
    methods: { attributions: 'exact', heads: 'exact', positions: 'exact', tokenScores: 'exact' },
    checks: {
      k: 1,
      seed: 0,
      candidates: ['heads', 'positions'],
      pearson: 1,
      spearman: 1,
      items: HOOK_KINDS.map((hook, i) => ({
        hook,
        layer: 1,
        position: 2,
        head: HOOKS[hook].perHead ? 1 : null,
        pick: 'top' as const,
        attribution: i,
        exact: i,
      })),
    },
    heads: summarizeHeads(examples),
    positions: summarizePositions(examples),
    examples,
    warnings: [],
  };
}

test('every hook kind has every column, and no two kinds share a spelling', () => {
  assert.deepEqual([...ENGINE_HOOK_KINDS], [...HOOK_KINDS], 'the engine uses the shared table');
  assert.deepEqual(Object.keys(HOOKS).sort(), [...HOOK_KINDS].sort());
  for (const kind of HOOK_KINDS) {
    const row = HOOKS[kind];
    assert.equal(row.kind, kind);
    for (const column of ['field', 'transformerLens', 'label'] as const)
      assert.ok(typeof row[column] === 'string' && row[column].length > 0, `${kind}.${column}`);
    assert.equal(typeof row.perHead, 'boolean');
    assert.match(row.transformerLens, /^blocks\.\{l\}\.(attn\.)?hook_[a-z_]+$/, kind);
    // The label is TransformerLens' name without the block prefix.
    assert.equal(row.label, row.transformerLens.split('.').at(-1));
    // Attributions are the activation summed over its last axis (d_model or d_head), per layer instead of per batch row.
    assert.deepEqual(row.attributionShape, [
      'layer',
      ...row.activationShape.slice(1, -1).map((axis) => (axis === 'seq' ? 'pos' : axis === 'heads' ? 'head' : axis)),
    ]);
    assert.equal(row.perHead, row.activationShape.includes('heads'));
    assert.equal(hookOfField(row.field), row);
    assert.equal(hookOfFieldName(row.field), row);
    assert.ok(isHookKind(kind));
  }
  for (const column of ['field', 'transformerLens', 'label'] as const) {
    assert.equal(new Set(HOOK_KINDS.map((kind) => HOOKS[kind][column])).size, HOOK_KINDS.length, `${column} is unique`);
  }
  assert.deepEqual(
    HOOK_KINDS.filter((kind) => HOOKS[kind].perHead),
    ['z'],
  );
  assert.equal(transformerLensName('z', 3), 'blocks.3.attn.hook_z');
  assert.equal(transformerLensName('resid_pre', 0), 'blocks.0.hook_resid_pre');
  assert.equal(transformerLensName('attn_out', 11), 'blocks.11.hook_attn_out');
  assert.equal(transformerLensName('mlp_out', 2), 'blocks.2.hook_mlp_out');
  assert.equal(isHookKind('hook_z'), false);
  assert.equal(isHookKind('residPre'), false);
  assert.equal(hookOfFieldName('head'), undefined);
  assert.throws(() => hookOfField('nope' as never), /no hook has the Result field "nope"/);
});

test("the Result's attribution fields are exactly the table's, and byPositionField fills them in table order", () => {
  const example = exampleResult();
  assert.deepEqual(Object.keys(example.attributions).sort(), HOOK_KINDS.map((kind) => HOOKS[kind].field).sort());
  assert.deepEqual([...POSITION_FIELDS], ['residPre', 'attnOut', 'mlpOut']);
  assert.deepEqual(
    byPositionField((kind) => kind),
    { residPre: 'resid_pre', attnOut: 'attn_out', mlpOut: 'mlp_out' },
  );
  assert.deepEqual(Object.keys(byPositionField(() => 0)), [...POSITION_FIELDS]);
});

test("checks' Component.hook round-trips through a Result file for every kind; other spellings are refused", () => {
  const result = resultWithChecks();
  const parsed = parseResult(serializeResult(result), 'r.json');
  assert.deepEqual(
    parsed.checks!.items.map((item) => item.hook),
    [...HOOK_KINDS],
  );
  for (const item of parsed.checks!.items) assert.equal(item.head === null, !HOOKS[item.hook].perHead);
  for (const spelling of ['hook_z', 'residPre', 'blocks.0.hook_resid_pre', 'mlpOut']) {
    const bad = JSON.parse(serializeResult(result));
    bad.checks.items[0].hook = spelling;
    assert.throws(() => parseResult(JSON.stringify(bad), 'r.json'), {
      message: 'r.json: field "checks.items[0].hook" must be one of "resid_pre", "z", "attn_out", "mlp_out"',
    });
  }
  const headless = JSON.parse(serializeResult(result));
  headless.checks.items[1].head = null; // items[1] is z
  assert.throws(() => parseResult(JSON.stringify(headless), 'r.json'), /checks\.items\[1\]\.head" must be a non-negative integer/);
  const withHead = JSON.parse(serializeResult(result));
  withHead.checks.items[2].head = 0; // items[2] is attn_out
  assert.throws(() => parseResult(JSON.stringify(withHead), 'r.json'), {
    message: 'r.json: field "checks.items[2].head" must be null (only hook_z has heads)',
  });
});

test('the views read each hook from its Result field and name it with its label', () => {
  const result = resultWithChecks();
  const example = result.examples[0];
  for (const kind of HOOK_KINDS) {
    const row = HOOKS[kind];
    const layer = 1;
    const pos = 2;
    if (row.perHead) {
      const selection: ValueSelection = { kind: 'head', layer, head: 2 };
      assert.equal(valueAt(example, pos, selection), example.attributions.z[layer][pos][2]);
      // A head selection leaves the position map on resid_pre.
      assert.equal(positionHook(selection), HOOKS.resid_pre);
      continue;
    }
    const selection = { kind: row.field, layer } as ValueSelection;
    const values = example.attributions[row.field as 'residPre' | 'attnOut' | 'mlpOut'];
    assert.equal(valueAt(example, pos, selection), values[layer][pos], kind);
    assert.equal(selectionLabel(selection), `L${layer} ${kind}`);
    assert.equal(positionHook(selection), row);
    assert.equal(positionMatrixLabel(selection), row.label);
    assert.deepEqual(positionMatrix(result, { kind: 'all' }, selection), values);
    const csv = mapsCsv(result, { kind: 'all' }, selection, 'sum');
    assert.ok(csv.includes(`positions,${row.label},1,2,`), `${kind}: ${csv.split('\r\n').find((line) => line.startsWith('positions'))}`);
    assert.ok(csv.includes(`heads,${HOOKS.z.label},`));
  }
  for (const selection of [{ kind: 'token' }, { kind: 'total' }, { kind: 'query', layer: 0, head: 0 }] as ValueSelection[]) {
    assert.equal(positionMatrixLabel(selection), 'hook_resid_pre');
  }
});
