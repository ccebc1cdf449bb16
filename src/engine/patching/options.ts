// What a run is given: RunOptions (every kind of run), PatchingOptions (runAttributionPatching); its cancellation.
import type { DeviceRequest } from '../../shared/devices';
import type { Method, Precision } from '../../shared/result';
import type { ProgressEvent } from '../../shared/workerProtocol';

export interface RunOptions {
  device: DeviceRequest;
  batchSize: number;
  /**
   * float32 in normal use; float64 lets tests compare with a float64 reference to many digits; float16 is mixed
   * precision for GPUs (weights and activations float16, statistics, metric and attributions float32; AtP only).
   */
  precision?: Precision;
  /**
   * float16 AtP's loss scale: 'dynamic' (the default) picks it per batch from the gradients' peak and retries a
   * batch whose gradients overflowed; a number fixes it (tests show what scaling is for with 1).
   */
  lossScale?: 'dynamic' | number;
  onProgress?: (message: string) => void;
  /** Steps of counted work (batches, exact runs), with the time left: the CLI's progress line, the editor's bar. */
  onStep?: (event: ProgressEvent) => void;
  /** Checked between batches; a cancelled run throws CancelledError and returns nothing. */
  signal?: AbortSignal;
  /**
   * Leave every value in LD units (scale 1) instead of dividing by n·(LD_clean − LD_corrupted): a shard of a
   * dataset (atp patch --shard) cannot know the whole dataset's baselines, so `atp merge` normalises afterwards.
   */
  raw?: boolean;
  /**
   * The process exits after this run (the CLI): the sessions it builds serve this run alone, so a short run builds
   * them without pre-packing (plan.ts, PREPACK_MIN_TOKENS). A long-lived process (the extension's worker, a
   * benchmark) leaves it unset: its sessions serve many runs, which pre-packed weights make faster.
   */
  oneShot?: boolean;
  /**
   * Whether sessions built for this run pre-pack their weights (see SessionSettings.prepacking); plan.ts sets it
   * from oneShot and the run's size; undefined: pre-pack, and reuse whichever session this process holds.
   */
  prepacking?: boolean;
}

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

export function checkCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

/** What a run is asked to compute its attributions with: a method, or 'auto' (methods.ts planRun chooses). */
export type MethodRequest = Method | 'auto';

export interface PatchingOptions extends RunOptions {
  /** 'atp' (the default here), 'exact' (activation patching of every component) or 'auto' (see methods.ts). */
  method?: MethodRequest;
  /** Check the k components with the largest |attribution| and k random others against exact patching (0: none). */
  check?: number;
  /** Seed of the random picks among the checks. */
  checkSeed?: number;
  /** Where checks choose from: the head map only ('heads': a claim's agreement over every head), or both maps (default). */
  checkOver?: 'heads' | 'heads-and-positions';
  /** With AtP*: GradDrop magnitudes too (L more passes). */
  gradDrop?: boolean;
  /**
   * false: token scores are the AtP estimates of resid_pre at layer 0 (marked as estimates), without the extra
   * forward passes; for benchmarks that compare the attribution pass alone with another tool. Default true.
   */
  exactTokens?: boolean;
}
