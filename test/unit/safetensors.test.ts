import { test, mock, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, truncateSync, openSync, ftruncateSync, closeSync, statSync, mkdirSync } from 'node:fs';
// The module object itself (not an ES namespace copy), so that mock.method patches what the engine calls.
import fs = require('node:fs');
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/shared/errors';
import { bytesPerElement, float16BitsToFloat32, indexModelWeights, readSafetensorsHeader, readTensorAsFloat32 } from '../../src/lib/model/safetensors';
import { bfloat16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits, writeSafetensors } from '../support/safetensorsWriter';

const root = mkdtempSync(join(tmpdir(), 'atp-safetensors-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
function freshDir(): string {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  return dir;
}

/** Builds a safetensors file's bytes from a raw header object (for malformed-file tests). */
function rawSafetensors(header: unknown, dataBytes: number): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, json, Buffer.alloc(dataBytes)]);
}

const SPECIAL_VALUES = [0, -0, 1, -1, 0.5, 1 / 3, Math.PI, 65504, -65504, 1e-8, 3.4e38, Infinity, -Infinity, NaN];

function assertSameFloats(actual: Float32Array, expected: ArrayLike<number>): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Object.is(actual[i], expected[i]), `element ${i}: got ${actual[i]}, expected ${expected[i]}`);
  }
}

test('F32 round trip keeps every value bit for bit, special values included', () => {
  const file = join(freshDir(), 'f32.safetensors');
  const data = Float32Array.from([...SPECIAL_VALUES, 1.17549435e-38, 1.4e-45]);
  writeSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [2, data.length / 2], data }], { format: 'pt' });
  const { tensors, metadata } = readSafetensorsHeader(file);
  assert.deepEqual(metadata, { format: 'pt' });
  assert.equal(tensors.length, 1);
  assert.deepEqual(tensors[0].shape, [2, data.length / 2]);
  assert.equal(tensors[0].length, data.length * 4);
  assertSameFloats(readTensorAsFloat32(tensors[0]), data);
});

test('F16 conversion rounds to nearest even and handles overflow, subnormals and specials', () => {
  const cases: Array<[number, number]> = [
    [1, 1],
    [1 + 2 ** -11, 1], // halfway, ties to the even mantissa (0)
    [1 + 3 * 2 ** -11, 1 + 2 ** -9], // halfway, ties up to the even mantissa (2)
    [1 + 2 ** -11 + 2 ** -20, 1 + 2 ** -10], // just above halfway rounds up
    [1 / 3, 0.333251953125],
    [65504, 65504],
    [65519, 65504],
    [65520, Infinity], // halfway to 65536, which is out of range
    [-1e6, -Infinity],
    [2 ** -24, 2 ** -24], // smallest subnormal
    [2 ** -25, 0], // halfway between 0 and the smallest subnormal: ties to 0
    [1.5 * 2 ** -25, 2 ** -24],
    [3 * 2 ** -25, 2 ** -23], // ties to the even subnormal
    [2 ** -14 - 2 ** -25, 2 ** -14], // rounds up out of the subnormals into the smallest normal
    [1e-10, 0],
    [-0, -0],
    [Infinity, Infinity],
    [-Infinity, -Infinity],
  ];
  for (const [input, expected] of cases) {
    assert.ok(Object.is(float16BitsToFloat32(float32ToFloat16Bits(input)), expected), `F16(${input}) should be ${expected}`);
  }
  assert.equal(float32ToFloat16Bits(65504), 0x7bff);
  assert.equal(float32ToFloat16Bits(-2), 0xc000);
  assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN))));

  const file = join(freshDir(), 'f16.safetensors');
  const inputs = cases.map(([input]) => input);
  writeSafetensors(file, [{ name: 'h', dtype: 'F16', shape: [inputs.length], data: Float32Array.from(inputs) }]);
  const [entry] = readSafetensorsHeader(file).tensors;
  assert.equal(entry.dtype, 'F16');
  assert.equal(entry.length, inputs.length * 2);
  assertSameFloats(readTensorAsFloat32(entry), Float32Array.from(cases.map(([, expected]) => expected)));
});

