// A Result on disk: the engine's side of src/shared/result.ts (which stays free of Node imports).
//
// Small results are one JSON file (result@2). Large ones (more than INLINE_VALUE_LIMIT per-example values) are a
// PAIR: the JSON (result@3: summaries, checks, and per example only its line, prompts, answers and baselines) and
// a safetensors sidecar beside it with every per-example array (token ids, tokens, token scores, attributions,
// AtP* nodes), float32 for the values. The JSON names the sidecar by file name and sha256, and the sidecar's name
// holds its hash, so a new pair never overwrites the old one's sidecar: the sidecar is renamed into place first,
// then the JSON, and a crash at any point leaves the previous JSON with its own sidecar. Sidecars of a result that
// its JSON no longer names are removed after the JSON is in place (removeStaleSidecars).
// readResultFile reads either form back into the one in-memory Result (schema @2, every array present).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { InputError } from '../../shared/errors';
import { checkResult, parseResultJson, RESULT_SCHEMA, RESULT_SCHEMA_SIDECAR, serializeResult, type ExampleResult, type Result } from '../../shared/result';
import { type FileToWrite, writeFilesAtomically } from './atomicWrite';
import { inputErrorCode, readInputFile, readInputText } from './readInput';
import { readSafetensorsHeaderFromBytes, type SafetensorsDtype, type TensorEntry } from '../model/safetensors';

/** The sidecar's `__metadata__.format`. */
export const SIDECAR_FORMAT = 'attribution-patching/result-sidecar@1';

/**
 * Results with more per-example values than this (attribution entries, token ids, token fields) get a sidecar:
 * at about 20 bytes of JSON per value that is 1 MB of JSON. Below it the file stays one readable JSON (every test
 * dataset and most hand-written ones).
 */
export const INLINE_VALUE_LIMIT = 50_000;

export type ResultLayout = 'auto' | 'inline' | 'sidecar';

export interface ResultWriteOptions {
  /** auto (the default): a sidecar above INLINE_VALUE_LIMIT. */
  layout?: ResultLayout;
  /**
   * The result file the pair will finally be (when `file` is a pending file that the extension host renames into
   * place): the sidecar is named after it. Stale sidecars are then removed by whoever renames (removeStaleSidecars).
   */
  finalFile?: string;
}

/** What the writers of src/cli and the worker pass to writeFilesAtomically: [sidecar, JSON] or [JSON]. */
export function resultFilesToWrite(file: string, result: Result, options: ResultWriteOptions = {}): FileToWrite[] {
  const layout = options.layout ?? 'auto';
  if (layout === 'inline' || (layout === 'auto' && perExampleValueCount(result) <= INLINE_VALUE_LIMIT)) {
    return [{ file, contents: serializeResult(result), what: 'the result' }];
  }
  // Both serialised before anything touches the disk: a result that cannot be written leaves the previous pair.
  const sidecar = encodeSidecar(result);
  const hex = createHash('sha256').update(sidecar).digest('hex');
  const name = sidecarName(options.finalFile ?? file, hex);
  const compact = {
    ...result,
    schema: RESULT_SCHEMA_SIDECAR,
    sidecar: { file: name, contentHash: `sha256:${hex}`, bytes: sidecar.length },
    examples: result.examples.map(compactExample),
  };
  return [
    { file: path.join(path.dirname(file), name), contents: sidecar, what: "the result's sidecar" },
    { file, contents: serializeResult(compact as unknown as Result), what: 'the result' },
  ];
}

/** Writes the result atomically (as a pair when large): a failed write leaves the previous result readable. */
export function writeResultAtomically(file: string, result: Result, options: ResultWriteOptions = {}): void {
  writeFilesAtomically(resultFilesToWrite(file, result, options));
  if (options.finalFile === undefined || path.resolve(options.finalFile) === path.resolve(file)) removeStaleSidecars(file);
}

