import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateIoi, ioiSeedExamples, parseDatasetText } from '../../src/lib/dataset';
import { builtInModelMismatch, datasetTask, looksLikeIoi } from '../../src/lib/dataset/taskDetection';
import { builtInModelDir, builtInNameOf, parseModelSource } from '../../src/lib/model/modelSource';
import { resolveModel } from '../../src/engine/model/hub';
import { BUILT_IN_MODELS, findBuiltInModel, formatBuiltInTable } from '../../src/lib/model/presets';
import { ModelTokenizer } from '../../src/engine/model/tokenizer';

const ROOT = resolve(__dirname, '../..');
const example = (file: string) => parseDatasetText(readFileSync(join(ROOT, 'examples', file), 'utf8'), file).dataset;

test('built-in models are named by their folder, case-insensitively, and resolve to models/<name>', () => {
  assert.deepEqual(
    BUILT_IN_MODELS.map((m) => m.name),
    ['tinysql-demo', 'ioi-demo'],
  );
  assert.equal(findBuiltInModel(' IOI-Demo ')?.name, 'ioi-demo');
  assert.equal(findBuiltInModel('ioi'), undefined);
  for (const name of ['ioi-demo', 'tinysql-demo', 'IOI-DEMO']) {
    assert.deepEqual(parseModelSource(name, tmpdir()), { kind: 'folder', text: name, path: join(ROOT, 'models', name.toLowerCase()) });
  }
  // A folder of that name needs ./, as a preset's does.
  assert.deepEqual(parseModelSource('./ioi-demo', '/x'), { kind: 'folder', text: './ioi-demo', path: '/x/ioi-demo' });
  assert.throws(() => parseModelSource('ioi-demo@main'), /built-in model shipped with the extension; it has no revisions/);
  assert.match(formatBuiltInTable(), /^ {2}tinysql-demo {2}built-in: .*TinySQL.*\n {2}ioi-demo {6}built-in: .*indirect object identification/);
});

test('a missing built-in model says where it was looked for', () => {
  const empty = mkdtempSync(join(tmpdir(), 'atp-builtin-'));
  try {
    assert.throws(
      () => builtInModelDir('ioi-demo', empty),
      /the built-in model "ioi-demo" is missing from this installation \(no models\/ioi-demo\/config.json above /,
    );
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test('IOI datasets are recognised: the seed examples, the shipped example files and generated ones', () => {
  assert.equal(datasetTask({ examples: ioiSeedExamples() }), 'ioi');
  assert.equal(datasetTask(example('ioi.jsonl')), 'ioi');
  assert.equal(datasetTask(example('ioi.atp')), 'ioi');
  const tokenizer = ModelTokenizer.fromDir(join(ROOT, 'models', 'ioi-demo'));
  assert.equal(datasetTask({ examples: generateIoi(tokenizer, { count: 50, seed: 3 }) }), 'ioi');
  // Names the generator does not know still count when one of them repeats in the prompt.
  assert.ok(looksLikeIoi({ clean: 'When Zelda and Quentin went out, Quentin gave a book to', correct: ' Zelda', incorrect: ' Quentin' }));
  // Two known names as answers are enough, the prompt need not repeat one.
  assert.ok(looksLikeIoi({ clean: 'Who won, Mary or John? The winner was', correct: ' Mary', incorrect: ' John' }));
});

test('other datasets are not IOI: capitals, lowercase answers, one name, equal answers, TinySQL', () => {
  assert.equal(looksLikeIoi({ clean: 'The capital of France is', correct: ' Paris', incorrect: ' Rome' }), false);
  assert.equal(looksLikeIoi({ clean: 'Zelda and Quentin met; Quentin gave it to', correct: ' her', incorrect: ' him' }), false);
  assert.equal(looksLikeIoi({ clean: 'When Zelda arrived, Zelda gave it to', correct: ' Zelda', incorrect: ' Quentin' }), false);
  assert.equal(looksLikeIoi({ clean: 'Mary and Mary', correct: ' Mary', incorrect: ' Mary' }), false);
  assert.equal(datasetTask(example('tinysql-cs1.jsonl')), 'tinysql');
  assert.equal(datasetTask({ examples: [] }), undefined);
  // A mixture with fewer than half of either: no task.
  const capitals = { clean: 'The capital of France is', corrupted: 'The capital of Italy is', correct: ' Paris', incorrect: ' Rome', line: 1 };
  assert.equal(datasetTask({ examples: [capitals, capitals, ioiSeedExamples()[0]] }), undefined);
});

test("a dataset of the other built-in model's task gets one warning on its first example, with the model to switch to", () => {
  const ioi = example('ioi.jsonl');
  const warning = builtInModelMismatch(ioi, 'tinysql-demo');
  assert.deepEqual(warning && { ...warning, message: undefined }, {
    line: 1,
    startColumn: 0,
    endColumn: 0,
    severity: 'warning',
    message: undefined,
    useModel: 'ioi-demo',
  });
  assert.match(
    warning!.message,
    /looks like indirect object identification .*the built-in tinysql-demo, which was not trained on it \(it knows no names as single tokens.*\); the built-in ioi-demo was/,
  );
  const sql = builtInModelMismatch(example('tinysql-cs1.jsonl'), 'ioi-demo');
  assert.equal(sql?.useModel, 'tinysql-demo');
  assert.match(sql!.message, /looks like TinySQL .*the built-in ioi-demo/);
  // The right model, any other model (undefined) or an unknown task: nothing to say.
  assert.equal(builtInModelMismatch(ioi, 'ioi-demo'), undefined);
  assert.equal(builtInModelMismatch(ioi, undefined), undefined);
  assert.equal(builtInModelMismatch(example('tinysql-cs1.jsonl'), 'tinysql-demo'), undefined);
  assert.equal(
    builtInModelMismatch({ examples: [{ clean: 'The capital of France is', corrupted: 'x', correct: ' Paris', incorrect: ' Rome', line: 4 }] }, 'tinysql-demo'),
    undefined,
  );
});

test('a built-in model is named by its name wherever its folder is given: by name, relative or absolute path (never the install path in a Result)', async () => {
  const dir = builtInModelDir('ioi-demo');
  assert.equal(builtInNameOf(dir), 'ioi-demo');
  assert.equal(builtInNameOf(join(dir, '.')), 'ioi-demo');
  assert.equal(builtInNameOf(join(dir, '..')), undefined, 'the models folder is no model');
  assert.equal(builtInNameOf(join(dir, 'missing')), undefined);
  for (const named of ['ioi-demo', dir, join(dir, '..', 'ioi-demo')]) assert.equal((await resolveModel(named)).source, 'ioi-demo', named);
  // Another folder keeps the words it was given.
  const other = mkdtempSync(join(tmpdir(), 'atp-not-built-in-'));
  try {
    assert.equal((await resolveModel(other)).source, other);
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});
