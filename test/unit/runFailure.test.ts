// What the editor says when a run fails: the first error, in the editor's words, with a way out chosen by the
// error's field (src/shared/fields.ts), not by its text. The errors are the engine's own where a pure function
// throws them (resolveModel, checkMemory), so a change of wording or field there is seen here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adviseCudaFallback, adviseFailure } from '../../src/commands/runFailure';
import { CUDA_NOT_INSTALLED, InputError, inputProblem } from '../../src/shared/errors';
import { fieldRef } from '../../src/shared/fields';
import { resolveModel } from '../../src/engine/model/hub';
import { checkMemory, type MemoryEstimate } from '../../src/engine/model/memory';

const FILE = '/home/user/project/data/ioi.jsonl';
const GB = 2 ** 30;

/** A failure as the engine client hands it over: the CLI's message, and the field and detail. */
const failure = (error: InputError) => ({ message: error.message, input: inputProblem(error) });

async function caught(work: () => unknown): Promise<InputError> {
  try {
    await work();
  } catch (error) {
    assert.ok(error instanceof InputError, String(error));
    return error;
  }
  assert.fail('expected an InputError');
}

test('the toast quotes the first error, never a warning before it, and names the file, not its path', () => {
  const advice = adviseFailure(
    failure(new InputError(`${FILE}:3: "clean" has 12 tokens but "corrupted" has 13`, { field: 'data' })),
    [
      { line: 2, severity: 'warning', message: 'the correct answer " Johnathan" is 2 tokens; its first token is used' },
      { line: 3, severity: 'error', message: 'the corrupted prompt has 13 tokens, the clean one 12' },
    ],
    FILE,
  );
  assert.equal(advice.message, 'ioi.jsonl:3: the corrupted prompt has 13 tokens, the clean one 12 (see Problems)');
  assert.deepEqual(advice.actions, []);
});

test("a missing model folder: the command line's --model, the editor's setting, and the model's actions", async () => {
  const error = await caught(() => resolveModel('./models/nowhere'));
  assert.equal(error.field, 'model');
  assert.equal(error.message, '--model: folder ./models/nowhere does not exist');
  const advice = adviseFailure(failure(error), [], FILE);
  assert.equal(advice.message, 'the model (setting attributionPatching.model): folder ./models/nowhere does not exist');
  assert.deepEqual(
    advice.actions.map((a) => a.title),
    ['Select Model', 'Open Settings'],
  );
  assert.deepEqual(advice.actions[1].args, ['attributionPatching.model']);
});

test('actions come from the field, whatever the text says', () => {
  // A model error whose text names no flag (worker.ts gives every load failure the model field).
  const config = InputError.withField(new InputError('/models/m/config.json: key "model_type" is "bert"; supported: gpt2, gpt_neo, llama'), 'model');
  assert.deepEqual(
    adviseFailure(failure(config), [], FILE).actions.map((a) => a.title),
    ['Select Model', 'Open Settings'],
  );
  assert.equal(adviseFailure(failure(config), [], FILE).message, '/models/m/config.json: key "model_type" is "bert"; supported: gpt2, gpt_neo, llama');

  // The same words with no field: no actions (the text is not read for them any more).
  assert.deepEqual(adviseFailure({ message: '--model: folder /x does not exist' }, [], FILE).actions, []);

  const gated = new InputError(
    'meta-llama/Llama-3.2-1B: the Hugging Face hub answered 401 for config.json: this repo is gated and needs a Hugging Face token. No token was given.',
    { field: 'hfToken' },
  );
  assert.deepEqual(
    adviseFailure(failure(gated), [], FILE).actions.map((a) => a.title),
    ['Set Hugging Face Token', 'Select Model', 'Open Settings'],
  );

  const method = InputError.about('method', 'unknown method "fast"; choose one of auto, atp, atpstar, exact');
  const advice = adviseFailure(failure(method), [], FILE);
  assert.equal(advice.message, 'the method (setting attributionPatching.method): unknown method "fast"; choose one of auto, atp, atpstar, exact');
  assert.deepEqual(
    advice.actions.map((a) => a.args),
    [['attributionPatching.method']],
  );

  // A field the editor has no setting for: its words, and nothing to open.
  const shard = InputError.about('shard', 'expected i/n');
  assert.deepEqual(adviseFailure(failure(shard), [], FILE), { message: 'the shard: expected i/n', actions: [] });
});