/** `<name without .json>.<16 hex of the sidecar's sha256>.safetensors`, beside the result. */
export function sidecarName(resultFile: string, sha256Hex: string): string {
  return `${sidecarStem(resultFile)}.${sha256Hex.slice(0, 16)}.safetensors`;
}

function sidecarStem(resultFile: string): string {
  return path.basename(resultFile).replace(/\.json$/i, '');
}

/** Every sidecar file that belongs (by name) to this result file, whether or not its JSON names it. */
export function sidecarsOf(resultFile: string): string[] {
  const dir = path.dirname(path.resolve(resultFile));
  const prefix = `${sidecarStem(resultFile)}.`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((name) => name.startsWith(prefix) && /^[0-9a-f]{16}\.safetensors$/.test(name.slice(prefix.length))).map((name) => path.join(dir, name));
}

/**
 * Removes this result's sidecars that its JSON does not name (the previous run's, or one a crash left before its
 * JSON was renamed). A JSON that cannot be read keeps them all: never delete what may still be needed. A result
 * file that does not exist (a deleted run) keeps none.
 */
export function removeStaleSidecars(resultFile: string): void {
  let keep: string | undefined;
  try {
    const raw = JSON.parse(readInputText(resultFile, 'result').replace(/^\uFEFF/, '')) as { sidecar?: { file?: unknown } } | null;
    if (typeof raw?.sidecar?.file === 'string') keep = raw.sidecar.file;
  } catch (error) {
    if (inputErrorCode(error) !== 'ENOENT') return;
  }
  for (const sidecar of sidecarsOf(resultFile)) {
    if (path.basename(sidecar) === keep) continue;
    try {
      fs.unlinkSync(sidecar);
    } catch {
      // Already gone (another cleanup): nothing to do.
    }
  }
}

/** Reads a result file and, if it names one, its sidecar: the whole Result, every field checked. */
export function readResultFile(file: string): Result {
  // A writer may replace the pair between our reading the JSON and its sidecar (and remove the old sidecar):
  // the JSON read again names the new one.
  for (let attempt = 1; ; attempt++) {
    const text = readInputText(file, 'result');
    const raw = parseResultJson(text, file);
    if ((raw as { schema?: unknown } | null)?.schema !== RESULT_SCHEMA_SIDECAR) return checkResult(raw, file);
    try {
      // hydrate has checked every per-example array it filled in; checkResult checks the rest.
      return checkResult(hydrate(raw as Record<string, unknown>, file), file, { perExampleArraysChecked: true });
    } catch (error) {
      if (!(error instanceof MissingSidecarError) || attempt >= 2) throw error;
    }
  }
}

class MissingSidecarError extends InputError {}

// ---- the sidecar's columns ----------------------------------------------------------------------------------
//
// Each per-example array is one column: tensor `<name>` holds every example's values, flattened and concatenated in
// example order, and `<name>.shape` (I32 [examples, rank]) each example's dimensions. Token texts are UTF-8 bytes
// (tokens.text, U8) with each token's byte length (tokens.textBytes).

type Dtype = 'F32' | 'I32' | 'U8';

interface ColumnSpec {
  name: string;
  dtype: Dtype;
  rank: number;
  /** Absent in every example (tokenScores in @1 results, atpStar unless AtP* ran), or present in every one. */
  group?: 'tokenScores' | 'atpStar';
  read(example: ExampleResult): unknown;
}

const NODE_KEYS = ['q', 'qLinear', 'k', 'kLinear', 'v'] as const;
const ATTRIBUTION_KEYS = ['z', 'residPre', 'attnOut', 'mlpOut'] as const;
const TOKEN_KEYS = ['id', 'start', 'end'] as const;

