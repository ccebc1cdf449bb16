import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type LoadedModel } from '../../src/engine/model/load';
import { readDataset, type Dataset } from '../../src/lib/dataset/jsonl';
import { runActivationPatching, type ActivationPatchingResult } from '../../src/engine/patching/activationPatching';
import { runAttributionPatching } from '../../src/engine/patching/run';
import { planRun, passCost } from '../../src/engine/patching/methods';
import { prepareExamples } from '../../src/engine/patching/examples';
import { sessionIsWarm } from '../../src/engine/patching/sessions';
import { checkCandidates, chooseChecks, patchTokens, TOKEN_PASS_SHARED_MAX_TOKENS, tokenPassGraph } from '../../src/engine/patching/exact';
import { releaseSessions } from '../../src/engine/process/runtime';
import { runAtpStar } from '../../src/engine/patching/atpStar';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { writeRandomLlamaFamily } from '../support/randomModels';
import type { CheckItem, ExampleAttributions } from '../../src/shared/result';

/**
 * Exact patching inside a run: token effects (one forward pass per differing token, through the forward-only
 * graph), checks of chosen components (through the activation-patching graph with masks), the exact method, and
 * the plan that picks among them. The independent computation is the engine's full activation-patching sweep,
 * itself checked against the PyTorch reference component by component (activationPatching.test.ts,
 * familiesActivationPatching.test.ts). float64 throughout: agreement to 1e-9 relative, i.e. exactly the same
 * quantity up to summation order.
 */

const IOI = join(__dirname, '../../examples/ioi.jsonl');
let root: string;
const models: Record<string, LoadedModel> = {};
const sweeps = new Map<LoadedModel, ActivationPatchingResult>();

