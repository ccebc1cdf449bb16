// Clean/corrupted TinySQL examples for attribution patching, after TinySQL's CorruptFeatureTestGenerator
// (withmartian/TinySQL, TinySQL/corrupt_data/clean_corrupt_data.py): an English request, a CREATE TABLE
// context and the SQL answer in TinySQL's alpaca form, one feature corrupted in the prompt. Unlike the
// original, each prompt here runs up to the answer position inside the SQL, so the logit difference is read
// exactly where the corrupted feature decides the next token. docs/DATASETS.md lists the differences.
import { InputError } from '../../../shared/errors';
import { type CommandSet, TINYSQL_FEATURES, type TinySqlFeature } from '../../../shared/generateSpec';
import type { ModelTokenizer, Token } from '../../../engine/model/tokenizer';
import { seededRandom, type Random } from '../random';
import type { Example, SourceRange } from '../types';
import {
  AGGREGATE_PHRASES,
  AGGREGATES_BY_TYPE,
  type Aggregate,
  DEFAULT_AGGREGATES,
  FIELD_NAMES,
  FIELD_SYNONYMS,
  FIELD_TYPES,
  NOVEL_FIELD_NAMES,
  NOVEL_TABLE_NAMES,
  SELECT_FROM_TEMPLATES,
  TABLE_NAMES,
  TABLE_SYNONYMS,
  WRONG_CREATE_WORDS,
  WRONG_SEPARATORS,
} from './vocabulary';

export { type CommandSet, TINYSQL_FEATURES, type TinySqlFeature };

/** TinySQL's names for the same features (its ORDER BY features are numbered). */
const FEATURE_ALIASES: Record<string, TinySqlFeature> = { DefOrderByField1: 'DefOrderByField', DefOrderByDirection1: 'DefOrderByDirection' };

/** The feature named (case-insensitively, TinySQL's numbered ORDER BY names too); InputError otherwise. */
export function parseTinySqlFeature(name: string): TinySqlFeature {
  const all = [...TINYSQL_FEATURES, ...Object.keys(FEATURE_ALIASES)];
  const found = all.find((f) => f.toLowerCase() === name.toLowerCase());
  if (found === undefined) throw new InputError(`unknown TinySQL feature "${name}": one of ${TINYSQL_FEATURES.join(', ')}`);
  return FEATURE_ALIASES[found] ?? (found as TinySqlFeature);
}

export interface TinySqlOptions {
  feature: TinySqlFeature;
  /** 1: SELECT fields FROM table; 2: plus ORDER BY; 3: with aggregates (and ORDER BY). Default 1. */
  commandSet?: CommandSet;
  count: number;
  seed: number;
  /** Corrupt with words never seen in training (star, hammer, ...) instead of other vocabulary words. */
  useNovelNames?: boolean;
  /** Name the table and fields in the English request by their synonyms (children for people, cost for price). */
  useSynonyms?: boolean;
  /** Fields per table (TinySQL's generator uses 2). */
  fieldCount?: number;
}

/** A generated example: the Example (prompts end right before the answer token), and how it was made. */
export interface TinySqlExample extends Example {
  feature: TinySqlFeature;
  commandSet: CommandSet;
  /** The clean SQL statement in full (the clean prompt ends inside it, before the answer). */
  sql: string;
  /** The text that follows the clean prompt: the rest of the clean SQL, starting with the answer token. */
  continuation: string;
  /** UTF-16 ranges of each prompt that differ: the corrupted word(s), in the clean and the corrupted prompt. */
  corruptedRanges: { clean: SourceRange[]; corrupted: SourceRange[] };
  /** Token index of the answer: the number of tokens of the prompt (special tokens included). */
  answerPosition: number;
}

export interface TinySqlResult {
  examples: TinySqlExample[];
  /** Candidate examples dropped, by reason (tokenizations that would break the pairing). */
  skipped: Record<string, number>;
}

type Tokenizer = Pick<ModelTokenizer, 'encode' | 'ids' | 'tokenText'>;

interface Field {
  name: string;
  type: string;
  /** The word the English request uses: the name, or its synonym. */
  english: string;
}

