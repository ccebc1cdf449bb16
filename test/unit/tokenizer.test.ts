// ModelTokenizer against Hugging Face's Rust tokenizers (the `tokenizers` package) as the oracle: the same
// ids, and offsets equal to the oracle's once converted from code points to UTF-16.
//
// One deliberate difference: where the normalizer (Qwen's NFC) rewrites a grapheme cluster, Rust ties each
// composed character to the first original character only (so "e" + U+0301 -> "é" leaves U+0301 outside
// every token), while ModelTokenizer gives such a token the whole cluster. For those strings the test
// expects the oracle's offsets widened to the rewritten clusters they cut into.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as RustTokenizer } from 'tokenizers';
import { ModelTokenizer, type Token } from '../../src/engine/model/tokenizer';
import { InputError } from '../../src/shared/errors';
import { writeGpt2TokenizerFiles, gpt2TokenizerJson } from '../support/gpt2Tokenizer';
import { tokenizerCorpus } from '../support/tokenizerCorpus';
import { LLAMA3_HUB_POST_PROCESSOR, LLAMA3_TOKENIZER_DIR, QWEN3_TOKENIZER_DIR } from '../support/tokenizers';

interface OracleToken {
  id: number;
  start: number;
  end: number;
}

/** The oracle's tokens; its offsets count code points, converted here to UTF-16 code units. */
async function oracleTokens(oracle: RustTokenizer, text: string, addSpecialTokens: boolean): Promise<OracleToken[]> {
  const encoding = await oracle.encode(text, null, { addSpecialTokens });
  const utf16At = [0];
  for (const char of text) utf16At.push(utf16At[utf16At.length - 1] + char.length);
  const ids = encoding.getIds();
  return encoding.getOffsets().map(([start, end], i) => ({ id: ids[i], start: utf16At[start], end: utf16At[end] }));
}

const asOracleTokens = (tokens: Token[]): OracleToken[] => tokens.map(({ id, start, end }) => ({ id, start, end }));

interface Mismatch {
  text: string;
  expected: OracleToken[];
  actual: OracleToken[] | string;
}

/** The UTF-16 ranges of the grapheme clusters that normalization rewrites. */
function rewrittenClusters(text: string, normalize: (text: string) => string): { start: number; end: number }[] {
  const clusters: { start: number; end: number }[] = [];
  for (const { segment, index } of new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)) {
    if (normalize(segment) !== segment) clusters.push({ start: index, end: index + segment.length });
  }
  return clusters;
}

/** The oracle's offsets, each end that falls inside a rewritten cluster moved out to the cluster's edge. */
function widenedToRewrittenClusters(tokens: OracleToken[], text: string, normalize: (text: string) => string): OracleToken[] {
  const clusters = rewrittenClusters(text, normalize);
  const inside = (at: number) => clusters.find((c) => c.start < at && at < c.end);
  return tokens.map((token) => ({
    id: token.id,
    start: inside(token.start)?.start ?? token.start,
    end: inside(token.end)?.end ?? token.end,
  }));
}

/** Every corpus string whose ids or offsets differ from the oracle's (or that throws). */
async function compareWithOracle(
  tokenizer: ModelTokenizer,
  oracle: RustTokenizer,
  texts: string[],
  addSpecialTokens: boolean,
  normalize: ((text: string) => string) | null,
): Promise<Mismatch[]> {
  const mismatches: Mismatch[] = [];
  for (const text of texts) {
    let expected = await oracleTokens(oracle, text, addSpecialTokens);
    if (normalize !== null && normalize(text) !== text) expected = widenedToRewrittenClusters(expected, text, normalize);
    let actual: OracleToken[] | string;
    try {
      actual = asOracleTokens(tokenizer.encode(text, { addSpecialTokens }));
    } catch (error) {
      actual = String(error);
    }
    if (typeof actual === 'string' || !isDeepEqual(actual, expected)) mismatches.push({ text, expected, actual });
  }
  return mismatches;
}