before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-exact-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
  writeRandomGpt2(join(root, 'gpt2'), { nLayers: 2, nHeads: 4, dModel: 32, seed: 5 });
  models.gpt2 = loadModel(join(root, 'gpt2'));
  writeRandomLlamaFamily(join(root, 'qwen2'), { nLayers: 2, nHeads: 4, nKvHeads: 2, dModel: 32, modelType: 'qwen2', dMlp: 64, seed: 6, tied: false });
  models.qwen2 = loadModel(join(root, 'qwen2'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Four IOI examples; the second gets a second differing token so that one example has two. */
function dataset(): Dataset {
  const full = readDataset(IOI);
  const examples = full.examples.slice(0, 4).map((e) => ({ ...e }));
  examples[1] = { ...examples[1], corrupted: examples[1].corrupted.replace(/^When/, 'Then') };
  return { file: full.file, examples };
}

/** dataset() and its first example shortened by its first word: prompts of two lengths. */
function severalLengths(): Dataset {
  const examples = dataset().examples;
  const drop = (text: string) => text.replace(/^\S+ /, '');
  return {
    file: 'several.jsonl',
    examples: [...examples, { ...examples[0], clean: drop(examples[0].clean), corrupted: drop(examples[0].corrupted), line: 9 }],
  };
}

async function sweep(model: LoadedModel): Promise<ActivationPatchingResult> {
  let found = sweeps.get(model);
  if (!found) {
    found = await runActivationPatching(model, dataset(), { device: 'cpu', batchSize: 128, precision: 'float64' });
    sweeps.set(model, found);
  }
  return found;
}

const close = (a: number, b: number, scale: number) => Math.abs(a - b) <= 1e-9 * scale;

for (const family of ['gpt2', 'qwen2']) {
  test(`${family}: token scores are the exact effect of patching each differing token; every other token is exactly 0`, async () => {
    const model = models[family];
    const result = await runAttributionPatching(model, dataset(), { device: 'cpu', batchSize: 3, precision: 'float64', method: 'atp' });
    const exact = await sweep(model);
    assert.deepEqual(result.methods, {
      attributions: 'atp',
      heads: 'atp',
      positions: 'atp',
      tokenScores: 'exact',
      maps: {
        heads: { method: 'atp', exactLayers: [] },
        residPre: { method: 'atp', exactLayers: [0] },
        attnOut: { method: 'atp', exactLayers: [] },
        mlpOut: { method: 'atp', exactLayers: [] },
      },
    });
    const scale = Math.max(...exact.examples.flatMap((e) => e.residPre[0].map(Math.abs)));
    assert.ok(scale > 1e-3, 'not trivially zero');
    let differing = 0;
    result.examples.forEach((example, i) => {
      const scores = example.tokenScores!;
      assert.equal(scores.values.length, example.tokens.length);
      assert.ok(scores.exact.every(Boolean), 'every value is exact');
      example.cleanIds.forEach((id, pos) => {
        if (id === example.corruptedIds[pos]) return assert.equal(scores.values[pos], 0, `example ${i} pos ${pos}: same token, no effect`);
        differing++;
        assert.ok(
          close(scores.values[pos], exact.examples[i].residPre[0][pos], scale),
          `example ${i} pos ${pos}: ${scores.values[pos]} vs ${exact.examples[i].residPre[0][pos]}`,
        );
      });
      // Patching every differing token at once is the clean run.
      assert.ok(
        close(
          scores.joint,
          (example.cleanLogitDiff - example.corruptedLogitDiff) / (4 * (result.metric.cleanLogitDiff - result.metric.corruptedLogitDiff)),
          scale,
        ),
      );
    });
    assert.equal(differing, 5, 'four examples, one with two differing tokens');
    // resid_pre at layer 0 is the token patch: the map's row holds these exact values, not AtP's estimates.
    result.examples.forEach((e) => assert.deepEqual(e.attributions.residPre[0], e.tokenScores!.values));
  });

  test(`${family}: --check patches each map's k largest and k random cells exactly, aligned at the answer, in the units of the heat maps`, async () => {
    const model = models[family];
    const data = severalLengths();
    const result = await runAttributionPatching(model, data, { device: 'cpu', batchSize: 5, precision: 'float64', method: 'atp', check: 3, checkSeed: 7 });
    const exact = await runActivationPatching(model, data, { device: 'cpu', batchSize: 128, precision: 'float64' });
    const checks = result.checks!;
    assert.equal(new Set(result.examples.map((e) => e.tokens.length)).size > 1, true, 'prompts of several lengths');
    assert.deepEqual(checks.candidates, ['heads', 'positions']);
    const field = { z: 'z', resid_pre: 'residPre', attn_out: 'attnOut', mlp_out: 'mlpOut' } as const;
    // Each example's position of a checked cell: its own, or aligned at the answer (fromEnd).
    const at = (item: CheckItem, length: number) => item.position ?? length - 1 - (item.fromEnd ?? 0);
    const valueOf = (a: ExampleAttributions, item: CheckItem, length: number) =>
      item.hook === 'z' ? a.z[item.layer][length - 1][item.head!] : a[field[item.hook]][item.layer][at(item, length)];
    for (const hook of ['z', 'resid_pre', 'attn_out', 'mlp_out'] as const) {
      const mine = checks.items.filter((i) => i.hook === hook);
      assert.equal(mine.length, 6, `${hook}: 3 top and 3 random`);
      for (const item of mine) {
        if (hook !== 'z') assert.equal(item.position, null, 'several lengths: positions aligned at the answer');
        const estimate = result.examples.reduce((sum, e) => sum + valueOf(e.attributions, item, e.tokens.length), 0);
        assert.ok(close(item.attribution, estimate, 1), `${hook} ${JSON.stringify(item)}: estimate ${estimate}`);
        const expected = exact.examples.reduce((sum, e) => sum + valueOf(e, item, e.z[0].length), 0);
        assert.ok(close(item.exact, expected, 1), `${hook} ${JSON.stringify(item)}: ${item.exact} vs ${expected}`);
        // resid_pre at layer 0 is exact already (the token effects): never a check.
        assert.ok(!(hook === 'resid_pre' && item.layer === 0), 'no check of an exact row');
        assert.equal(
          item.signDiffers === true,
          item.attribution * item.exact < 0 && Math.abs(item.exact) >= 0.01 * Math.max(...mine.map((m) => Math.abs(m.exact))),
        );
      }
      const top = mine.filter((i) => i.pick === 'top').map((i) => Math.abs(i.attribution));
      const rest = mine.filter((i) => i.pick === 'random').map((i) => Math.abs(i.attribution));
      assert.ok(Math.min(...top) >= Math.max(...rest), `${hook}: the top picks are the largest`);
      // The map's agreement, computed here from its items.
      const agreement = checks.maps!.find((m) => m.map === (hook === 'z' ? 'heads' : field[hook]))!;
      const largestExact = Math.max(...mine.map((m) => Math.abs(m.exact)));
      assert.ok(close(agreement.maxError!, Math.max(...mine.map((m) => Math.abs(m.attribution - m.exact))) / largestExact, 1));
      const topCell = mine.reduce((a, b) => (Math.abs(b.attribution) > Math.abs(a.attribution) ? b : a));
      assert.ok(close(agreement.topRatio!, topCell.attribution / topCell.exact, 1));
      assert.equal(agreement.count, 6);
      assert.equal(agreement.signDiffers, mine.filter((m) => m.signDiffers).length);
    }
    const again = await runAttributionPatching(model, data, { device: 'cpu', batchSize: 2, precision: 'float64', method: 'atp', check: 3, checkSeed: 7 });
    assert.deepEqual(
      again.checks!.items.map((i) => [i.hook, i.layer, i.head, i.fromEnd, i.pick]),
      checks.items.map((i) => [i.hook, i.layer, i.head, i.fromEnd, i.pick]),
      'the same seed picks the same components',
    );
  });
}

for (const family of ['gpt2', 'qwen2']) {
  test(`${family}: token passes give the same logit differences through the forward-only, attribution and AtP* sessions`, async () => {
    const model = models[family];
    const prepared = prepareExamples(model, dataset(), []);
    const options = { device: 'cpu' as const, batchSize: 3, precision: 'float64' as const };
    const forward = await patchTokens(model, prepared, options, 'logit-diff');
    const scale = Math.max(...forward.flat().map(Math.abs));
    assert.ok(scale > 1e-3, 'not trivially zero');
    assert.equal(forward.flat().length, 5);
    for (const graph of ['attribution', 'atp-star'] as const) {
      const shared = await patchTokens(model, prepared, options, graph);
      shared.forEach((row, i) =>
        row.forEach((ld, k) => assert.ok(close(ld, forward[i][k], scale), `${graph} example ${i} slot ${k}: ${ld} vs ${forward[i][k]}`)),
      );
    }
  });
}

test("token passes: the run's own session while they are short, a forward-only session past that or when the process holds one", async () => {
  const model = models.gpt2;
  await releaseSessions();
  const prepared = prepareExamples(model, dataset(), []);
  const options = { device: 'cpu' as const, batchSize: 3 };
  // Five rows of about 15 tokens: well under the bound.
  assert.equal(tokenPassGraph(model, prepared, 'attribution', options), 'attribution');
  assert.equal(tokenPassGraph(model, prepared, 'atp-star', options), 'atp-star');
  const rowsTokens = (rows: typeof prepared) =>
    rows.reduce((sum, p) => sum + p.tokens.filter((t, i) => t.id !== p.corruptedTokens[i].id).length * p.tokens.length, 0);
  const many = Array.from({ length: Math.ceil(TOKEN_PASS_SHARED_MAX_TOKENS / rowsTokens(prepared)) + 1 }, () => prepared).flat();
  assert.ok(rowsTokens(many) > TOKEN_PASS_SHARED_MAX_TOKENS);
  assert.equal(tokenPassGraph(model, many, 'attribution', options), 'logit-diff');
  // A run of AtP* holds one session, which also served its token passes: the memory estimate counts one copy of the
  // weights. A default run (auto) adds exact patching's two (the record and suffix-patch graphs) for its exact head
  // map, and so do checks.
  const said: string[] = [];
  await runAttributionPatching(model, dataset(), { ...options, method: 'atpstar', onProgress: (line) => said.push(line) });
  assert.match(
    said.find((line) => line.startsWith('memory:'))!,
    /weights [^,]* as float32, activations/,
  );
  said.length = 0;
  await runAttributionPatching(model, dataset(), { ...options, method: 'auto', onProgress: (line) => said.push(line) });
  assert.match(
    said.find((line) => line.startsWith('memory:'))!,
    /weights [^,]* as float32 in 3 sessions, activations/,
  );
  said.length = 0;
  await runAttributionPatching(model, dataset(), { ...options, method: 'auto', check: 1, onProgress: (line) => said.push(line) });
  assert.match(
    said.find((line) => line.startsWith('memory:'))!,
    /weights [^,]* as float32 in 3 sessions, activations/,
  );
  assert.equal(sessionIsWarm(model, 'atp-star', options), true);
  assert.equal(sessionIsWarm(model, 'logit-diff', options), false, 'no forward-only session was built');
  // A forward-only session already built in this process (the extension's worker keeps them) is the cheapest.
  await patchTokens(model, prepared, options, 'logit-diff');
  assert.equal(tokenPassGraph(model, prepared, 'attribution', options), 'logit-diff');
  await releaseSessions();
});

test('checks of resid_pre cells when the prompts have one length', async () => {
  const model = models.gpt2;
  const full = readDataset(IOI);
  const sameLength: Dataset = { file: full.file, examples: [full.examples[0], full.examples[2]] };
  assert.equal(new Set(sameLength.examples.map((e) => e.clean.split(' ').length)).size, 1);
  const result = await runAttributionPatching(model, sameLength, { device: 'cpu', batchSize: 8, precision: 'float64', method: 'atp', check: 4 });
  assert.ok(result.positions, 'one length: a position map');
  const exact = await runActivationPatching(model, sameLength, { device: 'cpu', batchSize: 128, precision: 'float64' });
  const residChecks = result.checks!.items.filter((i) => i.hook === 'resid_pre');
  assert.ok(residChecks.length > 0, 'resid_pre cells are among the candidates');
  for (const item of residChecks) {
    assert.equal(item.attribution, result.positions![item.layer][item.position!]);
    const expected = exact.examples.reduce((sum, e) => sum + e.residPre[item.layer][item.position!], 0);
    assert.ok(close(item.exact, expected, 1), `L${item.layer} pos ${item.position}: ${item.exact} vs ${expected}`);
  }
});

test('--method exact fills every array from activation patching and says so', async () => {
  const model = models.gpt2;
  const result = await runAttributionPatching(model, dataset(), { device: 'cpu', batchSize: 64, precision: 'float64', method: 'exact' });
  const exact = await sweep(model);
  assert.deepEqual(result.methods, {
    attributions: 'exact',
    heads: 'exact',
    positions: 'exact',
    tokenScores: 'exact',
    maps: {
      heads: { method: 'exact', exactLayers: [] },
      residPre: { method: 'exact', exactLayers: [] },
      attnOut: { method: 'exact', exactLayers: [] },
      mlpOut: { method: 'exact', exactLayers: [] },
    },
  });
  assert.equal(result.run!.method, 'exact');
  result.examples.forEach((example, i) => {
    assert.deepEqual(example.attributions, exact.examples[i]);
    assert.ok(example.tokenScores!.exact.every(Boolean));
    example.tokenScores!.values.forEach((v, pos) => assert.equal(v, exact.examples[i].residPre[0][pos]));
  });
});

test('the plan: auto takes exact within 4× the cost of AtP, else AtP; token effects fall back to AtP estimates past the budget', () => {
  const model = models.gpt2;
  const prepared = prepareExamples(model, dataset(), []);
  const spec = model.spec;
  const atp = planRun(spec, prepared, 'atp', 0);
  assert.deepEqual(atp.passes.attributions, { forward: 8, backward: 4 });
  assert.deepEqual(atp.passes.tokenEffects, { forward: 5, backward: 0 }, 'one forward pass per differing token');
  assert.equal(atp.tokenEffects, 'exact');
  assert.equal(passCost(atp.passes.total), 16 + 5);
  // A 2-layer, 4-head model over ~15-token prompts: the full sweep costs far more than 4× AtP; AtP* fits.
  const auto = planRun(spec, prepared, 'auto', 0);
  assert.equal(auto.method, 'atpstar');
  assert.deepEqual(auto.passes.attributions, { forward: 12, backward: 4 }, 'AtP*: AtP plus one forward-pass equivalent for the QK fix');
  // Past 128 tokens auto keeps to AtP (the QK fix grows with the square of the prompt).
  const long129 = Array.from({ length: 129 }, (_, i) => ({ id: i + 1, text: 'x', start: i, end: i + 1 }));
  assert.equal(planRun(spec, [{ ...prepared[0], tokens: long129, corruptedTokens: long129 }], 'auto', 0).method, 'atp');
  // GradDrop: L + 1 runs of the graph; only with AtP*.
  const drop = planRun(spec, prepared, 'auto', 0, true);
  assert.equal(drop.method, 'atpstar');
  assert.ok(drop.gradDrop);
  assert.deepEqual(drop.passes.attributions, { forward: 2 * 4 * 3 + 4, backward: 4 * 3 });
  assert.throws(() => planRun(spec, prepared, 'atp', 0, true), /--grad-drop is part of AtP\*/);
  assert.equal(planRun(spec, prepared, 'atp', 0, false, false).tokenEffects, 'atp', 'exact token effects can be turned off (benchmarks)');
  // A one-layer, one-head model on a one-token prompt: 2·(1 + 1·1·4) = 10 passes ≤ 4·4.
  const tiny = { ...spec, nLayers: 1, nHeads: 1 };
  const short = prepared.map((p) => ({ ...p, tokens: p.tokens.slice(-1), corruptedTokens: p.corruptedTokens.slice(-1) }));
  assert.equal(planRun(tiny, short, 'auto', 0).method, 'exact');
  // Prompts that differ everywhere: 1 differing token per position exceeds 16 per example.
  const long = Array.from({ length: 40 }, (_, i) => ({ id: i + 1, text: 'x', start: i, end: i + 1 }));
  const different = [{ ...prepared[0], tokens: long, corruptedTokens: long.map((t) => ({ ...t, id: t.id + 100 })) }];
  const plan = planRun(spec, different, 'atp', 2);
  assert.equal(plan.tokenEffects, 'atp');
  assert.deepEqual(plan.passes.tokenEffects, { forward: 0, backward: 0 });
  assert.deepEqual(plan.passes.checks, { forward: 2 * 1 * (1 + 4), backward: 0 });
});

test('chooseChecks: the k largest by |attribution|, then k distinct others drawn by the seed', () => {
  const candidates = [0.1, -5, 3, 0.2, -0.05, 0.01, 2].map((attribution, head) => ({ hook: 'z' as const, layer: 0, position: null, head, attribution }));
  const chosen = chooseChecks(candidates, 2, 1);
  assert.deepEqual(
    chosen.slice(0, 2).map((c) => c.head),
    [1, 2],
  );
  const random = chosen.slice(2).map((c) => c.head);
  assert.equal(random.length, 2);
  assert.equal(new Set(random).size, 2);
  assert.ok(random.every((h) => h !== 1 && h !== 2));
  assert.deepEqual(chooseChecks(candidates, 2, 1), chosen);
  assert.equal(chooseChecks(candidates, 5, 1).length, 7, 'never more than there are');
});

test("--method atpstar: the Result carries AtP*'s query, key and value nodes and GradDrop, and says which numbers are what", async () => {
  const model = models.qwen2;
  const full = readDataset(IOI);
  const sameLength: Dataset = { file: full.file, examples: [full.examples[0], full.examples[2]] };
  const result = await runAttributionPatching(model, sameLength, { device: 'cpu', batchSize: 2, precision: 'float64', method: 'atpstar', gradDrop: true });
  const atp = await runAttributionPatching(model, sameLength, { device: 'cpu', batchSize: 2, precision: 'float64', method: 'atp' });
  const star = await runAtpStar(model, sameLength, { device: 'cpu', batchSize: 2, precision: 'float64', gradDrop: true });
  assert.equal(result.run!.method, 'atpstar');
  // For the hook points AtP* is AtP: the arrays say 'atp' and equal a plain AtP run.
  assert.deepEqual(result.methods, {
    attributions: 'atp',
    heads: 'atp',
    positions: 'atp',
    tokenScores: 'exact',
    maps: {
      heads: { method: 'atp', exactLayers: [] },
      residPre: { method: 'atp', exactLayers: [0] },
      attnOut: { method: 'atp', exactLayers: [] },
      mlpOut: { method: 'atp', exactLayers: [] },
    },
  });
  const scale = Math.max(...atp.heads.flat().map(Math.abs));
  result.heads.forEach((row, l) => row.forEach((v, h) => assert.ok(close(v, atp.heads[l][h], scale))));
  const summary = result.atpStar!;
  assert.equal(summary.kvHeads, 2);
  result.examples.forEach((example, i) => {
    assert.deepEqual(example.atpStar!.q, star.examples[i].q);
    assert.deepEqual(example.atpStar!.k, star.examples[i].k);
    assert.equal(example.atpStar!.k[0][0].length, 2, 'keys per key/value head');
  });
  // Maps: sums over positions and examples.
  const sum = (pick: (i: number) => number[][][], l: number, h: number) =>
    star.examples.reduce((s, _, i) => s + pick(i)[l].reduce((t, row) => t + row[h], 0), 0);
  summary.maps.q.forEach((row, l) =>
    row.forEach((v, h) =>
      assert.ok(
        close(
          v,
          sum((i) => star.examples[i].q, l, h),
          1,
        ),
      ),
    ),
  );
  summary.maps.k.forEach((row, l) =>
    row.forEach((v, g) =>
      assert.ok(
        close(
          v,
          sum((i) => star.examples[i].k, l, g),
          1,
        ),
      ),
    ),
  );
  // GradDrop for the two heatmaps' cells: sums over examples of z at the answer and resid_pre.
  summary.gradDrop!.heads.forEach((row, l) =>
    row.forEach((v, h) =>
      assert.ok(
        close(
          v,
          star.examples.reduce((s, e) => s + e.gradDrop!.z[l][e.tokens.length - 1][h], 0),
          1,
        ),
      ),
    ),
  );
  assert.ok(summary.gradDrop!.positions, 'one length: GradDrop of the position map too');
  assert.ok(summary.gradDrop!.heads.flat().every((v) => v >= 0));
});
