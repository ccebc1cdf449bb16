import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { InputError } from '../../src/shared/errors';
import { resolveModel, type ResolveOptions } from '../../src/engine/model/hub';
import { hubCacheDir, hubEndpoint, isOfflineByEnv, repoCacheDir } from '../../src/engine/model/hubCache';
import { parseModelSource } from '../../src/lib/model/modelSource';
import { loadModel } from '../../src/engine/model/load';
import { startFakeHub, type FakeFiles, type FakeHub } from '../support/fakeHub';
import { writeRandomGpt2 } from '../support/randomGpt2';

const root = fs.mkdtempSync(join(tmpdir(), 'atp-hub-'));
let counter = 0;
const fresh = (name: string) => join(root, `${name}-${counter++}`);

function readFolder(dir: string): FakeFiles {
  return Object.fromEntries(fs.readdirSync(dir).map((name) => [name, fs.readFileSync(join(dir, name))]));
}

function randomModelFiles(seed: number, shards = 1): FakeFiles {
  const dir = fresh('model');
  writeRandomGpt2(dir, { nLayers: 1, nHeads: 2, dModel: 8, seed, shards });
  return readFolder(dir);
}

const TOKEN = 'hf_fakeSecretToken1234567890';
const PRIVATE_TOKEN = 'hf_otherSecretToken0987654321';

let hub: FakeHub;
let tiny: FakeFiles;
let cutWeights: Buffer;

before(async () => {
  tiny = randomModelFiles(1);
  const { 'model.safetensors': weights, ...small } = tiny;
  const cut = randomModelFiles(3);
  cutWeights = cut['model.safetensors'] as Buffer;
  hub = await startFakeHub(
    {
      'org/tiny': { revisions: { main: tiny, v1: tiny } },
      'org/sharded': { revisions: { main: randomModelFiles(2, 3) } },
      'org/gated': { revisions: { main: tiny }, gatedToken: TOKEN },
      'org/private': { revisions: { main: tiny }, privateToken: PRIVATE_TOKEN },
      'org/pickle': { revisions: { main: { ...small, 'pytorch_model.bin': weights } } },
      'org/cut': { revisions: { main: cut } },
      'org/moving': { revisions: { main: tiny } },
      'openai-community/gpt2': { revisions: { main: tiny } },
    },
    { renamed: { gpt2: 'openai-community/gpt2' } },
  );
});

