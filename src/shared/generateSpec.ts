// What a generated dataset is: the contract of `atp generate`, `atp sweep` and the worker's GenerateRequest; the
// engine's generators (src/lib/dataset/generate.ts, ioi.ts, tinysql/) implement it.
export const TINYSQL_FEATURES = [
  'EngTableName',
  'EngFieldName',
  'DefCreateTable',
  'DefTableName',
  'DefFieldName',
  'DefFieldSeparator',
  'DefOrderByField',
  'DefOrderByDirection',
] as const;
export type TinySqlFeature = (typeof TINYSQL_FEATURES)[number];

export type CommandSet = 1 | 2 | 3;

export type GenerateSpec =
  | { kind: 'ioi'; count: number; seed: number }
  | { kind: 'tinysql'; feature: TinySqlFeature; commandSet: CommandSet; count: number; seed: number; novel: boolean; synonyms: boolean };

/** The most examples one generated dataset may have (the CLI's -n, the editor's input box). */
export const MAX_GENERATED_EXAMPLES = 10_000;
