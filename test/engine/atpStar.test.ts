import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type LoadedModel } from '../../src/engine/model/load';
import { readDataset, type Dataset } from '../../src/lib/dataset/jsonl';
import { prepareExamples } from '../../src/engine/patching/examples';
import { runAttributionPatching } from '../../src/engine/patching/run';
import { atpStarCost, runAtpStar, type AtpStarResult } from '../../src/engine/patching/atpStar';
import { readSafetensorsHeader, readTensorAsFloat32 } from '../../src/lib/model/safetensors';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { writeRandomGptNeo, writeRandomLlamaFamily } from '../support/randomModels';
import { requireTorchReference } from '../support/reference';
import { maxError } from '../support/familiesReference';
import { flattenAttributions } from '../support/attributions';
import { runAtpStarReference, type AtpStarReferenceRequest, type AtpStarReferenceResponse } from '../support/atpStarReference';

/**
 * AtP* (QK fix for query and key nodes, GradDrop) against a brute-force float64 PyTorch reference
 * (test/reference/atp_star_reference.py: every patched score row rebuilt and soft-maxed, GradDrop by L separate
 * backward passes with layer ℓ's writes detached), and the QK fix against exact patching of single nodes on a
 * model with saturated attention.
 */

const IOI = join(__dirname, '../../examples/ioi.jsonl');
let root: string;

