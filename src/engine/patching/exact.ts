// Exact activation patching where it is cheap, inside a normal run: the effect of each token that differs between
// the clean and corrupted prompt (one forward pass each), and checks of chosen components (the K with the largest
// |attribution| and K random others) against the attribution estimate. Same units as the attributions: a
// per-example ΔLD divided by n·(LD_clean − LD_corrupted), so that sums over examples are in normalised units.
import { progressTracker } from '../../shared/progress';
import type { Component } from '../../shared/result';
import type { LoadedModel } from '../model/load';
import { seededRandom } from '../../lib/dataset/random';
import * as ort from 'onnxruntime-node';
import { ATTRIBUTION_OUTPUTS, BATCH_INPUTS, LOGIT_DIFF_INPUT, LOGIT_DIFF_OUTPUT } from './graphs';
import { ATP_STAR_GRAD_GATE } from './atpStarGraph';
import { checkCancelled, type RunOptions } from './options';
import type { Precision } from './precision';
import { differingPositions, type PreparedExample } from './examples';
import { asNumbers, promptFeeds, type PromptRow } from './feeds';
import { sessionFor, sessionIsWarm } from './sessions';
import { patchComponentsBySuffix } from './suffixPatching';

/**
 * Which session runs the token passes. 'logit-diff': the forward-only graph, one forward pass per row, but a session
 * of its own (seconds to build for a large model, and a second float32 copy of the weights). 'attribution' or
 * 'atp-star': the session the run already has, each row fed as both its clean and corrupted prompt (the clean logit
 * difference is the row's). The backward runs too: for AtP* about 5 forward passes' work per row; the attribution
 * graph starts its corrupted pass and backward at the prompts' first difference (graphs.ts), which for a row fed as
 * both is its answer position, so there a row costs little more than one forward pass.
 */
export type TokenPassGraph = 'logit-diff' | 'attribution' | 'atp-star';

/**
 * The run's own session serves the token passes up to this many prompt tokens (rows × their length); past it a
 * forward-only session is built. Both a session's build and a pass's work grow with the weights, so one bound in
 * tokens fits every model size: the extra backward work of 256 tokens through the attribution graph (≈0.9 s on
 * Qwen2.5-0.5B, ≈0.2 s on GPT-2-small, docs/BENCHMARKS.md, measured before that graph shared the prompts' prefix;
 * through AtP*'s it still is) is less than building the forward-only session (≈3–5 s and ≈1–2 s there).
 */
export const TOKEN_PASS_SHARED_MAX_TOKENS = 256;

/** The token-patching rows of a run: per example, its corrupted prompt with one differing token taken from the clean one. */
function tokenRows(prepared: readonly PreparedExample[]): Array<PromptRow & { example: number; slot: number }> {
  const rows: Array<PromptRow & { example: number; slot: number }> = [];
  prepared.forEach((example, index) => {
    const corrupted = example.corruptedTokens.map((t) => t.id);
    differingPositions(example).forEach((pos, slot) => {
      const ids = corrupted.slice();
      ids[pos] = example.tokens[pos].id;
      rows.push({ ids, correctId: example.correctId, incorrectId: example.incorrectId, example: index, slot });
    });
  });
  return rows;
}

/**
 * Where a run's token passes go (see TokenPassGraph): a forward-only session this process already holds; else the
 * run's own session (`runGraph`) while the passes are short; else a forward-only session, built for them.
 */
export function tokenPassGraph(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  runGraph: 'attribution' | 'atp-star',
  options: Pick<RunOptions, 'device' | 'precision' | 'prepacking'>,
): TokenPassGraph {
  // float16's attribution graph also takes a loss scale and reports a gradient peak: its token passes keep the forward-only graph.
  if (options.precision === 'float16' || sessionIsWarm(model, 'logit-diff', options)) return 'logit-diff';
  let tokens = 0;
  for (const example of prepared) tokens += differingPositions(example).length * example.tokens.length;
  return tokens <= TOKEN_PASS_SHARED_MAX_TOKENS ? runGraph : 'logit-diff';
}

/** Feeds of the attribution or AtP* graph that evaluate each row once: its prompt as both the clean and the corrupted run. */
function sharedSessionFeeds(rows: readonly PromptRow[], graph: 'attribution' | 'atp-star', nLayers: number, precision: Precision): Record<string, ort.Tensor> {
  const { [LOGIT_DIFF_INPUT]: ids, ...rest } = promptFeeds(rows, precision);
  const feeds: Record<string, ort.Tensor> = { ...rest, [BATCH_INPUTS.cleanIds]: ids, [BATCH_INPUTS.corruptedIds]: ids };
  if (graph === 'atp-star') {
    const gate = precision === 'float64' ? new Float64Array(nLayers).fill(1) : new Float32Array(nLayers).fill(1);
    feeds[ATP_STAR_GRAD_GATE] = new ort.Tensor(precision, gate, [nLayers]);
  }
  return feeds;
}

