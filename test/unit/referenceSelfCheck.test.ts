import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { REFERENCE_PYTHON, REFERENCE_SELF_CHECK, requireTorchReference } from '../support/reference';

test('the PyTorch reference passes its own self-check (finite differences, patching, loading)', () => {
  requireTorchReference();
  const result = spawnSync(REFERENCE_PYTHON, [REFERENCE_SELF_CHECK], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 600_000,
  });
  const output = `${result.stdout}\n${result.stderr}`;
  assert.equal(result.status, 0, `self_check.py failed:\n${output}`);
  assert.match(result.stdout, /reference self-check: \d+ passed, 0 failed -> PASS/);
});