/** Inputs on which the ids alone differ: a disagreement between the JS library and the oracle. */
async function idDisagreements(tokenizer: ModelTokenizer, oracle: RustTokenizer, texts: string[], addSpecialTokens: boolean): Promise<string[]> {
  const disagreements: string[] = [];
  for (const text of texts) {
    const expected = (await oracle.encode(text, null, { addSpecialTokens })).getIds();
    if (!isDeepEqual(tokenizer.ids(text, { addSpecialTokens }), expected)) disagreements.push(text);
  }
  return disagreements;
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepStrictEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

function report(mismatches: Mismatch[]): string {
  return mismatches
    .slice(0, 5)
    .map((m) => `${JSON.stringify(m.text)}\n  oracle: ${JSON.stringify(m.expected)}\n  ours:   ${JSON.stringify(m.actual)}`)
    .join('\n');
}

const CORPUS = tokenizerCorpus();
const LLAMA3_DIR = LLAMA3_TOKENIZER_DIR;
const QWEN3_DIR = QWEN3_TOKENIZER_DIR;

interface Subject {
  name: string;
  dir: string;
  /** Whether encode() puts a BOS first by default. */
  hasBos: boolean;
  /** The tokenizer's normalizer, where it has one. */
  normalize: ((text: string) => string) | null;
  /** Whether its post-processor trims spaces off offsets (so a token's range is its text minus spaces). */
  trimsOffsets: boolean;
  /**
   * Ids the two libraries decode differently (a known disagreement, asserted so it cannot hide): Rust runs
   * a non-special added token's content through the ByteLevel decoder, turning "café" into "caf\uFFFD";
   * the JS library, and so ModelTokenizer, keeps the content as written.
   */
  decodesUnlikeOracle?: number[];
}

const scratch = mkdtempSync(join(tmpdir(), 'tokenizer-test-'));
const GPT2_DIR = join(scratch, 'gpt2');
const GPT2_TRIMMED_DIR = join(scratch, 'gpt2-trim-offsets');
const LLAMA3_HUB_DIR = join(scratch, 'llama3');
const GPT2_VARIANT_DIR = join(scratch, 'gpt2-variant');

const nfc = (text: string) => text.normalize('NFC');
const SUBJECTS: Subject[] = [
  { name: 'GPT-2', dir: GPT2_DIR, hasBos: false, normalize: null, trimsOffsets: false },
  { name: 'GPT-2 with trim_offsets', dir: GPT2_TRIMMED_DIR, hasBos: false, normalize: null, trimsOffsets: true },
  { name: 'Llama 3 with the hub post-processor (BOS)', dir: LLAMA3_HUB_DIR, hasBos: true, normalize: null, trimsOffsets: false },
  { name: 'Llama 3 as @lenml ships it (no BOS)', dir: LLAMA3_DIR, hasBos: false, normalize: null, trimsOffsets: false },
  { name: 'Qwen3 (NFC normalizer)', dir: QWEN3_DIR, hasBos: false, normalize: nfc, trimsOffsets: false },
  {
    name: 'GPT-2 variant: NFC, lstrip/rstrip/normalized added tokens',
    dir: GPT2_VARIANT_DIR,
    hasBos: false,
    normalize: nfc,
    trimsOffsets: false,
    decodesUnlikeOracle: [50259],
  },
];

before(() => {
  writeGpt2TokenizerFiles(GPT2_DIR);
  writeGpt2TokenizerFiles(GPT2_TRIMMED_DIR, { trimOffsets: true });
  mkdirSync(LLAMA3_HUB_DIR);
  const llama3Json = JSON.parse(readFileSync(join(LLAMA3_DIR, 'tokenizer.json'), 'utf8'));
  writeFileSync(join(LLAMA3_HUB_DIR, 'tokenizer.json'), JSON.stringify({ ...llama3Json, post_processor: LLAMA3_HUB_POST_PROCESSOR }));
  writeFileSync(join(LLAMA3_HUB_DIR, 'tokenizer_config.json'), readFileSync(join(LLAMA3_DIR, 'tokenizer_config.json')));

  // Added-token options none of the real tokenizers above use (RoBERTa's <mask> has lstrip, for one).
  const variant = JSON.parse(gpt2TokenizerJson());
  const added = (id: number, content: string, options: object) => ({ id, content, single_word: false, lstrip: false, rstrip: false, ...options });
  variant.normalizer = { type: 'NFC' };
  variant.added_tokens.push(
    added(50257, '<mask>', { lstrip: true, normalized: false, special: true }),
    added(50258, '<sep>', { rstrip: true, normalized: false, special: true }),
    added(50259, 'café', { normalized: true, special: false }),
  );
  mkdirSync(GPT2_VARIANT_DIR);
  writeFileSync(join(GPT2_VARIANT_DIR, 'tokenizer.json'), JSON.stringify(variant));
});

after(() => rmSync(scratch, { recursive: true, force: true }));

describe('GPT-2 tokenizer files', () => {
  test('give the known GPT-2 ids', () => {
    const tokenizer = ModelTokenizer.fromDir(GPT2_DIR);
    assert.deepEqual(
      tokenizer.ids('When John and Mary went to the shops, John gave the bag to'),
      [2215, 1757, 290, 5335, 1816, 284, 262, 12437, 11, 1757, 2921, 262, 6131, 284],
    );
    assert.deepEqual(tokenizer.ids(' Mary'), [5335]);
    assert.deepEqual(tokenizer.ids('<|endoftext|>'), [50256]);
    assert.equal(tokenizer.vocabSize, 50257);
  });

  test('write a config like the hub and build the JSON once', () => {
    const config = JSON.parse(readFileSync(join(GPT2_DIR, 'tokenizer_config.json'), 'utf8'));
    assert.equal(config.tokenizer_class, 'GPT2Tokenizer');
    assert.equal(config.add_bos_token, false);
    assert.equal(config.model_max_length, 1024);
    assert.equal(config.bos_token, '<|endoftext|>');
    const started = performance.now();
    for (let i = 0; i < 5; i += 1) gpt2TokenizerJson();
    assert.ok(performance.now() - started < 500, 'building tokenizer.json again should reuse the cached model');
  });
});

describe('ModelTokenizer against the Rust tokenizers oracle', () => {
  test(`corpus has a few hundred strings (${CORPUS.length})`, () => assert.ok(CORPUS.length >= 250));

  for (const subject of SUBJECTS) {
    describe(subject.name, () => {
      let tokenizer: ModelTokenizer;
      let oracle: RustTokenizer;
      before(() => {
        tokenizer = ModelTokenizer.fromDir(subject.dir);
        oracle = RustTokenizer.fromFile(join(subject.dir, 'tokenizer.json'));
      });

      test('ids agree with the oracle on every corpus string', async () => {
        const disagreements = await idDisagreements(tokenizer, oracle, CORPUS, true);
        assert.deepEqual(disagreements, [], `${subject.name}: the JS library and the oracle disagree on these inputs`);
      });

      test('ids and UTF-16 offsets equal the oracle, special tokens added', async () => {
        const mismatches = await compareWithOracle(tokenizer, oracle, CORPUS, true, subject.normalize);
        assert.equal(mismatches.length, 0, `${subject.name}: ${mismatches.length} mismatches\n${report(mismatches)}`);
      });

      test('ids and UTF-16 offsets equal the oracle, no special tokens', async () => {
        const mismatches = await compareWithOracle(tokenizer, oracle, CORPUS, false, subject.normalize);
        assert.equal(mismatches.length, 0, `${subject.name}: ${mismatches.length} mismatches\n${report(mismatches)}`);
      });

      test('adds a BOS exactly when the tokenizer says so', () => {
        const tokens = tokenizer.encode('Hello world');
        const bos = tokens[0];
        if (subject.hasBos) {
          assert.deepEqual(bos, { id: 128000, text: '<|begin_of_text|>', start: 0, end: 0 });
          assert.deepEqual(tokenizer.encode('Hello world', { addSpecialTokens: false }), tokens.slice(1));
        } else {
          assert.deepEqual(tokenizer.encode('Hello world', { addSpecialTokens: false }), tokens);
        }
      });

      test('vocabSize equals the oracle vocabulary with added tokens', () => {
        assert.equal(tokenizer.vocabSize, oracle.getVocabSize(true));
      });

      test('decode and tokenText equal the oracle decode', async () => {
        const decodedUnlikeOracle = new Set(subject.decodesUnlikeOracle ?? []);
        for (const text of CORPUS) {
          const ids = tokenizer.ids(text);
          if (ids.some((id) => decodedUnlikeOracle.has(id))) continue;
          assert.equal(tokenizer.decode(ids), await oracle.decode(ids, false), `decode of ${JSON.stringify(text)}`);
        }
        // Every token of the smaller vocabularies, a sample of the larger: partial UTF-8 gives U+FFFD alike.
        const step = tokenizer.vocabSize > 60000 ? 7 : 1;
        const ids: number[] = [];
        for (let id = 0; id < tokenizer.vocabSize; id += step) ids.push(id);
        const expected = await oracle.decodeBatch(
          ids.map((id) => [id]),
          false,
        );
        const differing = ids.filter((id, i) => tokenizer.tokenText(id) !== expected[i]);
        const expectedDiffering = [...decodedUnlikeOracle].filter((id) => id % step === 0);
        assert.deepEqual(differing, expectedDiffering, `${subject.name}: tokenText differs from the oracle for these ids`);
      });

      test('token text is the covered input where a token holds whole characters', () => {
        const text = 'When John and Mary went to the shops,  café 日本 ';
        for (const token of tokenizer.encode(text, { addSpecialTokens: false })) {
          if (token.text.includes('\ufffd')) continue;
          const expected = subject.trimsOffsets ? token.text.replace(/^ +| +$/g, '') : token.text;
          assert.equal(text.slice(token.start, token.end), expected, JSON.stringify(token));
        }
      });
    });
  }
});

describe('ModelTokenizer source', () => {
  test('imports neither vscode nor the Rust tokenizers package', () => {
    const source = readFileSync(join(__dirname, '../../src/engine/model/tokenizer.ts'), 'utf8');
    assert.doesNotMatch(source, /from '(vscode|tokenizers)'|require\('(vscode|tokenizers)'\)/);
  });
});

describe('ModelTokenizer.fromDir errors', () => {
  test('a folder without tokenizer.json is an InputError naming the path', () => {
    const dir = join(scratch, 'empty');
    mkdirSync(dir, { recursive: true });
    assert.throws(
      () => ModelTokenizer.fromDir(dir),
      (error: unknown) => {
        assert.ok(error instanceof InputError);
        assert.match(error.message, /tokenizer\.json/);
        assert.ok(error.message.includes(join(dir, 'tokenizer.json')));
        return true;
      },
    );
  });

  test('invalid JSON is an InputError naming the path', () => {
    const dir = join(scratch, 'broken');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
    assert.throws(
      () => ModelTokenizer.fromDir(dir),
      (error: unknown) => error instanceof InputError && error.message.includes(join(dir, 'tokenizer.json')),
    );
  });

  test('an invalid tokenizer_config.json is an InputError naming it', () => {
    const dir = join(scratch, 'broken-config');
    writeGpt2TokenizerFiles(dir);
    writeFileSync(join(dir, 'tokenizer_config.json'), 'not json');
    assert.throws(
      () => ModelTokenizer.fromDir(dir),
      (error: unknown) => error instanceof InputError && error.message.includes('tokenizer_config.json'),
    );
  });

  test('tokenizer_config.json is optional', () => {
    const dir = join(scratch, 'no-config');
    writeGpt2TokenizerFiles(dir);
    rmSync(join(dir, 'tokenizer_config.json'));
    assert.deepEqual(ModelTokenizer.fromDir(dir).ids(' Mary'), [5335]);
  });

  test('a SentencePiece-style (Metaspace) tokenizer is an InputError saying it is not supported yet', () => {
    const dir = join(scratch, 'metaspace');
    mkdirSync(dir, { recursive: true });
    const metaspace = {
      version: '1.0',
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
      post_processor: null,
      decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
      model: { type: 'BPE', vocab: { '<unk>': 0, '▁': 1, a: 2 }, merges: [], unk_token: '<unk>' },
    };
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(metaspace));
    assert.throws(
      () => ModelTokenizer.fromDir(dir),
      (error: unknown) => error instanceof InputError && /not supported yet/.test(error.message),
    );
  });

  test('decode rejects ids outside the vocabulary', () => {
    const tokenizer = ModelTokenizer.fromDir(GPT2_DIR);
    assert.equal(tokenizer.decode([]), '');
    assert.throws(() => tokenizer.decode([50257]), RangeError);
    assert.throws(() => tokenizer.decode([-1]), RangeError);
  });
});
