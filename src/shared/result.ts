// The one result format of the product: written by the CLI as JSON, read back by the
// editor for colours, hovers and heatmaps. Every value is the change of the normalised logit-difference metric
// when an activation of the corrupted run is patched to its value in the clean run: estimated by attribution
// patching (AtP) or computed exactly by activation patching, and the Result says which, array by array
// (`methods`, `tokenScores.exact`, `checks`). No onnxruntime import: the extension host and webview read it.
import { InputError } from './errors';
import { ShapeChecker } from './shapeChecker';
import { checkCircuit, nameCircuitMethodAsToday } from './circuit';
import { HOOK_KINDS, HOOKS, type HookKind, isHookKind, POSITION_FIELDS } from './hooks';

/**
 * The most shards a run may be split into (`--shard i/n`, and `shard.count` in a shard file): far more than machines
 * anyone splits a dataset over, and small enough that the merge's list of expected shards costs nothing.
 */
export const MAX_SHARD_COUNT = 10_000;

/** @2 added run, methods, tokenScores and checks; @1 files (AtP only) still open. */
export const RESULT_SCHEMA = 'attribution-patching/result@2';
export const RESULT_SCHEMA_V1 = 'attribution-patching/result@1';
export type ResultSchema = typeof RESULT_SCHEMA | typeof RESULT_SCHEMA_V1;
/**
 * A result FILE whose per-example arrays lie in a binary sidecar beside it (src/lib/files/resultFile.ts reads
 * and writes the pair); read back, it is a whole @2 Result. An older reader refuses it by this schema.
 */
export const RESULT_SCHEMA_SIDECAR = 'attribution-patching/result@3';

import { type ArrayMethods, MAP_KINDS, type MapKind, type Method } from './resultMethods';
import type { Circuit } from './circuit';

export { METHOD_NAMES, type Method, methodsOf, MAP_KINDS, type MapKind, type MapMethod, type MapMethods } from './resultMethods';

/**
 * The per-token values the editor colours by default: the effect of patching each clean token into the
 * corrupted prompt (resid_pre of layer 0: the token's embedding), one value per clean token. Tokens that are the
 * same in both prompts change nothing when patched: exactly 0. `exact[p]` says whether values[p] is exact.
 */
export interface TokenScores {
  kind: 'token-patch';
  method: Method;
  values: number[];
  exact: boolean[];
  /** Every differing token patched at once (the clean prompt itself): exact, (LD_clean − LD_corrupted) in these units. */
  joint: number;
}

/**
 * One component patched in every example: a hook at one layer, at a position, and for hook_z one head. Position
 * null: each example's answer position, or with `fromEnd` k the position k tokens before it (prompts of several
 * lengths are aligned at their answer, the one position every example has at the same role).
 */
export interface Component {
  hook: HookKind;
  layer: number;
  position: number | null;
  head: number | null;
  /** Only with position null: this many tokens before each example's answer position (absent: 0, the answer). */
  fromEnd?: number;
}

/** A checked component: its attribution estimate and the exact effect of patching it, summed over examples. */
export interface CheckItem extends Component {
  attribution: number;
  exact: number;
  /** One of the k largest |attribution| ('top') or drawn at random among the rest ('random'). */
  pick: 'top' | 'random';
  /** The estimate and the exact value have opposite signs, and the exact value is not noise (see SIGN_FLOOR). */
  signDiffers?: boolean;
}

/**
 * How well one map's estimates agree with exact patching over its checked cells, led by the error (a correlation
 * cannot see a scale error): `maxError` is max |estimate − exact| / max |exact| (null when every exact value is 0),
 * `topRatio` the estimate / exact of the checked cell with the largest |estimate| (null when its exact value is 0).
 */
export interface MapAgreement {
  map: MapKind;
  count: number;
  maxError: number | null;
  topRatio: number | null;
  pearson: number;
  spearman: number;
  /** Checked cells whose estimate has the opposite sign of the exact value (signDiffers). */
  signDiffers: number;
}

