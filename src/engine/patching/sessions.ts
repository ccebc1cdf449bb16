// The sessions a run uses: each graph kind's builder and names (the registry), the graph file and cached session of
// each kind, which of them this process already holds, and which model a long-lived process holds.
import { InputError } from '../../shared/errors';
import { GraphBuilder } from '../graph/builder';
import { GraphWeights } from '../graph/weights';
import { type LoadedModel, weightLookup } from '../model/load';
import {
  ACTIVATION_PATCHING_GRAPH_NAMES,
  ATTRIBUTION_GRAPH_NAMES,
  buildActivationPatchingGraph,
  buildAttributionGraph,
  buildLogitDiffGraph,
  checkGraphNames,
  FLOAT16_ATTRIBUTION_GRAPH_NAMES,
  type GraphNames,
  LOGIT_DIFF_GRAPH_NAMES,
} from './graphs';
import { ATP_STAR_GRAPH_NAMES, buildAtpStarGraph } from './atpStarGraph';
import { buildPatchRecordGraph, buildSuffixPatchGraph, PATCH_RECORD_GRAPH_NAMES, SUFFIX_PATCH_GRAPH_NAMES } from './suffixGraphs';
import {
  ACTIVATION_EDGE_ATTRIBUTION_GRAPH_NAMES,
  buildActivationEdgeAttributionGraph,
  buildEdgeAttributionGraph,
  buildFaithfulnessGraph,
  EDGE_ATTRIBUTION_GRAPH_NAMES,
  FAITHFULNESS_GRAPH_NAMES,
} from '../circuits/graph';
import {
  cachedSession,
  float16Unsupported,
  graphDirFor,
  hasCachedSession,
  prepareGraphDir,
  releaseSessions,
  type SessionHandle,
  writeGraphFile,
} from '../process/runtime';
import type { Precision } from '../../shared/result';
import { unusedWeightsWarnings } from '../model/unusedWeights';
import type { RunOptions } from './options';
import { checkPrecisionFor } from './precision';

/**
 * The graph kinds that run in float16 (mixed precision, see GraphBuilder.wideType): AtP and the forward-only graphs
 * its token effects and checks use. AtP*'s and the circuits' graphs compute in float32 or float64 only.
 */
export const FLOAT16_GRAPH_KINDS: ReadonlySet<GraphKind> = new Set<GraphKind>([
  'attribution',
  'activation-patching',
  'logit-diff',
  'patch-record',
  'suffix-patch',
]);

export type GraphKind =
  | 'attribution'
  | 'activation-patching'
  | 'logit-diff'
  | 'patch-record'
  | 'suffix-patch'
  | 'atp-star'
  | 'edge-attribution'
  | 'edge-attribution-activations'
  | 'faithfulness';

/** Each kind's builder, and the names its feeds and reads use (checked against each new session). */
export const GRAPHS: Record<GraphKind, { build: typeof buildAttributionGraph; names: GraphNames }> = {
  attribution: { build: buildAttributionGraph, names: ATTRIBUTION_GRAPH_NAMES },
  'activation-patching': { build: buildActivationPatchingGraph, names: ACTIVATION_PATCHING_GRAPH_NAMES },
  'logit-diff': { build: buildLogitDiffGraph, names: LOGIT_DIFF_GRAPH_NAMES },
  'patch-record': { build: buildPatchRecordGraph, names: PATCH_RECORD_GRAPH_NAMES },
  'suffix-patch': { build: buildSuffixPatchGraph, names: SUFFIX_PATCH_GRAPH_NAMES },
  'atp-star': { build: buildAtpStarGraph, names: ATP_STAR_GRAPH_NAMES },
  'edge-attribution': { build: buildEdgeAttributionGraph, names: EDGE_ATTRIBUTION_GRAPH_NAMES },
  'edge-attribution-activations': { build: buildActivationEdgeAttributionGraph, names: ACTIVATION_EDGE_ATTRIBUTION_GRAPH_NAMES },
  faithfulness: { build: buildFaithfulnessGraph, names: FAITHFULNESS_GRAPH_NAMES },
};

/** The names a graph of this kind takes and gives, built for this precision. */
export function graphNames(kind: GraphKind, precision: Precision): GraphNames {
  return kind === 'attribution' && precision === 'float16' ? FLOAT16_ATTRIBUTION_GRAPH_NAMES : GRAPHS[kind].names;
}

