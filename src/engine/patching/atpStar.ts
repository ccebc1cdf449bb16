import { progressTracker } from '../../shared/progress';
import * as ort from 'onnxruntime-node';
import { InputError } from '../../shared/errors';
import { byPositionField, POSITION_FIELDS } from '../../shared/hooks';
import type { LoadedModel } from '../model/load';
import { keyValueHeads } from '../model/config';
import type { Dataset } from '../../lib/dataset/jsonl';
import { ATTRIBUTION_OUTPUTS } from './graphs';
import { ATP_STAR_GRAD_GATE, ATP_STAR_OUTPUTS } from './atpStarGraph';
import { checkCancelled, type RunOptions } from './options';
import { type PreparedExample, prepareExamples } from './examples';
import { asNumbers, batchFeeds, makeBatches } from './feeds';
import { mean, runScale } from './normalisation';
import { sessionFor } from './sessions';
import { checkPrecisionFor } from './precision';
import type { ExampleAttributions, RuntimeRecord, TokenInfo } from '../../shared/result';

/**
 * AtP* (Kramár, Lieberum, Shah, Nanda 2024, arXiv 2403.00745) over a dataset: attribution patching with the QK fix
 * for query and key nodes and, optionally, GradDrop. All values per example, in the units of runAttributionPatching:
 * ΔLD / (n·(LD_clean − LD_corrupted)), so that summing over the examples gives the normalised metric.
 * Definitions and deviations from the paper: docs/ATP-STAR.md.
 */

/** Per-layer, per-position, per-head values: [layer][pos][head]. */
export type HeadValues = number[][][];

export interface AtpStarGradDrop {
  /** GradDrop(n) = 1/(L−1) · Σ_ℓ |AtP+GD_ℓ(n)| (≥ 0), with the QK fix for q and k. */
  residPre: number[][];
  attnOut: number[][];
  mlpOut: number[][];
  z: HeadValues;
  q: HeadValues;
  k: HeadValues;
  v: HeadValues;
}

export interface AtpStarExample {
  /** The dataset line, and the tokens the values are indexed by (pos). */
  line: number;
  tokens: TokenInfo[];
  corruptedTokens: TokenInfo[];
  correctId: number;
  incorrectId: number;
  cleanLogitDiff: number;
  corruptedLogitDiff: number;
  /** Plain AtP of the existing node types, as runAttributionPatching reports them. */
  attributions: ExampleAttributions;
  /** AtP* of query nodes (QK fix), [layer][pos][query head]. */
  q: HeadValues;
  /** AtP (linear) of query nodes, [layer][pos][query head]. */
  qLinear: HeadValues;
  /** AtP* of key nodes (QK fix), [layer][pos][key/value head]. */
  k: HeadValues;
  /** AtP (linear) of key nodes, [layer][pos][key/value head]. */
  kLinear: HeadValues;
  /** AtP of value nodes (exact to first order: z is linear in v), [layer][pos][key/value head]. */
  v: HeadValues;
  /** Only with gradDrop. */
  gradDrop?: AtpStarGradDrop;
}

export interface AtpStarCost {
  /** ONNX session runs (each a clean forward, a corrupted forward and one backward over a batch). */
  sessionRuns: number;
  /** Forward passes over single examples (clean and corrupted counted separately). */
  forwardPasses: number;
  /** Backward passes over single examples. */
  backwardPasses: number;
}

export interface AtpStarResult {
  cleanLogitDiff: number;
  corruptedLogitDiff: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  examples: AtpStarExample[];
  cost: AtpStarCost;
  warnings: string[];
  /** The execution provider the run really used. */
  device: string;
  runtime: RuntimeRecord;
}

export type AtpStarOptions = RunOptions & {
  gradDrop?: boolean;
  /** Examples already tokenized and checked (by a caller that needs them too). */
  prepared?: PreparedExample[];
};

/**
 * What a run costs, to show before starting it. Without GradDrop one session run per batch, like AtP; GradDrop
 * adds one run per layer (the gate differs, and the graph recomputes both forwards each time).
 */
export function atpStarCost(model: Pick<LoadedModel, 'spec'>, nExamples: number, batchSize: number, gradDrop = false): AtpStarCost {
  const runsPerBatch = gradDrop ? model.spec.nLayers + 1 : 1;
  return {
    sessionRuns: Math.ceil(nExamples / batchSize) * runsPerBatch,
    forwardPasses: 2 * nExamples * runsPerBatch,
    backwardPasses: nExamples * runsPerBatch,
  };
}