export interface Checks {
  /** Components per pick: k largest and k random. */
  k: number;
  seed: number;
  /** Where the candidates came from: the head map (hook_z at the answer) and, when prompts have one length, the position map (resid_pre). */
  candidates: Array<'heads' | 'positions'>;
  items: CheckItem[];
  /** Agreement of attribution and exact over the checked components. */
  pearson: number;
  spearman: number;
  /** Per map (absent in results made before it): k top and k random cells of each estimated map, and their agreement. */
  maps?: MapAgreement[];
}

/**
 * AtP* (--method atpstar) adds query, key and value nodes of every attention head at every position: [layer][pos][head],
 * query heads for q, key/value heads for k and v (fewer with grouped-query attention). q and k are AtP* (the QK
 * fix), v is AtP (exact to first order: z is linear in v); qLinear and kLinear are plain AtP, for comparison.
 * Same units as the attributions. See docs/ATP-STAR.md.
 */
export interface NodeAttributions {
  q: number[][][];
  qLinear: number[][][];
  k: number[][][];
  kLinear: number[][][];
  v: number[][][];
}

/** The dataset-level view of AtP*: node maps summed over positions and examples, and GradDrop where it ran. */
export interface AtpStarSummary {
  kvHeads: number;
  /** [layer][head] (query heads) for q and qLinear, [layer][kvHead] for k, kLinear and v. */
  maps: { q: number[][]; qLinear: number[][]; k: number[][]; kLinear: number[][]; v: number[][] };
  /**
   * GradDrop (--grad-drop): 1/(L−1)·Σ_ℓ |AtP with the gradient through layer ℓ's residual writes dropped|, ≥ 0, summed
   * over examples, for the cells of the two heatmaps. Much larger than |AtP| means AtP may hide a cancellation
   * between direct and indirect effects (a possible false negative): check that cell.
   */
  gradDrop?: { heads: number[][]; positions: number[][] | null };
}

/** What the run did, decided before it started (see engine/methods.ts). */
export interface RunInfo {
  requested: Method | 'auto';
  method: Method;
  passes: { forward: number; backward: number };
  reason: string;
}

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
  /** Absent in @1 results. */
  tokenScores?: TokenScores;
  attributions: ExampleAttributions;
  /** Only with --method atpstar. */
  atpStar?: NodeAttributions;
}

/** The float types the engine computes in (float16: mixed precision, see RuntimeRecord.precision). */
export const PRECISIONS = ['float16', 'float32', 'float64'] as const;
export type Precision = (typeof PRECISIONS)[number];

/**
 * ONNX Runtime's provider name (e.g. "WebGpuExecutionProvider"), the WebGPU adapter as the host shows it
 * (software: a CPU implementation such as SwiftShader), how many graph nodes each provider ran in the first
 * run (absent on the CPU provider, where all do), and the precision of the attribution pass.
 */
export interface RuntimeRecord {
  provider: string;
  adapter?: { name: string; vendor: string; software: boolean };
  placement?: Record<string, number>;
  /**
   * What the attributions were computed in (absent in results made before it was recorded: float32 or float64).
   * float16 is mixed precision: weights and activations float16; norms, softmax, the metric and the
   * attributions' products and sums float32.
   */
  precision?: Precision;
  /** float16 only: the smallest and largest loss scale (a power of two seeding the backward) the batches ran with. */
  lossScale?: { min: number; max: number };
  /** At most this many examples per session run: the requested batch size, or less when that did not fit in memory. */
  batchSize?: number;
}

/** One line: "WebGpuExecutionProvider on SwiftShader (Google, software): 792 nodes on WebGpu, 17 nodes on CPU". */
export function describeRuntime(runtime: RuntimeRecord): string {
  const { adapter, placement } = runtime;
  const on = adapter ? ` on ${adapter.name} (${adapter.vendor}${adapter.software ? ', software' : ''})` : '';
  const nodes = placement
    ? ': ' +
      Object.entries(placement)
        .sort((a, b) => b[1] - a[1])
        .map(([provider, count]) => `${count} nodes on ${provider.replace(/ExecutionProvider$/, '')}`)
        .join(', ')
    : '';
  const precision = runtime.precision ? `, ${runtime.precision}${runtime.lossScale ? ` (loss scale ${lossScaleText(runtime.lossScale)})` : ''}` : '';
  return `${runtime.provider}${on}${nodes}${precision}`;
}

