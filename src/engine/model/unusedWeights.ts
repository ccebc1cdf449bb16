// Weights the graph never reads: usually a config.json that does not match the checkpoint (fewer layers than the
// weights hold, say), which would otherwise run a truncated model without a word.
import type { LoadedModel } from './load';

/** Buffers some checkpoints store that are not parameters (attention masks, rotary tables): never reported. */
const NOT_PARAMETERS = [/(^|\.)attn\.(masked_)?bias$/, /(^|\.)attention\.(masked_)?bias$/, /(^|\.)rotary_emb\.inv_freq$/];

/** A warning naming the unused tensors (a few, and how many), or none when the graph reads them all. */
export function unusedWeightsWarnings(model: Pick<LoadedModel, 'weights' | 'spec' | 'dir'>, used: ReadonlySet<string>): string[] {
  const unused: string[] = [];
  for (const name of model.weights.keys()) {
    if (used.has(name) || NOT_PARAMETERS.some((pattern) => pattern.test(name))) continue;
    // A tied checkpoint may store its unembedding too; the architecture reads the embedding instead.
    if (model.spec.tiedEmbeddings && /(^|\.)lm_head\.weight$/.test(name)) continue;
    unused.push(name);
  }
  if (unused.length === 0) return [];
  const shown = unused
    .slice(0, 5)
    .map((name) => `"${name}"`)
    .join(', ');
  const more = unused.length > 5 ? ` and ${unused.length - 5} more` : '';
  return [
    `${model.dir}: ${unused.length} weight tensor${unused.length === 1 ? ' is' : 's are'} not used by the model config.json describes (${model.spec.nLayers} layers): ${shown}${more}; check that config.json belongs to these weights`,
  ];
}
