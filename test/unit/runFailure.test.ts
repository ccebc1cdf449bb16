// What the editor says when a run fails: the first error, in the editor's words, with a way out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adviseCudaFallback, adviseFailure } from '../../src/commands/runFailure';
import { CUDA_NOT_INSTALLED } from '../../src/shared/errors';

const FILE = '/home/user/project/data/ioi.jsonl';

test('the toast quotes the first error, never a warning before it, and names the file, not its path', () => {
  const advice = adviseFailure(
    `${FILE}:3: "clean" has 12 tokens but "corrupted" has 13`,
    [
      { line: 2, severity: 'warning', message: 'the correct answer " Johnathan" is 2 tokens; its first token is used' },
      { line: 3, severity: 'error', message: 'the corrupted prompt has 13 tokens, the clean one 12' },
    ],
    FILE,
  );
  assert.equal(advice.message, 'ioi.jsonl:3: the corrupted prompt has 13 tokens, the clean one 12 (see Problems)');
  assert.deepEqual(advice.actions, []);
});

test('an error without a line loses the full path and speaks of settings, not flags, with actions that fix it', () => {
  const missing = adviseFailure('--model: folder /models/nowhere does not exist', [], FILE);
  assert.equal(missing.message, 'the model (setting attributionPatching.model): folder /models/nowhere does not exist');
  assert.deepEqual(missing.actions.map((a) => a.title), ['Select Model', 'Open Settings']);
  assert.deepEqual(missing.actions[1].args, ['attributionPatching.model']);

  const equal = adviseFailure(`${FILE}: the clean and corrupted logit differences are equal (0)`, [], FILE);
  assert.equal(equal.message, 'ioi.jsonl: the clean and corrupted logit differences are equal (0)');

  const gated = adviseFailure('meta-llama/Llama-3.2-1B: huggingface.co answered 401 for config.json: this repo is gated and needs a Hugging Face token. No token is set.', [], FILE);
  assert.deepEqual(gated.actions.map((a) => a.title), ['Set Hugging Face Token', 'Select Model', 'Open Settings']);

  const memory = adviseFailure('not enough memory: this run needs about 25.7 GB, 20.1 GB free (weights …). Use --batch-size 2 or less.', [], FILE);
  assert.equal(memory.message, 'not enough memory: this run needs about 25.7 GB, 20.1 GB free (weights …). Use a batch size (setting attributionPatching.batchSize) of 2 or less.');
  assert.deepEqual(memory.actions.map((a) => a.args), [['attributionPatching.batchSize']]);
});

test('CUDA missing: an error or a fallback warning that says the provider is not installed offers Install CUDA Support…', () => {
  // The reason runtime.ts gives when the CUDA provider cannot start because it was never installed.
  const note = `cuda could not start (${CUDA_NOT_INSTALLED}: run \`atp install-cuda\` (in VS Code: Attribution Patching: Install CUDA Support)); running on CPU instead`;
  const fallback = adviseCudaFallback(['ioi.jsonl:2: "correct" is 2 tokens', note]);
  assert.ok(fallback);
  assert.deepEqual(fallback.actions.map((a) => a.command), ['attributionPatching.installCuda', 'workbench.action.openSettings']);
  assert.equal(fallback.actions[0].title, 'Install CUDA Support…');
  assert.deepEqual(fallback.actions[1].args, ['attributionPatching.device']);

  const failed = adviseFailure(`cuda: ${CUDA_NOT_INSTALLED}`, [], FILE);
  assert.equal(failed.message, `cuda: ${CUDA_NOT_INSTALLED}`);
  assert.deepEqual(failed.actions.map((a) => a.title), ['Install CUDA Support…', 'Open Settings']);

  // Other CUDA failures (a missing cuDNN, no GPU) are not fixed by the install: no such offer.
  assert.equal(adviseCudaFallback(['cuda could not start (NVIDIA libraries not found: libcudnn.so.9 (cuDNN 9); …); running on CPU instead']), undefined);
  assert.equal(adviseCudaFallback([]), undefined);
  assert.deepEqual(adviseFailure('--model: folder /models/nowhere does not exist', [], FILE).actions.map((a) => a.title), ['Select Model', 'Open Settings']);
});
