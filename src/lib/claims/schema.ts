// A claims file: a researcher's findings about one model on one dataset, written as tests (issue #15).
// YAML or JSON (JSON is YAML 1.2, so one parser gives both their line and column). Every error names the file,
// the line, the column and the field, e.g. `tables.claims.yaml:7:9: claims[1].top_heads.k: expected an integer ≥ 1, got "three"`.
// Pure: the extension host parses claims files too (Test Explorer, CodeLens); schemas/claims.schema.json mirrors it.
import { isAbsolute, dirname, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import { InputError } from '../../shared/errors';
import { readInputText } from '../files/readInput';
import { type CircuitMethod, CIRCUIT_METHOD_NAMES, CIRCUIT_METHODS } from '../../shared/circuit';

/** A numeric condition: every given bound must hold (greater_than 0 is the sign "positive"). */
export interface Bound {
  greaterThan?: number;
  lessThan?: number;
  atLeast?: number;
  atMost?: number;
}

/** A head named as the views name it: L0H3; L2H* is every head of layer 2. */
export interface HeadPattern {
  layer: number;
  /** null: every head of the layer. */
  head: number | null;
  text: string;
}

export type Claim =
  /** Every `include` head is among the k heads of largest |value| in the head map; no `exclude` head is. */
  | { kind: 'top_heads'; k: number; include: HeadPattern[]; exclude: HeadPattern[] }
  /** None of `heads` is among the k heads of largest |value|. */
  | { kind: 'not_in_top'; k: number; heads: HeadPattern[] }
  /** The dataset's mean clean and corrupted logit differences, and their gap (clean − corrupted). */
  | { kind: 'baselines'; clean?: Bound; corrupted?: Bound; gap?: Bound }
  /**
   * The head map against exact activation patching of every head at the answer position (Result.checks): correlations
   * at least, and `maxError` the largest |estimate − exact| / max |exact| at most (a correlation misses a scale error).
   */
  | { kind: 'agreement'; with: 'exact'; spearman?: number; pearson?: number; maxError?: number }
  /** The exact effect of patching the tokens that differ: their sum over the dataset, and each token's value. */
  | { kind: 'token_score'; total?: Bound; each?: Bound }
  /** The circuit of the `edges` top edges keeps at least this share of the metric (Result.circuit.curve). */
  | { kind: 'faithfulness'; edges: number; atLeast: number };

export type ClaimKind = Claim['kind'];
export const CLAIM_KINDS: readonly ClaimKind[] = ['top_heads', 'not_in_top', 'baselines', 'agreement', 'token_score', 'faithfulness'];

export interface ClaimEntry {
  /** Stable within the file: the claim's name when given, else "<kind> #<n>" (n: 1-based among all claims). */
  id: string;
  /** What the researcher called it, or a description made from the claim. */
  name: string;
  /** 1-based line and column of the claim's list item. */
  line: number;
  column: number;
  claim: Claim;
}

export type ClaimsMethod = 'auto' | 'atp' | 'atpstar' | 'exact';

export type ClaimsCircuitMethod = CircuitMethod;

/**
 * The circuit run behind a claims file (its `circuit:` block, or the defaults when only a faithfulness claim asks
 * for one): edge attribution by `method` with `steps` interpolation steps, the top-`edges` circuit kept in the
 * Result, and the faithfulness curve measured at exactly `sizes` (every faithfulness claim's size and the block's
 * own), so a claim is checked against a measured value, never one interpolated between sizes.
 */
export interface ClaimsCircuit {
  method: ClaimsCircuitMethod;
  /** Interpolation steps (EAP-IG; 1 for eap). */
  steps: number;
  /** The circuit the Result keeps (top-n): the block's `edges`, else the smallest claimed size, else 20. */
  edges: number;
  /** Curve sizes, ascending, each once: the claims' sizes and the block's `sizes`. */
  sizes: number[];
  /** Random circuits per size for the random baseline (seeded with the file's seed). */
  randomDraws: number;
}

export interface ClaimsFile {
  file: string;
  /** As written: a folder (resolved against the claims file's folder when it exists there), a preset or a hub id. */
  model: string;
  /** Absolute path of the dataset (.jsonl or .atp), resolved against the claims file's folder. */
  dataset: string;
  method: ClaimsMethod;
  /** Seed of the checks' random picks (the head agreement checks every head, so it only matters for reproducibility). */
  seed: number;
  /** Present when a faithfulness claim or a `circuit:` block asks for a circuit run. */
  circuit?: ClaimsCircuit;
  claims: ClaimEntry[];
}

export interface ClaimsProblem {
  line: number;
  column: number;
  /** The field's path, e.g. "claims[1].top_heads.k" (empty for a syntax error). */
  field: string;
  message: string;
}

/** "file:line:col: field: message", the form editors and terminals link. */
export function formatProblem(file: string, problem: ClaimsProblem): string {
  return `${file}:${problem.line}:${problem.column}: ${problem.field ? `${problem.field}: ` : ''}${problem.message}`;
}

const METHODS: readonly ClaimsMethod[] = ['auto', 'atp', 'atpstar', 'exact'];
const TOP_KEYS = ['model', 'dataset', 'method', 'seed', 'circuit', 'claims'];
const CIRCUIT_KEYS = ['method', 'steps', 'edges', 'sizes', 'random_draws'];
/** EAP-IG with 5 steps: atp circuit's default, and what the model cards report. */
export const CLAIMS_CIRCUIT_DEFAULTS = { method: 'eap-ig' as ClaimsCircuitMethod, steps: 5, edges: 20, randomDraws: 3 };
const BOUND_KEYS: Record<string, keyof Bound> = { greater_than: 'greaterThan', less_than: 'lessThan', at_least: 'atLeast', at_most: 'atMost' };

/** Most claims in one file: each is a test case; far more than any finding needs, and a bound on a run's reports. */
export const MAX_CLAIMS = 1000;
/** Most random circuits per size: each costs a forward pass over the dataset at every size. */
export const MAX_RANDOM_DRAWS = 100;
/** Most extra curve sizes (atp circuit's --curve-points allows 200). */
const MAX_SIZES = 200;
/** Longest claims file text parsed: 1000 claims take a few hundred kB. */
export const MAX_CLAIMS_TEXT = 4 * 1024 * 1024;

/** Is this path a claims file? (*.claims.yaml, *.claims.yml, *.claims.json) */
export const isClaimsFile = (path: string) => /\.claims\.(ya?ml|json)$/i.test(path);

/**
 * Parses a claims file's text. Returns every problem found (not just the first), and the claims when there are none.
 * Relative model and dataset paths are resolved against the folder of `file`.
 */
export function parseClaims(text: string, file: string): { claims?: ClaimsFile; problems: ClaimsProblem[] } {
  if (text.length > MAX_CLAIMS_TEXT)
    return {
      problems: [{ line: 1, column: 1, field: '', message: `the file has ${text.length} characters; a claims file may have at most ${MAX_CLAIMS_TEXT}` }],
    };
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const problems: ClaimsProblem[] = [];
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (doc.errors.length > 0) {
    return { problems: doc.errors.map((e) => ({ ...at(e.pos[0]), field: '', message: e.message.split('\n')[0] })) };
  }
  const nodeAt = (node: Node | null | undefined, fallback: Node | null | undefined) => at(node?.range?.[0] ?? fallback?.range?.[0] ?? 0);
  const problem = (node: Node | null | undefined, field: string, message: string, fallback?: Node | null) => {
    problems.push({ ...nodeAt(node, fallback), field, message });
  };
  const describe = (node: Node | null | undefined) =>
    isScalar(node) ? JSON.stringify(node.value) : isSeq(node) ? 'a list' : isMap(node) ? 'a mapping' : 'nothing';

  const root = doc.contents;
  if (!isMap(root)) {
    problem(root, '', `expected a mapping with model, dataset and claims, got ${describe(root)}`);
    return { problems };
  }
  const fields = mapFields(root, '', TOP_KEYS, problem);

  const textField = (key: string, required: boolean): string | undefined => {
    const pair = fields.get(key);
    if (!pair) {
      if (required)
        problem(root, key, `missing (expected ${key === 'model' ? 'a model folder, preset or Hugging Face repo id' : 'the dataset file (.jsonl or .atp)'})`);
      return undefined;
    }
    const value = pair.value as Node | null;
    if (!isScalar(value) || typeof value.value !== 'string' || value.value.trim() === '') {
      problem(value, key, `expected a non-empty string, got ${describe(value)}`, pair.key as Node);
      return undefined;
    }
    return value.value;
  };
  const model = textField('model', true);
  const dataset = textField('dataset', true);
  let method: ClaimsMethod = 'atp';
  const methodPair = fields.get('method');
  if (methodPair) {
    const value = methodPair.value as Node | null;
    if (isScalar(value) && METHODS.includes(value.value as ClaimsMethod)) method = value.value as ClaimsMethod;
    else problem(value, 'method', `expected one of ${METHODS.join(', ')}, got ${describe(value)}`, methodPair.key as Node);
  }
  let seed = 0;
  const seedPair = fields.get('seed');
  if (seedPair) seed = integer(seedPair.value as Node, 'seed', 0, problem, seedPair.key as Node) ?? 0;

  const circuitPair = fields.get('circuit');
  const circuitBlock = circuitPair ? parseCircuitBlock(circuitPair.value as Node | null, problem, describe, circuitPair.key as Node) : undefined;

  const claims: ClaimEntry[] = [];
  const claimsPair = fields.get('claims');
  if (!claimsPair) problem(root, 'claims', 'missing (expected a list of claims)');
  else {
    const list = claimsPair.value as Node | null;
    if (!isSeq(list) || list.items.length === 0) problem(list, 'claims', `expected a non-empty list of claims, got ${describe(list)}`, claimsPair.key as Node);
    else if (list.items.length > MAX_CLAIMS)
      problem(
        list,
        'claims',
        `${list.items.length} claims; a claims file may hold at most ${MAX_CLAIMS} (split it into several files)`,
        claimsPair.key as Node,
      );
    else {
      const ids = new Set<string>();
      list.items.forEach((item, index) => {
        const entry = parseClaim(item as Node, `claims[${index}]`, index, problem, describe);
        if (!entry) return;
        if (ids.has(entry.id)) problem(item as Node, `claims[${index}].name`, `another claim is named "${entry.id}": names must be unique in a file`);
        ids.add(entry.id);
        const { line, column } = at((item as Node).range?.[0] ?? 0);
        claims.push({ ...entry, line, column });
      });
    }
  }
  if (problems.length > 0) return { problems };
  const folder = dirname(resolve(file));
  const localModel = isAbsolute(model!) ? model! : resolve(folder, model!);
  return {
    claims: {
      file,
      model: existsSync(localModel) ? localModel : model!,
      dataset: isAbsolute(dataset!) ? dataset! : resolve(folder, dataset!),
      method,
      seed,
      ...(circuitFor(circuitPair !== undefined, circuitBlock, claims) ?? {}),
      claims,
    },
    problems,
  };
}

interface CircuitBlock {
  method?: ClaimsCircuitMethod;
  steps?: number;
  edges?: number;
  sizes?: number[];
  randomDraws?: number;
}

function parseCircuitBlock(node: Node | null, problem: Report, describe: (node: Node | null | undefined) => string, fallback: Node): CircuitBlock {
  if (!isMap(node)) {
    problem(node, 'circuit', `expected a mapping such as {method: eap-ig, steps: 5}, got ${describe(node)}`, fallback);
    return {};
  }
  const f = mapFields(node, 'circuit', CIRCUIT_KEYS, problem);
  const block: CircuitBlock = {};
  const methodPair = f.get('method');
  if (methodPair) {
    const value = methodPair.value as Node | null;
    if (isScalar(value) && CIRCUIT_METHOD_NAMES.includes(value.value as ClaimsCircuitMethod)) block.method = value.value as ClaimsCircuitMethod;
    else problem(value, 'circuit.method', `expected one of ${CIRCUIT_METHOD_NAMES.join(', ')}, got ${describe(value)}`, methodPair.key as Node);
  }
  const whole = (key: string, minimum: number) => {
    const pair = f.get(key);
    return pair ? integer(pair.value as Node, `circuit.${key}`, minimum, problem, pair.key as Node) : undefined;
  };
  block.steps = whole('steps', 1);
  if (block.steps !== undefined && block.steps > 1000)
    problem(f.get('steps')!.value as Node, 'circuit.steps', `expected at most 1000 steps, got ${block.steps}`);
  block.edges = whole('edges', 1);
  // At least one: the random baseline is their mean (0 draws left every value of it NaN and the Result unwritable).
  block.randomDraws = whole('random_draws', 1);
  if (block.randomDraws !== undefined && block.randomDraws > MAX_RANDOM_DRAWS)
    problem(
      f.get('random_draws')!.value as Node,
      'circuit.random_draws',
      `expected at most ${MAX_RANDOM_DRAWS} random circuits per size (each costs a forward pass over the dataset at every size), got ${block.randomDraws}`,
    );
  const sizesPair = f.get('sizes');
  if (sizesPair) {
    const list = sizesPair.value as Node | null;
    if (!isSeq(list))
      problem(list, 'circuit.sizes', `expected a list of circuit sizes in edges such as [10, 40], got ${describe(list)}`, sizesPair.key as Node);
    else if (list.items.length > MAX_SIZES) problem(list, 'circuit.sizes', `expected at most ${MAX_SIZES} sizes, got ${list.items.length}`);
    else block.sizes = list.items.map((item, i) => integer(item as Node, `circuit.sizes[${i}]`, 1, problem)).filter((n): n is number => n !== undefined);
  }
  return block;
}

/** The circuit run the file needs: none without a `circuit:` block or a faithfulness claim. */
function circuitFor(hasBlock: boolean, block: CircuitBlock | undefined, claims: readonly ClaimEntry[]): { circuit: ClaimsCircuit } | undefined {
  const claimed = claims.flatMap((c) => (c.claim.kind === 'faithfulness' ? [c.claim.edges] : []));
  if (!hasBlock && claimed.length === 0) return undefined;
  const method = block?.method ?? CLAIMS_CIRCUIT_DEFAULTS.method;
  const edges = block?.edges ?? (claimed.length > 0 ? Math.min(...claimed) : CLAIMS_CIRCUIT_DEFAULTS.edges);
  return {
    circuit: {
      method,
      steps: CIRCUIT_METHODS[method].oneGradient ? 1 : (block?.steps ?? CLAIMS_CIRCUIT_DEFAULTS.steps),
      edges,
      sizes: [...new Set([...claimed, ...(block?.sizes ?? []), edges])].sort((a, b) => a - b),
      randomDraws: block?.randomDraws ?? CLAIMS_CIRCUIT_DEFAULTS.randomDraws,
    },
  };
}

/** Reads and parses a claims file; every problem in one InputError, one "file:line:col: field: message" per line. */
export function readClaimsFile(file: string): ClaimsFile {
  const text = readInputText(file, 'claims', 'a claims file');
  const { claims, problems } = parseClaims(text, file);
  if (!claims) throw new InputError(problems.map((p) => formatProblem(file, p)).join('\n'));
  return claims;
}

type Report = (node: Node | null | undefined, field: string, message: string, fallback?: Node | null) => void;

/** The pairs of a mapping by key; unknown keys are reported with the ones allowed. */
function mapFields(map: YAMLMap, path: string, allowed: readonly string[], problem: Report): Map<string, Pair> {
  const fields = new Map<string, Pair>();
  for (const pair of map.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    const field = path ? `${path}.${key}` : key;
    if (!allowed.includes(key)) problem(pair.key as Node, field, `unknown field; expected ${allowed.join(', ')}`);
    else fields.set(key, pair);
  }
  return fields;
}

function integer(node: Node | null | undefined, field: string, minimum: number, problem: Report, fallback?: Node | null): number | undefined {
  if (isScalar(node) && typeof node.value === 'number' && Number.isInteger(node.value) && node.value >= minimum) return node.value;
  problem(node, field, `expected an integer ≥ ${minimum}, got ${isScalar(node) ? JSON.stringify(node.value) : 'nothing'}`, fallback);
  return undefined;
}

function finite(node: Node | null | undefined, field: string, problem: Report, fallback?: Node | null): number | undefined {
  if (isScalar(node) && typeof node.value === 'number' && Number.isFinite(node.value)) return node.value;
  problem(node, field, `expected a number, got ${isScalar(node) ? JSON.stringify(node.value) : 'nothing'}`, fallback);
  return undefined;
}

function parseBound(node: Node | null | undefined, field: string, problem: Report, fallback?: Node | null): Bound | undefined {
  if (!isMap(node) || node.items.length === 0) {
    problem(node, field, `expected a bound such as {greater_than: 0} (${Object.keys(BOUND_KEYS).join(', ')})`, fallback);
    return undefined;
  }
  const bound: Bound = {};
  for (const [key, pair] of mapFields(node, field, Object.keys(BOUND_KEYS), problem)) {
    const value = finite(pair.value as Node, `${field}.${key}`, problem, pair.key as Node);
    if (value !== undefined) bound[BOUND_KEYS[key]] = value;
  }
  const low = Math.max(bound.greaterThan ?? -Infinity, bound.atLeast ?? -Infinity);
  const high = Math.min(bound.lessThan ?? Infinity, bound.atMost ?? Infinity);
  if (low > high) problem(node, field, `no number satisfies this bound (lower ${low} > upper ${high})`);
  return bound;
}

function parseHeads(node: Node | null | undefined, field: string, problem: Report, fallback?: Node | null): HeadPattern[] | undefined {
  if (!isSeq(node)) {
    problem(node, field, 'expected a list of heads such as [L0H3, L0H1] (L2H* for every head of layer 2)', fallback);
    return undefined;
  }
  const heads: HeadPattern[] = [];
  node.items.forEach((item, i) => {
    const text = isScalar(item) ? String(item.value) : '';
    const match = /^L(\d+)H(\d+|\*)$/.exec(text);
    if (!match) problem(item as Node, `${field}[${i}]`, `expected a head such as L0H3 or L2H*, got ${JSON.stringify(isScalar(item) ? item.value : text)}`);
    else heads.push({ layer: Number(match[1]), head: match[2] === '*' ? null : Number(match[2]), text });
  });
  return heads;
}

function parseClaim(
  node: Node | null,
  path: string,
  index: number,
  problem: Report,
  describe: (node: Node | null | undefined) => string,
): Omit<ClaimEntry, 'line' | 'column'> | undefined {
  if (!isMap(node)) {
    problem(node, path, `expected a claim such as {top_heads: {k: 3, include: [L0H3]}}, got ${describe(node)}`);
    return undefined;
  }
  const fields = mapFields(node, path, ['name', ...CLAIM_KINDS], problem);
  const kinds = CLAIM_KINDS.filter((kind) => fields.has(kind));
  if (kinds.length !== 1) {
    problem(node, path, kinds.length === 0 ? `no claim: expected one of ${CLAIM_KINDS.join(', ')}` : `one claim per item, got ${kinds.join(' and ')}`);
    return undefined;
  }
  const kind = kinds[0];
  const pair = fields.get(kind)!;
  const body = pair.value as Node | null;
  const field = `${path}.${kind}`;
  if (!isMap(body)) {
    problem(body, field, `expected a mapping, got ${describe(body)}`, pair.key as Node);
    return undefined;
  }
  let failed = false;
  const report: Report = (...args) => {
    failed = true;
    problem(...args);
  };
  let claim: Claim | undefined;
  if (kind === 'top_heads' || kind === 'not_in_top') {
    const keys = kind === 'top_heads' ? ['k', 'include', 'exclude'] : ['k', 'heads'];
    const f = mapFields(body, field, keys, report);
    const k = f.has('k')
      ? integer(f.get('k')!.value as Node, `${field}.k`, 1, report, f.get('k')!.key as Node)
      : (report(body, `${field}.k`, 'missing (how many top heads)'), undefined);
    const heads = (key: string) => (f.has(key) ? parseHeads(f.get(key)!.value as Node, `${field}.${key}`, report, f.get(key)!.key as Node) : []);
    if (kind === 'top_heads') {
      const include = heads('include');
      const exclude = heads('exclude');
      if (!f.has('include') && !f.has('exclude')) report(body, field, 'expected include, exclude or both');
      claim = { kind, k: k ?? 1, include: include ?? [], exclude: exclude ?? [] };
    } else {
      if (!f.has('heads')) report(body, `${field}.heads`, 'missing (the heads that must not be in the top k)');
      claim = { kind, k: k ?? 1, heads: heads('heads') ?? [] };
    }
  } else if (kind === 'baselines' || kind === 'token_score') {
    const keys = kind === 'baselines' ? ['clean', 'corrupted', 'gap'] : ['total', 'each'];
    const f = mapFields(body, field, keys, report);
    if (f.size === 0) report(body, field, `expected at least one of ${keys.join(', ')}`);
    const bounds: Record<string, Bound | undefined> = {};
    for (const [key, p] of f) bounds[key] = parseBound(p.value as Node, `${field}.${key}`, report, p.key as Node);
    claim =
      kind === 'baselines' ? { kind, clean: bounds.clean, corrupted: bounds.corrupted, gap: bounds.gap } : { kind, total: bounds.total, each: bounds.each };
  } else if (kind === 'agreement') {
    const f = mapFields(body, field, ['with', 'spearman', 'pearson', 'max_error'], report);
    const withPair = f.get('with');
    if (!withPair || !isScalar(withPair.value) || withPair.value.value !== 'exact') {
      report((withPair?.value as Node) ?? body, `${field}.with`, 'expected "exact" (agreement with exact activation patching)', withPair?.key as Node);
    }
    const correlation = (key: 'spearman' | 'pearson') => {
      const p = f.get(key);
      if (!p) return undefined;
      const value = finite(p.value as Node, `${field}.${key}`, report, p.key as Node);
      if (value !== undefined && (value < -1 || value > 1)) report(p.value as Node, `${field}.${key}`, `a correlation is between −1 and 1, got ${value}`);
      return value;
    };
    const spearman = correlation('spearman');
    const pearson = correlation('pearson');
    let maxError: number | undefined;
    const errorPair = f.get('max_error');
    if (errorPair) {
      maxError = finite(errorPair.value as Node, `${field}.max_error`, report, errorPair.key as Node);
      if (maxError !== undefined && maxError < 0)
        report(errorPair.value as Node, `${field}.max_error`, `an error bound is at least 0 (a share of the largest exact value), got ${maxError}`);
    }
    if (!f.has('spearman') && !f.has('pearson') && !f.has('max_error'))
      report(body, field, 'expected spearman, pearson, max_error or several (the least correlation, or the largest error relative to the largest exact value)');
    claim = { kind, with: 'exact', spearman, pearson, maxError };
  } else {
    const f = mapFields(body, field, ['edges', 'at_least'], report);
    const edges = f.has('edges')
      ? integer(f.get('edges')!.value as Node, `${field}.edges`, 1, report, f.get('edges')!.key as Node)
      : (report(body, `${field}.edges`, 'missing (the circuit size in edges)'), undefined);
    const atLeast = f.has('at_least')
      ? finite(f.get('at_least')!.value as Node, `${field}.at_least`, report, f.get('at_least')!.key as Node)
      : (report(body, `${field}.at_least`, 'missing (the least faithfulness, e.g. 0.8)'), undefined);
    claim = { kind: 'faithfulness', edges: edges ?? 1, atLeast: atLeast ?? 0 };
  }
  let name: string | undefined;
  const namePair = fields.get('name');
  if (namePair) {
    const value = namePair.value as Node | null;
    if (isScalar(value) && typeof value.value === 'string' && value.value.trim() !== '') name = value.value.trim();
    else report(value, `${path}.name`, `expected a non-empty string, got ${describe(value)}`, namePair.key as Node);
  }
  if (failed || !claim) return undefined;
  return { id: name ?? `${kind} #${index + 1}`, name: name ?? describeClaim(claim), claim };
}

const describeBound = (bound: Bound) =>
  [
    bound.greaterThan !== undefined ? `> ${bound.greaterThan}` : '',
    bound.atLeast !== undefined ? `≥ ${bound.atLeast}` : '',
    bound.lessThan !== undefined ? `< ${bound.lessThan}` : '',
    bound.atMost !== undefined ? `≤ ${bound.atMost}` : '',
  ]
    .filter(Boolean)
    .join(' and ');

export { describeBound };

/** One line saying what the claim asserts: the default name, and the "expected" of a report. */
export function describeClaim(claim: Claim): string {
  const heads = (list: HeadPattern[]) => list.map((h) => h.text).join(', ');
  switch (claim.kind) {
    case 'top_heads':
      return [
        claim.include.length > 0 ? `${heads(claim.include)} in the top ${claim.k} heads` : '',
        claim.exclude.length > 0 ? `${heads(claim.exclude)} not in the top ${claim.k} heads` : '',
      ]
        .filter(Boolean)
        .join('; ');
    case 'not_in_top':
      return `${heads(claim.heads)} not in the top ${claim.k} heads`;
    case 'baselines':
      return [
        claim.clean ? `clean logit diff ${describeBound(claim.clean)}` : '',
        claim.corrupted ? `corrupted logit diff ${describeBound(claim.corrupted)}` : '',
        claim.gap ? `clean − corrupted ${describeBound(claim.gap)}` : '',
      ]
        .filter(Boolean)
        .join('; ');
    case 'agreement':
      return `heads agree with exact patching: ${[
        claim.spearman !== undefined ? `Spearman ≥ ${claim.spearman}` : '',
        claim.pearson !== undefined ? `Pearson ≥ ${claim.pearson}` : '',
        claim.maxError !== undefined ? `max error ≤ ${claim.maxError} of the largest exact` : '',
      ]
        .filter(Boolean)
        .join(', ')}`;
    case 'token_score':
      return [
        claim.total ? `changed tokens' exact effect, summed, ${describeBound(claim.total)}` : '',
        claim.each ? `each changed token's exact effect ${describeBound(claim.each)}` : '',
      ]
        .filter(Boolean)
        .join('; ');
    case 'faithfulness':
      return `the top ${claim.edges} edges keep ≥ ${claim.atLeast} of the metric`;
  }
}