interface SelectItem {
  field: number;
  aggregate: Aggregate;
  phrase: string;
}

interface Item {
  table: string;
  englishTable: string;
  fields: Field[];
  select: SelectItem[];
  template: string | null;
  orderBy: { field: number; asc: boolean } | null;
}

/** A piece of text; `id` names the pieces a feature corrupts or answers at. */
interface Piece {
  text: string;
  id?: string;
}

function makeItem(random: Random, commandSet: CommandSet, fieldCount: number, synonyms: boolean, words: Vocabulary): Item {
  const table = random.pick(words.tables);
  const names = random.sample(words.fields, fieldCount);
  const fields: Field[] = names.map((name) => ({ name, type: random.pick(FIELD_TYPES), english: synonyms ? FIELD_SYNONYMS[name] : name }));
  let select: SelectItem[];
  let template: string | null = null;
  if (commandSet === 3) {
    // TinySQL's aggregate path: a random subset of the fields in random order, each with an aggregate allowed for its type.
    const chosen = random.sample(
      fields.map((_, i) => i),
      1 + random.int(fields.length),
    );
    select = chosen.map((field) => {
      const aggregate = random.pick(AGGREGATES_BY_TYPE[fields[field].type] ?? DEFAULT_AGGREGATES);
      return { field, aggregate, phrase: aggregate === '' ? '' : random.pick(AGGREGATE_PHRASES[aggregate]) };
    });
    template = random.pick(SELECT_FROM_TEMPLATES);
  } else {
    select = fields.map((_, field) => ({ field, aggregate: '' as Aggregate, phrase: '' }));
  }
  const orderBy = commandSet >= 2 ? { field: random.pick(select).field, asc: random.next() < 0.5 } : null;
  return { table, englishTable: synonyms ? TABLE_SYNONYMS[table] : table, fields, select, template, orderBy };
}

/** The English request, as pieces: "show me the price and name from the people table ordered by price in ascending order". */
function englishPieces(item: Item): Piece[] {
  const fieldList: Piece[] = [];
  item.select.forEach((s, i) => {
    if (i > 0) fieldList.push({ text: i === item.select.length - 1 ? ' and ' : ', ' });
    if (s.phrase !== '') fieldList.push({ text: `${s.phrase} ` });
    fieldList.push({ text: item.fields[s.field].english, id: `eng-field-${s.field}` });
  });
  const table: Piece = { text: item.englishTable, id: 'eng-table' };
  const pieces: Piece[] = [];
  if (item.template === null) {
    pieces.push({ text: 'show me the ' }, ...fieldList, { text: ' from the ' }, table, { text: ' table' });
  } else {
    const parts = item.template.split(/(\[fields\]|\[table\])/);
    for (const part of parts) {
      if (part === '[fields]') pieces.push(...fieldList);
      else if (part === '[table]') pieces.push(table);
      else if (part !== '') pieces.push({ text: part });
    }
  }
  if (item.orderBy !== null) {
    const field = item.fields[item.orderBy.field];
    pieces.push(
      { text: ' ordered by ' },
      { text: field.english, id: 'eng-order-field' },
      { text: ' in ' },
      { text: item.orderBy.asc ? 'ascending' : 'descending', id: 'eng-order-direction' },
      { text: ' order' },
    );
  }
  return pieces;
}

/** "CREATE TABLE people ( price INT, name CHAR )" as pieces. */
function contextPieces(item: Item): Piece[] {
  const pieces: Piece[] = [{ text: 'CREATE', id: 'create' }, { text: ' TABLE ' }, { text: item.table, id: 'def-table' }, { text: ' ( ' }];
  item.fields.forEach((field, i) => {
    if (i > 0) pieces.push({ text: ',', id: 'def-separator' }, { text: ' ' });
    pieces.push({ text: field.name, id: `def-field-${i}` }, { text: ` ${field.type}` });
  });
  pieces.push({ text: ' )' });
  return pieces;
}

