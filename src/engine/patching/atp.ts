// The AtP pass: per batch, one session run of the attribution graph (clean forward, corrupted forward, backward to
// the hooks, reductions in the graph), with float16's loss scaling; each example's attributions cut out of the batch.
import * as ort from 'onnxruntime-node';
import { HOOK_KINDS, type HookKind } from '../architectures/types';
import { byPositionField } from '../../shared/hooks';
import type { LoadedModel } from '../model/load';
import { ATTRIBUTION_OUTPUTS, GRADIENT_PEAK_OUTPUT, LOSS_SCALE_INPUT } from './graphs';
import { progressTracker } from '../../shared/progress';
import type { ExampleAttributions, RuntimeRecord } from '../../shared/result';
import type { SessionHandle } from '../process/runtime';
import { InputError } from '../../shared/errors';
import { checkCancelled, type PatchingOptions } from './options';
import type { PreparedExample } from './examples';
import { asNumbers, batchFeeds, makeBatches } from './feeds';

/** What the AtP pass gives per example (not yet normalised), and how it ran. */
export interface AtpEstimates {
  examples: Array<{ cleanLogitDiff: number; corruptedLogitDiff: number; attributions: ExampleAttributions }>;
  device: string;
  runtime: RuntimeRecord;
  warnings: string[];
  /** float16 only: the smallest and largest loss scale the batches ran with. */
  lossScale?: { min: number; max: number };
}

/** The plain AtP pass over every batch: per example its two LDs and its attributions (not yet normalised). */
export async function runAtpBatches(
  handle: SessionHandle,
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  options: PatchingOptions,
): Promise<AtpEstimates> {
  const precision = options.precision ?? 'float32';
  const { nLayers, nHeads } = model.spec;
  const examples = new Array<{ cleanLogitDiff: number; corruptedLogitDiff: number; attributions: ExampleAttributions }>(prepared.length);
  const batches = makeBatches(prepared, options.batchSize);
  const step = progressTracker('AtP', 'batch', batches.length, options.onStep);
  const scaler = precision === 'float16' ? new LossScaler(options.lossScale ?? 'dynamic') : undefined;
  for (const [b, indices] of batches.entries()) {
    checkCancelled(options.signal);
    step(b);
    const rows = indices.map((i) => prepared[i]);
    const { feeds, seq } = batchFeeds(rows, precision);
    const out = scaler ? await scaler.run(handle, feeds, rows) : await handle.session.run(feeds);
    const clean = asNumbers(out[ATTRIBUTION_OUTPUTS.cleanLogitDiff]);
    const corrupted = asNumbers(out[ATTRIBUTION_OUTPUTS.corruptedLogitDiff]);
    const attributions = Object.fromEntries(HOOK_KINDS.map((kind) => [kind, out[ATTRIBUTION_OUTPUTS.attribution(kind)].data])) as Record<
      HookKind,
      Float32Array | Float64Array
    >;
    indices.forEach((exampleIndex, row) => {
      examples[exampleIndex] = {
        cleanLogitDiff: clean[row],
        corruptedLogitDiff: corrupted[row],
        attributions: unpackAttributions(attributions, row, seq, prepared[exampleIndex].tokens.length, nLayers, nHeads),
      };
    });
  }
  step(batches.length);
  return {
    examples,
    device: handle.device,
    runtime: handle.observer.info(),
    warnings: [...handle.notes, ...handle.observer.warnings()],
    ...(scaler ? { lossScale: scaler.range() } : {}),
  };
}

/**
 * float16 AtP's loss scaling. The backward is seeded with S (a power of two, so scaling and unscaling are exact)
 * instead of 1; the graph divides the attributions by S in float32 and reports the gradients' peak max|S·g| over
 * every hook. Per batch, dynamically: a peak or attribution that is not finite means the backward overflowed
 * float16 — the batch runs again with S/16, and S never again exceeds that (a ceiling); a peak below
 * RERUN_BELOW means the gradients used so little of float16's range that small ones lost bits or vanished
 * (float16 is subnormal below 6.1e-5 and zero below 6e-8) — the batch runs again with the S that puts the peak at
 * TARGET_PEAK. The next batch starts from the S that puts this batch's peak at TARGET_PEAK. A fixed S never
 * retries; overflow with it is an error. No inf or NaN ever reaches a Result: what cannot be fixed is an error.
 */
export class LossScaler {
  /** Where S puts the gradients' peak: 16× below float16's largest finite value (65504), room for the backward's intermediates. */
  static readonly TARGET_PEAK = 2 ** 12;
  static readonly RERUN_BELOW = 2 ** 4;
  static readonly INITIAL = 2 ** 12;
  static readonly SMALLEST = 2 ** -24;
  static readonly LARGEST = 2 ** 64;
  private static readonly ATTEMPTS = 12;
  private scale: number;
  private ceiling = LossScaler.LARGEST;
  private used: number[] = [];