const COLUMNS: readonly ColumnSpec[] = [
  ...ATTRIBUTION_KEYS.map((key): ColumnSpec => ({ name: `attributions.${key}`, dtype: 'F32', rank: key === 'z' ? 3 : 2, read: (e) => e.attributions[key] })),
  { name: 'tokenScores.values', dtype: 'F32', rank: 1, group: 'tokenScores', read: (e) => e.tokenScores?.values },
  ...NODE_KEYS.map((key): ColumnSpec => ({ name: `atpStar.${key}`, dtype: 'F32', rank: 3, group: 'atpStar', read: (e) => e.atpStar?.[key] })),
  { name: 'cleanIds', dtype: 'I32', rank: 1, read: (e) => e.cleanIds },
  { name: 'corruptedIds', dtype: 'I32', rank: 1, read: (e) => e.corruptedIds },
  ...(['tokens', 'corruptedTokens'] as const).flatMap((list) => [
    ...TOKEN_KEYS.map((key): ColumnSpec => ({ name: `${list}.${key}`, dtype: 'I32', rank: 1, read: (e) => e[list].map((t) => t[key]) })),
    { name: `${list}.textBytes`, dtype: 'I32', rank: 1, read: (e) => e[list].map((t) => Buffer.byteLength(t.text, 'utf8')) } as ColumnSpec,
    { name: `${list}.text`, dtype: 'U8', rank: 1, read: (e) => [...Buffer.from(e[list].map((t) => t.text).join(''), 'utf8')] } as ColumnSpec,
  ]),
  { name: 'tokenScores.exact', dtype: 'U8', rank: 1, group: 'tokenScores', read: (e) => e.tokenScores?.exact.map((flag) => (flag ? 1 : 0)) },
];

/** Fields of an example that the sidecar holds; everything else (including fields added later) stays in the JSON. */
function compactExample(example: ExampleResult): Record<string, unknown> {
  const { cleanIds: _c, corruptedIds: _ci, tokens: _t, corruptedTokens: _ct, attributions: _a, atpStar: _s, tokenScores, ...rest } = example;
  return tokenScores ? { ...rest, tokenScores: { kind: tokenScores.kind, method: tokenScores.method, joint: tokenScores.joint } } : rest;
}

/** How many values the per-example arrays hold: what decides inline or sidecar. */
export function perExampleValueCount(result: Result): number {
  const count = (value: unknown): number => (Array.isArray(value) ? value.reduce((sum: number, item) => sum + count(item), 0) : 1);
  let total = 0;
  for (const example of result.examples) {
    total += example.cleanIds.length + example.corruptedIds.length + 4 * (example.tokens.length + example.corruptedTokens.length);
    total += count(example.attributions.z) + count(example.attributions.residPre) + count(example.attributions.attnOut) + count(example.attributions.mlpOut);
    if (example.tokenScores) total += 2 * example.tokenScores.values.length;
    if (example.atpStar) for (const key of NODE_KEYS) total += count(example.atpStar[key]);
    if (total > INLINE_VALUE_LIMIT) return total;
  }
  return total;
}

/** A growing typed array: per-example arrays are copied once, never held as a second set of JS arrays. */
class Growable {
  private data: Float32Array | Int32Array | Uint8Array;
  length = 0;

  constructor(private readonly dtype: Dtype) {
    this.data = this.allocate(1024);
  }

