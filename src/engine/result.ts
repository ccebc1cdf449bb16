// The one result format of the product: written by the CLI as JSON, read back by the
// editor for colours, hovers and heatmaps. Attributions are AtP estimates of how much
// the normalized logit-difference metric changes when an activation is patched from the
// corrupted run into the clean run.
import { InputError } from './errors';
import { writeTextAtomically } from './atomicWrite';

export const RESULT_SCHEMA = 'attribution-patching/result@1';

export interface TokenInfo {
  id: number;
  text: string;
  /** Character offsets of the token in its prompt: prompt.slice(start, end). */
  start: number;
  end: number;
}

export interface ExampleAttributions {
  /** [layer][pos][head]: hook_z, summed over d_head. */
  z: number[][][];
  /** [layer][pos], each summed over d_model. */
  residPre: number[][];
  attnOut: number[][];
  mlpOut: number[][];
}

export interface ExampleResult {
  /** 1-based line of the example in the dataset file. */
  line: number;
  clean: string;
  corrupted: string;
  correct: string;
  incorrect: string;
  cleanIds: number[];
  corruptedIds: number[];
  correctId: number;
  incorrectId: number;
  /** Clean prompt tokens with character offsets. */
  tokens: TokenInfo[];
  corruptedTokens: TokenInfo[];
  cleanLogitDiff: number;
  corruptedLogitDiff: number;
  attributions: ExampleAttributions;
}

export interface Result {
  schema: typeof RESULT_SCHEMA;
  /** ISO 8601. */
  createdAt: string;
  /**
   * contentHash: "sha256:<hex>" of the dataset text the run read (optional; the editor sets it), so a reader can
   * tell whether the result still describes the file as it is now (a stale result is marked, never shown as current).
   */
  dataset: { file: string; examples: number; contentHash?: string };
  model: { source: string; architecture: string; modelType: string; layers: number; heads: number; dModel: number; dHead: number; dtype: string };
  device: string;
  /** cleanLogitDiff and corruptedLogitDiff are the means over examples that normalize the metric. */
  metric: { cleanLogitDiff: number; corruptedLogitDiff: number; name: 'normalized-logit-diff' };
  /** [layer][head]: hook_z at each example's last position, summed over examples and d_head. */
  heads: number[][];
  /** [layer][pos]: resid_pre summed over examples; null unless all examples have one length. */
  positions: number[][] | null;
  examples: ExampleResult[];
  warnings: string[];
  /** Seconds per phase (load, forward, backward...). */
  timings?: Record<string, number>;
}

/** Sum over examples of z[layer][last position][head]. */
export function summarizeHeads(examples: ExampleResult[]): number[][] {
  if (examples.length === 0) return [];
  const first = examples[0].attributions.z;
  const nHeads = first.length > 0 ? first[0][first[0].length - 1]?.length ?? 0 : 0;
  const sums = first.map(() => new Array<number>(nHeads).fill(0));
  for (const example of examples) {
    const z = example.attributions.z;
    if (z.length !== sums.length) throw new Error(`summarizeHeads: example on line ${example.line} has ${z.length} layers, expected ${sums.length}`);
    z.forEach((layer, layerIndex) => {
      const last = layer[layer.length - 1];
      if (!last || last.length !== nHeads) throw new Error(`summarizeHeads: example on line ${example.line} has no ${nHeads} heads at layer ${layerIndex}`);
      for (let head = 0; head < nHeads; head++) sums[layerIndex][head] += last[head];
    });
  }
  return sums;
}

/** Sum over examples of resid_pre[layer][pos]; null when prompts differ in length (positions would not line up). */
export function summarizePositions(examples: ExampleResult[]): number[][] | null {
  if (examples.length === 0) return null;
  const first = examples[0].attributions.residPre;
  const length = first[0]?.length ?? 0;
  const sameShape = examples.every(
    (example) => example.attributions.residPre.length === first.length && example.attributions.residPre.every((row) => row.length === length),
  );
  if (!sameShape) return null;
  const sums = first.map(() => new Array<number>(length).fill(0));
  for (const example of examples) {
    example.attributions.residPre.forEach((row, layer) => {
      for (let pos = 0; pos < length; pos++) sums[layer][pos] += row[pos];
    });
  }
  return sums;
}

/** The k heads with the largest |attribution|; ties keep layer, then head order. */
export function topHeads(result: Result, k: number): Array<{ layer: number; head: number; value: number }> {
  const all = result.heads.flatMap((row, layer) => row.map((value, head) => ({ layer, head, value })));
  all.sort((a, b) => Math.abs(b.value) - Math.abs(a.value) || a.layer - b.layer || a.head - b.head);
  return all.slice(0, Math.max(0, Math.floor(k)));
}