type FloatData = Float32Array | Float64Array;

/** The raw outputs of one run for one example, padding dropped: un-normalised, in units of LD. */
interface RawExample {
  residPre: number[][];
  attnOut: number[][];
  mlpOut: number[][];
  z: HeadValues;
  q: HeadValues;
  qLinear: HeadValues;
  k: HeadValues;
  kLinear: HeadValues;
  v: HeadValues;
}

function unpack(
  out: ort.InferenceSession.OnnxValueMapType,
  row: number,
  seq: number,
  length: number,
  nLayers: number,
  nHeads: number,
  nKv: number,
): RawExample {
  const data = (name: string) => out[name].data as FloatData;
  const perPosition = (d: FloatData) => Array.from({ length: nLayers }, (_, l) => Array.from({ length }, (_, p) => d[(row * nLayers + l) * seq + p]));
  const perHead = (d: FloatData, width: number) =>
    Array.from({ length: nLayers }, (_, l) =>
      Array.from({ length }, (_, p) => Array.from({ length: width }, (_, h) => d[((row * nLayers + l) * seq + p) * width + h])),
    );
  return {
    ...byPositionField((kind) => perPosition(data(ATTRIBUTION_OUTPUTS.attribution(kind)))),
    z: perHead(data(ATTRIBUTION_OUTPUTS.attribution('z')), nHeads),
    q: perHead(data(ATP_STAR_OUTPUTS.q), nHeads),
    qLinear: perHead(data(ATP_STAR_OUTPUTS.qLinear), nHeads),
    k: perHead(data(ATP_STAR_OUTPUTS.k), nKv),
    kLinear: perHead(data(ATP_STAR_OUTPUTS.kLinear), nKv),
    v: perHead(data(ATP_STAR_OUTPUTS.v), nKv),
  };
}

const map2 = (m: number[][], f: (v: number) => number) => m.map((row) => row.map(f));
const map3 = (m: HeadValues, f: (v: number) => number) => m.map((a) => map2(a, f));
/** f applied in place: the raw per-example arrays become the result's, so a large dataset holds them once, not twice. */
const apply2 = (m: number[][], f: (v: number) => number) => {
  for (const row of m) for (let j = 0; j < row.length; j++) row[j] = f(row[j]);
  return m;
};
const apply3 = (m: HeadValues, f: (v: number) => number) => {
  for (const a of m) apply2(a, f);
  return m;
};
const add2 = (into: number[][], m: number[][]) => into.forEach((row, i) => row.forEach((_, j) => (row[j] += m[i][j])));
const add3 = (into: HeadValues, m: HeadValues) => into.forEach((a, i) => add2(a, m[i]));

/**
 * AtP* over a dataset. Per batch: one session run with every gradient gate open (AtP, the linear q/k/v terms and
 * the QK fix), and with gradDrop one more per layer ℓ with ℓ's gate closed; |AtP+GD_ℓ| is accumulated on the
 * host. Normalisation by the dataset's baselines comes last, as in runAttributionPatching.
 */
