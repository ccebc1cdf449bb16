// Datasets: the formats (JSONL, .atp), diagnostics for an editor, and the generators (IOI, TinySQL).
import { extname } from 'node:path';
import { InputError } from '../../shared/errors';
import { parseJsonl, parseJsonlDataset } from './jsonl';
import { parsePromptFormat, parsePromptFormatDataset } from './promptFormat';
import { readTextFile } from './text';
import type { Dataset, ParsedDataset } from './types';

export * from './types';
export { parseJsonl, parseJsonlDataset, readJsonlDataset } from './jsonl';
export {
  PROMPT_FORMAT_EXTENSION,
  escapePromptText,
  formatDiagnostic,
  formatPromptLine,
  parsePromptFormat,
  parsePromptFormatDataset,
  readPromptFormatDataset,
} from './promptFormat';
export { diagnoseWithTokenizer, type DiagnosticTokenizer } from './diagnostics';

export type DatasetFormat = 'jsonl' | 'atp';

/** The format of a dataset file by its extension (.jsonl or .atp, any case); InputError otherwise. */
export function datasetFormatOf(file: string): DatasetFormat {
  const extension = extname(file).toLowerCase();
  if (extension === '.jsonl') return 'jsonl';
  if (extension === '.atp') return 'atp';
  throw new InputError(
    `${file}: unknown dataset format "${extension || '(no extension)'}": use a .jsonl file (one JSON object per line) or a .atp file (prompts with {clean|corrupted} spans; see docs/DATASETS.md)`,
  );
}

/** Parses dataset text for an editor (examples of the good lines, and diagnostics), by format. */
export function parseDatasetText(text: string, file: string, format: DatasetFormat = datasetFormatOf(file)): ParsedDataset {
  return format === 'atp' ? parsePromptFormat(text, file) : parseJsonl(text, file);
}

/**
 * Reads a dataset file, .jsonl or .atp by its extension; InputError naming the file (and line) at the first
 * error. Warnings (an .atp line whose prompts are the same) go to `warnings` when given.
 */
export function readDataset(file: string, warnings?: string[]): Dataset {
  const format = datasetFormatOf(file);
  const text = readTextFile(file, `a .${format} file`);
  return format === 'atp' ? parsePromptFormatDataset(text, file, warnings) : parseJsonlDataset(text, file);
}
export {
  IOI_NAMES,
  IOI_OBJECTS,
  IOI_PLACES,
  IOI_TEMPLATES,
  generateIoi,
  ioiSeedExamples,
  singleTokenNames,
  type IoiExample,
  type IoiOptions,
  type IoiOrder,
} from './ioi';
export {
  TINYSQL_FEATURES,
  generateTinySql,
  parseTinySqlFeature,
  type CommandSet,
  type TinySqlExample,
  type TinySqlFeature,
  type TinySqlOptions,
  type TinySqlResult,
} from './tinysql';