  constructor(private readonly mode: 'dynamic' | number) {
    if (mode !== 'dynamic' && !(Number.isFinite(mode) && mode > 0)) throw new Error(`a fixed loss scale must be a positive number, got ${mode}`);
    this.scale = mode === 'dynamic' ? LossScaler.INITIAL : mode;
  }

  /** One batch through the float16 attribution graph, again with another S where the peak says so. */
  async run(handle: SessionHandle, feeds: Record<string, ort.Tensor>, rows: readonly PreparedExample[]): Promise<ort.InferenceSession.OnnxValueMapType> {
    for (let attempt = 0; attempt < LossScaler.ATTEMPTS; attempt++) {
      const out = await handle.session.run({ ...feeds, [LOSS_SCALE_INPUT]: new ort.Tensor('float32', Float32Array.of(this.scale), []) });
      checkForwardFinite(out, rows);
      const peak = (out[GRADIENT_PEAK_OUTPUT].data as Float32Array)[0];
      const finite = Number.isFinite(peak) && HOOK_KINDS.every((kind) => allFinite(out[ATTRIBUTION_OUTPUTS.attribution(kind)].data as Float32Array));
      if (this.mode !== 'dynamic') {
        if (!finite) throw overflowError(`the fixed loss scale ${this.mode}`);
        this.used.push(this.scale);
        return out;
      }
      if (!finite) {
        this.ceiling = this.scale / 16;
        this.scale = this.ceiling;
        if (this.scale < LossScaler.SMALLEST) throw overflowError(`every loss scale down to ${LossScaler.SMALLEST}`);
        continue;
      }
      const ideal = this.idealFor(peak);
      if (peak < LossScaler.RERUN_BELOW && ideal > this.scale) {
        this.scale = ideal;
        continue;
      }
      this.used.push(this.scale);
      this.scale = ideal;
      return out;
    }
    throw new Error(`float16 loss scaling did not settle in ${LossScaler.ATTEMPTS} runs of one batch (last scale ${this.scale})`);
  }

  /** The S that puts a peak measured at the current S at TARGET_PEAK (a power of two, within ceiling and range). */
  private idealFor(peak: number): number {
    // All gradients underflowed to 0: nothing to measure, so try far larger.
    const wanted = peak === 0 ? this.scale * 2 ** 16 : 2 ** Math.floor(Math.log2((LossScaler.TARGET_PEAK * this.scale) / peak));
    return Math.max(LossScaler.SMALLEST, Math.min(wanted, this.ceiling, LossScaler.LARGEST));
  }

  range(): { min: number; max: number } {
    return { min: Math.min(...this.used), max: Math.max(...this.used) };
  }
}

function allFinite(values: Float32Array): boolean {
  for (const v of values) if (!Number.isFinite(v)) return false;
  return true;
}

function overflowError(tried: string): InputError {
  return InputError.about(
    'precision',
    `float16: the gradients overflow float16's range (largest finite value 65504) with ${tried}, so its attributions would be infinite or NaN; use float32`,
  );
}

/** A forward pass that left float16's range gives infinite or NaN logit differences: an error, never a Result. */
function checkForwardFinite(out: ort.InferenceSession.OnnxValueMapType, rows: readonly PreparedExample[]): void {
  for (const name of [ATTRIBUTION_OUTPUTS.cleanLogitDiff, ATTRIBUTION_OUTPUTS.corruptedLogitDiff]) {
    const values = out[name].data as Float32Array;
    const row = values.findIndex((v) => !Number.isFinite(v));
    if (row >= 0) {
      const which = name === ATTRIBUTION_OUTPUTS.cleanLogitDiff ? 'clean' : 'corrupted';
      throw InputError.about(
        'precision',
        `float16: the ${which} forward pass of the example on line ${rows[row].example.line} leaves float16's range (largest finite value 65504): its logit difference is ${values[row]}; use float32`,
      );
    }
  }
}

/** Cuts one row out of the [batch, layer, seq(, head)] outputs, dropping the padding. */
function unpackAttributions(
  out: Record<HookKind, Float32Array | Float64Array>,
  row: number,
  seq: number,
  length: number,
  nLayers: number,
  nHeads: number,
): ExampleAttributions {
  const perPosition = (data: Float32Array | Float64Array) =>
    Array.from({ length: nLayers }, (_, l) => Array.from({ length }, (_, p) => data[(row * nLayers + l) * seq + p]));
  const z = Array.from({ length: nLayers }, (_, l) =>
    Array.from({ length }, (_, p) => Array.from({ length: nHeads }, (_, h) => out.z[((row * nLayers + l) * seq + p) * nHeads + h])),
  );
  return { z, ...byPositionField((kind) => perPosition(out[kind])) };
}

export function scaleAttributionsInPlace(a: ExampleAttributions, scale: number): ExampleAttributions {
  const s2 = (m: number[][]) => {
    for (const row of m) for (let j = 0; j < row.length; j++) row[j] *= scale;
  };
  a.z.forEach(s2);
  s2(a.residPre);
  s2(a.attnOut);
  s2(a.mlpOut);
  return a;
}