const graphFiles = new Map<string, string>();
// The spec too: config.json edited in a long-lived process (fewer layers, say) must not reuse the old graph.
const graphKey = (graphDir: string, model: LoadedModel, kind: GraphKind, precision: Precision) =>
  `${graphDir}|${model.dir}|${kind}|${precision}|${JSON.stringify(model.spec)}`;
const sessionSettings = (precision: Precision, prepacking?: boolean) => ({
  optimization: precision === 'float64' ? ('basic' as const) : ('all' as const),
  prepacking,
});

/**
 * Whether this process already holds the session a run of this kind would use (the extension's worker keeps them):
 * its weights are then in memory already, and the memory check must not ask for them again.
 */
export function sessionIsWarm(model: LoadedModel, kind: GraphKind, options: Pick<RunOptions, 'device' | 'precision' | 'prepacking'>): boolean {
  const precision = options.precision ?? 'float32';
  // graphDirFor, not prepareGraphDir: a run refused for memory must not have linked or copied weights into the cache.
  const file = graphFiles.get(graphKey(graphDirFor(model.weightFiles), model, kind, precision));
  return file !== undefined && hasCachedSession(file, options.device, sessionSettings(precision, options.prepacking));
}
/** Set by `atp serve` (keepOneModelAtATime): the one model whose sessions this process may hold. */
let oneModelAtATime = false;
let modelInUse: { graphDir: string; source: string } | undefined;

/** For a long-lived process that runs whatever model it is asked for: its memory stays one model's (releaseOtherModels). */
export function keepOneModelAtATime(): void {
  oneModelAtATime = true;
}

/** The model whose sessions this process keeps (with keepOneModelAtATime), as the user named it. */
export function heldModel(): string | undefined {
  return modelInUse?.source;
}

/**
 * With keepOneModelAtATime: before a run of another model (other weight files), the sessions held for the previous
 * one are released, so that memory does not grow with every model tried and the memory check sees it free.
 */
export async function releaseOtherModels(model: LoadedModel): Promise<void> {
  if (!oneModelAtATime) return;
  const graphDir = graphDirFor(model.weightFiles);
  if (modelInUse !== undefined && modelInUse.graphDir !== graphDir) await releaseSessions();
  modelInUse = { graphDir, source: model.source };
}

/** `auto` choices already said in this process: the same choice for every graph kind needs saying once. */
const choicesSaid = new Set<string>();

/**
 * Builds (once per weight files, kind and precision) the graph file, and returns a cached session for it.
 * The graph directory's name depends on the weight files' identity (path, size, mtime), so weights replaced on
 * disk get a new graph and session even in a long-lived process.
 */
export async function sessionFor(model: LoadedModel, kind: GraphKind, options: RunOptions): Promise<SessionHandle> {
  await releaseOtherModels(model);
  const precision = options.precision ?? 'float32';
  if (precision === 'float16' && !FLOAT16_GRAPH_KINDS.has(kind)) checkPrecisionFor(precision, `the ${kind} graph`);
  const graphDir = prepareGraphDir(model.weightFiles);
  const key = graphKey(graphDir.dir, model, kind, precision);
  let file = graphFiles.get(key);
  if (!file) {
    const builder = new GraphBuilder(precision);
    const weights = new GraphWeights(builder, weightLookup(model), graphDir.locations);
    GRAPHS[kind].build(model.architecture, builder, weights);
    file = writeGraphFile(graphDir, builder.toBytes(), `${kind}-${precision}`, unusedWeightsWarnings(model, weights.used));
    graphFiles.set(key, file);
  }
  const handle = await cachedSession(file, options.device, sessionSettings(precision, options.prepacking));
  if (precision === 'float16') {
    const unsupported = await float16Unsupported(handle.device);
    if (unsupported) {
      const adapter = handle.observer.info().adapter;
      const on = adapter ? ` on ${adapter.name} (${adapter.vendor}${adapter.software ? ', software' : ''})` : '';
      throw InputError.about(
        'precision',
        `float16 cannot run on ${handle.device}${on}: ${unsupported} (WebGPU computes in float16 only where the adapter has the shader-f16 feature); use float32`,
      );
    }
  }
  checkGraphNames(kind, graphNames(kind, precision), handle.session);
  if (handle.choice && !choicesSaid.has(handle.choice)) {
    choicesSaid.add(handle.choice);
    options.onProgress?.(handle.choice);
  }
  return handle;
}
