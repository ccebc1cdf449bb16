// Which task a dataset looks like, so that a dataset written for one built-in model but run with the other gets a
// warning and a quick fix before the user reads colours of a model that cannot do the task (the TinySQL demo model
// spells names letter by letter; the IOI demo model has never seen SQL). Pure and cheap: it reads the prompts and
// answers as text, without a tokenizer.
import { IOI_NAMES } from './ioi';
import type { Dataset, Diagnostic, Example } from './types';

export type DatasetTask = 'ioi' | 'tinysql';

const KNOWN_NAMES = new Set(IOI_NAMES);
const CAPITALISED_WORD = /^[A-Z][a-z]+$/;

function wordCount(text: string, word: string): number {
  return text.match(new RegExp(`\\b${word}\\b`, 'g'))?.length ?? 0;
}

/**
 * IOI: both answers are capitalised words, and either both are common first names, or both occur in the clean
 * prompt and one of them more than once ("When Mary and John went to the store, John gave a drink to").
 */
export function looksLikeIoi(example: Pick<Example, 'clean' | 'correct' | 'incorrect'>): boolean {
  const answers = [example.correct.trim(), example.incorrect.trim()];
  if (answers[0] === answers[1] || !answers.every((word) => CAPITALISED_WORD.test(word))) return false;
  if (answers.every((word) => KNOWN_NAMES.has(word))) return true;
  const counts = answers.map((word) => wordCount(example.clean, word));
  return counts.every((n) => n >= 1) && counts.some((n) => n >= 2);
}

/** TinySQL: the prompt is an instruction with a CREATE TABLE context, or asks for a ### Response. */
export function looksLikeTinySql(example: Pick<Example, 'clean'>): boolean {
  return /CREATE TABLE/.test(example.clean) || /### (Instruction|Response)/.test(example.clean);
}

/** The task at least half of the examples look like, or undefined (no examples, a mixture, something else). */
export function datasetTask(dataset: Pick<Dataset, 'examples'>): DatasetTask | undefined {
  const n = dataset.examples.length;
  if (n === 0) return undefined;
  if (dataset.examples.filter(looksLikeIoi).length * 2 >= n) return 'ioi';
  if (dataset.examples.filter(looksLikeTinySql).length * 2 >= n) return 'tinysql';
  return undefined;
}

/** The built-in model trained on each task. */
export const BUILT_IN_MODEL_FOR_TASK: Readonly<Record<DatasetTask, string>> = { ioi: 'ioi-demo', tinysql: 'tinysql-demo' };

const TASK_WORDS: Readonly<Record<DatasetTask, string>> = {
  ioi: 'indirect object identification (names as answers)',
  tinysql: 'TinySQL (an instruction and a CREATE TABLE context)',
};

/**
 * A warning on the first example when the selected built-in model (its name; undefined for any other model) was
 * not trained on the task the dataset looks like, with the built-in model to switch to (`useModel`, the quick fix).
 */
export function builtInModelMismatch(dataset: Pick<Dataset, 'examples'>, builtInModel: string | undefined): Diagnostic | undefined {
  if (builtInModel === undefined) return undefined;
  const task = datasetTask(dataset);
  if (task === undefined) return undefined;
  const wanted = BUILT_IN_MODEL_FOR_TASK[task];
  if (wanted === builtInModel || !Object.values(BUILT_IN_MODEL_FOR_TASK).includes(builtInModel)) return undefined;
  const why = builtInModel === 'tinysql-demo' ? 'it knows no names as single tokens and spells them letter by letter' : 'it has never seen this task';
  return {
    line: dataset.examples[0].line,
    startColumn: 0,
    endColumn: 0,
    severity: 'warning',
    message: `this file looks like ${TASK_WORDS[task]}, but the selected model is the built-in ${builtInModel}, which was not trained on it (${why}); the built-in ${wanted} was`,
    useModel: wanted,
  };
}