test('BF16 conversion rounds to nearest even; the largest float32 overflows to Infinity', () => {
  const cases: Array<[number, number]> = [
    [1, 1],
    [1 + 2 ** -8, 1], // halfway, ties to even
    [1 + 3 * 2 ** -8, 1 + 2 ** -6], // halfway, ties up to even
    [1 + 2 ** -8 + 2 ** -20, 1 + 2 ** -7],
    [Math.PI, 3.140625],
    [3.4028234663852886e38, Infinity],
    [-0, -0],
    [-Infinity, -Infinity],
    [2 ** -130, 2 ** -130], // subnormal in both formats
  ];
  for (const [input, expected] of cases) {
    const actual = bfloat16BitsToFloat32(float32ToBfloat16Bits(input));
    assert.ok(Object.is(actual, expected), `BF16(${input}) should be ${expected}, got ${actual}`);
  }
  assert.ok(Number.isNaN(bfloat16BitsToFloat32(float32ToBfloat16Bits(NaN))));

  const file = join(freshDir(), 'bf16.safetensors');
  const inputs = cases.map(([input]) => input);
  writeSafetensors(file, [{ name: 'b', dtype: 'BF16', shape: [inputs.length], data: Float32Array.from(inputs) }]);
  const [entry] = readSafetensorsHeader(file).tensors;
  assert.equal(entry.dtype, 'BF16');
  const back = readTensorAsFloat32(entry);
  inputs.forEach((input, i) => assert.ok(Object.is(back[i], bfloat16BitsToFloat32(float32ToBfloat16Bits(input)))));
});

test('several tensors of mixed dtypes land at the right offsets', () => {
  const file = join(freshDir(), 'mixed.safetensors');
  const a = Float32Array.from([1, 2, 3]);
  const b = Float32Array.from([0.5, -0.25, 8, 16]);
  const c = Float32Array.from([-1.5]);
  writeSafetensors(file, [
    { name: 'a', dtype: 'F16', shape: [3], data: a },
    { name: 'b', dtype: 'F32', shape: [2, 2], data: b },
    { name: 'c', dtype: 'BF16', shape: [1], data: c },
  ]);
  const byName = new Map(readSafetensorsHeader(file).tensors.map((t) => [t.name, t]));
  assertSameFloats(readTensorAsFloat32(byName.get('a')!), a);
  assertSameFloats(readTensorAsFloat32(byName.get('b')!), b);
  assertSameFloats(readTensorAsFloat32(byName.get('c')!), c);
  assert.equal(byName.get('b')!.offset, byName.get('a')!.offset + 6);
  assert.equal(byName.get('c')!.offset + 2, statSync(file).size);
  assert.equal(bytesPerElement('BF16'), 2);
  assert.equal(bytesPerElement('I64'), 8);
});

test('the header is padded with spaces so that data starts 8-byte aligned', () => {
  const dir = freshDir();
  for (let nameLength = 1; nameLength <= 9; nameLength++) {
    const file = join(dir, `pad-${nameLength}.safetensors`);
    writeSafetensors(file, [{ name: 'x'.repeat(nameLength), dtype: 'F32', shape: [1], data: Float32Array.from([7]) }]);
    const bytes = readFileSync(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + headerLength) % 8, 0, `name length ${nameLength}`);
    const headerText = bytes.subarray(8, 8 + headerLength).toString('utf8');
    assert.match(headerText, /^\{.*\} *$/);
    assert.ok(headerText.length - headerText.trimEnd().length < 8);
    assert.equal(readSafetensorsHeader(file).tensors[0].offset, 8 + headerLength);
  }
});

test('a truncated file is an InputError naming the file and the tensor', () => {
  const file = join(freshDir(), 'cut.safetensors');
  writeSafetensors(file, [
    { name: 'first', dtype: 'F32', shape: [4], data: new Float32Array(4) },
    { name: 'h.0.attn.c_attn.weight', dtype: 'F32', shape: [4, 4], data: new Float32Array(16) },
  ]);
  truncateSync(file, statSync(file).size - 3);
  assert.throws(
    () => readSafetensorsHeader(file),
    (error: unknown) => {
      assert.ok(error instanceof InputError);
      assert.ok(error.message.startsWith(`${file}: tensor "h.0.attn.c_attn.weight" is truncated`), error.message);
      return true;
    },
  );
  // Cut inside the header itself.
  truncateSync(file, 20);
  assert.throws(
    () => readSafetensorsHeader(file),
    (error: unknown) => error instanceof InputError && error.message.includes(file) && /truncated/.test(error.message),
  );
});

