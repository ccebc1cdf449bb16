// TinySQL's vocabularies (withmartian/TinySQL, TinySQL/corrupt_data/clean_corrupt_data.py and
// TinySQL/training_data/fragments/*.py): the words CorruptFeatureTestGenerator builds its examples from.

export const TABLE_NAMES = ['people', 'inventory', 'orders', 'products', 'items', 'users', 'links'] as const;

export const TABLE_SYNONYMS: Readonly<Record<string, string>> = {
  people: 'children',
  inventory: 'stock',
  orders: 'requests',
  products: 'goods',
  items: 'objects',
  users: 'customers',
  links: 'connections',
};

/** Words not seen in training, used as corrupted table names with use-novel-names. */
export const NOVEL_TABLE_NAMES = ['star', 'very', 'apple', 'blue', 'orange'] as const;

export const FIELD_NAMES = [
  'price',
  'count',
  'amount',
  'total',
  'name',
  'code',
  'number',
  'label',
  'type',
  'category',
  'status',
  'title',
  'date',
  'value',
  'rating',
  'color',
  'size',
  'weight',
  'duration',
] as const;

export const FIELD_SYNONYMS: Readonly<Record<string, string>> = {
  price: 'cost',
  count: 'quantity',
  amount: 'total',
  total: 'sum',
  name: 'title',
  code: 'reference',
  number: 'identifier',
  label: 'tag',
  type: 'category',
  category: 'class',
  status: 'state',
  title: 'heading',
  date: 'time',
  value: 'amount',
  rating: 'score',
  color: 'shade',
  size: 'dimension',
  weight: 'mass',
  duration: 'period',
};

/** Words not seen in training, used as corrupted field names with use-novel-names. */
export const NOVEL_FIELD_NAMES = ['hammer', 'little', 'wolf', 'sky', 'yellow'] as const;

export const FIELD_TYPES = ['INT', 'CHAR', 'TIME', 'TEXT', 'JSON'] as const;

/** DefCreateTable's replacements for CREATE. */
export const WRONG_CREATE_WORDS = ['MAKE', 'BUILD', 'GENERATE', 'CONSTRUCT'] as const;

/** DefFieldSeparator's replacement for the comma (TinySQL lists only ":" as active). */
export const WRONG_SEPARATORS = [':'] as const;

export type Aggregate = 'SUM' | 'AVG' | 'MIN' | 'MAX' | 'COUNT' | '';

/**
 * The aggregates TinySQL allows per column type (fragments/field_names.py, get_sql_select_fields). Types not in
 * its table (INT and TIME among the generator's five) get the default, COUNT or none.
 */
export const AGGREGATES_BY_TYPE: Readonly<Record<string, readonly Aggregate[]>> = {
  CHAR: ['MIN', 'MAX', 'COUNT', ''],
  TEXT: ['MIN', 'MAX', 'COUNT', ''],
  JSON: ['COUNT', ''],
};
export const DEFAULT_AGGREGATES: readonly Aggregate[] = ['COUNT', ''];

/** English phrases for each aggregate (a selection of fragments/english_aggregates.py's lists). */
export const AGGREGATE_PHRASES: Readonly<Record<Exclude<Aggregate, ''>, readonly string[]>> = {
  MAX: ['max', 'highest', 'maximum', 'greatest', 'largest', 'peak', 'biggest', 'latest', 'most expensive', 'most recent', 'record high'],
  MIN: ['min', 'lowest', 'minimum', 'smallest', 'least', 'shortest', 'earliest', 'first', 'oldest', 'least expensive', 'record low'],
  AVG: ['avg', 'average', 'mean', 'typical', 'median', 'on average', 'expected value', 'average value'],
  SUM: ['sum', 'total', 'sum of', 'combined', 'aggregate', 'cumulative', 'overall amount', 'grand total'],
  COUNT: ['count', 'number of', 'total number', 'count of', 'how many', 'tally', 'frequency', 'total count'],
};

/**
 * Command set 3's English templates ([fields], [table]): a selection of fragments/english_select_from.py's
 * list, which TinySQL's aggregate examples draw from.
 */
export const SELECT_FROM_TEMPLATES = [
  'SELECT [fields] FROM [table]',
  'Show me [fields] from [table]',
  'Display [fields] from [table]',
  'List [fields] from [table]',
  'Get [fields] from [table]',
  'Fetch [fields] from [table]',
  "What's the [fields] from [table]?",
  'What are the [fields] in [table]?',
  'Could you show me [fields] from [table]?',
  'I need to see [fields] from [table]',
  'Give me [fields] from [table]',
  'From [table] show me [fields]',
  'In the [table] table, display [fields]',
  'Looking at [table], I need [fields]',
  'Just the [fields] from [table] please',
  '[fields] from [table]',
  'Tell me [fields] from [table]',
] as const;