// Key order in the written JSON, so files from different runs diff cleanly whatever
// order the producer built its objects in. Unlisted keys follow, sorted.
const KEY_ORDER: Record<string, readonly string[]> = {
  result: ['schema', 'createdAt', 'dataset', 'model', 'device', 'metric', 'heads', 'positions', 'warnings', 'timings', 'examples'],
  dataset: ['file', 'examples', 'contentHash'],
  model: ['source', 'architecture', 'modelType', 'layers', 'heads', 'dModel', 'dHead', 'dtype'],
  metric: ['name', 'cleanLogitDiff', 'corruptedLogitDiff'],
  example: [
    'line', 'clean', 'corrupted', 'correct', 'incorrect', 'cleanIds', 'corruptedIds', 'correctId', 'incorrectId',
    'cleanLogitDiff', 'corruptedLogitDiff', 'tokens', 'corruptedTokens', 'attributions',
  ],
  token: ['id', 'text', 'start', 'end'],
  attributions: ['z', 'residPre', 'attnOut', 'mlpOut'],
};

/** Which KEY_ORDER applies to the value under `key` of an object of kind `parentKind`. */
function childKind(parentKind: string | undefined, key: string): string | undefined {
  if (parentKind === 'result') {
    if (key === 'dataset' || key === 'model' || key === 'metric') return key;
    if (key === 'examples') return 'example';
  }
  if (parentKind === 'example') {
    if (key === 'tokens' || key === 'corruptedTokens') return 'token';
    if (key === 'attributions') return 'attributions';
  }
  return undefined;
}

function orderedKeys(value: object, kind: string | undefined): string[] {
  const present = Object.keys(value).filter((key) => (value as Record<string, unknown>)[key] !== undefined);
  const order = kind ? KEY_ORDER[kind] : [];
  const listed = order.filter((key) => present.includes(key));
  const rest = present.filter((key) => !order.includes(key)).sort();
  return [...listed, ...rest];
}

function isPrimitive(value: unknown): boolean {
  return value === null || typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean';
}

function writeScalar(value: unknown, where: () => string): string {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    // JSON would silently turn it into null; a NaN attribution is a bug upstream, so refuse.
    throw new Error(`serializeResult: ${where()} is ${value}; results must hold finite numbers`);
  }
  return JSON.stringify(value);
}

/**
 * Indented JSON where arrays of numbers, and objects of scalars inside arrays (tokens),
 * stay on one line: a [layer][pos][head] tensor reads as rows instead of one number per line.
 */
function writeValue(value: unknown, indent: string, where: string, kind: string | undefined, inArray: boolean): string {
  if (isPrimitive(value)) return writeScalar(value, () => where);
  if (typeof value !== 'object' || value === null) throw new Error(`serializeResult: ${where} is a ${typeof value}, which JSON cannot hold`);
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (value.every(isPrimitive)) return `[${value.map((item, i) => writeScalar(item, () => `${where}[${i}]`)).join(', ')}]`;
    const items = value.map((item, i) => inner + writeValue(item, inner, `${where}[${i}]`, kind, true));
    return `[\n${items.join(',\n')}\n${indent}]`;
  }
  const keys = orderedKeys(value, kind);
  if (keys.length === 0) return '{}';
  const record = value as Record<string, unknown>;
  if (inArray && keys.every((key) => isPrimitive(record[key]))) {
    return `{ ${keys.map((key) => `${JSON.stringify(key)}: ${writeScalar(record[key], () => `${where}.${key}`)}`).join(', ')} }`;
  }
  const entries = keys.map(
    (key) => `${inner}${JSON.stringify(key)}: ${writeValue(record[key], inner, `${where}.${key}`, childKind(kind, key), false)}`,
  );
  return `{\n${entries.join(',\n')}\n${indent}}`;
}

/** Deterministic JSON (fixed key order, 2-space indent, numbers as JS prints them), ending in a newline. */
export function serializeResult(result: Result): string {
  return writeValue(result, '', 'result', 'result', false) + '\n';
}

/** Shape checks with messages that name the file and the field. */
class ShapeChecker {
  constructor(private readonly file: string) {}

  fail(field: string, expected: string): never {
    throw new InputError(`${this.file}: field "${field}" must be ${expected}`);
  }

  object(value: unknown, field: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(field, 'an object');
    return value as Record<string, unknown>;
  }

  string(value: unknown, field: string): void {
    if (typeof value !== 'string') this.fail(field, 'a string');
  }

  number(value: unknown, field: string): void {
    if (typeof value !== 'number') this.fail(field, 'a number');
  }