/** "SELECT price, COUNT(name) AS COUNT_name FROM people ORDER BY price ASC" as pieces. */
function sqlPieces(item: Item): Piece[] {
  const pieces: Piece[] = [{ text: 'SELECT' }];
  item.select.forEach((s, i) => {
    if (i > 0) pieces.push({ text: ',', id: i === 1 ? 'sql-first-separator' : undefined });
    const name = item.fields[s.field].name;
    if (s.aggregate === '') pieces.push({ text: ` ${name}`, id: `sql-field-${s.field}` });
    else pieces.push({ text: ` ${s.aggregate}(${name}) AS ${s.aggregate}_${name}` });
  });
  pieces.push({ text: ' FROM' }, { text: ` ${item.table}`, id: 'sql-table' });
  if (item.orderBy !== null) {
    pieces.push(
      { text: ' ORDER BY' },
      { text: ` ${item.fields[item.orderBy.field].name}`, id: 'sql-order-field' },
      { text: item.orderBy.asc ? ' ASC' : ' DESC', id: 'sql-order-direction' },
    );
  }
  return pieces;
}

/** What a feature corrupts (piece ids → replacement text), where the answer is, and the corrupted answer. */
interface Corruption {
  replace: Map<string, string>;
  answerPiece: string;
  wrongAnswer: string;
}

interface Vocabulary {
  tables: string[];
  fields: string[];
  wrongTables: string[];
  wrongFields: string[];
  createWords: string[];
}

/** The first select item without an aggregate: the field whose name the SQL writes on its own. */
const plainSelectField = (item: Item) => item.select.find((s) => s.aggregate === '')?.field;

function corruptionFor(feature: TinySqlFeature, item: Item, random: Random, words: Vocabulary): Corruption | string {
  const tableWords = new Set([item.table, TABLE_SYNONYMS[item.table]]);
  const fieldWords = new Set(item.fields.flatMap((f) => [f.name, FIELD_SYNONYMS[f.name]]));
  const otherTable = () => {
    const choices = words.wrongTables.filter((t) => !tableWords.has(t));
    return choices.length === 0 ? null : random.pick(choices);
  };
  const otherField = () => {
    const choices = words.wrongFields.filter((f) => !fieldWords.has(f));
    return choices.length === 0 ? null : random.pick(choices);
  };
  switch (feature) {
    case 'EngTableName':
    case 'DefTableName': {
      const wrong = otherTable();
      if (wrong === null) return 'no other table name';
      const piece = feature === 'EngTableName' ? 'eng-table' : 'def-table';
      return { replace: new Map([[piece, wrong]]), answerPiece: 'sql-table', wrongAnswer: ` ${wrong}` };
    }
    case 'EngFieldName':
    case 'DefFieldName': {
      const field = plainSelectField(item);
      if (field === undefined) return 'every selected field is aggregated';
      const wrong = otherField();
      if (wrong === null) return 'no other field name';
      // EngFieldName corrupts every English mention of the field (TinySQL replaces them all), DefFieldName its definition.
      const replace = new Map([[feature === 'EngFieldName' ? `eng-field-${field}` : `def-field-${field}`, wrong]]);
      if (feature === 'EngFieldName' && item.orderBy?.field === field) replace.set('eng-order-field', wrong);
      return { replace, answerPiece: `sql-field-${field}`, wrongAnswer: ` ${wrong}` };
    }
    case 'DefCreateTable': {
      if (words.createWords.length === 0) return 'no replacement for CREATE of the same token count';
      const wrong = random.pick(words.createWords);
      const other = otherTable();
      if (other === null) return 'no other table name';
      return { replace: new Map([['create', wrong]]), answerPiece: 'sql-table', wrongAnswer: ` ${other}` };
    }
    case 'DefFieldSeparator': {
      if (item.select.length < 2) return 'one selected field: no separator in the SQL';
      const wrong = random.pick(WRONG_SEPARATORS);
      return { replace: new Map([['def-separator', wrong]]), answerPiece: 'sql-first-separator', wrongAnswer: wrong };
    }
    case 'DefOrderByField': {
      if (item.orderBy === null) return 'no ORDER BY';
      const wrong = otherField();
      if (wrong === null) return 'no other field name';
      return { replace: new Map([['eng-order-field', wrong]]), answerPiece: 'sql-order-field', wrongAnswer: ` ${wrong}` };
    }
    case 'DefOrderByDirection': {
      if (item.orderBy === null) return 'no ORDER BY';
      const asc = item.orderBy.asc;
      return {
        replace: new Map([['eng-order-direction', asc ? 'descending' : 'ascending']]),
        answerPiece: 'sql-order-direction',
        wrongAnswer: asc ? ' DESC' : ' ASC',
      };
    }
  }
}