  private allocate(size: number): Float32Array | Int32Array | Uint8Array {
    return this.dtype === 'F32' ? new Float32Array(size) : this.dtype === 'I32' ? new Int32Array(size) : new Uint8Array(size);
  }

  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = this.allocate(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  bytes(): Uint8Array {
    return new Uint8Array(this.data.buffer, 0, this.length * this.data.BYTES_PER_ELEMENT);
  }
}

/** Appends a rectangular nested array's values to `out` and returns its dimensions; `where` names it in errors. */
function flatten(value: unknown, rank: number, dtype: Dtype, out: Growable, where: string): number[] {
  const dims: number[] = [];
  let level = value;
  for (let d = 0; d < rank; d++) {
    if (!Array.isArray(level)) throw new Error(`writing the sidecar: ${where} is not an array nested ${rank} deep`);
    dims.push(level.length);
    level = level[0];
    if (dims[d] === 0) {
      while (dims.length < rank) dims.push(0);
      return dims;
    }
  }
  const walk = (item: unknown, depth: number, at: string): void => {
    if (depth === rank) {
      if (typeof item !== 'number' || !Number.isFinite(item)) throw new Error(`serializeResult: ${at} is ${String(item)}; results must hold finite numbers`);
      if (dtype !== 'F32' && !Number.isInteger(item)) throw new Error(`writing the sidecar: ${at} is ${item}, not an integer`);
      out.push(item);
      return;
    }
    if (!Array.isArray(item) || item.length !== dims[depth]) {
      throw new Error(`writing the sidecar: ${at} must have ${dims[depth]} entries like the others at its depth (the sidecar holds rectangular arrays)`);
    }
    item.forEach((child, i) => walk(child, depth + 1, `${at}[${i}]`));
  };
  walk(value, 0, where);
  return dims;
}

function encodeSidecar(result: Result): Uint8Array {
  const n = result.examples.length;
  const tensors: Array<{ name: string; dtype: Dtype; shape: number[]; bytes: Uint8Array }> = [];
  const shapes: typeof tensors = [];
  for (const column of COLUMNS) {
    const present = result.examples.filter((e) => column.read(e) !== undefined).length;
    if (present === 0 && column.group) continue;
    if (present !== n)
      throw new Error(`writing the sidecar: ${column.group ?? column.name} is in ${present} of ${n} examples; the sidecar needs it in all or none`);
    const values = new Growable(column.dtype);
    const dims = new Int32Array(n * column.rank);
    result.examples.forEach((example, i) =>
      dims.set(flatten(column.read(example), column.rank, column.dtype, values, `result.examples[${i}].${column.name}`), i * column.rank),
    );
    shapes.push({ name: `${column.name}.shape`, dtype: 'I32', shape: [n, column.rank], bytes: new Uint8Array(dims.buffer) });
    tensors.push({ name: column.name, dtype: column.dtype, shape: [values.length], bytes: values.bytes() });
  }
  // 4-byte tensors first, bytes last: every F32 and I32 tensor starts 4-byte aligned.
  const ordered = [...shapes, ...tensors.filter((t) => t.dtype !== 'U8'), ...tensors.filter((t) => t.dtype === 'U8')];
  return encodeSafetensors(ordered, { format: SIDECAR_FORMAT, examples: String(n) });
}

/** The safetensors layout (see src/lib/model/safetensors.ts): u64 header length, JSON header padded to 8, data. */
export function encodeSafetensors(
  tensors: ReadonlyArray<{ name: string; dtype: SafetensorsDtype; shape: number[]; bytes: Uint8Array }>,
  metadata: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const tensor of tensors) {
    header[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + tensor.bytes.length] };
    offset += tensor.bytes.length;
  }
  let headerText = JSON.stringify(header);
  headerText += ' '.repeat((8 - ((8 + Buffer.byteLength(headerText, 'utf8')) % 8)) % 8);
  const headerBytes = Buffer.from(headerText, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const tensor of tensors) {
    out.set(tensor.bytes, at);
    at += tensor.bytes.length;
  }
  return out;
}

// ---- reading a sidecar back ---------------------------------------------------------------------------------

