import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, inputProblem } from '../../src/shared/errors';
import { FIELD_IDS, FIELDS, fieldRef, renderFieldText } from '../../src/shared/fields';

test('InputError keeps its message and name', () => {
  const error = new InputError('data.jsonl:3: field "clean" is missing');
  assert.equal(error.name, 'InputError');
  assert.match(error.message, /data\.jsonl:3/);
});

test('a field error: the command line reads the flag, the detail keeps the field for the editor', () => {
  const error = InputError.about('model', 'folder /m does not exist');
  assert.equal(error.message, '--model: folder /m does not exist');
  assert.equal(error.field, 'model');
  assert.deepEqual(inputProblem(error), { field: 'model', detail: '{{model}}: folder /m does not exist' });
  assert.equal(renderFieldText(error.detail, 'editor'), 'the model (setting attributionPatching.model): folder /m does not exist');

  // A value goes with its field; a field the editor has no setting for is named in words.
  assert.equal(renderFieldText(`use ${fieldRef('batchSize', 2)} or ${fieldRef('checkSeed', 3)}`, 'cli'), 'use --batch-size 2 or --check-seed 3');
  assert.equal(
    renderFieldText(`use ${fieldRef('batchSize', 2)} or ${fieldRef('checkSeed', 3)}`, 'editor'),
    'use the batch size 2 (setting attributionPatching.batchSize) or the seed of the checks 3',
  );
  // Text that only looks like a placeholder stays as it is.
  assert.equal(renderFieldText('{{notAField}} and {{ model }}', 'cli'), '{{notAField}} and {{ model }}');

  // A field learnt later (the worker's model stage) keeps the words; one already known is not overwritten.
  const located = InputError.withField(new InputError('/m/config.json: no "model_type"'), 'model');
  assert.equal(located.message, '/m/config.json: no "model_type"');
  assert.equal(located.field, 'model');
  const token = new InputError('org/x: gated', { field: 'hfToken' });
  assert.equal(InputError.withField(token, 'model').field, 'hfToken');
});

test('the field table: every editor setting is one of its fields, and every flag is one the CLI parses', () => {
  const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as { contributes: { configuration: { properties: Record<string, unknown> } } };
  const settings = FIELD_IDS.map((id) => FIELDS[id].setting).filter((s) => s !== undefined);
  assert.deepEqual([...settings].sort(), Object.keys(manifest.contributes.configuration.properties).sort());
  const cliSources = readdirSync('src/cli')
    .map((name) => readFileSync(join('src/cli', name), 'utf8'))
    .join('\n');
  for (const id of FIELD_IDS) {
    const flag = FIELDS[id].cli;
    if (flag === undefined || !flag.startsWith('-')) continue;
    const option = flag.replace(/^--?/, '');
    // parseArgs declares each as `name: {` or `'name-with-dash': {`; -n is the short form of n.
    assert.ok(new RegExp(`(^|[\\s{,])'?${option}'?: \\{ type:`, 'm').test(cliSources), `${id}: ${flag} is not an option the CLI parses`);
  }
});