/**
 * The logit difference of each example's corrupted prompt with one differing token taken from the clean prompt,
 * for every differing position: [example][k] for differingPositions(example)[k]. Exact activation patching of
 * resid_pre at layer 0 (which depends only on the token and its position), one forward pass per row, through
 * `graph`'s session (see TokenPassGraph; the same numbers either way).
 */
export async function patchTokens(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  options: RunOptions,
  graph: TokenPassGraph = 'logit-diff',
): Promise<number[][]> {
  const rows = tokenRows(prepared);
  const patched = prepared.map((example) => new Array<number>(differingPositions(example).length).fill(0));
  if (rows.length === 0) return patched;
  const precision = options.precision ?? 'float32';
  const handle = await sessionFor(model, graph, options);
  // Rows of similar length together: less padding.
  rows.sort((a, b) => a.ids.length - b.ids.length);
  const report = progressReporter(options, 'exact token patching', rows.length);
  for (let start = 0; start < rows.length; start += options.batchSize) {
    checkCancelled(options.signal);
    report(start);
    const chunk = rows.slice(start, start + options.batchSize);
    const out =
      graph === 'logit-diff'
        ? await handle.session.run(promptFeeds(chunk, precision))
        : await handle.session.run(sharedSessionFeeds(chunk, graph, model.spec.nLayers, precision));
    const lds = asNumbers(out[graph === 'logit-diff' ? LOGIT_DIFF_OUTPUT : ATTRIBUTION_OUTPUTS.cleanLogitDiff]);
    lds.forEach((ld, r) => (patched[chunk[r].example][chunk[r].slot] = ld));
  }
  report(rows.length);
  return patched;
}

/** Progress in runs done (each session run patches a batch of rows). */
function progressReporter(options: RunOptions, what: string, total: number): (start: number) => void {
  return progressTracker(what, 'run', total, options.onStep);
}

export const componentLabel = (c: Component) =>
  `${c.hook === 'z' ? `L${c.layer}H${c.head}` : `L${c.layer} ${c.hook}`}${c.position !== null ? ` at position ${c.position}` : c.fromEnd ? ` ${c.fromEnd} before the answer` : ' at the answer'}`;

/**
 * Exact activation patching of each component in every example: Σ_i (LD_patched,i − LD_corrupted,i) per component,
 * not yet normalised. Through the suffix passes (suffixPatching.ts): each patch recomputes only the positions from
 * it on and the layers from it up.
 */
export async function patchComponents(
  model: LoadedModel,
  prepared: readonly PreparedExample[],
  components: readonly Component[],
  options: RunOptions,
): Promise<number[]> {
  return patchComponentsBySuffix(model, prepared, components, options);
}

export interface Candidate extends Component {
  attribution: number;
}

/** Every cell of the head map and (when it exists) the position map, with its attribution. */
export function checkCandidates(heads: number[][], positions: number[][] | null): Candidate[] {
  const candidates: Candidate[] = [];
  heads.forEach((row, layer) => row.forEach((attribution, head) => candidates.push({ hook: 'z', layer, position: null, head, attribution })));
  positions?.forEach((row, layer) => row.forEach((attribution, position) => candidates.push({ hook: 'resid_pre', layer, position, head: null, attribution })));
  return candidates;
}

/** The k candidates with the largest |attribution| (ties in layer, head/position order) and k others drawn with the seed. */
export function chooseChecks(candidates: readonly Candidate[], k: number, seed: number): Array<Candidate & { pick: 'top' | 'random' }> {
  const order = candidates.map((_, i) => i).sort((a, b) => Math.abs(candidates[b].attribution) - Math.abs(candidates[a].attribution) || a - b);
  const top = order.slice(0, k);
  const rest = order.slice(k);
  const random = seededRandom(seed).sample(rest, Math.min(k, rest.length));
  return [...top.map((i) => ({ ...candidates[i], pick: 'top' as const })), ...random.map((i) => ({ ...candidates[i], pick: 'random' as const }))];
}

/** Passes needed by patchComponents: (1 + components) rows per example, two forward passes per row (clean and patched). */
export const componentPatchingPasses = (examples: number, components: number) => 2 * examples * (1 + components);
