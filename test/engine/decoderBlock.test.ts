// The one decoder (src/engine/architectures/block.ts) as every family runs it: the hooks come in the documented
// order, each with the shape the hook table (src/shared/hooks.ts) gives, and AtP*'s attention sites with their
// per-query-head q and per-key/value-head k and v. The numbers themselves are checked against PyTorch in
// familiesReference.test.ts and gpt2Reference.test.ts; this pins the structure those tests rely on.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder, type Dim } from '../../src/engine/graph/builder';
import { Ops } from '../../src/engine/graph/ops';
import { GraphWeights } from '../../src/engine/graph/weights';
import { loadModel, weightLookup } from '../../src/engine/model/load';
import { keyValueHeads } from '../../src/engine/model/config';
import { HOOK_KINDS, HOOKS, type HookKind } from '../../src/shared/hooks';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { writeRandomGptNeo, writeRandomLlamaFamily } from '../support/randomModels';

const root = mkdtempSync(join(tmpdir(), 'atp-decoder-block-'));
after(() => rmSync(root, { recursive: true, force: true }));

const GQA = { nLayers: 2, nHeads: 4, nKvHeads: 2, dModel: 32 };
const FAMILIES: Record<string, (dir: string) => void> = {
  gpt2: (dir) => writeRandomGpt2(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 41, vocabSize: 64 }),
  gpt_neo: (dir) => writeRandomGptNeo(dir, { nLayers: 2, nHeads: 4, dModel: 32, seed: 42, windowSize: 4 }),
  llama: (dir) => writeRandomLlamaFamily(dir, { ...GQA, modelType: 'llama', dMlp: 64, seed: 43, tied: true }),
  granitemoe: (dir) =>
    writeRandomLlamaFamily(dir, {
      ...GQA,
      modelType: 'granitemoe',
      dMlp: 24,
      seed: 44,
      tied: false,
      multipliers: { embedding: 12, attention: 0.015625, residual: 0.22, logitsScaling: 8 },
      experts: { count: 4, topK: 2 },
    }),
};

for (const [family, write] of Object.entries(FAMILIES)) {
  test(`${family}: hooks in the order resid_pre → z → attn_out → mlp_out per layer, with the hook table's shapes`, () => {
    const dir = join(root, family);
    mkdirSync(dir);
    write(dir);
    const model = loadModel(dir);
    const { spec } = model;
    const b = new GraphBuilder('float32');
    const weights = new GraphWeights(b, weightLookup(model), new Map(model.weightFiles.map((file) => [file, 'weights'])));
    const ids = b.input('ids', 'int64', ['batch', 'seq']);
    const named: Record<string, Dim> = { batch: 'batch', seq: 'seq', dModel: spec.dModel, heads: spec.nHeads, dHead: spec.dHead };

    const seen: Array<[HookKind, number]> = [];
    const sites: Array<{ layer: number; q: readonly Dim[]; k: readonly Dim[]; v: readonly Dim[]; pattern?: readonly Dim[] }> = [];
    const residual = model.architecture.forward(
      new Ops(b),
      weights,
      ids,
      (kind, layer, value) => {
        seen.push([kind, layer]);
        assert.deepEqual(
          value.shape,
          HOOKS[kind].activationShape.map((axis) => named[axis]),
          `${family} ${kind} at layer ${layer}`,
        );
        return value;
      },
      {
        qkv: (layer, site) => {
          sites.push({ layer, q: site.q.shape, k: site.k.shape, v: site.v.shape });
          return site;
        },
        pattern: (layer, pattern) => {
          sites[sites.length - 1].pattern = pattern.shape;
          assert.equal(sites[sites.length - 1].layer, layer);
          return pattern;
        },
      },
    );

    assert.deepEqual(seen, Array.from({ length: spec.nLayers }, (_, layer) => HOOK_KINDS.map((kind): [HookKind, number] => [kind, layer])).flat());
    assert.deepEqual(residual.shape, ['batch', 'seq', spec.dModel]);
    const kvHeads = keyValueHeads(spec);
    assert.equal(kvHeads, family === 'gpt2' || family === 'gpt_neo' ? spec.nHeads : GQA.nKvHeads);
    assert.deepEqual(
      sites,
      Array.from({ length: spec.nLayers }, (_, layer) => ({
        layer,
        q: ['batch', 'seq', spec.nHeads, spec.dHead],
        k: ['batch', 'seq', kvHeads, spec.dHead],
        v: ['batch', 'seq', kvHeads, spec.dHead],
        pattern: ['batch', spec.nHeads, 'seq', 'seq'],
      })),
    );
  });
}
