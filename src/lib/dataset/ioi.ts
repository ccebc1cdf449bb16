// Indirect object identification (IOI): the seed notebook's 8 prompts, and a templated generator.
//
// "When Mary and John went to the store, John gave a drink to" -> " Mary" (the indirect object), not " John"
// (the subject). The corrupted prompt is the same sentence with the other name as the subject (as in the seed
// notebook), so the answer flips; every name is one token with its leading space, so both prompts always have
// the same token count and differ only at the subject's token.
import { InputError } from '../../shared/errors';
import type { ModelTokenizer } from '../../engine/model/tokenizer';
import { seededRandom } from './random';
import type { Example } from './types';

/** The seed notebook's 8 IOI prompts and answer pairs; the same examples as examples/ioi.jsonl. */
export function ioiSeedExamples(): Example[] {
  const rows: [string, string, string, string, string, string][] = [
    ['When', 'John', 'Mary', 'shops', 'the bag', 'John'],
    ['When', 'John', 'Mary', 'shops', 'the bag', 'Mary'],
    ['When', 'Tom', 'James', 'park', 'the ball', 'James'],
    ['When', 'Tom', 'James', 'park', 'the ball', 'Tom'],
    ['When', 'Dan', 'Sid', 'shops', 'an apple', 'Sid'],
    ['When', 'Dan', 'Sid', 'shops', 'an apple', 'Dan'],
    ['After', 'Martin', 'Amy', 'park', 'a drink', 'Amy'],
    ['After', 'Martin', 'Amy', 'park', 'a drink', 'Martin'],
  ];
  return rows.map(([opening, a, b, place, object, subject], i) => {
    const other = subject === a ? b : a;
    const prompt = (s: string) => `${opening} ${a} and ${b} went to the ${place}, ${s} gave ${object} to`;
    return { clean: prompt(subject), corrupted: prompt(other), correct: ` ${other}`, incorrect: ` ${subject}`, line: i + 1 };
  });
}

/** Templates: [A] and [B] are the two names in order, [S] the subject, [PLACE] and [OBJECT] the rest. */
export const IOI_TEMPLATES: readonly string[] = [
  'When [A] and [B] went to the [PLACE], [S] gave [OBJECT] to',
  'After [A] and [B] went to the [PLACE], [S] gave [OBJECT] to',
  'While [A] and [B] were working at the [PLACE], [S] gave [OBJECT] to',
  'When [A] and [B] got [OBJECT] at the [PLACE], [S] decided to give it to',
  'Friends [A] and [B] found [OBJECT] at the [PLACE]. [S] gave it to',
  'Then, [A] and [B] had a long argument at the [PLACE]. Afterwards [S] said to',
  'The [PLACE] was quiet when [A] and [B] arrived. [S] handed [OBJECT] to',
];

export const IOI_NAMES: readonly string[] = [
  'John',
  'Mary',
  'Tom',
  'James',
  'Dan',
  'Sid',
  'Martin',
  'Amy',
  'Alice',
  'Bob',
  'Sarah',
  'David',
  'Michael',
  'Anna',
  'Paul',
  'Laura',
  'Kate',
  'Mark',
  'Emma',
  'Peter',
  'Lisa',
  'Chris',
  'Jessica',
  'Ryan',
  'Rachel',
  'Steven',
  'Helen',
  'George',
  'Linda',
  'Eric',
  'Susan',
  'Frank',
  'Karen',
  'Adam',
  'Jane',
  'Kevin',
  'Nancy',
  'Brian',
  'Emily',
  'Jack',
];
export const IOI_PLACES: readonly string[] = ['shops', 'park', 'store', 'school', 'hospital', 'office', 'garden', 'restaurant', 'station', 'beach'];
export const IOI_OBJECTS: readonly string[] = [
  'the bag',
  'the ball',
  'an apple',
  'a drink',
  'a book',
  'a ring',
  'the keys',
  'a letter',
  'a gift',
  'the basket',
];

export type IoiOrder = 'ABBA' | 'BABA';

export interface IoiOptions {
  count: number;
  seed: number;
  /** Names to draw from (default IOI_NAMES); only those that are one token with a leading space are used. */
  names?: readonly string[];
  templates?: readonly string[];
}

/** A generated IOI example, with how it was made. */
export interface IoiExample extends Example {
  template: number;
  order: IoiOrder;
  indirectObject: string;
  subject: string;
}

/** The names that are a single token with their leading space (" Mary"), as the answers must be. */
export function singleTokenNames(tokenizer: Pick<ModelTokenizer, 'ids'>, names: readonly string[]): string[] {
  return names.filter((name) => tokenizer.ids(` ${name}`, { addSpecialTokens: false }).length === 1);
}

/**
 * N IOI examples from a seed: template, names, place and object drawn at random; ABBA ("A and B ..., B gave
 * ... to" -> A) and BABA ("B and A ..., B gave ... to" -> A) alternate. Corrupted: the other name as subject.
 * Answers: (indirect object, subject), with their leading space.
 */
export function generateIoi(tokenizer: Pick<ModelTokenizer, 'ids'>, options: IoiOptions): IoiExample[] {
  if (!Number.isInteger(options.count) || options.count < 1) throw new InputError(`the number of examples must be a positive integer, got ${options.count}`);
  const names = singleTokenNames(tokenizer, options.names ?? IOI_NAMES);
  if (names.length < 2) throw new InputError(`IOI needs at least two names that are one token for this tokenizer; found ${names.length}`);
  const templates = options.templates ?? IOI_TEMPLATES;
  const random = seededRandom(options.seed);
  const examples: IoiExample[] = [];
  for (let i = 0; i < options.count; i += 1) {
    const template = random.int(templates.length);
    const [io, subject] = random.sample(names, 2);
    const place = random.pick(IOI_PLACES);
    const object = random.pick(IOI_OBJECTS);
    const order: IoiOrder = i % 2 === 0 ? 'ABBA' : 'BABA';
    const [first, second] = order === 'ABBA' ? [io, subject] : [subject, io];
    const fill = (s: string) =>
      templates[template].replace('[A]', first).replace('[B]', second).replace('[PLACE]', place).replace('[OBJECT]', object).replace('[S]', s);
    examples.push({
      clean: fill(subject),
      corrupted: fill(io),
      correct: ` ${io}`,
      incorrect: ` ${subject}`,
      line: i + 1,
      template,
      order,
      indirectObject: io,
      subject,
    });
  }
  return examples;
}
