import { seededRandom } from './random';
// Strings for comparing tokenizers with the Rust oracle: the prompts the engine is built for (IOI, SQL)
// and the text that breaks offset bookkeeping (multi-byte and astral characters, combining marks, runs of
// whitespace, special tokens written into the text), plus seeded random mixtures of all of it.

const NAMES = ['John', 'Mary', 'Martin', 'Amy', 'Tom', 'James', 'Dan', 'Sid', 'Kristen', 'Lisa', 'Michael', 'Rachel'];
const PLACES = ['shops', 'park', 'store', 'school', 'restaurant', 'hospital', 'office', 'station'];
const OBJECTS = ['bag', 'drink', 'ring', 'kiss', 'bone', 'basketball', 'computer', 'necklace', 'snack', 'apple'];
const IOI_TEMPLATES = [
  'When {A} and {B} went to the {PLACE}, {B} gave the {OBJECT} to',
  'After {A} and {B} went to the {PLACE}, {B} gave a {OBJECT} to',
  'Then, {A} and {B} had a lot of fun at the {PLACE}. {B} gave a {OBJECT} to',
  'While {A} and {B} were working at the {PLACE}, {B} decided to give a {OBJECT} to',
  'Friends {A} and {B} found a {OBJECT} at the {PLACE}. {B} gave it to',
];

const TABLES: { name: string; columns: [string, string][] }[] = [
  {
    name: 'people',
    columns: [
      ['price', 'INT'],
      ['name', 'TEXT'],
    ],
  },
  {
    name: 'orders',
    columns: [
      ['id', 'INT'],
      ['total', 'REAL'],
      ['customer', 'TEXT'],
    ],
  },
  {
    name: 'city_stats',
    columns: [
      ['population', 'INT'],
      ['city', 'VARCHAR(64)'],
    ],
  },
];

export function ioiPrompts(): string[] {
  const prompts: string[] = [];
  const random = seededRandom(7);
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
  for (const template of IOI_TEMPLATES) {
    for (let i = 0; i < 8; i += 1) {
      const a = pick(NAMES);
      let b = pick(NAMES);
      while (b === a) b = pick(NAMES);
      prompts.push(template.replaceAll('{A}', a).replaceAll('{B}', b).replaceAll('{PLACE}', pick(PLACES)).replaceAll('{OBJECT}', pick(OBJECTS)));
    }
  }
  return ['When John and Mary went to the shops, John gave the bag to', 'After Martin and Amy went to the park, Amy gave a drink to', ...prompts];
}

export function sqlPrompts(): string[] {
  const prompts: string[] = [];
  for (const table of TABLES) {
    const columns = table.columns.map(([name, type]) => `${name} ${type}`).join(', ');
    const names = table.columns.map(([name]) => name);
    for (const question of [`show me the ${names.join(' and ')} from the ${table.name} table`, `how many rows are in ${table.name}?`]) {
      prompts.push(`### Instruction: ${question} ### Context: CREATE TABLE ${table.name} ( ${columns} ) ### Response: SELECT`);
      prompts.push(`### Instruction:\n${question}\n\n### Context:\nCREATE TABLE ${table.name} (${columns});\n\n### Response:\nSELECT`);
    }
  }
  return prompts;
}

