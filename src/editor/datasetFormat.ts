// Which dataset format an editor document holds (no 'vscode' import: unit-tested under Node).

/** The dataset format of a document by its language (atp, jsonl) or else its file extension; undefined if neither. */
export function liveDatasetFormat(languageId: string, path: string): 'atp' | 'jsonl' | undefined {
  if (languageId === 'atp' || languageId === 'jsonl') return languageId;
  const lower = path.toLowerCase();
  if (lower.endsWith('.atp')) return 'atp';
  if (lower.endsWith('.jsonl')) return 'jsonl';
  return undefined;
}
