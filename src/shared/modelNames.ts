// How a model is named to the user, and whether the model of a shown result is the one the next run would use.
// Pure (no node:path): the status bar and the unit tests both read it.

/** A folder shows as its name; a hub id (owner/name) as itself. */
export function modelLabel(model: string): string {
  if (/^[\w.-]+\/[\w.-]+$/.test(model) && !model.startsWith('/') && !model.startsWith('.')) return model;
  return (
    model
      .split(/[\\/]+/)
      .filter(Boolean)
      .pop() ?? model
  );
}

/** The same model: equal once trailing separators are dropped (a folder given with or without its final slash). */
export function sameModel(a: string, b: string): boolean {
  const norm = (text: string) => text.trim().replace(/[\\/]+$/, '');
  return norm(a) === norm(b);
}

/**
 * The status bar's model words for a shown result: its model, or, when the model setting now names another one,
 * "result of X; next run uses Y" (so that nobody reads an old model's numbers as the new one's).
 */
export function resultModelText(resultModel: string, nextModel: string): string {
  return sameModel(resultModel, nextModel) ? modelLabel(resultModel) : `result of ${modelLabel(resultModel)}; next run uses ${modelLabel(nextModel)}`;
}