const INSTRUCTION = '### Instruction: ';
const CONTEXT = ' ### Context: ';
const RESPONSE = ' ### Response: ';

/** Renders the prompt pieces, with the replacements when given, and records where the corrupted pieces are. */
function render(pieces: Piece[], corrupted: Map<string, string>, applied: boolean): { text: string; ranges: SourceRange[] } {
  let text = '';
  const ranges: SourceRange[] = [];
  for (const piece of pieces) {
    const replacement = piece.id === undefined ? undefined : corrupted.get(piece.id);
    const start = text.length;
    text += applied && replacement !== undefined ? replacement : piece.text;
    if (replacement !== undefined) ranges.push({ start, end: text.length });
  }
  return { text, ranges };
}

const overlaps = (token: Token, ranges: SourceRange[]) => ranges.some((r) => token.start < r.end && r.start < token.end);

/** One candidate: the example, or why it cannot be used with this tokenizer. */
function buildExample(
  item: Item,
  feature: TinySqlFeature,
  commandSet: CommandSet,
  corruption: Corruption,
  tokenizer: Tokenizer,
  line: number,
): TinySqlExample | string {
  const sql = sqlPieces(item);
  const answerAt = sql.findIndex((p) => p.id === corruption.answerPiece);
  if (answerAt < 0) return 'the answer is not in the SQL';
  const promptPieces: Piece[] = [
    { text: INSTRUCTION },
    ...englishPieces(item),
    { text: CONTEXT },
    ...contextPieces(item),
    { text: RESPONSE },
    ...sql.slice(0, answerAt),
  ];
  const clean = render(promptPieces, corruption.replace, false);
  const corrupted = render(promptPieces, corruption.replace, true);
  if (clean.ranges.length === 0 || clean.text === corrupted.text) return 'nothing to corrupt';
  const continuation = sql
    .slice(answerAt)
    .map((p) => p.text)
    .join('');

  const cleanTokens = tokenizer.encode(clean.text);
  const corruptedTokens = tokenizer.encode(corrupted.text);
  if (cleanTokens.length !== corruptedTokens.length) return 'clean and corrupted token counts differ';
  let differing = 0;
  for (let i = 0; i < cleanTokens.length; i += 1) {
    if (cleanTokens[i].id === corruptedTokens[i].id) continue;
    differing += 1;
    if (!overlaps(cleanTokens[i], clean.ranges) || !overlaps(corruptedTokens[i], corrupted.ranges)) return 'a token outside the corrupted words differs';
  }
  if (differing === 0) return 'the corrupted prompt has the same tokens';
  // The prompt must end at a token boundary of the whole text, the answer token next.
  const fullIds = tokenizer.ids(clean.text + continuation);
  if (!cleanTokens.every((t, i) => fullIds[i] === t.id)) return 'the prompt does not end at a token boundary';
  const answerId = fullIds[cleanTokens.length];
  const wrongIds = tokenizer.ids(corruption.wrongAnswer, { addSpecialTokens: false });
  if (answerId === undefined || wrongIds.length === 0) return 'no answer token';
  const correct = tokenizer.tokenText(answerId);
  const incorrect = tokenizer.tokenText(wrongIds[0]);
  if (answerId === wrongIds[0]) return 'the answers are the same token';
  const single = (text: string, id: number) => {
    const ids = tokenizer.ids(text, { addSpecialTokens: false });
    return ids.length === 1 && ids[0] === id;
  };
  if (!single(correct, answerId) || !single(incorrect, wrongIds[0])) return 'an answer is not one token on its own';
  return {
    clean: clean.text,
    corrupted: corrupted.text,
    correct,
    incorrect,
    line,
    feature,
    commandSet,
    sql: sql.map((p) => p.text).join(''),
    continuation,
    corruptedRanges: { clean: clean.ranges, corrupted: corrupted.ranges },
    answerPosition: cleanTokens.length,
  };
}