/** Hand-written edge cases. */
export function edgeCaseStrings(): string[] {
  return [
    '',
    ' ',
    '   ',
    'a',
    ' Mary',
    'Mary ',
    '  leading and trailing  ',
    'repeated     spaces   between    words',
    'tabs\tand\t\ttabs',
    'new\nlines\n\nand\r\nCRLF\r\n',
    '\n\n\n',
    ' \n \t \r\n  ',
    'digits 0123456789 and 3.14159 and 1,000,000 and 2024-06-01',
    '12345678901234567890',
    "It's John's; they're, we've, I'm, you'll, he'd",
    "IT'S JOHN'S; THEY'RE WE'VE I'M YOU'LL HE'D",
    'café naïve résumé façade über Ångström',
    'cafe\u0301 nai\u0308ve A\u030angstro\u0308m', // decomposed accents (NFC changes these)
    'e\u0301\u0323 o\u0323\u0302 x\u0301\u0301', // stacked combining marks, reordered by normalization
    '\u212b \u2126 \u00c5 \u03a9', // Angstrom and Ohm signs, canonically equivalent to Å and Ω
    '\u1100\u1161\u11a8 \uac01', // Hangul jamo (composed by NFC) and a precomposed syllable
    '日本語のテキストです。中文文本。한국어 텍스트.',
    '𠀋𡈁𢌞 astral CJK 𪚲',
    'emoji 😀 😃😄 🎉🎉🎉 👍🏽',
    'family 👨‍👩‍👧‍👦 and 🏳️‍🌈 and 👩🏽‍💻 flags 🇬🇧🇯🇵',
    'keycap 1️⃣ heart ❤️ text ❤︎',
    '<|endoftext|>',
    'before<|endoftext|>after',
    'a <|endoftext|> b <|endoftext|><|endoftext|> c',
    '<|begin_of_text|>Hello<|end_of_text|>',
    '<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n',
    '<think>\nreasoning\n</think>',
    // Added tokens with lstrip / rstrip / normalized in the GPT-2 variant the tests build (plain text elsewhere).
    'a <mask> b',
    'a   <mask>b',
    ' \t<mask> x',
    'x <sep>   y',
    'x<sep>\n\ny <sep>',
    'le cafe\u0301 est un café',
    'un café  <mask>  <sep>  café<mask><sep>',
    '<|endoftext',
    'symbols ~!@#$%^&*()_+-=[]{}|;:\'",.<>/?`',
    'math ∑ ∫ √ ≤ ≥ ≠ ∞ π ℝ → ⇒',
    'Ελληνικά Русский العربية עברית हिन्दी ไทย',
    'nbsp\u00a0here and ideographic\u3000space and thin\u2009space',
    'zero\u200bwidth\u200cjoiners\u200d and\ufeffbom',
    'next line\u0085and line\u2028separator',
    '\u0000null and \u0001 control \u007f chars',
    'lone surrogates a\ud800b and x\udc00',
    'mongolian\u180evowel soft\u00adhyphen',
    'other digits ١٢٣ ²³ Ⅻ ⅔ ５６',
    'a'.repeat(200),
    'ab '.repeat(100),
    'def tokenize(text: str) -> list[int]:\n    return [ord(c) for c in text]  # comment\n',
    '    indented code\n\tif (x) {\n\t\treturn y;\n\t}\n',
    'https://example.com/path?query=1&other=two#fragment',
    'email@example.com @mention #hashtag $100 50% C++ C#',
  ];
}

// Pieces the random strings are built from: each kind of character the tokenizers treat specially.
const RANDOM_PIECES = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  ...' .,;:!?\'"-()[]{}<>/\\|@#$%^&*_+=~`',
  ' ',
  '  ',
  '   ',
  '\t',
  '\n',
  '\r\n',
  '\n\n',
  'the',
  ' the',
  'John',
  ' Mary',
  "'s",
  "'LL",
  "'S",
  "'ve",
  'SELECT',
  ' FROM',
  '123',
  '4567',
  'é',
  'e\u0301',
  'ñ',
  'n\u0303',
  'ü',
  'Å',
  'A\u030a',
  '\u212b',
  'ß',
  'œ',
  '日',
  '本',
  '語',
  '中',
  '文',
  'の',
  'テ',
  '한',
  '\u1100\u1161',
  '𠀋',
  '😀',
  '🎉',
  '👍🏽',
  '👨‍👩‍👧',
  '🏳️‍🌈',
  '🇯🇵',
  '❤️',
  '1️⃣',
  'Ω',
  'ж',
  'ع',
  'ה',
  'क्ष',
  'ไ',
  '∑',
  '→',
  '\u00a0',
  '\u3000',
  '\u200b',
  '\u200d',
  '\u2009',
  '<|endoftext|>',
  '<|begin_of_text|>',
  '<|im_start|>',
  '<|im_end|>',
  '<think>',
];

/** Seeded random mixtures of RANDOM_PIECES. */
export function randomStrings(count: number, seed = 20240601): string[] {
  const random = seededRandom(seed);
  const strings: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const length = 1 + Math.floor(random() * 30);
    let text = '';
    for (let j = 0; j < length; j += 1) text += RANDOM_PIECES[Math.floor(random() * RANDOM_PIECES.length)];
    strings.push(text);
  }
  return strings;
}

/** Everything above: a few hundred strings. */
export function tokenizerCorpus(): string[] {
  return [...ioiPrompts(), ...sqlPrompts(), ...edgeCaseStrings(), ...randomStrings(200)];
}
