import { resolveModel, type ResolveOptions } from './hub';
import { type LoadedModel, loadModel } from './load';

/**
 * A model from what the user named — a folder, a Hugging Face repo id (optionally @revision) or a preset such as
 * M2 or bm1-cs1 — downloaded into the standard Hugging Face cache when needed, then indexed and tokenized.
 * Returns the model and the notes the user should see (e.g. "using the cached snapshot").
 */
export async function openModel(source: string, options: ResolveOptions = {}): Promise<{ model: LoadedModel; notes: string[] }> {
  const resolved = await resolveModel(source, options);
  const loaded = loadModel(resolved.dir);
  const name = resolved.commit && resolved.repo ? `${resolved.source} (${resolved.commit.slice(0, 10)})` : resolved.source;
  return { model: { ...loaded, source: name }, notes: resolved.notes };
}
