// Runs the independent PyTorch reference (test/reference/gpt2_reference.py) that the engine's
// numbers are tested against. Dev-time only: needs Debian's python3-torch under /usr/bin/python3
// (override with REFERENCE_PYTHON).
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export const REFERENCE_PYTHON = process.env.REFERENCE_PYTHON ?? '/usr/bin/python3';
export const REFERENCE_SCRIPT = resolve(__dirname, '../reference/gpt2_reference.py');
export const REFERENCE_SELF_CHECK = resolve(__dirname, '../reference/self_check.py');

export interface ReferenceExample {
  cleanIds: number[];
  corruptedIds: number[]; // same length as cleanIds
  correctId: number;
  incorrectId: number;
}

export interface ReferenceRequest {
  /** Absolute path of a Hugging Face GPT-2 directory (config.json + model.safetensors or index). */
  modelDir: string;
  examples: ReferenceExample[];
  returnLogits?: boolean;
  activationPatching?: boolean;
}

/** Per hook kind, indexed [example][layer][position], plus [head] for z. */
export interface ReferenceHookValues {
  z: number[][][][];
  resid_pre: number[][][];
  attn_out: number[][][];
  mlp_out: number[][][];
}

export type ReferenceHookKind = keyof ReferenceHookValues;
export const REFERENCE_HOOK_KINDS: readonly ReferenceHookKind[] = ['z', 'resid_pre', 'attn_out', 'mlp_out'];

export interface ReferenceResponse {
  /** LD_i = logit(correct) − logit(incorrect) at the last position, per example. */
  cleanLogitDiffs: number[];
  corruptedLogitDiffs: number[];
  /** Means over the examples: LD_clean, LD_corr. */
  cleanLogitDiff: number;
  corruptedLogitDiff: number;
  /** Σ_hidden grad_N(corrupted act) ⊙ (clean act − corrupted act). */
  attributions: ReferenceHookValues;
  /** (LD_i(patched) − LD_i(corrupted)) / (n·(LD_clean − LD_corr)); only when requested. */
  activationPatching?: ReferenceHookValues;
  /** Last-position logits [example][vocab]; only when returnLogits. */
  cleanLastLogits?: number[][];
  corruptedLastLogits?: number[][];
}

let torchAvailable: boolean | undefined;

/** True when the reference interpreter can import torch. */
export function hasTorchReference(): boolean {
  if (torchAvailable === undefined) {
    const probe = spawnSync(REFERENCE_PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8', timeout: 120_000 });
    torchAvailable = probe.status === 0;
  }
  return torchAvailable;
}

/** Throws a clear error when the reference cannot run (use it so tests fail rather than skip). */
export function requireTorchReference(): void {
  if (!hasTorchReference()) {
    throw new Error(
      `The PyTorch reference needs torch and numpy under ${REFERENCE_PYTHON} ` +
        `("${REFERENCE_PYTHON} -c 'import torch'" fails). On Debian: ` +
        `apt-get install python3-torch libopenblas0-pthread (or set REFERENCE_PYTHON).`,
    );
  }
}

/**
 * For node:test's `skip` option: a reason to skip when torch is missing on a developer machine,
 * false otherwise. Under CI=true it is always false, so a missing torch fails the test
 * (through requireTorchReference) instead of skipping it.
 */
export function torchReferenceSkip(): string | false {
  if (process.env.CI === 'true' || process.env.CI === '1') return false;
  return hasTorchReference() ? false : `torch is not importable by ${REFERENCE_PYTHON}`;
}

/** Runs the reference on one request; throws with the reference's stderr on failure. */
export function runGpt2Reference(request: ReferenceRequest): ReferenceResponse {
  requireTorchReference();
  const result = spawnSync(REFERENCE_PYTHON, [REFERENCE_SCRIPT], {
    input: JSON.stringify(request),
    encoding: 'utf8',
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (result.error) throw new Error(`gpt2_reference.py could not run: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`gpt2_reference.py exited with ${result.status ?? result.signal}: ${result.stderr.trim()}`);
  }
  return JSON.parse(result.stdout) as ReferenceResponse;
}
