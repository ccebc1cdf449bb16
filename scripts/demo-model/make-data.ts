// Builds the demo model's tokenizer and its training data from the project's own TinySQL generator (CS1).
//   npx tsx scripts/demo-model/make-data.ts --out DIR [--train 20000] [--seed 1]
// Writes DIR/tokenizer/{tokenizer.json,tokenizer_config.json}, DIR/train.jsonl, DIR/valid.jsonl and
// DIR/heldout.jsonl ({"prompt": ids, "completion": ids}: the prompt ends with "### Response:", the completion is
// the SQL statement and the end-of-text token). Held-out prompts never occur in the training set.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ModelTokenizer } from '../../src/engine/model/tokenizer';
import { generateTinySql, type TinySqlFeature, vocabulary } from '../../src/lib/dataset/tinysql';
import { writeGpt2TokenizerFiles } from '../../test/support/gpt2Tokenizer';
import { buildWordTokenizer, preTokens } from './wordTokenizer';

const { values } = parseArgs({
  options: { out: { type: 'string' }, train: { type: 'string', default: '20000' }, seed: { type: 'string', default: '1' } },
});
if (!values.out) throw new Error('--out is required');
const out = values.out;
const trainCount = Number(values.train);
const seed = Number(values.seed);

const FEATURES: TinySqlFeature[] = ['EngTableName', 'EngFieldName', 'DefTableName', 'DefFieldName'];
const RESPONSE = '### Response:';

/** Full CS1 texts (prompt and SQL) from the generator: its clean prompt plus the rest of the clean SQL. */
function texts(tokenizer: ModelTokenizer, count: number, seedBase: number): string[] {
  const perFeature = Math.ceil(count / FEATURES.length);
  return FEATURES.flatMap((feature, i) =>
    generateTinySql(tokenizer, { feature, commandSet: 1, count: perFeature, seed: seedBase + i }).examples.map((e) => e.clean + e.continuation),
  ).slice(0, count);
}

// Pass 1: the words of the task, from text made with GPT-2's tokenizer, plus every vocabulary word (novel
// names and synonyms too, which the training text does not use) with and without a leading space.
const gpt2Dir = join(out, 'gpt2-tokenizer');
writeGpt2TokenizerFiles(gpt2Dir);
const words = new Set<string>();
for (const text of texts(ModelTokenizer.fromDir(gpt2Dir), 4000, 1000)) for (const piece of preTokens(text)) words.add(piece);
const names = [
  ...vocabulary.TABLE_NAMES,
  ...Object.values(vocabulary.TABLE_SYNONYMS),
  ...vocabulary.NOVEL_TABLE_NAMES,
  ...vocabulary.FIELD_NAMES,
  ...Object.values(vocabulary.FIELD_SYNONYMS),
  ...vocabulary.NOVEL_FIELD_NAMES,
  ...vocabulary.FIELD_TYPES,
  ...vocabulary.WRONG_CREATE_WORDS,
  'CREATE',
  'TABLE',
  'SELECT',
  'FROM',
  'ORDER',
  'BY',
  'ASC',
  'DESC',
];
for (const name of names) {
  words.add(name);
  words.add(` ${name}`);
}
const files = buildWordTokenizer(words);
const tokenizerDir = join(out, 'tokenizer');
mkdirSync(tokenizerDir, { recursive: true });
writeFileSync(join(tokenizerDir, 'tokenizer.json'), files.tokenizerJson);
writeFileSync(join(tokenizerDir, 'tokenizer_config.json'), files.tokenizerConfigJson);
const tokenizer = ModelTokenizer.fromDir(tokenizerDir);

// Pass 2: the data, tokenized by the demo tokenizer.
function encode(text: string): { prompt: number[]; completion: number[] } {
  const cut = text.indexOf(RESPONSE) + RESPONSE.length;
  const prompt = tokenizer.ids(text.slice(0, cut), { addSpecialTokens: false });
  const completion = tokenizer.ids(text.slice(cut), { addSpecialTokens: false });
  const whole = tokenizer.ids(text, { addSpecialTokens: false });
  if (whole.join() !== [...prompt, ...completion].join()) throw new Error(`the split at "${RESPONSE}" is not a token boundary: ${text}`);
  return { prompt, completion: [...completion, files.endOfTextId] };
}
const write = (name: string, rows: string[]) => writeFileSync(join(out, name), rows.map((t) => JSON.stringify(encode(t))).join('\n') + '\n');

const train = [...new Set(texts(tokenizer, trainCount, seed * 100))];
const seen = new Set(train.map((t) => t.slice(0, t.indexOf(RESPONSE))));
const unseen = [...new Set(texts(tokenizer, 4000, seed * 100 + 50))].filter((t) => !seen.has(t.slice(0, t.indexOf(RESPONSE))));
write('train.jsonl', train);
write('valid.jsonl', unseen.slice(0, 256));
write('heldout.jsonl', unseen.slice(256, 756));
writeFileSync(
  join(out, 'data.json'),
  JSON.stringify(
    { vocabSize: files.vocabSize, endOfTextId: files.endOfTextId, train: train.length, valid: 256, heldout: Math.min(500, unseen.length - 256), seed },
    null,
    2,
  ),
);
process.stdout.write(
  `vocab ${files.vocabSize}, train ${train.length}, held out ${Math.min(500, unseen.length - 256)}; longest ${Math.max(...train.map((t) => tokenizer.ids(t).length + 1))} tokens\n`,
);
