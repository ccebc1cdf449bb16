// Runs test/reference/atp_star_reference.py (the brute-force float64 PyTorch reference for AtP*) on several
// requests in one interpreter start.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { REFERENCE_PYTHON, requireTorchReference, type ReferenceExample } from './reference';

export const ATP_STAR_REFERENCE_SCRIPT = resolve(__dirname, '../reference/atp_star_reference.py');

export interface AtpStarReferenceRequest {
  modelDir: string;
  examples: ReferenceExample[];
  gradDrop?: boolean;
  /** Single query/key nodes to patch exactly; head is the query head (q) or the key/value head (k). */
  exactNodes?: Array<{ example: number; kind: 'q' | 'k'; layer: number; pos: number; head: number }>;
}

type PerPosition = number[][][]; // [example][layer][pos]
type PerHead = number[][][][]; // [example][layer][pos][head]

export interface AtpStarReferenceResponse {
  cleanLogitDiff: number;
  corruptedLogitDiff: number;
  atp: { resid_pre: PerPosition; attn_out: PerPosition; mlp_out: PerPosition; z: PerHead };
  atpStar: { q: PerHead; qLinear: PerHead; k: PerHead; kLinear: PerHead; v: PerHead };
  gradDrop?: { resid_pre: PerPosition; attn_out: PerPosition; mlp_out: PerPosition; z: PerHead; q: PerHead; k: PerHead; v: PerHead };
  /** Per exactNodes entry, normalised: the exactly patched ΔLD, and Σ (A_patched − A)·∂LD/∂A of the patched layer. */
  exact?: Array<{ exact: number; linearInA: number }>;
  /** Per layer, the median over query rows (t ≥ 1) of the first example's corrupted attention weight off the row's argmax. */
  offArgmaxMedian: number[];
}

export function runAtpStarReference(requests: AtpStarReferenceRequest[]): AtpStarReferenceResponse[] {
  requireTorchReference();
  const result = spawnSync(REFERENCE_PYTHON, [ATP_STAR_REFERENCE_SCRIPT], {
    input: JSON.stringify({ requests }),
    encoding: 'utf8',
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (result.error) throw new Error(`atp_star_reference.py could not run: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`atp_star_reference.py exited with ${result.status ?? result.signal}: ${result.stderr.trim()}`);
  return (JSON.parse(result.stdout) as { responses: AtpStarReferenceResponse[] }).responses;
}
