// Builds the IOI demo model's tokenizer and its training data.
//   npx tsx scripts/ioi-model/make-data.ts --out DIR [--train 60000] [--seed 1]
// Writes DIR/tokenizer/{tokenizer.json,tokenizer_config.json}, DIR/train.jsonl and DIR/valid.jsonl (whole texts:
// {"prompt": [first id], "completion": [every later id]}, so the loss covers every token, see README), and two
// held-out sets of {"prompt": ids, "completion": [indirect object id], "incorrect": [subject id]}:
//   heldout.jsonl            the project's generator (`atp generate ioi`, its templates) with seeds the training
//                            data never saw; none of its prompts (clean or corrupted) occurs in the training set
//   heldout-templates.jsonl  two templates that never occur in training (new combinations of trained phrases)
// Training excludes every prompt `atp generate ioi` makes with seeds 0 to 99 (256 examples each), so tests and
// the model card's validation run on prompts the model has not seen.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ModelTokenizer } from '../../src/engine/model/tokenizer';
import { generateIoi, IOI_NAMES, IOI_OBJECTS, IOI_PLACES, IOI_TEMPLATES } from '../../src/lib/dataset/ioi';
import { seededRandom } from '../../src/lib/dataset/random';
import { buildWordTokenizer, preTokens } from '../demo-model/wordTokenizer';

const { values } = parseArgs({
  options: { out: { type: 'string' }, train: { type: 'string', default: '60000' }, seed: { type: 'string', default: '1' } },
});
if (!values.out) throw new Error('--out is required');
const out = values.out;
const trainCount = Number(values.train);
const seed = Number(values.seed);

/** Wang et al.'s IOI templates (2022), written like the project's: [A] [B] the names in order, [S] the subject. */
const WANG_TEMPLATES = [
  'Then, [A] and [B] went to the [PLACE]. [S] gave [OBJECT] to',
  'Then, [A] and [B] had a lot of fun at the [PLACE]. [S] gave [OBJECT] to',
  'Then, [A] and [B] were working at the [PLACE]. [S] decided to give [OBJECT] to',
  'Then, [A] and [B] were thinking about going to the [PLACE]. [S] wanted to give [OBJECT] to',
  'Then, [A] and [B] had a long argument, and afterwards [S] said to',
  'While [A] and [B] were commuting to the [PLACE], [S] gave [OBJECT] to',
  'After the lunch, [A] and [B] went to the [PLACE]. [S] gave [OBJECT] to',
  'Afterwards, [A] and [B] went to the [PLACE]. [S] gave [OBJECT] to',
  'The [PLACE] [A] and [B] went to had [OBJECT]. [S] gave it to',
  'When [A] and [B] got [OBJECT] at the [PLACE], [S] decided to give the thing to',
];
/** Templates kept out of training: new combinations of phrases the training templates use. */
const HELD_OUT_TEMPLATES = [
  'While [A] and [B] were working at the [PLACE], [S] decided to give [OBJECT] to',
  'After the lunch, [A] and [B] had a lot of fun at the [PLACE]. [S] wanted to give [OBJECT] to',
];
const TRAIN_TEMPLATES = [...IOI_TEMPLATES, ...WANG_TEMPLATES];

interface IoiText {
  prompt: string;
  io: string;
  subject: string;
}

/** Texts from templates: names, place and object at random, ABBA and BABA orders equally often. */
function ioiTexts(templates: readonly string[], count: number, textSeed: number): IoiText[] {
  const random = seededRandom(textSeed);
  return Array.from({ length: count }, () => {
    const template = random.pick(templates);
    const [io, subject] = random.sample(IOI_NAMES, 2);
    const [first, second] = random.int(2) === 0 ? [io, subject] : [subject, io];
    const prompt = template
      .replace('[A]', first)
      .replace('[B]', second)
      .replace('[PLACE]', random.pick(IOI_PLACES))
      .replace('[OBJECT]', random.pick(IOI_OBJECTS))
      .replace('[S]', subject);
    return { prompt, io, subject };
  });
}

// The generator's own prompts for seeds 0-99 (clean and corrupted): never trained on.
const generatorPrompts = (tokenizer: ModelTokenizer, seeds: number[]) =>
  seeds.flatMap((s) =>
    generateIoi(tokenizer, { count: 256, seed: s }).flatMap((e): IoiText[] => [
      { prompt: e.clean, io: e.indirectObject, subject: e.subject },
      { prompt: e.corrupted, io: e.subject, subject: e.indirectObject },
    ]),
  );