  integer(value: unknown, field: string): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) this.fail(field, 'a non-negative integer');
    return value;
  }

  /** An array nested `depth` deep whose leaves are numbers, optionally with a given outer length. */
  numbers(value: unknown, field: string, depth: number, outerLength?: number): void {
    const expected = `an array of ${'arrays of '.repeat(depth - 1)}numbers`;
    const check = (item: unknown, level: number): boolean =>
      level === 0 ? typeof item === 'number' : Array.isArray(item) && item.every((child) => check(child, level - 1));
    if (!check(value, depth)) this.fail(field, expected);
    if (outerLength !== undefined && (value as unknown[]).length !== outerLength) this.fail(field, `${expected} with ${outerLength} rows (one per layer)`);
  }

  array(value: unknown, field: string): unknown[] {
    if (!Array.isArray(value)) this.fail(field, 'an array');
    return value;
  }
}

/** Parses and checks a result file's text; `file` names the file in error messages. */
export function parseResult(text: string, file: string): Result {
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new InputError(`${file}: not valid JSON: ${(error as Error).message}`);
  }
  const check = new ShapeChecker(file);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InputError(`${file}: not an attribution-patching result (expected a JSON object)`);
  const result = raw as Record<string, unknown>;
  if (result.schema !== RESULT_SCHEMA) {
    const found = result.schema === undefined ? 'has no "schema"' : `has schema ${JSON.stringify(result.schema)}`;
    throw new InputError(`${file}: not an attribution-patching result: it ${found}, expected "${RESULT_SCHEMA}"`);
  }
  check.string(result.createdAt, 'createdAt');
  check.string(result.device, 'device');

  const dataset = check.object(result.dataset, 'dataset');
  check.string(dataset.file, 'dataset.file');
  check.integer(dataset.examples, 'dataset.examples');
  if (dataset.contentHash !== undefined) check.string(dataset.contentHash, 'dataset.contentHash');

  const model = check.object(result.model, 'model');
  for (const key of ['source', 'architecture', 'modelType', 'dtype']) check.string(model[key], `model.${key}`);
  const layers = check.integer(model.layers, 'model.layers');
  const heads = check.integer(model.heads, 'model.heads');
  check.integer(model.dModel, 'model.dModel');
  check.integer(model.dHead, 'model.dHead');

  const metric = check.object(result.metric, 'metric');
  if (metric.name !== 'normalized-logit-diff') check.fail('metric.name', '"normalized-logit-diff"');
  check.number(metric.cleanLogitDiff, 'metric.cleanLogitDiff');
  check.number(metric.corruptedLogitDiff, 'metric.corruptedLogitDiff');

  check.numbers(result.heads, 'heads', 2, layers);
  (result.heads as number[][]).forEach((row, layer) => {
    if (row.length !== heads) check.fail(`heads[${layer}]`, `an array of ${heads} numbers (model.heads)`);
  });
  if (result.positions !== null) check.numbers(result.positions, 'positions', 2, layers);

  // A run always has examples; an empty list (a hand-edited or truncated file) would break every view of it.
  if (check.array(result.examples, 'examples').length === 0) check.fail('examples', 'a non-empty array (a run has at least one example)');
  check.array(result.examples, 'examples').forEach((item, index) => {
    const field = `examples[${index}]`;
    const example = check.object(item, field);
    check.integer(example.line, `${field}.line`);
    for (const key of ['clean', 'corrupted', 'correct', 'incorrect']) check.string(example[key], `${field}.${key}`);
    check.numbers(example.cleanIds, `${field}.cleanIds`, 1);
    check.numbers(example.corruptedIds, `${field}.corruptedIds`, 1);
    for (const key of ['correctId', 'incorrectId', 'cleanLogitDiff', 'corruptedLogitDiff']) check.number(example[key], `${field}.${key}`);
    for (const key of ['tokens', 'corruptedTokens']) {
      check.array(example[key], `${field}.${key}`).forEach((tokenItem, tokenIndex) => {
        const tokenField = `${field}.${key}[${tokenIndex}]`;
        const token = check.object(tokenItem, tokenField);
        check.number(token.id, `${tokenField}.id`);
        check.string(token.text, `${tokenField}.text`);
        check.number(token.start, `${tokenField}.start`);
        check.number(token.end, `${tokenField}.end`);
      });
    }
    const attributions = check.object(example.attributions, `${field}.attributions`);
    check.numbers(attributions.z, `${field}.attributions.z`, 3, layers);
    for (const key of ['residPre', 'attnOut', 'mlpOut']) check.numbers(attributions[key], `${field}.attributions.${key}`, 2, layers);
  });

  check.array(result.warnings, 'warnings').forEach((warning, index) => check.string(warning, `warnings[${index}]`));
  if (result.timings !== undefined) {
    const timings = check.object(result.timings, 'timings');
    for (const [key, value] of Object.entries(timings)) check.number(value, `timings.${key}`);
  }
  return raw as Result;
}

/** Writes the result atomically (see writeTextAtomically): a failed write leaves the previous file intact. */
export function writeResultAtomically(file: string, result: Result): void {
  // Serialize first: a result that cannot be written must not touch the disk at all.
  writeTextAtomically(file, serializeResult(result), 'the result');
}
