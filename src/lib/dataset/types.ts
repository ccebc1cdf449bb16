// The dataset types shared by the formats (JSONL, .atp) and the generators.

/** A range of document text: UTF-16 offsets into the whole document, end exclusive. */
export interface SourceRange {
  start: number;
  end: number;
}

/**
 * Where each prompt character is in the document: for a prompt of length L, L + 1 UTF-16 document offsets.
 * Entry i (i < L) is where prompt code unit i is written (for an escape such as \n or \u00e9, where its
 * backslash is); entry L is just after the last character as written (a JSONL string's closing quote). A token
 * [start, end) of the prompt is at the document range [source[start], source[end]) where the prompt is written
 * contiguously; the entries jump where it is not (an .atp span's other side, say), and an editor that wants to
 * be exact there colours code unit i at [source[i], next) for each i.
 *
 * Offsets index the document as an editor holds it: a leading byte-order mark is not counted, line endings
 * (\n or \r\n) count as written.
 */
export interface PromptSource {
  clean: number[];
  corrupted: number[];
}

/** Where the parts of an example stand in the document (each example is one line). */
export interface ExampleLocation {
  /** Document offset of the first character of the example's line (column 0). */
  lineStart: number;
  /** The clean prompt: JSONL, its string literal (quotes included); .atp, the whole prompt text. */
  clean: SourceRange;
  /** The corrupted prompt: JSONL, its string literal; .atp, the whole prompt text (as clean). */
  corrupted: SourceRange;
  /** The answers' string literals, quotes included. */
  correct: SourceRange;
  incorrect: SourceRange;
  /** .atp: each {clean|corrupted} span, braces included, in order; JSONL: none. */
  spans: SourceRange[];
}

export interface Example {
  clean: string;
  corrupted: string;
  correct: string;
  incorrect: string;
  /** 1-based line number in the file. */
  line: number;
  /** Document offsets of every prompt character (see PromptSource); set by the parsers, absent for generated data. */
  source?: PromptSource;
  /** Document ranges of the example's parts, for diagnostics; set by the parsers. */
  location?: ExampleLocation;
}

export interface Dataset {
  file: string;
  examples: Example[];
}

/** A problem at an exact place in a dataset document, as an editor shows it. */
export interface Diagnostic {
  /** 1-based line. */
  line: number;
  /** UTF-16 columns, 0-based, end exclusive. */
  startColumn: number;
  endColumn: number;
  severity: 'error' | 'warning';
  message: string;
  /** A quick fix: select this built-in model (its name, e.g. "ioi-demo"). */
  useModel?: string;
}

/** A dataset parsed for an editor: the examples of every line without an error, and every problem found. */
export interface ParsedDataset {
  dataset: Dataset;
  diagnostics: Diagnostic[];
}
