// The dataset format: one JSON object per line with the clean and corrupted prompts and
// the correct and incorrect answers. Whitespace inside the strings is significant
// (" Mary" and "Mary" are different tokens), so nothing is trimmed.
import * as fs from 'node:fs';
import { InputError } from '../errors';

export interface Example {
  clean: string;
  corrupted: string;
  correct: string;
  incorrect: string;
  /** 1-based line number in the file. */
  line: number;
}

export interface Dataset {
  file: string;
  examples: Example[];
}

const REQUIRED_FIELDS = ['clean', 'corrupted', 'correct', 'incorrect'] as const;

function describeJsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** Parses JSONL text; `file` is only used to name the file in error messages. */
export function parseJsonlDataset(text: string, file: string): Dataset {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const examples: Example[] = [];
  lines.forEach((lineText, index) => {
    if (lineText.trim() === '') return;
    const line = index + 1;
    let value: unknown;
    try {
      value = JSON.parse(lineText);
    } catch (error) {
      throw new InputError(`${file}:${line}: invalid JSON: ${(error as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new InputError(
        `${file}:${line}: expected a JSON object with fields ${REQUIRED_FIELDS.map((f) => `"${f}"`).join(', ')}, found ${describeJsonType(value)}`,
      );
    }
    const record = value as Record<string, unknown>;
    for (const field of REQUIRED_FIELDS) {
      const fieldValue = record[field];
      if (!Object.hasOwn(record, field)) throw new InputError(`${file}:${line}: field "${field}" is missing`);
      if (typeof fieldValue !== 'string') throw new InputError(`${file}:${line}: field "${field}" must be a string`);
      if (fieldValue === '') throw new InputError(`${file}:${line}: field "${field}" must not be empty`);
    }
    examples.push({
      clean: record.clean as string,
      corrupted: record.corrupted as string,
      correct: record.correct as string,
      incorrect: record.incorrect as string,
      line,
    });
  });
  if (examples.length === 0) throw new InputError(`${file}: no examples (the file is empty or has only blank lines)`);
  return { file, examples };
}

export function readDataset(file: string): Dataset {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${file}: file not found`);
    if (code === 'EISDIR') throw new InputError(`${file}: is a folder, expected a .jsonl file`);
    throw new InputError(`${file}: cannot read: ${(error as Error).message}`);
  }
  return parseJsonlDataset(text, file);
}