/** The JSON's examples, filled from the sidecar it names; every sidecar problem names the sidecar and the tensor. */
function hydrate(raw: Record<string, unknown>, file: string): Record<string, unknown> {
  const reference = raw.sidecar as Record<string, unknown> | undefined;
  const name = reference?.file;
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || path.basename(name) !== name || name.includes('\\')) {
    throw new InputError(`${file}: field "sidecar.file" must be the name of a file in the same folder as the result`);
  }
  if (typeof reference?.contentHash !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(reference.contentHash)) {
    throw new InputError(`${file}: field "sidecar.contentHash" must be "sha256:" and 64 hex digits`);
  }
  const sidecar = path.join(path.dirname(file), name);
  let bytes: Buffer;
  try {
    bytes = readInputFile(sidecar, 'sidecar');
  } catch (error) {
    const code = inputErrorCode(error);
    // Not a regular file, or over the cap: the helper's sentence names the sidecar.
    if (code === undefined) throw error;
    const message = `${file}: field "sidecar.file": cannot read ${sidecar} (${code ?? (error as Error).message}), which holds this result's per-example arrays: keep the two files together (or run again)`;
    throw code === 'ENOENT' ? new MissingSidecarError(message) : new InputError(message);
  }
  const found = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (found !== reference.contentHash) {
    throw new InputError(
      `${sidecar}: its content hash is ${found}, but field "sidecar.contentHash" of ${file} says ${reference.contentHash}: the sidecar was changed, truncated or belongs to another run`,
    );
  }
  const { tensors, metadata } = readSafetensorsHeaderFromBytes(sidecar, bytes);
  if (metadata.format !== SIDECAR_FORMAT) throw new InputError(`${sidecar}: "__metadata__.format" must be "${SIDECAR_FORMAT}"`);
  const examples = raw.examples;
  if (!Array.isArray(examples) || !examples.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e))) {
    throw new InputError(`${file}: field "examples" must be an array of objects`);
  }
  if (metadata.examples !== String(examples.length)) {
    throw new InputError(`${sidecar}: holds ${metadata.examples} examples ("__metadata__.examples") but ${file} has ${examples.length}`);
  }
  const model = raw.model as Record<string, unknown> | undefined;
  const layers = model?.layers;
  const heads = model?.heads;
  if (!Number.isInteger(layers) || !Number.isInteger(heads)) throw new InputError(`${file}: fields "model.layers" and "model.heads" must be integers`);
  const kvHeads = (raw.atpStar as Record<string, unknown> | undefined)?.kvHeads;

  const byName = new Map(tensors.map((t) => [t.name, t]));
  const columns = new Map<string, { dims: Int32Array; data: Float32Array | Int32Array | Uint8Array }>();
  for (const column of COLUMNS) {
    const data = byName.get(column.name);
    const shape = byName.get(`${column.name}.shape`);
    if (!data && !shape && column.group) continue;
    if (!data || !shape) throw new InputError(`${sidecar}: tensor "${data ? `${column.name}.shape` : column.name}" is missing`);
    columns.set(column.name, readColumn(sidecar, bytes, column, data, shape, examples.length));
  }
  for (const group of ['tokenScores', 'atpStar'] as const) {
    const names = COLUMNS.filter((c) => c.group === group).map((c) => c.name);
    const missing = names.filter((n) => !columns.has(n));
    if (missing.length > 0 && missing.length < names.length)
      throw new InputError(`${sidecar}: tensor "${missing[0]}" is missing (the other ${group} tensors are there)`);
  }
  if (columns.has('atpStar.q') && !Number.isInteger(kvHeads))
    throw new InputError(`${file}: field "atpStar.kvHeads" must be an integer (the sidecar holds AtP* nodes)`);

  const offsets = new Map<string, number>([...columns.keys()].map((key) => [key, 0]));
  examples.forEach((entry: Record<string, unknown>, i) => {
    const take = (column: ColumnSpec): { dims: number[]; values: Float32Array | Int32Array | Uint8Array } => {
      const { dims, data } = columns.get(column.name)!;
      const own = [...dims.subarray(i * column.rank, (i + 1) * column.rank)];
      const count = own.reduce((a, b) => a * b, 1);
      const start = offsets.get(column.name)!;
      offsets.set(column.name, start + count);
      return { dims: own, values: data.subarray(start, start + count) };
    };
    const where = (column: string) => `${sidecar}: tensor "${column}", example ${i} (line ${String(entry.line)})`;
    const expectDims = (column: string, dims: number[], expected: Array<number | undefined>, meaning: string) => {
      if (dims.some((d, k) => expected[k] !== undefined && d !== expected[k])) {
        throw new InputError(`${where(column)} has shape [${dims.join(', ')}], expected [${expected.map((e) => e ?? '·').join(', ')}] (${meaning})`);
      }
    };
    const tokenLists: Record<string, Array<{ id: number; text: string; start: number; end: number }>> = {};
    for (const list of ['tokens', 'corruptedTokens']) {
      const parts = Object.fromEntries([...TOKEN_KEYS, 'textBytes'].map((key) => [key, take(COLUMNS.find((c) => c.name === `${list}.${key}`)!)]));
      const count = parts.id.dims[0];
      for (const key of ['start', 'end', 'textBytes']) expectDims(`${list}.${key}`, parts[key].dims, [count], `one per token, like ${list}.id`);
      const text = take(COLUMNS.find((c) => c.name === `${list}.text`)!);
      const lengths = parts.textBytes.values;
      let total = 0;
      for (const length of lengths) total += length;
      expectDims(`${list}.text`, text.dims, [total], `the sum of ${list}.textBytes`);
      let at = 0;
      tokenLists[list] = [...parts.id.values].map((id, t) => {
        const piece = Buffer.from(text.values.buffer, text.values.byteOffset + at, lengths[t]).toString('utf8');
        at += lengths[t];
        return { id, text: piece, start: parts.start.values[t], end: parts.end.values[t] };
      });
    }
    const positions = tokenLists.tokens.length;
    const finite = (column: string, values: Float32Array | Int32Array | Uint8Array) => {
      for (let k = 0; k < values.length; k++) {
        if (!Number.isFinite(values[k])) throw new InputError(`${where(column)}: value ${k} is ${values[k]}; results hold finite numbers`);
      }
    };
    const floats = (column: string, dims: number[], values: Float32Array | Int32Array | Uint8Array): number[] => {
      finite(column, values);
      return nest(values, dims) as number[];
    };
    // The large grids (attributions, AtP* nodes) are checked now and made into nested arrays when first read: a view
    // that colours tokens reads none of them, and 5,000 examples' grids as JS arrays take seconds and GBs.
    const lazyFloats = (target: Record<string, unknown>, key: string, column: string, dims: number[], values: Float32Array | Int32Array | Uint8Array) => {
      finite(column, values);
      defineLazily(target, key, () => nest(values, dims));
    };
    const attributions: Record<string, unknown> = {};
    for (const key of ATTRIBUTION_KEYS) {
      const name = `attributions.${key}`;
      const { dims, values } = take(COLUMNS.find((c) => c.name === name)!);
      expectDims(
        name,
        dims,
        key === 'z' ? [layers as number, positions, heads as number] : [layers as number, positions],
        key === 'z' ? 'layers, clean tokens, heads' : 'layers, clean tokens',
      );
      lazyFloats(attributions, key, name, dims, values);
    }
    entry.attributions = attributions;
    entry.cleanIds = [...take(COLUMNS.find((c) => c.name === 'cleanIds')!).values];
    entry.corruptedIds = [...take(COLUMNS.find((c) => c.name === 'corruptedIds')!).values];
    entry.tokens = tokenLists.tokens;
    entry.corruptedTokens = tokenLists.corruptedTokens;
    if (columns.has('tokenScores.values')) {
      const scores = entry.tokenScores;
      if (typeof scores !== 'object' || scores === null)
        throw new InputError(`${file}: field "examples[${i}].tokenScores" must be an object (the sidecar holds its values)`);
      const values = take(COLUMNS.find((c) => c.name === 'tokenScores.values')!);
      const exact = take(COLUMNS.find((c) => c.name === 'tokenScores.exact')!);
      expectDims('tokenScores.values', values.dims, [positions], 'one per clean token');
      expectDims('tokenScores.exact', exact.dims, [positions], 'one per clean token');
      if (exact.values.some((flag) => flag > 1)) throw new InputError(`${where('tokenScores.exact')}: values must be 0 or 1`);
      Object.assign(scores, { values: floats('tokenScores.values', values.dims, values.values), exact: [...exact.values].map((flag) => flag === 1) });
    }
    if (columns.has('atpStar.q')) {
      const nodes: Record<string, unknown> = {};
      for (const key of NODE_KEYS) {
        const name = `atpStar.${key}`;
        const { dims, values } = take(COLUMNS.find((c) => c.name === name)!);
        const width = key === 'q' || key === 'qLinear' ? (heads as number) : (kvHeads as number);
        expectDims(
          name,
          dims,
          [layers as number, positions, width],
          key === 'q' || key === 'qLinear' ? 'layers, clean tokens, heads' : 'layers, clean tokens, key/value heads',
        );
        lazyFloats(nodes, key, name, dims, values);
      }
      entry.atpStar = nodes;
    }
  });
  const { sidecar: _reference, ...rest } = raw;
  return { ...rest, schema: RESULT_SCHEMA };
}

