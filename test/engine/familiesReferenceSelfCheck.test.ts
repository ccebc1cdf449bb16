import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { REFERENCE_PYTHON, requireTorchReference } from '../support/reference';
import { FAMILIES_SELF_CHECK } from '../support/familiesReference';

test('the families PyTorch reference passes its own self-check (finite differences, structural identities, CLI)', () => {
  requireTorchReference();
  const result = spawnSync(REFERENCE_PYTHON, [FAMILIES_SELF_CHECK], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 600_000 });
  const output = `${result.stdout}\n${result.stderr}`;
  assert.equal(result.status, 0, `families_self_check.py failed:\n${output}`);
  assert.match(result.stdout, /families reference self-check: \d+ passed, 0 failed -> PASS/);
});
