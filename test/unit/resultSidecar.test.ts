// A large Result on disk: the JSON and its safetensors sidecar (src/lib/files/resultFile.ts). Round trip,
// the size a 5,000-example result keeps, writing the pair so that a failure or crash leaves the previous one
// readable, and sidecars that are missing, changed, truncated or of the wrong shape.
import { test, mock, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
// The module object itself, so that mock.method patches what the writer calls.
import fs = require('node:fs');
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/shared/errors';
import {
  RESULT_SCHEMA,
  RESULT_SCHEMA_SIDECAR,
  parseResult,
  serializeResult,
  summarizeHeads,
  summarizePositions,
  sumNodeMaps,
  type ExampleResult,
  type Result,
} from '../../src/shared/result';
import { INLINE_VALUE_LIMIT, readResultFile, resultFilesToWrite, sidecarsOf, writeResultAtomically } from '../../src/lib/files/resultFile';
import { writeFilesAtomically } from '../../src/lib/files/atomicWrite';
import { readSafetensorsHeader } from '../../src/lib/model/safetensors';
import { exampleLabel, panelResult, positionLabels, positionMatrix } from '../../src/shared/resultViews';

const root = mkdtempSync(join(tmpdir(), 'atp-sidecar-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
function freshDir(): string {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  return dir;
}

interface Shape {
  layers: number;
  heads: number;
  kvHeads?: number;
}

/** Deterministic values that are not exactly float32 (so the test sees the rounding) and differ per cell. */
const value = (seed: number) => Math.sin(seed * 12.9898) * 3.7;

/** One example of `length` tokens (a non-ASCII token text included), AtP* nodes when kvHeads is set. */
function makeExample(index: number, length: number, shape: Shape): ExampleResult {
  const positions = Array.from({ length }, (_, p) => p);
  const grid3 = (width: number, salt: number) =>
    Array.from({ length: shape.layers }, (_, l) =>
      positions.map((p) => Array.from({ length: width }, (_, h) => value(salt + 1000 * index + 100 * l + 10 * p + h))),
    );
  const grid2 = (salt: number) => Array.from({ length: shape.layers }, (_, l) => positions.map((p) => value(salt + 1000 * index + 100 * l + p)));
  const texts = positions.map((p) => (p === 1 ? ' Ünïcødé→' : ` t${p}`));
  let at = 0;
  const tokens = texts.map((text, p) => ({ id: 1000 + p + index, text, start: at, end: (at += text.length) }));
  const clean = texts.join('');
  return {
    line: index + 1,
    clean,
    corrupted: clean.replace('t0', 'u0'),
    correct: ' A',
    incorrect: ' B',
    cleanIds: tokens.map((t) => t.id),
    // The corruption changes the first token, as in TinySQL's one-word corruptions.
    corruptedIds: tokens.map((t, p) => (p === 0 ? t.id + 1 : t.id)),
    correctId: 317,
    incorrectId: 347,
    tokens,
    corruptedTokens: tokens.map((t, p) => (p === 0 ? { ...t, text: ' u0', id: t.id + 1 } : t)),
    cleanLogitDiff: value(index),
    corruptedLogitDiff: value(index + 0.5),
    tokenScores: {
      kind: 'token-patch',
      method: 'exact',
      values: positions.map((p) => value(7 * index + p)),
      exact: positions.map((p) => p % 2 === 0),
      joint: value(index + 0.25),
    },
    attributions: { z: grid3(shape.heads, 1), residPre: grid2(2), attnOut: grid2(3), mlpOut: grid2(4) },
    ...(shape.kvHeads
      ? {
          atpStar: {
            q: grid3(shape.heads, 5),
            qLinear: grid3(shape.heads, 6),
            k: grid3(shape.kvHeads, 7),
            kLinear: grid3(shape.kvHeads, 8),
            v: grid3(shape.kvHeads, 9),
          },
        }
      : {}),
  };
}

function makeResult(count: number, length: (i: number) => number, shape: Shape): Result {
  const examples = Array.from({ length: count }, (_, i) => makeExample(i, length(i), shape));
  return {
    schema: RESULT_SCHEMA,
    createdAt: '2026-01-02T03:04:05.000Z',
    dataset: { file: 'big.jsonl', examples: count, contentHash: 'sha256:' + '0'.repeat(64) },
    model: {
      source: 'models/tinysql-demo',
      architecture: 'gpt2',
      modelType: 'gpt2',
      layers: shape.layers,
      heads: shape.heads,
      dModel: 128,
      dHead: 32,
      dtype: 'F32',
    },
    device: 'cpu',
    metric: { name: 'normalized-logit-diff', cleanLogitDiff: 2.5, corruptedLogitDiff: -1.25 },
    run: { requested: 'auto', method: shape.kvHeads ? 'atpstar' : 'atp', passes: { forward: 8, backward: 4 }, reason: 'test' },
    methods: { attributions: 'atp', heads: 'atp', positions: 'atp', tokenScores: 'exact' },
    heads: summarizeHeads(examples),
    positions: summarizePositions(examples),
    ...(shape.kvHeads
      ? {
          atpStar: {
            kvHeads: shape.kvHeads,
            maps: sumNodeMaps(
              examples.map((e) => e.atpStar!),
              shape.layers,
              shape.heads,
              shape.kvHeads,
            ),
          },
        }
      : {}),
    examples,
    warnings: [],
  };
}

/** What a sidecar holds: the values rounded to float32, everything else exactly. */
function asStored(result: Result): Result {
  const round = (x: unknown): unknown => (Array.isArray(x) ? x.map(round) : typeof x === 'number' ? Math.fround(x) : x);
  const copy = structuredClone(result);
  for (const e of copy.examples) {
    e.attributions = Object.fromEntries(Object.entries(e.attributions).map(([k, v]) => [k, round(v)])) as unknown as ExampleResult['attributions'];
    if (e.tokenScores) e.tokenScores.values = round(e.tokenScores.values) as number[];
    if (e.atpStar) e.atpStar = Object.fromEntries(Object.entries(e.atpStar).map(([k, v]) => [k, round(v)])) as unknown as ExampleResult['atpStar'];
  }
  return copy;
}

const shapeGpt2: Shape = { layers: 2, heads: 3 };
const shapeGqa: Shape = { layers: 2, heads: 4, kvHeads: 2 };

test('round trip through JSON + sidecar gives the same Result, values rounded to float32 only', () => {
  for (const shape of [shapeGpt2, shapeGqa]) {
    const dir = freshDir();
    const file = join(dir, 'data.atp-result.json');
    const result = makeResult(5, (i) => 3 + (i % 3), shape);
    writeResultAtomically(file, result, { layout: 'sidecar' });
    const json = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(json.schema, RESULT_SCHEMA_SIDECAR);
    assert.equal(json.examples[0].attributions, undefined, 'the per-example arrays are not in the JSON');
    assert.equal(json.examples[0].tokens, undefined);
    assert.deepEqual(json.examples[0].tokenScores, { kind: 'token-patch', method: 'exact', joint: result.examples[0].tokenScores!.joint });
    assert.match(json.sidecar.file, /^data\.atp-result\.[0-9a-f]{16}\.safetensors$/);
    const sidecar = join(dir, json.sidecar.file);
    assert.equal(json.sidecar.contentHash, `sha256:${createHash('sha256').update(readFileSync(sidecar)).digest('hex')}`);
    assert.deepEqual(readdirSync(dir).sort(), [json.sidecar.file, 'data.atp-result.json'].sort());
    // An ordinary safetensors file: the model reader opens it.
    assert.ok(readSafetensorsHeader(sidecar).tensors.some((t) => t.name === 'attributions.z' && t.dtype === 'F32'));

    const back = readResultFile(file);
    assert.deepEqual(back, asStored(result));
    assert.notDeepEqual(
      back.examples[0].attributions.z,
      result.examples[0].attributions.z,
      'float64 values do come back rounded (the test would see a lost rounding)',
    );
    assert.equal(back.examples[0].tokens[1].text, ' Ünïcødé→');
  }
});

test("a pair's grids (attributions, AtP* nodes) are built when first read, and read like any property", () => {
  const dir = freshDir();
  const file = join(dir, 'lazy.atp-result.json');
  const result = makeResult(3, () => 4, shapeGqa);
  writeResultAtomically(file, result, { layout: 'sidecar' });
  const back = readResultFile(file);
  const example = back.examples[1];
  const unbuilt = (target: object, key: string) => Object.getOwnPropertyDescriptor(target, key)?.get !== undefined;
  assert.ok(unbuilt(example.attributions, 'z') && unbuilt(example.atpStar!, 'v'), 'not built by reading the file');
  assert.ok(!unbuilt(example, 'tokens'), 'tokens (every view needs them) are built at once');
  // Every way of reading sees the values: property access, spreads, JSON (exports) and structured clones (messages).
  const expected = asStored(result).examples[1];
  assert.deepEqual({ ...example.atpStar }, expected.atpStar);
  assert.deepEqual(JSON.parse(JSON.stringify(example.attributions)), expected.attributions);
  assert.deepEqual(structuredClone(back.examples[2]), asStored(result).examples[2]);
  assert.ok(!unbuilt(example.attributions, 'z'), 'a plain value once read');
  // Written over like any field (a merge or an edit), not recomputed.
  back.examples[0].attributions.mlpOut = [[1]];
  assert.deepEqual(back.examples[0].attributions.mlpOut, [[1]]);
});

test('small results stay one JSON file (result@2); above INLINE_VALUE_LIMIT per-example values they get a sidecar', () => {
  const dir = freshDir();
  const small = join(dir, 'small.json');
  writeResultAtomically(
    small,
    makeResult(10, () => 5, shapeGpt2),
  );
  assert.deepEqual(readdirSync(dir), ['small.json']);
  assert.equal(parseResult(readFileSync(small, 'utf8'), small).examples.length, 10, 'an inline file is what it always was');
  // 2 layers · 5 positions · (3 heads + 3 hooks) + ids, tokens and scores: about 130 values per example.
  const large = join(dir, 'large.json');
  const count = Math.ceil(INLINE_VALUE_LIMIT / 100);
  writeResultAtomically(
    large,
    makeResult(count, () => 5, shapeGpt2),
  );
  assert.equal(sidecarsOf(large).length, 1);
  assert.equal(JSON.parse(readFileSync(large, 'utf8')).schema, RESULT_SCHEMA_SIDECAR);
  assert.equal(readResultFile(large).examples.length, count);
  assert.throws(() => parseResult(readFileSync(large, 'utf8'), large), /per-example arrays are in the sidecar file named by field "sidecar"/);
});

test('5,000 examples shaped like TinySQL on the demo model: the JSON stays under 5 MB', () => {
  // models/tinysql-demo: 4 layers, 4 heads; TinySQL prompts are about 30 tokens.
  const shape: Shape = { layers: 4, heads: 4 };
  const result = makeResult(5000, (i) => 28 + (i % 5), shape);
  const [sidecar, json] = resultFilesToWrite('/nowhere/tinysql.atp-result.json', result);
  const inline = serializeResult(result).length;
  const jsonBytes = Buffer.byteLength(json.contents as string, 'utf8');
  console.log(
    `5,000 examples: inline ${(inline / 1e6).toFixed(1)} MB; JSON ${(jsonBytes / 1e6).toFixed(2)} MB + sidecar ${(sidecar.contents.length / 1e6).toFixed(1)} MB`,
  );
  assert.ok(inline > 50e6, `the inline form is the issue's tens of MB (${inline} bytes): the test measures the right thing`);
  assert.ok(jsonBytes <= 5e6, `JSON of ${jsonBytes} bytes`);
});

/** The pair a write left, as bytes, for comparing before and after. */
function snapshot(dir: string): Map<string, string> {
  return new Map(
    readdirSync(dir)
      .sort()
      .map((name) => [name, readFileSync(join(dir, name), 'latin1')]),
  );
}

test('a failed write leaves the previous pair intact and readable; the next write replaces it and removes the old sidecar', () => {
  const dir = freshDir();
  const file = join(dir, 'r.json');
  const previous = makeResult(4, () => 3, shapeGpt2);
  writeResultAtomically(file, previous, { layout: 'sidecar' });
  const before = snapshot(dir);

  // Fails while encoding: nothing touches the disk.
  const nan = makeResult(4, () => 3, shapeGpt2);
  nan.examples[2].attributions.mlpOut[1][0] = NaN;
  assert.throws(() => writeResultAtomically(file, nan, { layout: 'sidecar' }), /result\.examples\[2\]\.attributions\.mlpOut\[1\]\[0\] is NaN/);
  assert.deepEqual(snapshot(dir), before);

  // Fails at the JSON's rename, after the new sidecar's (the crash between the two): the new sidecar is an orphan,
  // the previous JSON still names its own sidecar.
  const next = makeResult(6, () => 4, shapeGpt2);
  const realRename = fs.renameSync;
  let renames = 0;
  const failing = mock.method(fs, 'renameSync', (from: fs.PathLike, to: fs.PathLike) => {
    if (++renames === 2) throw Object.assign(new Error('renameSync failed: EIO'), { code: 'EIO' });
    realRename(from, to);
  });
  try {
    assert.throws(
      () => writeResultAtomically(file, next, { layout: 'sidecar' }),
      (e: unknown) => e instanceof InputError && /r\.json: cannot write the result/.test(e.message),
    );
  } finally {
    failing.mock.restore();
  }
  assert.equal(sidecarsOf(file).length, 2, 'the orphaned new sidecar is there');
  assert.equal(readFileSync(file, 'latin1'), before.get('r.json'));
  assert.deepEqual(readResultFile(file), asStored(previous));

  writeResultAtomically(file, next, { layout: 'sidecar' });
  assert.deepEqual(readResultFile(file), asStored(next));
  assert.equal(sidecarsOf(file).length, 1, 'the previous sidecar and the orphan are gone');
  assert.equal(readdirSync(dir).length, 2);

  // Back to a small inline result: no sidecar left behind.
  writeResultAtomically(
    file,
    makeResult(1, () => 3, shapeGpt2),
  );
  assert.deepEqual(readdirSync(dir), ['r.json']);
});

test('a pending pair (the extension: JSON renamed into place later) names its sidecar after the final file', () => {
  const dir = freshDir();
  const final = join(dir, 'd.atp-result.json');
  writeResultAtomically(
    final,
    makeResult(2, () => 3, shapeGpt2),
    { layout: 'sidecar' },
  );
  const pending = join(dir, '.d.atp-result.json.1.2.pending');
  writeResultAtomically(
    pending,
    makeResult(3, () => 3, shapeGpt2),
    { layout: 'sidecar', finalFile: final },
  );
  assert.equal(sidecarsOf(final).length, 2, 'until the rename, the final JSON keeps its own sidecar');
  assert.equal(readResultFile(final).examples.length, 2);
  fs.renameSync(pending, final);
  assert.equal(readResultFile(final).examples.length, 3);
});

/** Writes a pair, lets `damage` change it, and returns the error readResultFile gives. */
function readDamaged(
  damage: (files: { json: string; sidecar: string; raw: Record<string, any> }) => void,
  shape: Shape = shapeGpt2,
  result?: Result,
): InputError {
  const dir = freshDir();
  const json = join(dir, 'h.json');
  writeResultAtomically(json, result ?? makeResult(3, () => 4, shape), { layout: 'sidecar' });
  const raw = JSON.parse(readFileSync(json, 'utf8'));
  damage({ json, sidecar: join(dir, raw.sidecar.file), raw });
  try {
    readResultFile(json);
  } catch (error) {
    assert.ok(error instanceof InputError, `an InputError, not ${String(error)}`);
    return error;
  }
  assert.fail('the damaged pair was read without an error');
}

/** Rewrites the JSON so that its hash matches the (changed) sidecar: what a crafted pair looks like. */
function rehash(json: string, sidecar: string, raw: Record<string, any>): void {
  raw.sidecar.contentHash = `sha256:${createHash('sha256').update(readFileSync(sidecar)).digest('hex')}`;
  writeFileSync(json, JSON.stringify(raw));
}

test('hostile or damaged sidecars: clear errors naming the file and the field or tensor', () => {
  const missing = readDamaged(({ sidecar }) => rmSync(sidecar));
  assert.match(missing.message, /h\.json: field "sidecar\.file": cannot read .*h\.[0-9a-f]{16}\.safetensors \(ENOENT\).*keep the two files together/);

  const changed = readDamaged(({ sidecar }) => {
    const bytes = readFileSync(sidecar);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(sidecar, bytes);
  });
  assert.match(changed.message, /h\.[0-9a-f]{16}\.safetensors: its content hash is sha256:[0-9a-f]{64}, but field "sidecar\.contentHash" of .*h\.json says/);

  const truncated = readDamaged(({ json, sidecar, raw }) => {
    writeFileSync(sidecar, readFileSync(sidecar).subarray(0, statSync(sidecar).size - 40));
    rehash(json, sidecar, raw);
  });
  assert.match(truncated.message, /safetensors: tensor ".*" is truncated/);

  const header = readDamaged(({ json, sidecar, raw }) => {
    writeFileSync(sidecar, Buffer.from([1, 2, 3]));
    rehash(json, sidecar, raw);
  });
  assert.match(header.message, /safetensors: truncated: 3 bytes is too short/);

  const escape = readDamaged(({ json, raw }) => {
    raw.sidecar.file = '../elsewhere.safetensors';
    writeFileSync(json, JSON.stringify(raw));
  });
  assert.match(escape.message, /h\.json: field "sidecar\.file" must be the name of a file in the same folder/);

  const badHash = readDamaged(({ json, raw }) => {
    raw.sidecar.contentHash = 'md5:0';
    writeFileSync(json, JSON.stringify(raw));
  });
  assert.match(badHash.message, /field "sidecar\.contentHash" must be "sha256:"/);

  const fewer = readDamaged(({ json, raw }) => {
    raw.examples.pop();
    writeFileSync(json, JSON.stringify(raw));
  });
  assert.match(fewer.message, /safetensors: holds 3 examples \("__metadata__\.examples"\) but .*h\.json has 2/);

  // Arrays of the wrong shape for the model the JSON names (3 layers of z where model.layers is 2).
  const wrongLayers = makeResult(3, () => 4, shapeGpt2);
  wrongLayers.examples[1].attributions.z.push(wrongLayers.examples[1].attributions.z[0]);
  const layers = readDamaged(() => {}, shapeGpt2, wrongLayers);
  assert.match(
    layers.message,
    /safetensors: tensor "attributions\.z", example 1 \(line 2\) has shape \[3, 4, 3\], expected \[2, 4, 3\] \(layers, clean tokens, heads\)/,
  );

  // Token scores for fewer tokens than the prompt has.
  const shortScores = makeResult(3, () => 4, shapeGpt2);
  shortScores.examples[2].tokenScores!.values.pop();
  shortScores.examples[2].tokenScores!.exact.pop();
  assert.match(
    readDamaged(() => {}, shapeGpt2, shortScores).message,
    /tensor "tokenScores\.values", example 2 \(line 3\) has shape \[3\], expected \[4\] \(one per clean token\)/,
  );

  // AtP*'s key nodes with the query heads' width instead of the key/value heads'.
  const wideKeys = makeResult(2, () => 3, shapeGqa);
  for (const e of wideKeys.examples) e.atpStar!.k = e.atpStar!.q;
  assert.match(readDamaged(() => {}, shapeGqa, wideKeys).message, /tensor "atpStar\.k", example 0 \(line 1\) has shape \[2, 3, 4\], expected \[2, 3, 2\]/);
});

test('a crafted sidecar: shapes that disagree with the data, a missing tensor, a NaN, flags that are not 0/1', () => {
  // Crafted by rewriting the header (same length, so offsets stay valid) and rehashing the JSON.
  const edit = (replace: (header: string) => string) =>
    readDamaged(({ json, sidecar, raw }) => {
      const bytes = readFileSync(sidecar);
      const length = Number(bytes.readBigUInt64LE(0));
      const header = bytes.subarray(8, 8 + length).toString('utf8');
      const changed = replace(header);
      assert.notEqual(changed, header, 'the edit applies');
      assert.equal(Buffer.byteLength(changed), length);
      Buffer.from(changed, 'utf8').copy(bytes, 8);
      writeFileSync(sidecar, bytes);
      rehash(json, sidecar, raw);
    });
  const renamed = edit((h) => h.replace('"attributions.mlpOut"', '"attributions.mlpOuX"'));
  assert.match(renamed.message, /safetensors: tensor "attributions\.mlpOut" is missing/);
  // Both token-score tensors gone while the JSON's examples still have token scores: their values are missing.
  const noScores = edit((h) =>
    h
      .replace('"tokenScores.values"', '"tokenScores.valueX"')
      .replace('"tokenScores.values.shape"', '"tokenScores.valueX.shape"')
      .replace('"tokenScores.exact"', '"tokenScores.exacX"')
      .replace('"tokenScores.exact.shape"', '"tokenScores.exacX.shape"'),
  );
  assert.match(noScores.message, /examples\[0\]\.tokenScores\.values/);
  const wrongDtype = edit((h) => h.replace(/"cleanIds":\{"dtype":"I32"/, '"cleanIds":{"dtype":"F32"'));
  assert.match(wrongDtype.message, /safetensors: tensor "cleanIds" must be I32 with one dimension, found F32/);

  // Shapes that ask for more values than the tensor holds.
  const inflated = readDamaged(({ json, sidecar, raw }) => {
    const bytes = readFileSync(sidecar);
    const length = Number(bytes.readBigUInt64LE(0));
    const entry = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'))['attributions.residPre.shape'];
    bytes.writeInt32LE(5, 8 + length + entry.data_offsets[0] + 4); // example 0's positions: 4 → 5
    writeFileSync(sidecar, bytes);
    rehash(json, sidecar, raw);
  });
  assert.match(inflated.message, /tensor "attributions\.residPre" holds 24 values but its shapes \("attributions\.residPre\.shape"\) need 26/);

  const poisoned = readDamaged(({ json, sidecar, raw }) => {
    const bytes = readFileSync(sidecar);
    const length = Number(bytes.readBigUInt64LE(0));
    const entry = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'))['attributions.attnOut'];
    bytes.writeFloatLE(NaN, 8 + length + entry.data_offsets[0] + 4 * 9); // example 1's second value
    writeFileSync(sidecar, bytes);
    rehash(json, sidecar, raw);
  });
  assert.match(poisoned.message, /tensor "attributions\.attnOut", example 1 \(line 2\): value 1 is NaN/);

  const flags = readDamaged(({ json, sidecar, raw }) => {
    const bytes = readFileSync(sidecar);
    const length = Number(bytes.readBigUInt64LE(0));
    const entry = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'))['tokenScores.exact'];
    bytes[8 + length + entry.data_offsets[0]] = 7;
    writeFileSync(sidecar, bytes);
    rehash(json, sidecar, raw);
  });
  assert.match(flags.message, /tensor "tokenScores\.exact", example 0 \(line 1\): values must be 0 or 1/);
});

test('writeFilesAtomically renames the sidecar before the JSON (the order the pair relies on)', () => {
  const files = resultFilesToWrite(
    '/x/r.json',
    makeResult(2, () => 3, shapeGpt2),
    { layout: 'sidecar' },
  );
  assert.deepEqual(
    files.map((f) => f.what),
    ["the result's sidecar", 'the result'],
  );
  const dir = freshDir();
  const renamed: string[] = [];
  const realRename = fs.renameSync;
  const spy = mock.method(fs, 'renameSync', (from: fs.PathLike, to: fs.PathLike) => {
    renamed.push(String(to));
    realRename(from, to);
  });
  try {
    writeFilesAtomically(
      resultFilesToWrite(
        join(dir, 'r.json'),
        makeResult(2, () => 3, shapeGpt2),
        { layout: 'sidecar' },
      ),
    );
  } finally {
    spy.mock.restore();
  }
  assert.match(renamed[0], /r\.[0-9a-f]{16}\.safetensors$/);
  assert.match(renamed[1], /r\.json$/);
});

test('the heatmap panel gets summaries, labels, the maps over all examples and the one example in scope', () => {
  const result = makeResult(5000, () => 30, { layers: 4, heads: 4 });
  const all = panelResult(result, { kind: 'all' });
  const { examples: _examples, ...summary } = result;
  assert.deepEqual(all.summary, summary);
  assert.equal(all.examples.count, 5000);
  assert.equal(all.examples.labels[3], exampleLabel(result.examples[3]));
  assert.deepEqual(all.examples.lines.slice(0, 3), [1, 2, 3]);
  assert.equal(all.example, undefined);
  for (const kind of ['residPre', 'attnOut', 'mlpOut'] as const) {
    assert.deepEqual(all.allPositions![kind], positionMatrix(result, { kind: 'all' }, { kind, layer: 0 }));
  }
  assert.deepEqual({ labels: all.allPositions!.labels, titles: all.allPositions!.titles }, positionLabels(result, { kind: 'all' }));
  const one = panelResult(result, { kind: 'example', index: 42 });
  assert.deepEqual(one.example, { index: 42, data: result.examples[42] });
  const posted = JSON.stringify(one).length;
  const whole = JSON.stringify(result).length;
  console.log(`panel message for 5,000 examples: ${(posted / 1e6).toFixed(2)} MB (the whole Result: ${(whole / 1e6).toFixed(1)} MB)`);
  assert.ok(posted < whole / 20 && posted < 1e6, `${posted} bytes posted`);
  // Prompts of different lengths: no position map over all examples, as positionMatrix says.
  assert.equal(
    panelResult(
      makeResult(3, (i) => 3 + i, shapeGpt2),
      { kind: 'all' },
    ).allPositions,
    null,
  );
});