const powerOfTwo = (value: number) => (Number.isInteger(Math.log2(value)) ? `2^${Math.log2(value)}` : String(value));
const lossScaleText = ({ min, max }: { min: number; max: number }) => (min === max ? powerOfTwo(min) : `${powerOfTwo(min)}…${powerOfTwo(max)}`);

/**
 * A shard (atp patch --shard i/n): examples firstExample … firstExample+examples−1 (0-based) of a dataset of
 * datasetExamples, whose every value is RAW: in LD units, not divided by n·(LD_clean − LD_corrupted) (the whole
 * dataset's baselines are unknown to a shard), and its metric, heads, positions and atpStar hold this shard's own
 * means and raw sums. Only `atp merge` reads it; views of a Result refuse it (see refuseShard).
 */
export interface ShardInfo {
  /** 1-based. */
  index: number;
  count: number;
  firstExample: number;
  datasetExamples: number;
  /** "sha256:<hex>" of the dataset file's bytes: shards of different files are refused by the merge. */
  datasetHash: string;
}

/**
 * What a run was computed from, so a claim knows what it was checked against and a Result is reused only while
 * its inputs are unchanged (absent in results made before it was recorded). Hashes are "sha256:<hex>" of the bytes.
 */
export interface Provenance {
  /** The engine's version (package.json). */
  engineVersion: string;
  /** Config, weights and tokenizer files, by name relative to the model folder. */
  modelFiles: Record<string, string>;
  /** tokenizer.json's hash ("none" when the model has none). */
  tokenizerHash: string;
  method: Method;
  device: string;
  /** Seed of the run's random choices (the checks' random picks). */
  seed: number;
}

