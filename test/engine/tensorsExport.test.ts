// `atp export --format tensors` (the built CLI) on a real run of the built-in IOI model over examples of different
// lengths: every TransformerLens-named tensor equals the Result's per-example arrays (NaN past each example's
// length), the ids and logit differences are there, the JSON says model, baselines and method; and the README's
// Python snippet, run by /usr/bin/python3 with numpy and torch, loads it and rebuilds a row of the head map.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readResultFile } from '../../src/lib/files/resultFile';
import { readSafetensorsHeader, readTensorAsFloat32, type TensorEntry } from '../../src/lib/model/safetensors';
import { HOOK_KINDS, HOOKS, transformerLensName } from '../../src/shared/hooks';
import type { Result } from '../../src/shared/result';
import { requireBuiltCli, runCli } from '../support/cli';
import { REFERENCE_PYTHON, requireTorchReference, torchReferenceSkip } from '../support/reference';

const EXAMPLES = [
  {
    clean: 'When John and Mary went to the shops, John gave the bag to',
    corrupted: 'When John and Mary went to the shops, Mary gave the bag to',
    correct: ' Mary',
    incorrect: ' John',
  },
  {
    clean: 'When Tom and James went to the park, James gave the ball to',
    corrupted: 'When Tom and James went to the park, Tom gave the ball to',
    correct: ' Tom',
    incorrect: ' James',
  },
  {
    clean: 'Then Tom and James went to the park, and James gave a ball to',
    corrupted: 'Then Tom and James went to the park, and Tom gave a ball to',
    correct: ' Tom',
    incorrect: ' James',
  },
];

let root: string;
let result: Result;
const cache = () => join(root, 'cache');

before(() => {
  requireBuiltCli();
  root = mkdtempSync(join(tmpdir(), 'atp-tensors-'));
  writeFileSync(join(root, 'ioi.jsonl'), EXAMPLES.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const run = runCli(cache(), ['patch', '--model', 'ioi-demo', '--data', 'ioi.jsonl', '--out', 'ioi.json', '--method', 'atp', '--device', 'cpu'], root);
  assert.equal(run.code, 0, run.stderr);
  result = readResultFile(join(root, 'ioi.json'));
  const exported = runCli(cache(), ['export', 'ioi.json', '--format', 'tensors', '--out', 'ioi.tensors.safetensors'], root);
  assert.equal(exported.code, 0, exported.stderr);
  assert.match(exported.stderr, /wrote ioi\.tensors\.safetensors and ioi\.tensors\.json/);
});
after(() => rmSync(root, { recursive: true, force: true }));

test('every hook tensor is the Result’s per-example arrays by TransformerLens name, NaN past each example’s length', () => {
  const lengths = result.examples.map((e) => e.cleanIds.length);
  assert.ok(new Set(lengths).size > 1, `the examples differ in length (${lengths})`);
  const positions = Math.max(...lengths);
  const { tensors } = readSafetensorsHeader(join(root, 'ioi.tensors.safetensors'));
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const expected = ['lengths', 'clean_ids', 'corrupted_ids', 'correct_id', 'incorrect_id', 'clean_logit_diff', 'corrupted_logit_diff'];
  for (let layer = 0; layer < result.model.layers; layer += 1) for (const kind of HOOK_KINDS) expected.push(transformerLensName(kind, layer));
  assert.deepEqual([...byName.keys()].sort(), expected.sort());

  const n = result.examples.length;
  for (let layer = 0; layer < result.model.layers; layer += 1) {
    for (const kind of HOOK_KINDS) {
      const entry = byName.get(transformerLensName(kind, layer))!;
      const width = HOOKS[kind].perHead ? result.model.heads : 1;
      assert.deepEqual(entry.shape, HOOKS[kind].perHead ? [n, positions, width] : [n, positions]);
      assert.equal(entry.dtype, 'F32');
      const values = readTensorAsFloat32(entry);
      result.examples.forEach((example, i) => {
        for (let p = 0; p < positions; p += 1) {
          for (let h = 0; h < width; h += 1) {
            const got = values[(i * positions + p) * width + h];
            if (p >= lengths[i]) assert.ok(Number.isNaN(got), `${entry.name}[${i}, ${p}] is padding`);
            else {
              const cell = example.attributions[HOOKS[kind].field][layer][p] as number | number[];
              assert.equal(got, Math.fround(HOOKS[kind].perHead ? (cell as number[])[h] : (cell as number)), `${entry.name}[${i}, ${p}, ${h}]`);
            }
          }
        }
      });
    }
  }
  const int64 = (entry: TensorEntry) => {
    const bytes = readFileSync(entry.file).subarray(entry.offset, entry.offset + entry.length);
    return [...new BigInt64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))].map(Number);
  };
  assert.deepEqual(int64(byName.get('lengths')!), lengths);
  assert.deepEqual(
    int64(byName.get('clean_ids')!),
    result.examples.flatMap((e) => [...e.cleanIds, ...Array(positions - e.cleanIds.length).fill(-1)]),
  );
  assert.deepEqual(
    int64(byName.get('incorrect_id')!),
    result.examples.map((e) => e.incorrectId),
  );

  const meta = JSON.parse(readFileSync(join(root, 'ioi.tensors.json'), 'utf8'));
  assert.equal(meta.format, 'attribution-patching/tensors@1');
  assert.deepEqual(meta.model, result.model);
  assert.deepEqual(meta.metric, result.metric);
  assert.deepEqual(meta.hooks['blocks.3.attn.hook_z'], { hook: 'blocks.{l}.attn.hook_z', layer: 3, axes: ['examples', 'positions', 'heads'], method: 'atp' });
  assert.deepEqual(meta.hooks['blocks.0.hook_mlp_out'].axes, ['examples', 'positions']);
});

