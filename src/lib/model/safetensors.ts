// Reading the safetensors format (https://huggingface.co/docs/safetensors); the writer, which only tests need,
// is test/support/safetensorsWriter.ts:
//   8 bytes: little-endian u64 N = header length
//   N bytes: UTF-8 JSON header { "__metadata__"?: {string: string}, "<name>": { dtype, shape, data_offsets: [begin, end] } }
//   rest:    tensor data; data_offsets are relative to the first byte after the header.
// Only safetensors are ever loaded: pickle files (pytorch_model.bin) can run code when unpickled.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { endianness } from 'node:os';
import { InputError } from '../../shared/errors';
import { openInputFile, readInputText } from '../files/readInput';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E5M2' | 'F8_E4M3' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute path of the file that holds the data. */
  file: string;
  /** Absolute byte offset of the data in that file. */
  offset: number;
  /** Length of the data in bytes. */
  length: number;
}

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

export function bytesPerElement(dtype: SafetensorsDtype): number {
  return BYTES_PER_ELEMENT[dtype];
}

function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(BYTES_PER_ELEMENT, value);
}

/** The reference implementation refuses headers above 100 MB; a larger length means a corrupt or foreign file. */
const MAX_HEADER_BYTES = 100_000_000;
const HEADER_LENGTH_BYTES = 8;

// Typed-array views below assume the file's little-endian layout matches the host's.
if (endianness() !== 'LE') throw new Error('safetensors support needs a little-endian machine');

/** Reads exactly `length` bytes at `position`, looping over short reads. */
function readExactly(fd: number, length: number, position: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const read = fs.readSync(fd, bytes, done, Math.min(length - done, 1 << 30), position + done);
    if (read === 0) break;
    done += read;
  }
  return done === length ? bytes : bytes.subarray(0, done);
}

function describeJsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Reads and validates the header of one .safetensors file without reading any tensor data. */
export function readSafetensorsHeader(file: string): { tensors: TensorEntry[]; metadata: Record<string, string> } {
  const absoluteFile = path.resolve(file);
  // openInputFile: a FIFO or a device (a symlink to /dev/zero) is refused without blocking in open or reading forever.
  const { fd, size: fileSize } = openInputFile(absoluteFile, 'stream');
  try {
    if (fileSize < HEADER_LENGTH_BYTES) {
      throw new InputError(`${file}: truncated: ${fileSize} bytes is too short for a safetensors file`);
    }
    const lengthBytes = readExactly(fd, HEADER_LENGTH_BYTES, 0);
    const headerLength = Buffer.from(lengthBytes.buffer, lengthBytes.byteOffset, 8).readBigUInt64LE(0);
    if (headerLength === 0n || headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw new InputError(`${file}: header length ${headerLength} is not plausible: not a safetensors file, or a corrupt one`);
    }
    const headerBytes = Number(headerLength);
    const dataStart = HEADER_LENGTH_BYTES + headerBytes;
    if (dataStart > fileSize) {
      throw new InputError(`${file}: truncated: the header claims ${headerBytes} bytes but the file has only ${fileSize} bytes`);
    }
    const headerText = Buffer.from(readExactly(fd, headerBytes, HEADER_LENGTH_BYTES)).toString('utf8');
    return parseHeaderText(file, absoluteFile, headerText, dataStart, fileSize);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads the header of safetensors bytes already in memory (a result's sidecar, read whole to check its hash):
 * the same checks as readSafetensorsHeader; `file` names it in errors and in the entries.
 */
export function readSafetensorsHeaderFromBytes(file: string, bytes: Uint8Array): { tensors: TensorEntry[]; metadata: Record<string, string> } {
  if (bytes.length < HEADER_LENGTH_BYTES) throw new InputError(`${file}: truncated: ${bytes.length} bytes is too short for a safetensors file`);
  const headerLength = Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE(0);
  if (headerLength === 0n || headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw new InputError(`${file}: header length ${headerLength} is not plausible: not a safetensors file, or a corrupt one`);
  }
  const dataStart = HEADER_LENGTH_BYTES + Number(headerLength);
  if (dataStart > bytes.length) throw new InputError(`${file}: truncated: the header claims ${headerLength} bytes but the file has only ${bytes.length} bytes`);
  const headerText = Buffer.from(bytes.buffer, bytes.byteOffset + HEADER_LENGTH_BYTES, Number(headerLength)).toString('utf8');
  return parseHeaderText(file, path.resolve(file), headerText, dataStart, bytes.length);
}

function parseHeaderText(
  file: string,
  absoluteFile: string,
  headerText: string,
  dataStart: number,
  fileSize: number,
): { tensors: TensorEntry[]; metadata: Record<string, string> } {
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (error) {
    throw new InputError(`${file}: the header is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new InputError(`${file}: the header must be a JSON object, not ${describeJsonType(header)}`);
  }
  const metadata: Record<string, string> = {};
  const tensors: TensorEntry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof info !== 'object' || info === null || Array.isArray(info)) {
        throw new InputError(`${file}: "__metadata__" must be an object of strings`);
      }
      for (const [key, value] of Object.entries(info as Record<string, unknown>)) {
        if (typeof value !== 'string') throw new InputError(`${file}: "__metadata__.${key}" must be a string`);
        metadata[key] = value;
      }
      continue;
    }
    tensors.push(parseTensorInfo(file, absoluteFile, name, info, dataStart, fileSize));
  }
  checkNoOverlap(file, tensors);
  return { tensors, metadata };
}

/**
 * Two tensors sharing bytes is never a valid file (the reference implementation requires them to tile the data);
 * reading one would silently give the other's values, so it is refused. Empty tensors occupy nothing.
 */
function checkNoOverlap(file: string, tensors: readonly TensorEntry[]): void {
  const occupied = tensors.filter((t) => t.length > 0).sort((a, b) => a.offset - b.offset || a.length - b.length);
  for (let i = 1; i < occupied.length; i += 1) {
    const previous = occupied[i - 1];
    const current = occupied[i];
    if (current.offset < previous.offset + previous.length) {
      throw new InputError(
        `${file}: tensors "${previous.name}" and "${current.name}" overlap (both claim the byte at file offset ${current.offset}): a corrupt or crafted file`,
      );
    }
  }
}

function parseTensorInfo(file: string, absoluteFile: string, name: string, info: unknown, dataStart: number, fileSize: number): TensorEntry {
  const where = `${file}: tensor "${name}"`;
  if (typeof info !== 'object' || info === null || Array.isArray(info)) {
    throw new InputError(`${where}: expected an object with dtype, shape and data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (!isSafetensorsDtype(dtype)) {
    throw new InputError(`${where}: unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(BYTES_PER_ELEMENT).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    throw new InputError(`${where}: "shape" must be an array of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger) || offsets[0] > offsets[1]) {
    throw new InputError(`${where}: "data_offsets" must be [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  const elements = (shape as number[]).reduce((product, size) => product * size, 1);
  const expectedLength = elements * BYTES_PER_ELEMENT[dtype];
  if (end - begin !== expectedLength) {
    throw new InputError(`${where}: data_offsets span ${end - begin} bytes but ${dtype}[${shape.join(', ')}] needs ${expectedLength}`);
  }
  if (dataStart + end > fileSize) {
    throw new InputError(`${where} is truncated: its data ends at byte ${dataStart + end} but the file has only ${fileSize} bytes`);
  }
  return { name, dtype, shape: shape as number[], file: absoluteFile, offset: dataStart + begin, length: expectedLength };
}

const SINGLE_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';

/**
 * Maps every tensor name of a Hugging Face model folder to where its data lies.
 * Like transformers, prefers model.safetensors over a sharded index when both exist.
 */
export function indexModelWeights(dir: string): Map<string, TensorEntry> {
  let isDirectory = false;
  try {
    isDirectory = fs.statSync(dir).isDirectory();
  } catch {
    throw new InputError(`${dir}: model folder not found`);
  }
  if (!isDirectory) throw new InputError(`${dir}: expected a model folder, found a file`);

  const singleFile = path.join(dir, SINGLE_FILE);
  if (fs.existsSync(singleFile)) {
    const weights = new Map<string, TensorEntry>();
    for (const tensor of readSafetensorsHeader(singleFile).tensors) weights.set(tensor.name, tensor);
    return weights;
  }
  const indexFile = path.join(dir, INDEX_FILE);
  if (fs.existsSync(indexFile)) return indexShardedWeights(dir, indexFile);

  const pickleFiles = fs.readdirSync(dir).filter((name) => name.endsWith('.bin') || name.endsWith('.pt') || name.endsWith('.pth'));
  if (pickleFiles.length > 0) {
    throw new InputError(
      `${dir}: found ${pickleFiles.join(', ')} but no ${SINGLE_FILE}: only safetensors weights are loaded, never pickle files ` +
        '(they can run code when loaded); convert the model, e.g. with save_pretrained(..., safe_serialization=True)',
    );
  }
  throw new InputError(`${dir}: no ${SINGLE_FILE} or ${INDEX_FILE}: not a Hugging Face model folder with safetensors weights`);
}

function indexShardedWeights(dir: string, indexFile: string): Map<string, TensorEntry> {
  let index: unknown;
  const text = readInputText(indexFile, 'json');
  try {
    index = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${indexFile}: not valid JSON: ${(error as Error).message}`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new InputError(`${indexFile}: field "weight_map" must be an object mapping tensor names to shard files`);
  }

  const shards = new Map<string, Map<string, TensorEntry>>();
  const weights = new Map<string, TensorEntry>();
  for (const [name, shardName] of Object.entries(weightMap as Record<string, unknown>)) {
    // Shards must be plain file names in the folder: an index must not point elsewhere on disk.
    if (typeof shardName !== 'string' || shardName === '' || path.basename(shardName) !== shardName || shardName === '..') {
      throw new InputError(`${indexFile}: "weight_map.${name}" must be the name of a shard file in the same folder`);
    }
    let shard = shards.get(shardName);
    if (!shard) {
      const shardFile = path.join(dir, shardName);
      if (!fs.existsSync(shardFile)) throw new InputError(`${indexFile}: shard ${shardName} (for tensor "${name}") does not exist`);
      shard = new Map(readSafetensorsHeader(shardFile).tensors.map((tensor) => [tensor.name, tensor]));
      shards.set(shardName, shard);
    }
    const entry = shard.get(name);
    if (!entry) throw new InputError(`${indexFile}: tensor "${name}" is not in its shard ${shardName}`);
    weights.set(name, entry);
  }
  return weights;
}

/** Reads a floating-point tensor's data and widens it to float32 (F64 is narrowed). */
export function readTensorAsFloat32(entry: TensorEntry): Float32Array {
  const elements = entry.shape.reduce((product, size) => product * size, 1);
  const { fd } = openInputFile(entry.file, 'stream');
  let bytes: Uint8Array;
  try {
    bytes = readExactly(fd, entry.length, entry.offset);
  } finally {
    fs.closeSync(fd);
  }
  if (bytes.length !== entry.length) {
    throw new InputError(`${entry.file}: tensor "${entry.name}" is truncated: the file changed after it was indexed`);
  }
  // `bytes` is a fresh, aligned buffer, so typed views over it are safe.
  switch (entry.dtype) {
    case 'F32':
      return new Float32Array(bytes.buffer, 0, elements);
    case 'F64':
      return Float32Array.from(new Float64Array(bytes.buffer, 0, elements));
    case 'F16': {
      const halves = new Uint16Array(bytes.buffer, 0, elements);
      const out = new Float32Array(elements);
      for (let i = 0; i < elements; i++) out[i] = float16BitsToFloat32(halves[i]);
      return out;
    }
    case 'BF16': {
      const halves = new Uint16Array(bytes.buffer, 0, elements);
      const widened = new Uint32Array(elements);
      for (let i = 0; i < elements; i++) widened[i] = halves[i] << 16;
      return new Float32Array(widened.buffer);
    }
    default:
      throw new InputError(`${entry.file}: tensor "${entry.name}" has dtype ${entry.dtype}; a floating-point dtype (F32, F16, BF16, F64) is needed`);
  }
}

export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa !== 0 ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