// The tokenizer: every pre-token of the training templates, and every name, place and object word with and
// without a leading space, is one token.
const words = new Set<string>();
for (const template of [...TRAIN_TEMPLATES, ...HELD_OUT_TEMPLATES]) {
  for (const piece of preTokens(template.replace(/\[(A|B|S|PLACE|OBJECT)\]/g, ' '))) if (piece.trim()) words.add(piece);
}
for (const word of [
  ...IOI_NAMES,
  ...IOI_PLACES,
  ...IOI_OBJECTS.flatMap((o) => o.split(' ')),
  'When',
  'After',
  'While',
  'Then',
  'The',
  'Friends',
  'Afterwards',
]) {
  words.add(word);
  words.add(` ${word}`);
}
const files = buildWordTokenizer(words);
const tokenizerDir = join(out, 'tokenizer');
mkdirSync(tokenizerDir, { recursive: true });
writeFileSync(join(tokenizerDir, 'tokenizer.json'), files.tokenizerJson);
writeFileSync(join(tokenizerDir, 'tokenizer_config.json'), files.tokenizerConfigJson);
const tokenizer = ModelTokenizer.fromDir(tokenizerDir);
const ids = (text: string) => tokenizer.ids(text, { addSpecialTokens: false });
const oneToken = (text: string) => {
  const t = ids(text);
  if (t.length !== 1) throw new Error(`"${text}" is ${t.length} tokens, not one`);
  return t[0];
};
for (const name of IOI_NAMES) oneToken(` ${name}`);

const excluded = new Set(
  generatorPrompts(
    tokenizer,
    Array.from({ length: 100 }, (_, i) => i),
  ).map((t) => t.prompt),
);
const heldOut = [...new Map(generatorPrompts(tokenizer, [1000, 1001]).map((t) => [t.prompt, t])).values()].slice(0, 500);
const heldOutTemplates = [...new Map(ioiTexts(HELD_OUT_TEMPLATES, 600, seed * 100 + 77).map((t) => [t.prompt, t])).values()].slice(0, 500);
for (const t of [...heldOut, ...heldOutTemplates]) excluded.add(t.prompt);

const all = [...new Map(ioiTexts(TRAIN_TEMPLATES, trainCount + 10000, seed * 100).map((t) => [t.prompt, t])).values()].filter((t) => !excluded.has(t.prompt));
const train = all.slice(0, trainCount);
const valid = all.slice(trainCount, trainCount + 256);
if (valid.length < 256) throw new Error('not enough distinct texts for validation');
// Every held-out word is a trained token (held-out templates recombine trained phrases).
const trainedIds = new Set(train.flatMap((t) => ids(t.prompt)));
for (const t of heldOutTemplates)
  for (const id of ids(t.prompt)) if (!trainedIds.has(id)) throw new Error(`held-out token ${id} never occurs in training: ${t.prompt}`);

const whole = (t: IoiText) => {
  const all = [...ids(t.prompt), oneToken(` ${t.io}`)];
  return { prompt: all.slice(0, 1), completion: all.slice(1) };
};
const question = (t: IoiText) => ({ prompt: ids(t.prompt), completion: [oneToken(` ${t.io}`)], incorrect: [oneToken(` ${t.subject}`)], text: t.prompt });
const write = (name: string, rows: object[]) => writeFileSync(join(out, name), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
write('train.jsonl', train.map(whole));
write('valid.jsonl', valid.map(whole));
write('heldout.jsonl', heldOut.map(question));
write('heldout-templates.jsonl', heldOutTemplates.map(question));
const summary = {
  vocabSize: files.vocabSize,
  endOfTextId: files.endOfTextId,
  train: train.length,
  valid: valid.length,
  heldout: heldOut.length,
  heldoutTemplates: heldOutTemplates.length,
  templates: TRAIN_TEMPLATES.length,
  seed,
  longest: Math.max(...train.map((t) => ids(t.prompt).length + 1)),
};
writeFileSync(join(out, 'data.json'), JSON.stringify(summary, null, 2));
process.stdout.write(`${JSON.stringify(summary)}\n`);