test('malformed headers are InputErrors that say what is wrong', () => {
  const dir = freshDir();
  const cases: Array<[string, Buffer, RegExp]> = [
    ['tiny', Buffer.from([1, 2, 3]), /truncated/],
    ['huge-length', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x7b]), /header length .* is not plausible/],
    ['bad-json', Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a"')]), /header is not valid JSON/],
    ['array', rawSafetensors([1, 2], 0), /must be a JSON object, not an array/],
    ['dtype', rawSafetensors({ w: { dtype: 'F99', shape: [1], data_offsets: [0, 4] } }, 4), /tensor "w": unsupported dtype "F99"/],
    ['shape', rawSafetensors({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /tensor "w": "shape"/],
    ['offsets', rawSafetensors({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4), /tensor "w": "data_offsets"/],
    ['size', rawSafetensors({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4), /tensor "w": data_offsets span 4 bytes but F32\[2\] needs 8/],
    ['metadata', rawSafetensors({ __metadata__: { a: 1 } }, 0), /"__metadata__.a" must be a string/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const file = join(dir, `${name}.safetensors`);
    writeFileSync(file, bytes);
    assert.throws(
      () => readSafetensorsHeader(file),
      (error: unknown) => error instanceof InputError && error.message.startsWith(file) && pattern.test(error.message),
      name,
    );
  }
});

test('a 2 GB (sparse) file is indexed from its header alone', () => {
  const dir = freshDir();
  const file = join(dir, 'model.safetensors');
  const elements = 2 ** 29; // 2 GiB of F32
  const header = Buffer.from(JSON.stringify({ big: { dtype: 'F32', shape: [2 ** 15, 2 ** 14], data_offsets: [0, elements * 4] } }), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(file, Buffer.concat([prefix, header]));
  const fd = openSync(file, 'r+');
  ftruncateSync(fd, 8 + header.length + elements * 4);
  closeSync(fd);

  let bytesRead = 0;
  const originalReadSync = fs.readSync;
  const readSync = mock.method(fs, 'readSync', (...args: Parameters<typeof fs.readSync>) => {
    const read = originalReadSync(...args);
    bytesRead += read;
    return read;
  });
  const readFileSyncSpy = mock.method(fs, 'readFileSync');
  try {
    const weights = indexModelWeights(dir);
    const big = weights.get('big');
    assert.ok(big);
    assert.equal(big.length, elements * 4);
    assert.equal(big.offset, 8 + header.length);
    assert.deepEqual(big.shape, [2 ** 15, 2 ** 14]);
    assert.ok(readSync.mock.callCount() > 0, 'the header is read through fs.readSync');
    assert.ok(bytesRead <= 8 + header.length, `read ${bytesRead} bytes`);
    assert.equal(readFileSyncSpy.mock.callCount(), 0);
  } finally {
    readSync.mock.restore();
    readFileSyncSpy.mock.restore();
  }
});

test('indexModelWeights reads a sharded folder through its index', () => {
  const dir = freshDir();
  writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [{ name: 'a', dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) }]);
  writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [{ name: 'b', dtype: 'F16', shape: [1], data: Float32Array.from([3]) }]);
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 10 }, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }),
  );
  const weights = indexModelWeights(dir);
  assert.deepEqual([...weights.keys()].sort(), ['a', 'b']);
  assert.equal(weights.get('b')!.file, join(dir, 'model-00002-of-00002.safetensors'));
  assertSameFloats(readTensorAsFloat32(weights.get('b')!), [3]);
});

test('indexModelWeights: errors for missing weights, pickle files and bad indexes', () => {
  const empty = freshDir();
  assert.throws(
    () => indexModelWeights(empty),
    (error: unknown) =>
      error instanceof InputError &&
      error.message === `${empty}: no model.safetensors or model.safetensors.index.json: not a Hugging Face model folder with safetensors weights`,
  );

  const pickle = freshDir();
  writeFileSync(join(pickle, 'pytorch_model.bin'), 'not really');
  assert.throws(
    () => indexModelWeights(pickle),
    (error: unknown) =>
      error instanceof InputError && error.message.includes('pytorch_model.bin') && /only safetensors weights are loaded, never pickle/.test(error.message),
  );

  assert.throws(
    () => indexModelWeights(join(root, 'does-not-exist')),
    (error: unknown) => error instanceof InputError && /model folder not found/.test(error.message),
  );

  const missingShard = freshDir();
  writeFileSync(join(missingShard, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00001-of-00001.safetensors' } }));
  assert.throws(
    () => indexModelWeights(missingShard),
    (error: unknown) => error instanceof InputError && /shard model-00001-of-00001\.safetensors \(for tensor "a"\) does not exist/.test(error.message),
  );

  const escaping = freshDir();
  writeFileSync(join(escaping, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: '../elsewhere.safetensors' } }));
  assert.throws(
    () => indexModelWeights(escaping),
    (error: unknown) => error instanceof InputError && /"weight_map\.a" must be the name of a shard file in the same folder/.test(error.message),
  );

  const wrongShard = freshDir();
  writeSafetensors(join(wrongShard, 's.safetensors'), [{ name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) }]);
  writeFileSync(join(wrongShard, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { b: 's.safetensors' } }));
  assert.throws(
    () => indexModelWeights(wrongShard),
    (error: unknown) => error instanceof InputError && /tensor "b" is not in its shard s\.safetensors/.test(error.message),
  );
});
