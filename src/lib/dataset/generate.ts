// Generating a dataset from a spec, as text in either format: shared by `atp generate` (src/cli/generate.ts)
// and the VS Code commands "Generate IOI Dataset…" / "Generate TinySQL Dataset…" (run in the engine's worker).
import type { ModelTokenizer } from '../../engine/model/tokenizer';
import { generateIoi } from './ioi';
import { formatPromptLine } from './promptFormat';
import { generateTinySql } from './tinysql';
import type { GenerateSpec } from '../../shared/generateSpec';
import type { Example } from './types';

export type { GenerateSpec };

export interface GeneratedDataset {
  examples: Example[];
  /** The file's text: JSONL, or .atp lines under a `# header` comment. */
  text: string;
  header: string;
  /** Candidates dropped, by reason (TinySQL only). */
  skipped: Record<string, number>;
}

/** The dataset text: JSONL (clean, corrupted, correct, incorrect per line) or .atp lines. */
export function formatDataset(examples: readonly Example[], atp: boolean, header: string): string {
  if (atp) return [`# ${header}`, ...examples.map(formatPromptLine)].join('\n') + '\n';
  return examples.map((e) => JSON.stringify({ clean: e.clean, corrupted: e.corrupted, correct: e.correct, incorrect: e.incorrect })).join('\n') + '\n';
}

/** Generates the spec's examples for the tokenizer (`modelName` is only for the header) and formats them. */
export function generateDataset(
  tokenizer: Pick<ModelTokenizer, 'encode' | 'ids' | 'tokenText'>,
  spec: GenerateSpec,
  format: 'jsonl' | 'atp',
  modelName: string,
): GeneratedDataset {
  let examples: Example[];
  let header: string;
  let skipped: Record<string, number> = {};
  if (spec.kind === 'ioi') {
    examples = generateIoi(tokenizer, { count: spec.count, seed: spec.seed });
    header = `IOI: ${spec.count} examples, seed ${spec.seed}, names that are one token for ${modelName}`;
  } else {
    const result = generateTinySql(tokenizer, {
      feature: spec.feature,
      commandSet: spec.commandSet,
      count: spec.count,
      seed: spec.seed,
      useNovelNames: spec.novel,
      useSynonyms: spec.synonyms,
    });
    examples = result.examples;
    skipped = result.skipped;
    header =
      `TinySQL ${spec.feature}, command set ${spec.commandSet}: ${spec.count} examples, seed ${spec.seed}` +
      `${spec.novel ? ', novel names' : ''}${spec.synonyms ? ', synonyms' : ''}, tokenizer ${modelName}`;
  }
  return { examples, text: formatDataset(examples, format === 'atp', header), header, skipped };
}