/** Words that are one token with a leading space (" people"), as TinySQL requires of every name. */
function singleTokenWords(tokenizer: Tokenizer, words: readonly string[]): string[] {
  return words.filter((w) => tokenizer.ids(` ${w}`, { addSpecialTokens: false }).length === 1);
}

/**
 * `count` examples of a feature from a seed. Candidates whose tokenization would break the pairing (unequal
 * token counts, other tokens changing, an answer that is not one token, a prompt not ending at a token
 * boundary) are skipped and counted, never altered; names that are not one token are never drawn.
 */
export function generateTinySql(tokenizer: Tokenizer, options: TinySqlOptions): TinySqlResult {
  const commandSet = options.commandSet ?? 1;
  if (![1, 2, 3].includes(commandSet)) throw new InputError(`the command set must be 1, 2 or 3, got ${commandSet}`);
  if (!Number.isInteger(options.count) || options.count < 1) throw new InputError(`the number of examples must be a positive integer, got ${options.count}`);
  const feature = options.feature;
  if ((feature === 'DefOrderByField' || feature === 'DefOrderByDirection') && commandSet < 2) {
    throw new InputError(`${feature} needs ORDER BY: use command set 2 or 3`);
  }
  const synonyms = options.useSynonyms ?? false;
  const fieldCount = options.fieldCount ?? 2;
  const novel = options.useNovelNames ?? false;
  // Every word the prompts use as a name is one token with its leading space; synonyms too, when used.
  const tables = singleTokenWords(tokenizer, TABLE_NAMES).filter((t) => !synonyms || singleTokenWords(tokenizer, [TABLE_SYNONYMS[t]]).length === 1);
  const fields = singleTokenWords(tokenizer, FIELD_NAMES).filter((f) => !synonyms || singleTokenWords(tokenizer, [FIELD_SYNONYMS[f]]).length === 1);
  const createCount = tokenizer.ids(' CREATE', { addSpecialTokens: false }).length;
  const words: Vocabulary = {
    tables,
    fields,
    wrongTables: novel ? singleTokenWords(tokenizer, NOVEL_TABLE_NAMES) : tables,
    wrongFields: novel ? singleTokenWords(tokenizer, NOVEL_FIELD_NAMES) : fields,
    createWords: WRONG_CREATE_WORDS.filter((w) => tokenizer.ids(` ${w}`, { addSpecialTokens: false }).length === createCount),
  };
  if (tables.length < 2 || fields.length < fieldCount + 1) {
    throw new InputError(`too few table or field names are one token for this tokenizer (${tables.length} tables, ${fields.length} fields)`);
  }

  const random = seededRandom(options.seed);
  const examples: TinySqlExample[] = [];
  const skipped: Record<string, number> = {};
  const maxAttempts = options.count * 20 + 200;
  for (let attempt = 0; examples.length < options.count && attempt < maxAttempts; attempt += 1) {
    const item = makeItem(random, commandSet, fieldCount, synonyms, words);
    const corruption = corruptionFor(feature, item, random, words);
    const example = typeof corruption === 'string' ? corruption : buildExample(item, feature, commandSet, corruption, tokenizer, examples.length + 1);
    if (typeof example === 'string') skipped[example] = (skipped[example] ?? 0) + 1;
    else examples.push(example);
  }
  if (examples.length < options.count) {
    const reasons = Object.entries(skipped)
      .map(([reason, n]) => `${reason} (${n})`)
      .join(', ');
    throw new InputError(
      `could make only ${examples.length} of ${options.count} ${feature} examples (command set ${commandSet}) with this tokenizer; candidates skipped: ${reasons}`,
    );
  }
  return { examples, skipped };
}