after(async () => {
  await hub?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

/** Options with a fresh cache folder (or the given one) and the fake hub's endpoint. */
function setup(cache = fresh('cache'), extra: Partial<ResolveOptions> = {}): ResolveOptions & { cache: string } {
  // HF_HOME apart from the user's: their login token file must not reach these tests.
  return { cache, env: { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache, HF_HOME: join(cache, 'hf-home') }, retryDelayMs: 10, ...extra };
}

async function rejectsInput(promise: Promise<unknown>, pattern: RegExp): Promise<InputError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail('expected an InputError'),
    (error) => (caught = error),
  );
  assert.ok(caught instanceof InputError, `expected an InputError, got ${String((caught as Error)?.stack ?? caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

const gitBlobSha1 = (bytes: Buffer) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('parseModelSource', () => {
  test('paths are folders, whether or not they exist', () => {
    const cwd = fresh('cwd');
    fs.mkdirSync(join(cwd, 'org', 'name'), { recursive: true });
    assert.deepEqual(parseModelSource('./m', cwd), { kind: 'folder', text: './m', path: join(cwd, 'm') });
    assert.deepEqual(parseModelSource('../m', cwd), { kind: 'folder', text: '../m', path: resolve(cwd, '..', 'm') });
    assert.deepEqual(parseModelSource('/abs/m@v1', cwd), { kind: 'folder', text: '/abs/m@v1', path: '/abs/m@v1' });
    assert.deepEqual(parseModelSource('~/models/m', cwd), { kind: 'folder', text: '~/models/m', path: join(homedir(), 'models/m') });
    // An existing folder that looks like a repo id is the folder.
    assert.deepEqual(parseModelSource('org/name', cwd), { kind: 'folder', text: 'org/name', path: join(cwd, 'org', 'name') });
  });

  test('repo ids with optional revisions', () => {
    const cwd = fresh('cwd');
    assert.deepEqual(parseModelSource('openai-community/gpt2', cwd), {
      kind: 'hub',
      text: 'openai-community/gpt2',
      repo: 'openai-community/gpt2',
      revision: undefined,
    });
    assert.deepEqual(parseModelSource('Qwen/Qwen2.5-0.5B-Instruct@v1.0', cwd).kind, 'hub');
    const commit = 'a'.repeat(40);
    assert.deepEqual(parseModelSource(`org/name@${commit}`, cwd), { kind: 'hub', text: `org/name@${commit}`, repo: 'org/name', revision: commit });
    assert.deepEqual(parseModelSource('org/name@refs/pr/1', cwd), { kind: 'hub', text: 'org/name@refs/pr/1', repo: 'org/name', revision: 'refs/pr/1' });
  });

  test('presets resolve first, with revisions', () => {
    const cwd = fresh('cwd');
    fs.mkdirSync(join(cwd, 'm2'), { recursive: true });
    fs.mkdirSync(join(cwd, 'm9'));
    // A folder that looks like an unknown preset is the folder; ./m2 is the folder named like a preset.
    assert.equal(parseModelSource('m9', cwd).kind, 'folder');
    assert.equal(parseModelSource('./m2', cwd).kind, 'folder');
    assert.deepEqual(parseModelSource('m2', cwd), { kind: 'hub', text: 'm2', repo: 'Qwen/Qwen2.5-0.5B-Instruct', revision: undefined, preset: 'M2' });
    assert.deepEqual(parseModelSource('BM1-CS1-nonsemantic@main', cwd), {
      kind: 'hub',
      text: 'BM1-CS1-nonsemantic@main',
      repo: 'withmartian/sql_interp_bm1_cs1_experiment_1.8',
      revision: 'main',
      preset: 'bm1-cs1-nonsemantic',
    });
  });

  test('bare canonical hub ids and TransformerLens aliases name hub repos; a folder of that name wins', () => {
    const cwd = fresh('cwd');
    // The bare id stays the repo: the hub redirects it, and Python caches it as models--gpt2 too.
    assert.deepEqual(parseModelSource('gpt2', cwd), { kind: 'hub', text: 'gpt2', repo: 'gpt2', revision: undefined });
    assert.deepEqual(parseModelSource('distilgpt2@main', cwd), { kind: 'hub', text: 'distilgpt2@main', repo: 'distilgpt2', revision: 'main' });
    assert.equal((parseModelSource('GPT2-Medium', cwd) as { repo: string }).repo, 'gpt2-medium');
    const small = parseModelSource('gpt2-small', cwd);
    assert.deepEqual({ ...small, note: undefined }, { kind: 'hub', text: 'gpt2-small', repo: 'gpt2', revision: undefined, note: undefined });
    assert.match((small as { note: string }).note, /gpt2-small is TransformerLens's name for the hub's gpt2 \(openai-community\/gpt2\)/);
    assert.equal((parseModelSource('tiny-stories-instruct-2L-33M', cwd) as { repo: string }).repo, 'roneneldan/TinyStories-Instruct-2Layers-33M');
    assert.equal((parseModelSource('gpt-neo-125m', cwd) as { repo: string }).repo, 'EleutherAI/gpt-neo-125M');
    assert.throws(() => parseModelSource('gpt2@', cwd), /not a valid revision/);
    fs.mkdirSync(join(cwd, 'gpt2'), { recursive: true });
    assert.equal(parseModelSource('gpt2', cwd).kind, 'folder');
  });

  test('bad names say what is accepted', () => {
    const cwd = fresh('cwd');
    for (const name of ['gtp2', 'bert-base-uncased']) {
      assert.throws(
        () => parseModelSource(name, cwd),
        (e: unknown) =>
          e instanceof InputError && /not a folder here, a preset .* org\/name\[@revision\] .*bare names: gpt2, gpt2-medium, distilgpt2/.test(e.message),
      );
    }
    assert.throws(() => parseModelSource('a/b/c', cwd), InputError);
    assert.throws(() => parseModelSource('org/-bad', cwd), InputError);
    assert.throws(() => parseModelSource('org/name@', cwd), /not a valid revision/);
    assert.throws(() => parseModelSource('org/name@../../x', cwd), /not a valid revision/);
    assert.throws(
      () => parseModelSource('M9', cwd),
      (e: unknown) => e instanceof InputError && /unknown preset "M9"/.test(e.message) && /bm3-cs3-nonsemantic/.test(e.message),
    );
    assert.throws(() => parseModelSource('  ', cwd), /empty/);
  });
});

test('cache and endpoint come from the environment as in huggingface_hub', () => {
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '/x/hub-cache', HF_HOME: '/y' }), '/x/hub-cache');
  assert.equal(hubCacheDir({ HF_HOME: '/y/hf' }), '/y/hf/hub');
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/z' }), '/z/huggingface/hub');
  assert.equal(hubCacheDir({}), join(homedir(), '.cache', 'huggingface', 'hub'));
  assert.equal(hubCacheDir({ HF_HOME: '~/hf' }), join(homedir(), 'hf', 'hub'));
  assert.equal(repoCacheDir('org/name', { HF_HUB_CACHE: '/c' }), '/c/models--org--name');
  assert.equal(hubEndpoint({}), 'https://huggingface.co');
  assert.equal(hubEndpoint({ HF_ENDPOINT: 'http://127.0.0.1:9/' }), 'http://127.0.0.1:9');
  assert.equal(isOfflineByEnv({ HF_HUB_OFFLINE: '1' }), true);
  assert.equal(isOfflineByEnv({ HF_HUB_OFFLINE: 'true' }), true);
  assert.equal(isOfflineByEnv({ HF_HUB_OFFLINE: '0' }), false);
  assert.equal(isOfflineByEnv({}), false);
});

test('a folder resolves to itself; a missing one is an InputError', async () => {
  const dir = fresh('folder');
  fs.mkdirSync(dir);
  assert.deepEqual(await resolveModel(dir), { dir, source: dir, notes: [] });
  await rejectsInput(resolveModel(join(dir, 'nope')), /does not exist/);
});

test('a download lays out the cache exactly as huggingface_hub does, and the snapshot loads', async () => {
  const options = setup();
  hub.clearLog();
  const progress: Array<{ file: string; received: number; total?: number }> = [];
  const resolved = await resolveModel('org/tiny', { ...options, onProgress: (p) => progress.push(p) });
  const commit = hub.commit('org/tiny');
  const repoDir = join(options.cache, 'models--org--tiny');
  assert.deepEqual(resolved, {
    dir: join(repoDir, 'snapshots', commit),
    source: 'org/tiny',
    repo: 'org/tiny',
    revision: 'main',
    commit,
    preset: undefined,
    fromCache: false,
    notes: [],
  });
  assert.equal(fs.readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), commit);
  assert.deepEqual(fs.readdirSync(repoDir).sort(), ['blobs', 'refs', 'snapshots']);

  const expected = new Map(
    Object.entries(tiny).map(([name, bytes]) => [name, name.endsWith('.safetensors') ? sha256(bytes as Buffer) : gitBlobSha1(bytes as Buffer)]),
  );
  assert.deepEqual(fs.readdirSync(resolved.dir).sort(), [...expected.keys()].sort());
  for (const [name, etag] of expected) {
    const pointer = join(resolved.dir, name);
    assert.ok(fs.lstatSync(pointer).isSymbolicLink(), `${name} is a symlink`);
    assert.equal(fs.readlinkSync(pointer), `../../blobs/${etag}`);
    assert.deepEqual(fs.readFileSync(pointer), tiny[name]);
  }
  assert.deepEqual(fs.readdirSync(join(repoDir, 'blobs')).sort(), [...expected.values()].sort());

  // Weights come from the CDN, never with the token-bearing header; small files straight from the hub.
  const downloads = hub.downloads();
  assert.deepEqual(downloads.filter((r) => r.server === 'cdn').length, 1);
  assert.equal(downloads.length, expected.size);
  const last = progress.filter((p) => p.file === 'model.safetensors').at(-1)!;
  assert.equal(last.received, (tiny['model.safetensors'] as Buffer).length);
  assert.equal(last.total, last.received);

  const model = loadModel(resolved.dir);
  assert.equal(model.spec.nLayers, 1);
  assert.equal(model.spec.dModel, 8);
  assert.ok(model.tokenizer.encode('Hello world').length > 0);
});

test('a second resolve downloads nothing; a commit already cached needs no request at all', async () => {
  const options = setup();
  await resolveModel('org/tiny', options);
  hub.clearLog();
  const again = await resolveModel('org/tiny', options);
  assert.equal(hub.downloads().length, 0);
  assert.deepEqual(
    hub.requests.map((r) => r.path),
    ['/api/models/org/tiny/revision/main'],
  );
  assert.equal(again.commit, hub.commit('org/tiny'));

  // A tag pointing at the same commit: its own ref, the same snapshot, no downloads.
  hub.clearLog();
  const tagged = await resolveModel('org/tiny@v1', options);
  assert.equal(tagged.dir, again.dir);
  assert.equal(tagged.source, 'org/tiny@v1');
  assert.equal(fs.readFileSync(join(options.cache, 'models--org--tiny', 'refs', 'v1'), 'utf8'), again.commit);
  assert.equal(hub.downloads().length, 0);

  hub.clearLog();
  const pinned = await resolveModel(`org/tiny@${again.commit}`, options);
  assert.equal(pinned.dir, again.dir);
  assert.equal(hub.requests.length, 0);
});

test('a branch that moves downloads only the changed files; unchanged blobs are reused', async () => {
  const options = setup();
  const first = await resolveModel('org/moving', options);
  const config = JSON.parse((tiny['config.json'] as Buffer).toString());
  hub.setRepo('org/moving', { revisions: { main: { ...tiny, 'config.json': JSON.stringify({ ...config, layer_norm_epsilon: 1e-6 }) } } });
  hub.clearLog();
  const second = await resolveModel('org/moving', options);
  assert.notEqual(second.commit, first.commit);
  assert.deepEqual(
    hub.downloads().map((r) => r.path),
    [`/org/moving/resolve/${second.commit}/config.json`],
  );
  assert.equal(fs.readFileSync(join(options.cache, 'models--org--moving', 'refs', 'main'), 'utf8'), second.commit);
  // Both snapshots stay usable; the weights are one blob.
  assert.equal(fs.realpathSync(join(first.dir, 'model.safetensors')), fs.realpathSync(join(second.dir, 'model.safetensors')));
  assert.equal(loadModel(second.dir).spec.layerNormEps, 1e-6);
  assert.equal(loadModel(first.dir).spec.layerNormEps, 1e-5);
  hub.setRepo('org/moving', { revisions: { main: tiny } });
});

test('a sharded repo brings its index and every shard, and loads', async () => {
  const options = setup();
  const resolved = await resolveModel('org/sharded', options);
  const names = fs.readdirSync(resolved.dir).sort();
  assert.ok(names.includes('model.safetensors.index.json'));
  assert.deepEqual(
    names.filter((n) => n.endsWith('.safetensors')),
    ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'],
  );
  const model = loadModel(resolved.dir);
  assert.equal(model.weightFiles.length, 3);
});

test('gated and private repos need the token, and errors never show it', async () => {
  const options = setup();
  const withoutToken = await rejectsInput(
    resolveModel('org/gated', options),
    /gated .*needs a Hugging Face token\. No token was found \(neither HF_TOKEN nor the token file .*hf-home\/token\)\./,
  );
  assert.match(withoutToken.message, /HF_TOKEN environment variable/);
  assert.match(withoutToken.message, /"Attribution Patching: Set Hugging Face Token"/);
  assert.match(withoutToken.message, /SecretStorage/);

  const wrong = 'hf_wrongTokenValue555';
  const refused = await rejectsInput(resolveModel('org/gated', { ...options, token: wrong }), /token given was refused or has no access/);
  for (const error of [withoutToken, refused]) {
    assert.ok(!`${error.message}\n${error.stack}`.includes(wrong));
    assert.ok(!`${error.message}\n${error.stack}`.includes(TOKEN));
  }

  hub.clearLog();
  const resolved = await resolveModel('org/gated', { ...options, token: TOKEN });
  assert.ok(loadModel(resolved.dir));
  // The token went to the hub, never to the CDN (another origin).
  assert.ok(hub.requests.some((r) => r.server === 'hub' && r.authorized));
  assert.ok(hub.requests.filter((r) => r.server === 'cdn').every((r) => !r.authorized));

  const privateError = await rejectsInput(resolveModel('org/private', options), /not found on the hub at .*, or private \(then it needs a token\)/);
  assert.match(privateError.message, /HF_TOKEN/);
  const privateWrong = await rejectsInput(resolveModel('org/private', { ...options, token: wrong }), /needs a Hugging Face token/);
  assert.ok(!privateWrong.message.includes(wrong));
  assert.ok((await resolveModel('org/private', { ...options, token: PRIVATE_TOKEN })).commit);
});

test('a bare canonical id resolves through the hub redirect into the cache folder Python uses for it', async () => {
  const options = setup();
  hub.clearLog();
  const resolved = await resolveModel('gpt2', options);
  const commit = hub.commit('openai-community/gpt2');
  assert.equal(resolved.dir, join(options.cache, 'models--gpt2', 'snapshots', commit));
  assert.equal(resolved.source, 'gpt2');
  assert.deepEqual(resolved.notes, []);
  assert.equal(fs.readFileSync(join(options.cache, 'models--gpt2', 'refs', 'main'), 'utf8'), commit);
  assert.ok(hub.requests.some((r) => r.status === 307 && r.path === '/api/models/gpt2/revision/main'));
  assert.equal(loadModel(resolved.dir).spec.nLayers, 1);

  // TransformerLens's name: the same repo and snapshot, with a note saying what it stood for.
  const aliased = await resolveModel('gpt2-small', options);
  assert.equal(aliased.dir, resolved.dir);
  assert.equal(aliased.notes.length, 1);
  assert.match(aliased.notes[0], /TransformerLens's name for the hub's gpt2/);
});

test('the token comes from HF_TOKEN, else the login token file (HF_TOKEN_PATH, else $HF_HOME/token), never shown', async () => {
  const options = setup();
  const home = join(options.cache, 'hf-home');
  fs.mkdirSync(home, { recursive: true });
  // `hf auth login` writes the bare token (a trailing newline from an editor is fine).
  fs.writeFileSync(join(home, 'token'), `${TOKEN}\n`);
  hub.clearLog();
  assert.ok((await resolveModel('org/gated', options)).commit);
  assert.ok(hub.requests.some((r) => r.server === 'hub' && r.authorized));

  const elsewhere = join(options.cache, 'elsewhere-token');
  fs.writeFileSync(elsewhere, PRIVATE_TOKEN);
  const env = { ...options.env, HF_TOKEN_PATH: elsewhere };
  assert.ok((await resolveModel('org/private', { ...options, env })).commit);
  // HF_TOKEN wins over the file; an explicit token (the editor's SecretStorage) over both.
  await rejectsInput(resolveModel('org/private', { ...options, env: { ...env, HF_TOKEN: 'hf_wrongTokenValue555' } }), /token given was refused/);
  assert.ok((await resolveModel('org/private', { ...options, env: { ...env, HF_TOKEN: 'hf_wrong' }, token: PRIVATE_TOKEN })).commit);

  // Malformed: an error naming the file or variable, never its contents.
  fs.writeFileSync(elsewhere, `${PRIVATE_TOKEN}\nsecond line\n`);
  const malformed = await rejectsInput(resolveModel('org/private', { ...options, env }), /token file .*elsewhere-token is malformed/);
  assert.equal(malformed.field, 'hfToken');
  assert.ok(!`${malformed.message}\n${malformed.stack}`.includes(PRIVATE_TOKEN));
  const badVariable = await rejectsInput(resolveModel('org/tiny', { ...options, env: { ...env, HF_TOKEN: `${TOKEN} x` } }), /HF_TOKEN is not a usable/);
  assert.ok(!badVariable.message.includes(TOKEN));
  assert.ok((await resolveModel('org/tiny', options)).commit);
  fs.rmSync(elsewhere);
  fs.mkdirSync(elsewhere);
  await rejectsInput(
    resolveModel('org/tiny', { ...options, env }),
    /token file .*elsewhere-token cannot be read \(.*elsewhere-token is not a regular file \(a folder\)\)/,
  );
  // A run from the cache never reads it.
  assert.equal((await resolveModel('org/tiny', { ...options, env, offline: true })).fromCache, true);
});

test('an unknown repo or revision is named in the error', async () => {
  const options = setup();
  await rejectsInput(
    resolveModel('org/nothing', options),
    /org\/nothing@main: repo org\/nothing or revision "main" not found on the hub at http:\/\/127\.0\.0\.1:\d+/,
  );
  await rejectsInput(resolveModel('org/tiny@no-such-branch', options), /revision "no-such-branch" not found in org\/tiny/);
  await rejectsInput(resolveModel(`org/tiny@${'0'.repeat(40)}`, options), /revision "0{40}" not found/);
});

test('a repo with only pickle weights is refused and nothing is downloaded', async () => {
  const options = setup();
  hub.clearLog();
  await rejectsInput(resolveModel('org/pickle', options), /only pickle weights \(pytorch_model\.bin\).*never pickle files.*nothing was downloaded/);
  assert.equal(hub.downloads().length, 0);
  assert.ok(!fs.existsSync(join(options.cache, 'models--org--pickle', 'blobs')));
});

test('a transfer cut off mid-body resumes with a Range request and ends byte-identical', async () => {
  const options = setup();
  hub.cutOff('model.safetensors', 100_000, 1);
  hub.clearLog();
  const resolved = await resolveModel('org/cut', options);
  const cdn = hub.requests.filter((r) => r.server === 'cdn');
  assert.equal(cdn.length, 2);
  assert.equal(cdn[0].range, undefined);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdn[1].range ?? '')?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= 100_000, `resumed at ${cdn[1].range}`);
  assert.equal(cdn[1].status, 206);
  assert.deepEqual(fs.readFileSync(join(resolved.dir, 'model.safetensors')), cutWeights);
  assert.ok(!fs.readdirSync(join(options.cache, 'models--org--cut', 'blobs')).some((n) => n.endsWith('.incomplete')));
});

test('a download that keeps failing leaves only blobs/<etag>.incomplete, and the next run resumes it', async () => {
  const files = randomModelFiles(4);
  const weights = files['model.safetensors'] as Buffer;
  hub.setRepo('org/flaky', { revisions: { main: files } });
  const options = setup(undefined, { retries: 1 });
  hub.cutOff('model.safetensors', 50_000, 2);
  const error = await rejectsInput(resolveModel('org/flaky', options), /downloading model\.safetensors failed .* run again to resume/);
  assert.ok(!error.message.includes('undefined'));
  const repoDir = join(options.cache, 'models--org--flaky');
  const etag = sha256(weights);
  assert.deepEqual(
    fs.readdirSync(join(repoDir, 'blobs')).filter((n) => n.startsWith(etag)),
    [`${etag}.incomplete`],
  );
  const commit = hub.commit('org/flaky');
  assert.ok(!fs.existsSync(join(repoDir, 'snapshots', commit, 'model.safetensors')));
  assert.ok(!fs.existsSync(join(repoDir, 'refs', 'main')), 'no ref to an incomplete snapshot');
  const partialSize = fs.statSync(join(repoDir, 'blobs', `${etag}.incomplete`)).size;
  assert.ok(partialSize > 0 && partialSize < weights.length);

  hub.clearLog();
  const resolved = await resolveModel('org/flaky', options);
  assert.deepEqual(
    hub.requests.filter((r) => r.server === 'cdn').map((r) => r.range),
    [`bytes=${partialSize}-`],
  );
  assert.deepEqual(fs.readFileSync(join(resolved.dir, 'model.safetensors')), weights);
  assert.ok(!fs.existsSync(join(repoDir, 'blobs', `${etag}.incomplete`)));
});

test('a server that ignores Range gets a clean restart (200), not a spliced file', async () => {
  const files = randomModelFiles(6);
  const weights = files['model.safetensors'] as Buffer;
  hub.setRepo('org/norange', { revisions: { main: files } });
  const options = setup();
  const blobs = join(options.cache, 'models--org--norange', 'blobs');
  fs.mkdirSync(blobs, { recursive: true });
  fs.writeFileSync(join(blobs, `${sha256(weights)}.incomplete`), weights.subarray(0, 4096));
  hub.setIgnoreRange(true);
  hub.clearLog();
  try {
    const resolved = await resolveModel('org/norange', options);
    assert.deepEqual(
      hub.requests.filter((r) => r.server === 'cdn').map((r) => [r.range, r.status]),
      [['bytes=4096-', 200]],
    );
    assert.deepEqual(fs.readFileSync(join(resolved.dir, 'model.safetensors')), weights);
  } finally {
    hub.setIgnoreRange(false);
  }
});

test('an abort stops the download, keeping the partial file for the next run', async () => {
  const files = randomModelFiles(7);
  const weights = files['model.safetensors'] as Buffer;
  hub.setRepo('org/abort', { revisions: { main: files } });
  const options = setup();
  const controller = new AbortController();
  let caught: unknown;
  await resolveModel('org/abort', {
    ...options,
    signal: controller.signal,
    onProgress: (p) => {
      if (p.file === 'model.safetensors' && p.received > 0) controller.abort();
    },
  }).catch((error) => (caught = error));
  assert.ok(caught instanceof Error && caught.name === 'AbortError', `expected an AbortError, got ${String(caught)}`);
  const blobs = join(options.cache, 'models--org--abort', 'blobs');
  assert.ok(!fs.existsSync(join(blobs, sha256(weights))));
  assert.ok(fs.existsSync(join(blobs, `${sha256(weights)}.incomplete`)));
  const resolved = await resolveModel('org/abort', options);
  assert.deepEqual(fs.readFileSync(join(resolved.dir, 'model.safetensors')), weights);
});

test('a corrupt partial file is caught by the sha256 check and deleted, never becoming the blob', async () => {
  const files = randomModelFiles(5);
  const weights = files['model.safetensors'] as Buffer;
  hub.setRepo('org/corrupt', { revisions: { main: files } });
  const options = setup();
  const etag = sha256(weights);
  const blobs = join(options.cache, 'models--org--corrupt', 'blobs');
  fs.mkdirSync(blobs, { recursive: true });
  fs.writeFileSync(join(blobs, `${etag}.incomplete`), Buffer.alloc(1000, 7)); // wrong bytes
  await rejectsInput(resolveModel('org/corrupt', options), /arrived corrupted .* run again/);
  assert.ok(!fs.existsSync(join(blobs, etag)));
  assert.ok(!fs.existsSync(join(blobs, `${etag}.incomplete`)));
  const resolved = await resolveModel('org/corrupt', options);
  assert.deepEqual(fs.readFileSync(join(resolved.dir, 'model.safetensors')), weights);
});

test('offline: works from the cache with no request, and says what is missing otherwise', async () => {
  const options = setup();
  const online = await resolveModel('org/tiny', options);
  hub.clearLog();
  const offline = await resolveModel('org/tiny', { ...options, offline: true });
  assert.equal(offline.dir, online.dir);
  assert.equal(offline.fromCache, true);
  const byEnv = await resolveModel('org/tiny', { ...options, env: { ...options.env, HF_HUB_OFFLINE: '1' } });
  assert.equal(byEnv.dir, online.dir);
  assert.equal(hub.requests.length, 0);

  await rejectsInput(
    resolveModel('org/sharded', { ...options, offline: true }),
    /org\/sharded@main: offline mode, and the Hugging Face cache has no copy of it/,
  );
  await rejectsInput(resolveModel('org/tiny@v1', { ...options, offline: true }), /has no refs\/v1/);
  await rejectsInput(
    resolveModel('org/sharded', { ...options, env: { ...options.env, HF_HUB_OFFLINE: '1' } }),
    /offline mode \(HF_HUB_OFFLINE is set\), and the Hugging Face cache has no copy/,
  );

  // A snapshot whose weights blob was deleted: the dangling link counts as missing.
  fs.rmSync(fs.realpathSync(join(online.dir, 'model.safetensors')));
  await rejectsInput(resolveModel('org/tiny', { ...options, offline: true }), /cached snapshot .* is incomplete: missing model\.safetensors/);
  // Online again, only the missing blob comes back.
  hub.clearLog();
  await resolveModel('org/tiny', options);
  assert.equal(hub.downloads().length, 1);
});

test('when the hub cannot be reached the cached snapshot is used, with a note; without one, a clear error', async () => {
  const options = setup();
  await resolveModel('org/tiny', options);
  hub.setDown(true);
  try {
    const resolved = await resolveModel('org/tiny', options);
    assert.equal(resolved.fromCache, true);
    assert.match(resolved.notes.join('\n'), /could not be reached .*using the cached snapshot/);
    await rejectsInput(resolveModel('org/sharded', options), /could not be reached .*no copy of it/);
  } finally {
    hub.setDown(false);
  }
});

test('HF_HOME is honoured when HF_HUB_CACHE is not set, and a cache written there by another client is reused', async () => {
  const hfHome = fresh('hf-home');
  const options: ResolveOptions = { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: hfHome }, retryDelayMs: 10 };
  const resolved = await resolveModel('org/tiny', options);
  assert.ok(resolved.dir.startsWith(join(hfHome, 'hub', 'models--org--tiny', 'snapshots')));

  // A cache as huggingface_hub writes it (blobs named by etag, relative symlinks, refs/main), made by hand:
  const cache = fresh('python-cache');
  const repoDir = join(cache, 'models--org--tiny');
  const commit = hub.commit('org/tiny');
  fs.mkdirSync(join(repoDir, 'blobs'), { recursive: true });
  fs.mkdirSync(join(repoDir, 'snapshots', commit), { recursive: true });
  fs.mkdirSync(join(repoDir, 'refs'));
  fs.writeFileSync(join(repoDir, 'refs', 'main'), commit);
  for (const [name, bytes] of Object.entries(tiny)) {
    const etag = name.endsWith('.safetensors') ? sha256(bytes as Buffer) : gitBlobSha1(bytes as Buffer);
    fs.writeFileSync(join(repoDir, 'blobs', etag), bytes);
    fs.symlinkSync(`../../blobs/${etag}`, join(repoDir, 'snapshots', commit, name));
  }
  hub.clearLog();
  const reused = await resolveModel('org/tiny', setup(cache));
  assert.equal(reused.dir, join(repoDir, 'snapshots', commit));
  assert.equal(hub.downloads().length, 0);
});

test('HF_HUB_CACHE from process.env is the default', async () => {
  const cache = fresh('env-cache');
  const saved = { HF_HUB_CACHE: process.env.HF_HUB_CACHE, HF_ENDPOINT: process.env.HF_ENDPOINT };
  process.env.HF_HUB_CACHE = cache;
  process.env.HF_ENDPOINT = hub.endpoint;
  try {
    const resolved = await resolveModel('org/tiny', { retryDelayMs: 10 });
    assert.ok(resolved.dir.startsWith(join(cache, 'models--org--tiny')));
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
});