export async function runAtpStar(model: LoadedModel, dataset: Dataset, options: AtpStarOptions): Promise<AtpStarResult> {
  const warnings: string[] = [];
  const prepared = options.prepared ?? prepareExamples(model, dataset, warnings);
  checkPrecisionFor(options.precision, 'AtP*');
  const precision = options.precision ?? 'float32';
  const { nLayers, nHeads } = model.spec;
  const nKvHeads = keyValueHeads(model.spec);
  const gradDrop = options.gradDrop ?? false;
  if (gradDrop && nLayers < 2) throw new InputError(`GradDrop needs at least 2 layers (it averages over L − 1 = ${nLayers - 1})`);
  const batches = makeBatches(prepared, options.batchSize);
  const cost = atpStarCost(model, prepared.length, options.batchSize, gradDrop);
  options.onProgress?.(
    `AtP*: ${cost.sessionRuns} session runs (${cost.forwardPasses} forward and ${cost.backwardPasses} backward passes over single examples)`,
  );
  const handle = await sessionFor(model, 'atp-star', options);
  warnings.push(...handle.notes);
  const Float = precision === 'float64' ? Float64Array : Float32Array;
  const gateTensor = (closed: number | null) => {
    const gate = new Float(nLayers).fill(1);
    if (closed !== null) gate[closed] = 0;
    return new ort.Tensor(precision, gate, [nLayers]);
  };

  const cleanLds = new Array<number>(prepared.length);
  const corruptedLds = new Array<number>(prepared.length);
  const raws = new Array<RawExample>(prepared.length);
  const dropSums = new Array<RawExample>(prepared.length);
  // With GradDrop each batch is 1 + L session runs: progress counts batches, each done after its last run.
  const step = progressTracker(gradDrop ? 'AtP* with GradDrop' : 'AtP*', 'batch', batches.length, options.onStep);
  for (const [index, indices] of batches.entries()) {
    const rows = indices.map((i) => prepared[i]);
    const { feeds, seq } = batchFeeds(rows, precision);
    step(index);
    for (let closed = -1; closed < (gradDrop ? nLayers : 0); closed++) {
      checkCancelled(options.signal);
      const out = await handle.session.run({ ...feeds, [ATP_STAR_GRAD_GATE]: gateTensor(closed < 0 ? null : closed) });
      indices.forEach((exampleIndex, row) => {
        const values = unpack(out, row, seq, prepared[exampleIndex].tokens.length, nLayers, nHeads, nKvHeads);
        if (closed < 0) {
          cleanLds[exampleIndex] = asNumbers(out[ATTRIBUTION_OUTPUTS.cleanLogitDiff])[row];
          corruptedLds[exampleIndex] = asNumbers(out[ATTRIBUTION_OUTPUTS.corruptedLogitDiff])[row];
          raws[exampleIndex] = values;
          return;
        }
        const magnitudes: RawExample = {
          residPre: map2(values.residPre, Math.abs),
          attnOut: map2(values.attnOut, Math.abs),
          mlpOut: map2(values.mlpOut, Math.abs),
          z: map3(values.z, Math.abs),
          q: map3(values.q, Math.abs),
          k: map3(values.k, Math.abs),
          v: map3(values.v, Math.abs),
          qLinear: [],
          kLinear: [],
        };
        const sum = dropSums[exampleIndex];
        if (!sum) dropSums[exampleIndex] = magnitudes;
        else {
          for (const kind of POSITION_FIELDS) add2(sum[kind], magnitudes[kind]);
          for (const kind of ['z', 'q', 'k', 'v'] as const) add3(sum[kind], magnitudes[kind]);
        }
      });
    }
  }
  checkCancelled(options.signal);
  step(batches.length);

  const cleanLogitDiff = mean(cleanLds);
  const corruptedLogitDiff = mean(corruptedLds);
  const scale = runScale(options, dataset, cleanLogitDiff, corruptedLogitDiff, prepared.length);
  const s = (v: number) => v * scale;
  const dropScale = Math.abs(scale) / (nLayers - 1);
  const examples = raws.map((r, i): AtpStarExample => {
    const { example: source, tokens, corruptedTokens, correctId, incorrectId } = prepared[i];
    const example: AtpStarExample = {
      line: source.line,
      tokens,
      corruptedTokens,
      correctId,
      incorrectId,
      cleanLogitDiff: cleanLds[i],
      corruptedLogitDiff: corruptedLds[i],
      attributions: { z: apply3(r.z, s), residPre: apply2(r.residPre, s), attnOut: apply2(r.attnOut, s), mlpOut: apply2(r.mlpOut, s) },
      q: apply3(r.q, s),
      qLinear: apply3(r.qLinear, s),
      k: apply3(r.k, s),
      kLinear: apply3(r.kLinear, s),
      v: apply3(r.v, s),
    };
    if (gradDrop) {
      const d = dropSums[i];
      const g = (v: number) => v * dropScale;
      example.gradDrop = {
        residPre: apply2(d.residPre, g),
        attnOut: apply2(d.attnOut, g),
        mlpOut: apply2(d.mlpOut, g),
        z: apply3(d.z, g),
        q: apply3(d.q, g),
        k: apply3(d.k, g),
        v: apply3(d.v, g),
      };
    }
    return example;
  });
  warnings.push(...handle.observer.warnings());
  return { cleanLogitDiff, corruptedLogitDiff, nLayers, nHeads, nKvHeads, examples, cost, warnings, device: handle.device, runtime: handle.observer.info() };
}
