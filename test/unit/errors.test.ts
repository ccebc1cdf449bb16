import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../src/shared/errors';

test('InputError keeps its message and name', () => {
  const error = new InputError('data.jsonl:3: field "clean" is missing');
  assert.equal(error.name, 'InputError');
  assert.match(error.message, /data\.jsonl:3/);
});