/**
 * `target[key]` computed on first read, then an ordinary data property (enumerable, so JSON.stringify, spreads and
 * structured clones see the value as if it had always been there); a write replaces it like any property.
 */
function defineLazily(target: Record<string, unknown>, key: string, compute: () => unknown): void {
  const settle = (value: unknown) => Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  Object.defineProperty(target, key, {
    enumerable: true,
    configurable: true,
    get() {
      const value = compute();
      settle(value);
      return value;
    },
    set(value: unknown) {
      settle(value);
    },
  });
}

/** One column's data and per-example dimensions, checked against each other and against the file. */
function readColumn(
  sidecar: string,
  bytes: Buffer,
  column: ColumnSpec,
  data: TensorEntry,
  shape: TensorEntry,
  examples: number,
): { dims: Int32Array; data: Float32Array | Int32Array | Uint8Array } {
  if (shape.dtype !== 'I32' || shape.shape.length !== 2 || shape.shape[0] !== examples || shape.shape[1] !== column.rank) {
    throw new InputError(
      `${sidecar}: tensor "${column.name}.shape" must be I32 [${examples}, ${column.rank}], found ${shape.dtype} [${shape.shape.join(', ')}]`,
    );
  }
  if (data.dtype !== column.dtype || data.shape.length !== 1) {
    throw new InputError(`${sidecar}: tensor "${column.name}" must be ${column.dtype} with one dimension, found ${data.dtype} [${data.shape.join(', ')}]`);
  }
  const dims = new Int32Array(copyOf(bytes, shape));
  let needed = 0;
  for (let i = 0; i < dims.length; i++) {
    if (dims[i] < 0) throw new InputError(`${sidecar}: tensor "${column.name}.shape" has a negative dimension for example ${Math.floor(i / column.rank)}`);
  }
  for (let e = 0; e < examples; e++) needed += dims.subarray(e * column.rank, (e + 1) * column.rank).reduce((a, b) => a * b, 1);
  if (needed !== data.shape[0]) {
    throw new InputError(`${sidecar}: tensor "${column.name}" holds ${data.shape[0]} values but its shapes ("${column.name}.shape") need ${needed}`);
  }
  const buffer = copyOf(bytes, data);
  const values = column.dtype === 'F32' ? new Float32Array(buffer) : column.dtype === 'I32' ? new Int32Array(buffer) : new Uint8Array(buffer);
  return { dims, data: values };
}

/** An aligned copy of a tensor's bytes (a hostile file may place a tensor at any offset). */
function copyOf(bytes: Buffer, entry: TensorEntry): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset + entry.offset, bytes.byteOffset + entry.offset + entry.length) as ArrayBuffer;
}

/** Flat row-major values → nested number arrays of `dims` (plain loops: this runs for every value of a large result). */
function nest(values: Float32Array | Int32Array | Uint8Array, dims: readonly number[]): unknown {
  const build = (depth: number, start: number): unknown[] => {
    const length = dims[depth];
    if (depth === dims.length - 1) return Array.from(values.subarray(start, start + length));
    let stride = 1;
    for (let d = depth + 1; d < dims.length; d++) stride *= dims[d];
    const out = new Array<unknown>(length);
    for (let k = 0; k < length; k++) out[k] = build(depth + 1, start + k * stride);
    return out;
  };
  return build(0, 0);
}