before(() => {
  requireTorchReference();
  root = mkdtempSync(join(tmpdir(), 'atp-star-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(() => rmSync(root, { recursive: true, force: true }));

function ioi(count: number): Dataset {
  const full = readDataset(IOI);
  return { file: full.file, examples: full.examples.slice(0, count) };
}

function request(model: LoadedModel, dataset: Dataset, dir: string, extra: Partial<AtpStarReferenceRequest> = {}): AtpStarReferenceRequest {
  const examples = prepareExamples(model, dataset, []).map((p) => ({
    cleanIds: p.tokens.map((t) => t.id),
    corruptedIds: p.corruptedTokens.map((t) => t.id),
    correctId: p.correctId,
    incorrectId: p.incorrectId,
  }));
  return { modelDir: dir, examples, ...extra };
}

/** Every compared quantity of the engine and the reference, flattened in the same order. */
function pairs(ours: AtpStarResult, ref: AtpStarReferenceResponse): Array<[string, number[], number[]]> {
  const atp = flattenAttributions(ours.examples.map((e) => e.attributions));
  const out: Array<[string, number[], number[]]> = [
    ['resid_pre', atp.resid_pre, ref.atp.resid_pre.flat(2)],
    ['attn_out', atp.attn_out, ref.atp.attn_out.flat(2)],
    ['mlp_out', atp.mlp_out, ref.atp.mlp_out.flat(2)],
    ['z', atp.z, ref.atp.z.flat(3)],
  ];
  for (const key of ['q', 'qLinear', 'k', 'kLinear', 'v'] as const) out.push([key, ours.examples.flatMap((e) => e[key].flat(2)), ref.atpStar[key].flat(3)]);
  if (ref.gradDrop) {
    const drop = ours.examples.map((e) => e.gradDrop!);
    out.push(
      ['gradDrop resid_pre', drop.flatMap((d) => d.residPre.flat()), ref.gradDrop.resid_pre.flat(2)],
      ['gradDrop attn_out', drop.flatMap((d) => d.attnOut.flat()), ref.gradDrop.attn_out.flat(2)],
      ['gradDrop mlp_out', drop.flatMap((d) => d.mlpOut.flat()), ref.gradDrop.mlp_out.flat(2)],
    );
    for (const key of ['z', 'q', 'k', 'v'] as const) out.push([`gradDrop ${key}`, drop.flatMap((d) => d[key].flat(2)), ref.gradDrop[key].flat(3)]);
  }
  return out;
}

test('AtP* (QK fix, linear q/k/v, GradDrop) matches the brute-force float64 reference on GPT-2, GQA Llama, GPT-Neo and GQA Granite', async () => {
  const models = [
    { name: 'gpt2', write: (dir: string) => writeRandomGpt2(dir, { nLayers: 3, nHeads: 4, dModel: 32, seed: 41, weightStd: 0.2 }) },
    {
      name: 'llama-gqa',
      write: (dir: string) =>
        writeRandomLlamaFamily(dir, {
          modelType: 'llama',
          nLayers: 3,
          nHeads: 4,
          nKvHeads: 2,
          dModel: 32,
          dMlp: 64,
          seed: 42,
          tied: true,
          ropeTheta: 500000,
          ropeScaling: { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 32 },
        }),
    },
    // Local attention with a window shorter than the prompts, no score scaling.
    { name: 'gpt_neo', write: (dir: string) => writeRandomGptNeo(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 45, windowSize: 4 }) },
    // Granite: attention_multiplier instead of 1/sqrt(dHead), residual multipliers on the dropped writes.
    {
      name: 'granite-gqa',
      write: (dir: string) =>
        writeRandomLlamaFamily(dir, {
          modelType: 'granite',
          nLayers: 2,
          nHeads: 4,
          nKvHeads: 2,
          dModel: 32,
          dMlp: 64,
          seed: 46,
          tied: true,
          multipliers: { embedding: 4.0, attention: 0.2, residual: 0.6, logitsScaling: 2.5 },
        }),
    },
  ];
  // Three prompt lengths and batches of 2: a padded batch of two lengths, and a batch of one.
  const [first] = ioi(1).examples;
  const longer = (extra: string, line: number) => ({
    ...first,
    clean: first.clean.replace('the shops', `the ${extra} shops`),
    corrupted: first.corrupted.replace('the shops', `the ${extra} shops`),
    line,
  });
  const dataset: Dataset = { file: 'lengths.jsonl', examples: [first, longer('big', 2), longer('big old', 3)] };
  const runs: Array<{ name: string; ours: AtpStarResult; atp: Awaited<ReturnType<typeof runAttributionPatching>> }> = [];
  const requests: AtpStarReferenceRequest[] = [];
  for (const m of models) {
    const dir = join(root, m.name);
    m.write(dir);
    const model = loadModel(dir);
    assert.equal(new Set(prepareExamples(model, dataset, []).map((p) => p.tokens.length)).size, 3, `${m.name}: three prompt lengths`);
    const ours = await runAtpStar(model, dataset, { device: 'cpu', batchSize: 2, precision: 'float64', gradDrop: true });
    // exactTokens false: AtP's own values throughout (else resid_pre at layer 0 holds the exact token effects).
    const atp = await runAttributionPatching(model, dataset, { device: 'cpu', exactTokens: false, batchSize: 2, precision: 'float64' });
    runs.push({ name: m.name, ours, atp });
    requests.push(request(model, dataset, dir, { gradDrop: true }));
  }
  const references = runAtpStarReference(requests);
  runs.forEach(({ name, ours, atp }, i) => {
    const ref = references[i];
    assert.ok(Math.abs(ours.cleanLogitDiff - ref.cleanLogitDiff) <= 1e-10 * Math.abs(ref.cleanLogitDiff), `${name}: LD_clean`);
    assert.ok(Math.abs(ours.corruptedLogitDiff - ref.corruptedLogitDiff) <= 1e-10 * Math.abs(ref.corruptedLogitDiff), `${name}: LD_corrupted`);
    for (const [what, actual, expected] of pairs(ours, ref)) {
      const { error, scale } = maxError(actual, expected);
      console.log(`${name} ${what}: max |engine − reference| = ${error.toExponential(2)}, largest |value| ${scale.toExponential(2)}`);
      assert.ok(scale > 1e-6, `${name} ${what}: not trivially zero`);
      assert.ok(error <= 1e-9 * scale, `${name} ${what}: error ${error} vs scale ${scale}`);
    }
    ours.examples.forEach((e, j) => {
      assert.equal(e.line, dataset.examples[j].line);
      for (const values of [e.q, e.k, e.v, e.attributions.z])
        assert.ok(
          values.every((byPos) => byPos.length === e.tokens.length),
          `${name}: positions follow the tokens`,
        );
    });
    // The AtP part is the existing attribution graph's, value for value.
    const a = flattenAttributions(atp.examples.map((e) => e.attributions));
    const b = flattenAttributions(ours.examples.map((e) => e.attributions));
    for (const kind of ['z', 'resid_pre', 'attn_out', 'mlp_out'] as const) {
      const { error, scale } = maxError(b[kind], a[kind]);
      assert.ok(error <= 1e-12 * scale, `${name} ${kind}: AtP* graph's AtP differs from runAttributionPatching's by ${error}`);
    }
    // The QK fix actually changes something on these models (else the comparison above proves little).
    const q = maxError(
      ours.examples.flatMap((e) => e.q.flat(2)),
      ours.examples.flatMap((e) => e.qLinear.flat(2)),
    );
    const k = maxError(
      ours.examples.flatMap((e) => e.k.flat(2)),
      ours.examples.flatMap((e) => e.kLinear.flat(2)),
    );
    assert.ok(q.error > 1e-4 * q.scale && k.error > 1e-4 * k.scale, `${name}: QK fix differs from linear AtP (q ${q.error}, k ${k.error})`);
  });
});

/**
 * Multiplies the query and key parts of every layer's fused c_attn (weight and bias) by `factor` (scores grow by
 * factor²: saturated attention) and the value part by `valueFactor` (a small change of z keeps what lies
 * downstream of the pattern nearly linear, so that the error left is the one the QK fix addresses).
 */
function sharpenAttention(dir: string, dModel: number, layer: number, factor: number, valueFactor: number): void {
  const file = join(dir, 'model.safetensors');
  const fd = openSync(file, 'r+');
  for (const entry of readSafetensorsHeader(file).tensors.filter(
    (t) => t.name === `h.${layer}.attn.c_attn.weight` || t.name === `h.${layer}.attn.c_attn.bias`,
  )) {
    const data = readTensorAsFloat32(entry);
    const width = 3 * dModel; // weight [dModel, 3·dModel] (Conv1D), bias [3·dModel]: q and k are the first 2·dModel columns
    for (let i = 0; i < data.length; i++) data[i] *= i % width < 2 * dModel ? factor : valueFactor;
    writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 0, data.byteLength, entry.offset);
  }
  closeSync(fd);
}

/** Sums of |estimate − exact| over the q/k nodes of one saturated model, all layers and the saturated layer only. */
async function saturatedErrors(valueFactor: number, qkFactor = 4) {
  const dir = join(root, `saturated-${valueFactor}-${qkFactor}`);
  const dModel = 32;
  writeRandomGpt2(dir, { nLayers: 2, nHeads: 4, dModel, seed: 43, weightStd: 0.2 });
  sharpenAttention(dir, dModel, 1, qkFactor, valueFactor);
  const model = loadModel(dir);
  const dataset = ioi(1);
  const ours = await runAtpStar(model, dataset, { device: 'cpu', batchSize: 1, precision: 'float64' });
  const example = ours.examples[0];
  const nodes: NonNullable<AtpStarReferenceRequest['exactNodes']> = [];
  example.q.forEach((byPos, layer) => byPos.forEach((byHead, pos) => byHead.forEach((_, head) => nodes.push({ example: 0, kind: 'q', layer, pos, head }))));
  example.k.forEach((byPos, layer) => byPos.forEach((byHead, pos) => byHead.forEach((_, head) => nodes.push({ example: 0, kind: 'k', layer, pos, head }))));
  const [ref] = runAtpStarReference([request(model, dataset, dir, { exactNodes: nodes })]);

  const star = nodes.map((n) => example[n.kind][n.layer][n.pos][n.head]);
  const linear = nodes.map((n) => example[n.kind === 'q' ? 'qLinear' : 'kLinear'][n.layer][n.pos][n.head]);
  const exact = ref.exact!.map((e) => e.exact);
  const sumAbs = (xs: number[]) => xs.reduce((s, x) => s + Math.abs(x), 0);
  const over = (indices: number[]) => ({
    exact: sumAbs(indices.map((i) => exact[i])),
    star: sumAbs(indices.map((i) => star[i] - exact[i])),
    linear: sumAbs(indices.map((i) => linear[i] - exact[i])),
  });
  const all = over(nodes.map((_, i) => i));
  const saturated = over(nodes.map((_, i) => i).filter((i) => nodes[i].layer === 1));
  const inA = maxError(
    star,
    ref.exact!.map((e) => e.linearInA),
  );
  const show = (name: string, e: typeof all) =>
    `${name}: Σ|exact| = ${e.exact.toExponential(3)}, Σ|AtP* − exact| = ${e.star.toExponential(3)}, Σ|AtP − exact| = ${e.linear.toExponential(3)}`;
  console.log(
    `saturated GPT-2, q/k scale ${qkFactor}, value scale ${valueFactor}, ${nodes.length} q/k nodes. ${show('all', all)}; ${show('saturated layer', saturated)}; max |AtP* − linearisation in A| = ${inA.error.toExponential(2)} (largest ${inA.scale.toExponential(2)})`,
  );
  console.log(`  median attention weight off the argmax, per layer: ${ref.offArgmaxMedian.map((x) => x.toExponential(1)).join(', ')}`);
  for (const value of [...star, ...example.v.flat(2)]) assert.ok(Number.isFinite(value), 'finite under saturation');
  return { all, saturated, inA, offArgmax: ref.offArgmaxMedian[1] };
}

test('QK fix against exact patching of single query and key nodes under saturated attention', async () => {
  // Layer 1's scores are ×16 (saturated) and its values ×valueFactor: the pattern change of a patched node is
  // O(1) while its effect downstream is O(valueFactor), nearly linear.
  const coarse = await saturatedErrors(0.1);
  const fine = await saturatedErrors(0.03);
  assert.ok(coarse.offArgmax < 0.05, `layer 1 is saturated: median weight off the argmax ${coarse.offArgmax}`);
  for (const e of [coarse, fine]) {
    // AtP* is the exact effect of the patch on the pattern, linearised only downstream of it: vs the reference's
    // linearisation in A of an exactly patched forward, equal to rounding.
    assert.ok(e.inA.error <= 1e-9 * e.inA.scale, `AtP* vs linearisation in A: ${e.inA.error}`);
    assert.ok(e.all.star < 0.25 * e.all.linear, `all nodes: AtP* error ${e.all.star} vs AtP's ${e.all.linear}`);
    assert.ok(e.saturated.star < 0.05 * e.saturated.linear, `saturated layer: AtP* error ${e.saturated.star} vs AtP's ${e.saturated.linear}`);
    // AtP misses the saturated switch entirely: its error there is as large as the effect itself.
    assert.ok(e.saturated.linear > 0.5 * e.saturated.exact, `AtP's error ${e.saturated.linear} vs Σ|exact| ${e.saturated.exact}`);
  }
  // What AtP* leaves is second order downstream of the pattern: relative to the effect it shrinks with the value scale.
  const relative = (e: typeof coarse) => e.saturated.star / e.saturated.exact;
  assert.ok(relative(fine) < relative(coarse) / 2, `AtP* relative error ${relative(coarse)} → ${relative(fine)}`);
});

test('the QK fix stays exact and finite on a model where every attention weight off the argmax underflows', async () => {
  // Scores ×3600: in most rows every weight off the argmax underflows float64 (exp(−745) = 0).
  const e = await saturatedErrors(0.1, 60);
  assert.ok(e.offArgmax < 1e-20, `median weight off the argmax ${e.offArgmax}`);
  assert.ok(e.inA.error <= 1e-9 * e.inA.scale, `AtP* vs linearisation in A: ${e.inA.error} (largest ${e.inA.scale})`);
});

async function float32VsFloat64(dir: string) {
  const dataset = ioi(2);
  const f64 = await runAtpStar(loadModel(dir), dataset, { device: 'cpu', batchSize: 2, precision: 'float64', gradDrop: true });
  const f32 = await runAtpStar(loadModel(dir), dataset, { device: 'cpu', batchSize: 2, precision: 'float32', gradDrop: true });
  const asRef = (r: AtpStarResult): AtpStarReferenceResponse => {
    const e = r.examples;
    return {
      cleanLogitDiff: r.cleanLogitDiff,
      corruptedLogitDiff: r.corruptedLogitDiff,
      offArgmaxMedian: [],
      atp: {
        resid_pre: e.map((x) => x.attributions.residPre),
        attn_out: e.map((x) => x.attributions.attnOut),
        mlp_out: e.map((x) => x.attributions.mlpOut),
        z: e.map((x) => x.attributions.z),
      },
      atpStar: { q: e.map((x) => x.q), qLinear: e.map((x) => x.qLinear), k: e.map((x) => x.k), kLinear: e.map((x) => x.kLinear), v: e.map((x) => x.v) },
      gradDrop: {
        resid_pre: e.map((x) => x.gradDrop!.residPre),
        attn_out: e.map((x) => x.gradDrop!.attnOut),
        mlp_out: e.map((x) => x.gradDrop!.mlpOut),
        z: e.map((x) => x.gradDrop!.z),
        q: e.map((x) => x.gradDrop!.q),
        k: e.map((x) => x.gradDrop!.k),
        v: e.map((x) => x.gradDrop!.v),
      },
    };
  };
  return pairs(f32, asRef(f64)).map(([what, actual, expected]) => ({ what, ...maxError(actual, expected) }));
}

test('float32 AtP* agrees with float64 AtP*', async () => {
  const dir = join(root, 'precision');
  writeRandomLlamaFamily(dir, { modelType: 'llama', nLayers: 2, nHeads: 4, nKvHeads: 2, dModel: 32, dMlp: 64, seed: 44, tied: true });
  for (const { what, error, scale } of await float32VsFloat64(dir)) {
    console.log(`float32 vs float64 ${what}: ${error.toExponential(2)} (largest ${scale.toExponential(2)})`);
    assert.ok(error <= 1e-4 * scale, `${what}: float32 error ${error} vs scale ${scale}`);
  }
  // Saturated attention (layer-1 scores ×900): float32 underflows every weight off a row's argmax. Linear AtP of
  // q/k is ~0 there, so errors are measured against the run's largest value.
  const saturated = join(root, 'precision-saturated');
  writeRandomGpt2(saturated, { nLayers: 2, nHeads: 4, dModel: 32, seed: 43, weightStd: 0.2 });
  sharpenAttention(saturated, 32, 1, 30, 0.1);
  const results = await float32VsFloat64(saturated);
  const largest = Math.max(...results.map((r) => r.scale));
  for (const { what, error } of results) {
    console.log(`saturated, float32 vs float64 ${what}: ${error.toExponential(2)} (largest value in the run ${largest.toExponential(2)})`);
    assert.ok(error <= 1e-4 * largest, `saturated ${what}: float32 error ${error} vs ${largest}`);
  }
});

test('atpStarCost counts the session runs and passes', () => {
  const model = { spec: { nLayers: 6 } } as Pick<LoadedModel, 'spec'>;
  assert.deepEqual(atpStarCost(model, 10, 4), { sessionRuns: 3, forwardPasses: 20, backwardPasses: 10 });
  assert.deepEqual(atpStarCost(model, 10, 4, true), { sessionRuns: 21, forwardPasses: 140, backwardPasses: 70 });
});
