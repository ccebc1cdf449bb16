// The pure parts of the "Generate … Dataset" commands (no 'vscode' import, so they are unit-tested under Node):
// what each TinySQL feature corrupts, the input checks, and the new file's name.
import type { GenerateSpec, TinySqlFeature } from '../shared/generateSpec';

/** What each feature corrupts, for the quick pick (docs/DATASETS.md has the full table). */
export const TINYSQL_FEATURE_DESCRIPTIONS: Record<TinySqlFeature, string> = {
  EngTableName: 'the English table name; answer: the table after FROM',
  EngFieldName: 'the English name of the first selected field; answer: that field in SELECT',
  DefCreateTable: 'CREATE → MAKE/BUILD/…; answer: the table after FROM',
  DefTableName: 'the table name in CREATE TABLE; answer: the table after FROM',
  DefFieldName: "a field's name in CREATE TABLE; answer: that field in SELECT",
  DefFieldSeparator: 'the commas in CREATE TABLE → ":"; answer: the first "," in SELECT',
  DefOrderByField: 'the field in "ordered by"; answer: the field after ORDER BY (command set 2 or 3)',
  DefOrderByDirection: 'ascending ↔ descending; answer: the direction after ORDER BY (command set 2 or 3)',
};

/** The ORDER BY features need command set 2 or 3. */
export function minimumCommandSet(feature: TinySqlFeature): 1 | 2 {
  return feature === 'DefOrderByField' || feature === 'DefOrderByDirection' ? 2 : 1;
}

/** An input box's integer: a message saying what is wrong, or undefined when the text is a valid value. */
export function integerInputProblem(text: string, minimum: number, maximum = Number.MAX_SAFE_INTEGER): string | undefined {
  const trimmed = text.trim();
  const value = Number(trimmed);
  if (!/^\d+$/.test(trimmed) || !Number.isSafeInteger(value)) return `Enter a whole number (${minimum} or more)`;
  if (value < minimum) return `Enter ${minimum} or more`;
  if (value > maximum) return `At most ${maximum}`;
  return undefined;
}

/** The new dataset's file name, saying what it holds: tinysql-DefTableName-cs1-n20-seed0.atp, ioi-n20-seed0.jsonl. */
export function generatedFileName(spec: GenerateSpec, format: 'jsonl' | 'atp'): string {
  const base =
    spec.kind === 'ioi'
      ? `ioi-n${spec.count}-seed${spec.seed}`
      : `tinysql-${spec.feature}-cs${spec.commandSet}-n${spec.count}-seed${spec.seed}${spec.novel ? '-novel' : ''}${spec.synonyms ? '-synonyms' : ''}`;
  return `${base}.${format}`;
}

/** `name`, or name-2, name-3, … (before the extension): the first that `exists` says is free. */
export async function uniqueFileName(name: string, exists: (name: string) => Promise<boolean>): Promise<string> {
  const dot = name.lastIndexOf('.');
  const [stem, extension] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  let candidate = name;
  for (let n = 2; await exists(candidate); n++) candidate = `${stem}-${n}${extension}`;
  return candidate;
}
