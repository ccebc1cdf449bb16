import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseResult, type Result } from '../../src/shared/result';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { requireBuiltCli, runCli } from '../support/cli';

/**
 * `atp patch --shard` and `atp merge` as a user runs them (dist/cli.js): the merge of shards given in any order
 * equals one run over the whole dataset (float64: within 1e-12 of each field's largest |value|), and shards of
 * different runs are refused with exit 2, naming the file and the field.
 */

const IOI = resolve(__dirname, '../../examples/ioi.jsonl');
let root: string;
let model: string;

before(() => {
  requireBuiltCli();
  root = mkdtempSync(join(tmpdir(), 'atp-cli-shards-'));
  model = join(root, 'model');
  writeRandomGpt2(model, { nLayers: 2, nHeads: 4, dModel: 32, seed: 5 });
});
after(() => rmSync(root, { recursive: true, force: true }));

const atp = (...args: string[]) => runCli(join(root, 'cache'), args);

const common = (data = IOI, m = model) => [
  '--model',
  m,
  '--data',
  data,
  '--device',
  'cpu',
  '--precision',
  'float64',
  '--method',
  'atpstar',
  '--batch-size',
  '3',
];

function shard(index: number, count: number, name: string, data = IOI, m = model): string {
  const out = join(root, name);
  const run = atp('patch', '--shard', `${index}/${count}`, '--out', out, ...common(data, m));
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`wrote shard ${index}/${count}`));
  return out;
}

function read(file: string): Result {
  return parseResult(readFileSync(file, 'utf8'), file);
}

/** Every number of the fields the views use, within 1e-12 of the field's largest |value|. */
function assertClose(merged: Result, single: Result): void {
  const fields = (r: Result) => ({
    metric: [r.metric.cleanLogitDiff, r.metric.corruptedLogitDiff],
    heads: r.heads.flat(),
    positions: r.positions?.flat() ?? [],
    atpStar: Object.values(r.atpStar!.maps).flatMap((m) => m.flat()),
    lds: r.examples.flatMap((e) => [e.cleanLogitDiff, e.corruptedLogitDiff]),
    attributions: r.examples.flatMap((e) =>
      [e.attributions.z.flat(2), e.attributions.residPre.flat(), e.attributions.attnOut.flat(), e.attributions.mlpOut.flat()].flat(),
    ),
    tokenScores: r.examples.flatMap((e) => [...e.tokenScores!.values, e.tokenScores!.joint]),
    nodes: r.examples.flatMap((e) => Object.values(e.atpStar!).flatMap((m) => m.flat(2))),
  });
  const ours = fields(merged);
  const expected = fields(single);
  for (const [name, values] of Object.entries(expected)) {
    const got = ours[name as keyof typeof ours];
    assert.equal(got.length, values.length, name);
    const scale = Math.max(...values.map(Math.abs));
    assert.ok(scale > 0, `${name} is not all zero`);
    values.forEach((v, i) => assert.ok(Math.abs(got[i] - v) <= 1e-12 * scale, `${name}[${i}]: ${got[i]} vs ${v}`));
  }
  assert.deepEqual(
    merged.examples.map((e) => e.line),
    single.examples.map((e) => e.line),
  );
  assert.deepEqual(merged.methods, single.methods);
}

test('atp merge of shards given in any order equals the single run; shards are refused where a Result is expected', () => {
  const single = join(root, 'single.json');
  assert.equal(atp('patch', '--out', single, ...common()).code, 0);
  const files = [shard(1, 3, 's1.json'), shard(2, 3, 's2.json'), shard(3, 3, 's3.json')];
  const out = join(root, 'merged.json');
  const html = join(root, 'merged.html');
  const run = atp('merge', files[2], files[0], files[1], '--out', out, '--html', html);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /merged 3 shards/);
  assert.ok(existsSync(html));
  const merged = read(out);
  assert.deepEqual(merged.merged, { shards: 3 });
  assertClose(merged, read(single));

  const report = atp('report', '--out', join(root, 'shard.html'), files[0]);
  assert.equal(report.code, 2);
  assert.match(report.stderr, /s1\.json: this is shard 1\/3 .*raw.*atp merge/);
  assert.ok(!existsSync(join(root, 'shard.html')));
});

test('more shards than examples: empty shards merge too', () => {
  const files = Array.from({ length: 10 }, (_, i) => shard(i + 1, 10, `e${i + 1}.json`));
  assert.equal(read(files[9]).examples.length, 0);
  const out = join(root, 'merged10.json');
  assert.equal(atp('merge', ...files.reverse(), '--out', out).code, 0);
  const single = join(root, 'single10.json');
  assert.equal(atp('patch', '--out', single, ...common()).code, 0);
  assertClose(read(out), read(single));
});

test('refusals: --check or --html with --shard, bad --shard, other datasets, models or schemas, missing shards', () => {
  const a = shard(1, 2, 'r1.json');
  const b = shard(2, 2, 'r2.json');
  const refused = (run: ReturnType<typeof atp>, pattern: RegExp) => {
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, pattern);
  };
  refused(atp('patch', '--shard', '1/2', '--check', '2', '--out', join(root, 'x.json'), ...common()), /--check cannot be used with --shard/);
  refused(atp('patch', '--shard', '1/2', '--html', join(root, 'x.html'), '--out', join(root, 'x.json'), ...common()), /--html cannot be used with --shard/);
  refused(atp('patch', '--shard', '3/2', '--out', join(root, 'x.json'), ...common()), /--shard: expected i\/n/);
  assert.ok(!existsSync(join(root, 'x.json')));

  const otherData = join(root, 'ioi-edited.jsonl');
  writeFileSync(otherData, readFileSync(IOI, 'utf8').replace('Mary', 'Anna'));
  refused(atp('merge', a, shard(2, 2, 'd2.json', otherData), '--out', join(root, 'm.json')), /d2\.json: field "shard\.datasetHash"/);
  const otherModel = join(root, 'model2');
  writeRandomGpt2(otherModel, { nLayers: 2, nHeads: 4, dModel: 32, seed: 6 });
  refused(atp('merge', a, shard(2, 2, 'o2.json', IOI, otherModel), '--out', join(root, 'm.json')), /o2\.json: field "model\.source"/);
  const old = join(root, 'old.json');
  writeFileSync(old, readFileSync(b, 'utf8').replace('attribution-patching/result@2', 'attribution-patching/result@1'));
  refused(atp('merge', a, old, '--out', join(root, 'm.json')), /old\.json: field "schema"/);
  refused(atp('merge', a, '--out', join(root, 'm.json')), /shard 2 of 2 missing/);
  refused(atp('merge', a, a, b, '--out', join(root, 'm.json')), /both are shard 1\/2/);
  refused(atp('merge', a, shard(2, 3, 'c2.json'), '--out', join(root, 'm.json')), /c2\.json: field "shard\.count"/);
  assert.ok(!existsSync(join(root, 'm.json')));
});