export interface Result {
  schema: ResultSchema;
  /** Only in a shard (raw values: see ShardInfo). */
  shard?: ShardInfo;
  /** Made by `atp merge` from this many shards: the same numbers as one run over the whole dataset. */
  merged?: { shards: number };
  /** ISO 8601. */
  createdAt: string;
  /**
   * contentHash: "sha256:<hex>" of the dataset text the run read (optional; the editor sets it), so a reader can
   * tell whether the result still describes the file as it is now (a stale result is marked, never shown as current).
   */
  dataset: { file: string; examples: number; contentHash?: string };
  model: { source: string; architecture: string; modelType: string; layers: number; heads: number; dModel: number; dHead: number; dtype: string };
  device: string;
  /** Where the run really happened (absent in results made before it was recorded): see RuntimeRecord. */
  runtime?: RuntimeRecord;
  /** The run's inputs (model and tokenizer hashes, engine version, method, device, seed): see Provenance. */
  provenance?: Provenance;
  /** cleanLogitDiff and corruptedLogitDiff are the means over examples that normalize the metric. */
  metric: { cleanLogitDiff: number; corruptedLogitDiff: number; name: 'normalized-logit-diff' };
  /** Absent in @1 results (which are AtP throughout). */
  run?: RunInfo;
  /**
   * Which method produced each array (absent in @1: all 'atp'); token scores say it per value too. `maps` (absent in
   * results made before it): per map, its method and the rows that are exact although that method estimates.
   */
  methods?: ArrayMethods;
  /** Components checked against exact activation patching (atp patch --check K). */
  checks?: Checks;
  /** Only with --method atpstar. */
  atpStar?: AtpStarSummary;
  /** Edge attribution and faithfulness (atp circuit): see src/shared/circuit.ts. */
  circuit?: Circuit;
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
  const nHeads = first.length > 0 ? (first[0][first[0].length - 1]?.length ?? 0) : 0;
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

/** [layer][head] sums over positions and examples of a [layer][pos][head] array per example (the AtP* node maps). */
export function sumNodeMap(perExample: readonly number[][][][], nLayers: number, heads: number): number[][] {
  const sums = Array.from({ length: nLayers }, () => new Array<number>(heads).fill(0));
  for (const values of perExample) values.forEach((layer, l) => layer.forEach((row) => row.forEach((v, h) => (sums[l][h] += v))));
  return sums;
}

/** The five AtP* node maps of a set of examples: query heads for q and qLinear, key/value heads for the others. */
export function sumNodeMaps(nodes: readonly NodeAttributions[], nLayers: number, nHeads: number, kvHeads: number): AtpStarSummary['maps'] {
  return {
    q: sumNodeMap(
      nodes.map((n) => n.q),
      nLayers,
      nHeads,
    ),
    qLinear: sumNodeMap(
      nodes.map((n) => n.qLinear),
      nLayers,
      nHeads,
    ),
    k: sumNodeMap(
      nodes.map((n) => n.k),
      nLayers,
      kvHeads,
    ),
    kLinear: sumNodeMap(
      nodes.map((n) => n.kLinear),
      nLayers,
      kvHeads,
    ),
    v: sumNodeMap(
      nodes.map((n) => n.v),
      nLayers,
      kvHeads,
    ),
  };
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
  result: [
    'schema',
    'sidecar',
    'shard',
    'merged',
    'createdAt',
    'dataset',
    'model',
    'device',
    'runtime',
    'provenance',
    'metric',
    'run',
    'methods',
    'checks',
    'heads',
    'positions',
    'atpStar',
    'circuit',
    'warnings',
    'timings',
    'examples',
  ],
  atpStarSummary: ['kvHeads', 'maps', 'gradDrop'],
  nodeAttributions: ['q', 'qLinear', 'k', 'kLinear', 'v'],
  dataset: ['file', 'examples', 'contentHash'],
  shard: ['index', 'count', 'firstExample', 'datasetExamples', 'datasetHash'],
  model: ['source', 'architecture', 'modelType', 'layers', 'heads', 'dModel', 'dHead', 'dtype'],
  metric: ['name', 'cleanLogitDiff', 'corruptedLogitDiff'],
  example: [
    'line',
    'clean',
    'corrupted',
    'correct',
    'incorrect',
    'cleanIds',
    'corruptedIds',
    'correctId',
    'incorrectId',
    'cleanLogitDiff',
    'corruptedLogitDiff',
    'tokens',
    'corruptedTokens',
    'tokenScores',
    'attributions',
    'atpStar',
  ],
  run: ['requested', 'method', 'reason', 'passes'],
  tokenScores: ['kind', 'method', 'joint', 'values', 'exact'],
  checks: ['k', 'seed', 'candidates', 'pearson', 'spearman', 'maps', 'items'],
  check: ['hook', 'layer', 'position', 'fromEnd', 'head', 'pick', 'attribution', 'exact', 'signDiffers'],
  mapAgreement: ['map', 'count', 'maxError', 'topRatio', 'pearson', 'spearman', 'signDiffers'],
  token: ['id', 'text', 'start', 'end'],
  attributions: ['z', 'residPre', 'attnOut', 'mlpOut'],
  runtime: ['provider', 'adapter', 'placement', 'precision', 'lossScale', 'batchSize'],
  provenance: ['engineVersion', 'method', 'device', 'seed', 'tokenizerHash', 'modelFiles'],
  adapter: ['name', 'vendor', 'software'],
  lossScale: ['min', 'max'],
};

/** Which KEY_ORDER applies to the value under `key` of an object of kind `parentKind`. */
function childKind(parentKind: string | undefined, key: string): string | undefined {
  if (parentKind === 'result') {
    if (
      key === 'dataset' ||
      key === 'shard' ||
      key === 'model' ||
      key === 'metric' ||
      key === 'checks' ||
      key === 'run' ||
      key === 'runtime' ||
      key === 'provenance'
    )
      return key;
    if (key === 'atpStar') return 'atpStarSummary';
    if (key === 'examples') return 'example';
  }
  if (parentKind === 'example') {
    if (key === 'tokens' || key === 'corruptedTokens') return 'token';
    if (key === 'attributions' || key === 'tokenScores') return key;
    if (key === 'atpStar') return 'nodeAttributions';
  }
  if (parentKind === 'checks' && key === 'items') return 'check';
  if (parentKind === 'checks' && key === 'maps') return 'mapAgreement';
  if (parentKind === 'runtime' && key === 'adapter') return 'adapter';
  if (parentKind === 'runtime' && key === 'lossScale') return 'lossScale';
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
  const entries = keys.map((key) => `${inner}${JSON.stringify(key)}: ${writeValue(record[key], inner, `${where}.${key}`, childKind(kind, key), false)}`);
  return `{\n${entries.join(',\n')}\n${indent}}`;
}

/** Deterministic JSON (fixed key order, 2-space indent, numbers as JS prints them), ending in a newline. */
export function serializeResult(result: Result): string {
  return writeValue(result, '', 'result', 'result', false) + '\n';
}

/** Parses and checks a result file's text; `file` names the file in error messages. */
export function parseResult(text: string, file: string): Result {
  return checkResult(parseResultJson(text, file), file);
}

/** JSON.parse of a result file's text (a leading byte-order mark dropped), with an error that names the file. */
export function parseResultJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new InputError(`${file}: not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * Checks a parsed Result field by field; errors name the file and field. `perExampleArraysChecked`: the examples'
 * arrays (ids, tokens, token scores, attributions, AtP* nodes) were checked as they were read (from a sidecar), so
 * they are not walked again — walking them would also build every lazily read grid.
 */
export function checkResult(raw: unknown, file: string, options: { perExampleArraysChecked?: boolean } = {}): Result {
  const check = new ShapeChecker(file);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new InputError(`${file}: not an attribution-patching result (expected a JSON object)`);
  const result = raw as Record<string, unknown>;
  if (result.schema === RESULT_SCHEMA_SIDECAR) {
    throw new InputError(
      `${file}: its per-example arrays are in the sidecar file named by field "sidecar": open it with readResultFile (src/lib/files/resultFile.ts), which reads both`,
    );
  }
  if (result.schema !== RESULT_SCHEMA && result.schema !== RESULT_SCHEMA_V1) {
    const found = result.schema === undefined ? 'has no "schema"' : `has schema ${JSON.stringify(result.schema)}`;
    throw new InputError(`${file}: not an attribution-patching result: it ${found}, expected "${RESULT_SCHEMA}" (or the older "${RESULT_SCHEMA_V1}")`);
  }
  const current = result.schema === RESULT_SCHEMA;
  check.string(result.createdAt, 'createdAt');
  check.string(result.device, 'device');
  if (result.runtime !== undefined) {
    const runtime = check.object(result.runtime, 'runtime');
    check.string(runtime.provider, 'runtime.provider');
    if (runtime.adapter !== undefined) {
      const adapter = check.object(runtime.adapter, 'runtime.adapter');
      check.string(adapter.name, 'runtime.adapter.name');
      check.string(adapter.vendor, 'runtime.adapter.vendor');
      if (typeof adapter.software !== 'boolean') check.fail('runtime.adapter.software', 'a boolean');
    }
    if (runtime.placement !== undefined) {
      for (const [provider, count] of Object.entries(check.object(runtime.placement, 'runtime.placement')))
        check.integer(count, `runtime.placement.${provider}`);
    }
    if (runtime.precision !== undefined && !PRECISIONS.includes(runtime.precision as Precision))
      check.fail('runtime.precision', `one of ${PRECISIONS.join(', ')}`);
    if (runtime.lossScale !== undefined) {
      const lossScale = check.object(runtime.lossScale, 'runtime.lossScale');
      check.number(lossScale.min, 'runtime.lossScale.min');
      check.number(lossScale.max, 'runtime.lossScale.max');
    }
    if (runtime.batchSize !== undefined) check.integer(runtime.batchSize, 'runtime.batchSize');
  }

  if (result.provenance !== undefined) {
    const provenance = check.object(result.provenance, 'provenance');
    for (const key of ['engineVersion', 'tokenizerHash', 'device']) check.string(provenance[key], `provenance.${key}`);
    check.method(provenance.method, 'provenance.method');
    check.integer(provenance.seed, 'provenance.seed');
    for (const [name, hash] of Object.entries(check.object(provenance.modelFiles, 'provenance.modelFiles')))
      check.string(hash, `provenance.modelFiles.${name}`);
  }

  let shard = false;
  if (result.shard !== undefined) {
    const info = check.object(result.shard, 'shard');
    const count = check.integer(info.count, 'shard.count');
    // Capped: the merge lists every shard it expects, so 2^53−1 would be a huge allocation, not a run.
    if (count < 1 || count > MAX_SHARD_COUNT) check.fail('shard.count', `an integer from 1 to ${MAX_SHARD_COUNT}`);
    const index = check.integer(info.index, 'shard.index');
    if (index < 1 || index > count) check.fail('shard.index', `an integer from 1 to shard.count (${count})`);
    check.integer(info.firstExample, 'shard.firstExample');
    check.integer(info.datasetExamples, 'shard.datasetExamples');
    check.string(info.datasetHash, 'shard.datasetHash');
    shard = true;
  }
  if (result.merged !== undefined) {
    const merged = check.object(result.merged, 'merged');
    const shards = check.integer(merged.shards, 'merged.shards');
    if (shards < 1 || shards > MAX_SHARD_COUNT) check.fail('merged.shards', `an integer from 1 to ${MAX_SHARD_COUNT}`);
  }

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
  // A shard may be empty (more shards than examples).
  if (check.array(result.examples, 'examples').length === 0 && !shard) check.fail('examples', 'a non-empty array (a run has at least one example)');
  // Per-example grids are [layer][clean token][head]: their lengths are checked against the model and the
  // example's tokens here (as the sidecar's reader does), so no view or merge indexes past a row.
  const kvHeads = typeof result.atpStar === 'object' && result.atpStar !== null ? (result.atpStar as Record<string, unknown>).kvHeads : undefined;
  check.array(result.examples, 'examples').forEach((item, index) => {
    const field = `examples[${index}]`;
    const example = check.object(item, field);
    check.integer(example.line, `${field}.line`);
    for (const key of ['clean', 'corrupted', 'correct', 'incorrect']) check.string(example[key], `${field}.${key}`);
    for (const key of ['correctId', 'incorrectId', 'cleanLogitDiff', 'corruptedLogitDiff']) check.number(example[key], `${field}.${key}`);
    if (options.perExampleArraysChecked) {
      if (current || example.tokenScores !== undefined) {
        const scores = check.object(example.tokenScores, `${field}.tokenScores`);
        if (scores.kind !== 'token-patch') check.fail(`${field}.tokenScores.kind`, '"token-patch"');
        check.method(scores.method, `${field}.tokenScores.method`);
        check.number(scores.joint, `${field}.tokenScores.joint`);
        check.array(scores.values, `${field}.tokenScores.values`);
        check.array(scores.exact, `${field}.tokenScores.exact`);
      }
      check.object(example.attributions, `${field}.attributions`);
      return;
    }
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
    const positions = (example.tokens as unknown[]).length;
    check.numbers(example.cleanIds, `${field}.cleanIds`, 1, undefined, [positions], 'one per clean token');
    check.numbers(example.corruptedIds, `${field}.corruptedIds`, 1, undefined, [(example.corruptedTokens as unknown[]).length], 'one per corrupted token');
    if (current || example.tokenScores !== undefined) {
      const scores = check.object(example.tokenScores, `${field}.tokenScores`);
      if (scores.kind !== 'token-patch') check.fail(`${field}.tokenScores.kind`, '"token-patch"');
      check.method(scores.method, `${field}.tokenScores.method`);
      check.number(scores.joint, `${field}.tokenScores.joint`);
      check.numbers(scores.values, `${field}.tokenScores.values`, 1);
      const length = (example.tokens as unknown[]).length;
      if ((scores.values as number[]).length !== length) check.fail(`${field}.tokenScores.values`, `an array of ${length} numbers (one per clean token)`);
      const exact = check.array(scores.exact, `${field}.tokenScores.exact`);
      if (exact.length !== length || !exact.every((flag) => typeof flag === 'boolean'))
        check.fail(`${field}.tokenScores.exact`, `an array of ${length} booleans`);
    }
    if (example.atpStar !== undefined) {
      const nodes = check.object(example.atpStar, `${field}.atpStar`);
      if (typeof kvHeads !== 'number' || !Number.isInteger(kvHeads)) check.fail('atpStar.kvHeads', 'an integer (the examples hold AtP* nodes)');
      for (const key of ['q', 'qLinear', 'k', 'kLinear', 'v']) {
        const query = key === 'q' || key === 'qLinear';
        check.numbers(
          nodes[key],
          `${field}.atpStar.${key}`,
          3,
          layers,
          [layers, positions, query ? heads : (kvHeads as number)],
          query ? 'layers, clean tokens, heads' : 'layers, clean tokens, key/value heads',
        );
      }
    }
    const attributions = check.object(example.attributions, `${field}.attributions`);
    check.numbers(attributions.z, `${field}.attributions.z`, 3, layers, [layers, positions, heads], 'layers, clean tokens, heads');
    for (const key of POSITION_FIELDS) check.numbers(attributions[key], `${field}.attributions.${key}`, 2, layers, [layers, positions], 'layers, clean tokens');
  });

  if (current) {
    const run = check.object(result.run, 'run');
    if (run.requested !== 'auto') check.method(run.requested, 'run.requested');
    check.method(run.method, 'run.method');
    check.string(run.reason, 'run.reason');
    const passes = check.object(run.passes, 'run.passes');
    check.integer(passes.forward, 'run.passes.forward');
    check.integer(passes.backward, 'run.passes.backward');
    const methods = check.object(result.methods, 'methods');
    for (const key of ['attributions', 'heads', 'positions', 'tokenScores']) check.method(methods[key], `methods.${key}`);
    if (methods.maps !== undefined) {
      const maps = check.object(methods.maps, 'methods.maps');
      for (const kind of MAP_KINDS) {
        const map = check.object(maps[kind], `methods.maps.${kind}`);
        check.method(map.method, `methods.maps.${kind}.method`);
        check.array(map.exactLayers, `methods.maps.${kind}.exactLayers`).forEach((layer, i) => {
          if (check.integer(layer, `methods.maps.${kind}.exactLayers[${i}]`) >= layers)
            check.fail(`methods.maps.${kind}.exactLayers[${i}]`, `below model.layers (${layers})`);
        });
      }
    }
  }
  if (result.atpStar !== undefined) {
    const star = check.object(result.atpStar, 'atpStar');
    const kv = check.integer(star.kvHeads, 'atpStar.kvHeads');
    const maps = check.object(star.maps, 'atpStar.maps');
    for (const key of ['q', 'qLinear', 'k', 'kLinear', 'v']) {
      const query = key === 'q' || key === 'qLinear';
      check.numbers(maps[key], `atpStar.maps.${key}`, 2, layers, [layers, query ? heads : kv], query ? 'layers, heads' : 'layers, key/value heads');
    }
    if (star.gradDrop !== undefined) {
      const drop = check.object(star.gradDrop, 'atpStar.gradDrop');
      check.numbers(drop.heads, 'atpStar.gradDrop.heads', 2, layers, [layers, heads], 'layers, heads');
      if (drop.positions !== null) check.numbers(drop.positions, 'atpStar.gradDrop.positions', 2, layers);
    }
  }
  if (result.checks !== undefined) {
    const checks = check.object(result.checks, 'checks');
    check.integer(checks.k, 'checks.k');
    check.number(checks.seed, 'checks.seed');
    check.number(checks.pearson, 'checks.pearson');
    check.number(checks.spearman, 'checks.spearman');
    check.array(checks.candidates, 'checks.candidates').forEach((c, i) => {
      if (c !== 'heads' && c !== 'positions') check.fail(`checks.candidates[${i}]`, '"heads" or "positions"');
    });
    check.array(checks.items, 'checks.items').forEach((entry, i) => {
      const field = `checks.items[${i}]`;
      const item = check.object(entry, field);
      if (!isHookKind(item.hook)) check.fail(`${field}.hook`, `one of ${HOOK_KINDS.map((kind) => JSON.stringify(kind)).join(', ')}`);
      if (check.integer(item.layer, `${field}.layer`) >= layers) check.fail(`${field}.layer`, `below model.layers (${layers})`);
      if (item.position !== null) check.integer(item.position, `${field}.position`);
      if (item.fromEnd !== undefined && (item.position !== null || check.integer(item.fromEnd, `${field}.fromEnd`) < 0))
        check.fail(`${field}.fromEnd`, 'absent, or a non-negative integer with position null');
      if (item.signDiffers !== undefined && typeof item.signDiffers !== 'boolean') check.fail(`${field}.signDiffers`, 'a boolean');
      const perHead = HOOKS[item.hook as HookKind].perHead;
      if (perHead ? check.integer(item.head, `${field}.head`) >= heads : item.head !== null) {
        check.fail(`${field}.head`, perHead ? `below model.heads (${heads})` : `null (only ${HOOKS.z.label} has heads)`);
      }
      check.number(item.attribution, `${field}.attribution`);
      check.number(item.exact, `${field}.exact`);
      if (item.pick !== 'top' && item.pick !== 'random') check.fail(`${field}.pick`, '"top" or "random"');
    });
    if (checks.maps !== undefined) {
      check.array(checks.maps, 'checks.maps').forEach((entry, i) => {
        const field = `checks.maps[${i}]`;
        const agreement = check.object(entry, field);
        if (!MAP_KINDS.includes(agreement.map as MapKind)) check.fail(`${field}.map`, `one of ${MAP_KINDS.map((kind) => JSON.stringify(kind)).join(', ')}`);
        check.integer(agreement.count, `${field}.count`);
        check.integer(agreement.signDiffers, `${field}.signDiffers`);
        for (const key of ['maxError', 'topRatio']) if (agreement[key] !== null) check.number(agreement[key], `${field}.${key}`);
        check.number(agreement.pearson, `${field}.pearson`);
        check.number(agreement.spearman, `${field}.spearman`);
      });
    }
  }

  if (result.circuit !== undefined) {
    checkCircuit(result.circuit, check, { layers, heads });
    nameCircuitMethodAsToday(result.circuit as Circuit);
  }

  check.array(result.warnings, 'warnings').forEach((warning, index) => check.string(warning, `warnings[${index}]`));
  if (result.timings !== undefined) {
    // Any key, "constructor" and "__proto__" included: whoever sums timings keeps them in a prototype-free object.
    const timings = check.object(result.timings, 'timings');
    for (const [key, value] of Object.entries(timings)) check.number(value, `timings.${key}`);
  }
  return raw as Result;
}

/**
 * Refuses a shard where a Result is expected: its numbers are raw (LD units, shard-local sums), so showing them as
 * the normalised metric would mislead.
 */
export function refuseShard(result: Result, file: string): Result {
  if (result.shard) {
    throw new InputError(
      `${file}: this is shard ${result.shard.index}/${result.shard.count} of a run (field "shard"): its values are raw, not normalised by the whole dataset's baselines. ` +
        `Combine all ${result.shard.count} shards with \`atp merge SHARD... --out RESULT.json\` and open the merged result.`,
    );
  }
  return result;
}