test('bad requests are refused with the flag named and nothing written', () => {
  const refuse = (args: string[], pattern: RegExp) => {
    const run = runCli(cache(), ['export', 'ioi.json', '--format', 'tensors', ...args], root);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, pattern);
  };
  refuse(['--out', 'x.json'], /--out: "x\.json": --format tensors writes a \.safetensors file/);
  refuse(['--out', 'y.safetensors', '--name', 'n'], /--name: not used by --format tensors/);
  refuse(['--out', 'ioi.safetensors'], /ioi\.json/); // its metadata JSON would be the Result itself
  assert.ok(!existsSync(join(root, 'x.json')) && !existsSync(join(root, 'y.safetensors')));
});

test('the README’s Python snippet loads the tensors with numpy and torch and rebuilds the head map’s layer 3', { skip: torchReferenceSkip() }, () => {
  requireTorchReference();
  const readme = readFileSync(resolve(__dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Reading Results from Python'));
  const snippet = /```python\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(snippet, 'README has the Python snippet under "Reading Results from Python"');
  const script = `${snippet}\nprint(json.dumps({"names": sorted(tensors), "heads_layer3": heads_layer3.tolist(), "z_shape": list(z.shape), "padded": bool(torch.isnan(z[0, -1]).all()), "method": meta["hooks"]["blocks.3.attn.hook_z"]["method"]}))\n`;
  writeFileSync(join(root, 'snippet.py'), script);
  const run = spawnSync(REFERENCE_PYTHON, ['snippet.py'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
  const positions = Math.max(...result.examples.map((e) => e.cleanIds.length));
  assert.deepEqual(out.z_shape, [result.examples.length, positions, result.model.heads]);
  assert.equal(out.method, 'atp');
  assert.equal(out.names.length, 7 + 4 * result.model.layers);
  // The first example is the shorter one: padded at the end.
  assert.equal(out.padded, result.examples[0].cleanIds.length < positions);
  const scale = Math.max(...result.heads[3].map(Math.abs));
  result.heads[3].forEach((value, h) => assert.ok(Math.abs(out.heads_layer3[h] - value) <= 1e-5 * scale, `head ${h}: ${out.heads_layer3[h]} vs ${value}`));
});