test('flags mid-sentence: the engine names fields by placeholder, each front end words them', () => {
  const estimate: MemoryEstimate = {
    parameters: 1e9,
    storedBytes: 4 * GB,
    storedDtype: 'F32',
    weightBytes: 4 * GB,
    sessions: 1,
    sessionWeightBytes: 4 * GB,
    activationBytes: 8 * GB,
    overheadBytes: 0,
    processBytes: 0,
    totalBytes: 12 * GB,
    batchSize: 8,
    seqLen: 128,
  };
  const error = (() => {
    try {
      checkMemory(estimate, 'cpu', { system: { free: 6 * GB, total: 16 * GB, platform: 'linux' } });
    } catch (thrown) {
      return thrown as InputError;
    }
    assert.fail('expected not enough memory');
  })();
  assert.equal(error.field, 'batchSize');
  assert.match(error.message, /Use a smaller batch size \(--batch-size 1 needs about 5\.4 GB\)/);
  const advice = adviseFailure(failure(error), [], FILE);
  assert.match(advice.message, /Use a smaller batch size \(the batch size 1 \(setting attributionPatching\.batchSize\) needs about 5\.4 GB\), a smaller model/);
  assert.doesNotMatch(advice.message, /--|\{\{/);
  assert.deepEqual(
    advice.actions.map((a) => a.args),
    [['attributionPatching.batchSize']],
  );

  const gradDrop = new InputError(`${fieldRef('gradDrop')} is part of AtP*: use it with ${fieldRef('method', 'atpstar')} (or auto), not atp`, {
    field: 'gradDrop',
  });
  assert.equal(gradDrop.message, '--grad-drop is part of AtP*: use it with --method atpstar (or auto), not atp');
  assert.equal(
    adviseFailure(failure(gradDrop), [], FILE).message,
    'GradDrop (setting attributionPatching.gradDrop) is part of AtP*: use it with the method atpstar (setting attributionPatching.method) (or auto), not atp',
  );
});

test('CUDA missing: an error or a fallback warning that says the provider is not installed offers Install CUDA Support…', () => {
  // The reason runtime.ts gives when the CUDA provider cannot start because it was never installed.
  const note = `cuda could not start (${CUDA_NOT_INSTALLED}: run \`atp install-cuda\` (in VS Code: Attribution Patching: Install CUDA Support)); running on CPU instead`;
  const fallback = adviseCudaFallback(['ioi.jsonl:2: "correct" is 2 tokens', note]);
  assert.ok(fallback);
  assert.deepEqual(
    fallback.actions.map((a) => a.command),
    ['attributionPatching.installCuda', 'workbench.action.openSettings'],
  );
  assert.equal(fallback.actions[0].title, 'Install CUDA Support…');
  assert.deepEqual(fallback.actions[1].args, ['attributionPatching.device']);

  const failed = adviseFailure(failure(InputError.about('device', CUDA_NOT_INSTALLED)), [], FILE);
  assert.equal(failed.message, `the device (setting attributionPatching.device): ${CUDA_NOT_INSTALLED}`);
  assert.deepEqual(
    failed.actions.map((a) => a.title),
    ['Install CUDA Support…', 'Open Settings'],
  );
  // Another device problem: its setting, no install.
  assert.deepEqual(
    adviseFailure(failure(InputError.about('device', 'unknown device "tpu"')), [], FILE).actions.map((a) => a.title),
    ['Open Settings'],
  );

  // Other CUDA failures (a missing cuDNN, no GPU) are not fixed by the install: no such offer.
  assert.equal(adviseCudaFallback(['cuda could not start (NVIDIA libraries not found: libcudnn.so.9 (cuDNN 9); …); running on CPU instead']), undefined);
  assert.equal(adviseCudaFallback([]), undefined);
});
