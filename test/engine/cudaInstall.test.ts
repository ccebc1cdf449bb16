// CUDA on demand (`atp install-cuda`, src/lib/cuda/cudaInstall.ts) against a fake NuGet feed on 127.0.0.1:
// a whole install, a transfer cut off and resumed with a Range request, a wrong checksum, a 404, no server at all,
// a downloaded file given with --from; then the engine loading ONNX Runtime from the installed folder.
// The real provider libraries (hundreds of MB from nuget.org) cannot be fetched here: the fake package carries a
// real ELF library (libz) under the provider's name, so ONNX Runtime's attempt to load it shows where it looked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cudaPackage, installCuda, type InstallProgress, proxyFor } from '../../src/lib/cuda/cudaInstall';
import { bundledOrt, cudaRuntimeState, missingNvidiaLibraries } from '../../src/lib/cuda/cudaRuntime';
import { CUDA_NOT_INSTALLED, InputError } from '../../src/shared/errors';
import { parseResult } from '../../src/shared/result';
import { type FakeNuget, makeNupkg, selfSignedCertificate, startFakeNuget, startFakeProxy } from '../support/fakeNuget';
import { CLI, requireBuiltCli } from '../support/cli';
import { writeRandomGpt2 } from '../support/randomGpt2';

const VERSION = '1.30.0';
const ID = 'microsoft.ml.onnxruntime.gpu.linux';
const NATIVE = 'runtimes/linux-x64/native/';
const LIBZ = readFileSync('/lib/x86_64-linux-gnu/libz.so.1');
// Incompressible, so that a cut-off transfer really stops part-way through the file.
const CUDA_LIBRARY = randomBytes(3 << 20);
let nupkg: Buffer;
let server: FakeNuget;
let work: string;
let fakeBin: string;

before(async () => {
  nupkg = makeNupkg({
    'Microsoft.ML.OnnxRuntime.Gpu.Linux.nuspec': Buffer.from('<package/>'),
    [`${NATIVE}libonnxruntime_providers_shared.so`]: LIBZ,
    [`${NATIVE}libonnxruntime_providers_cuda.so`]: CUDA_LIBRARY,
    [`${NATIVE}libonnxruntime_providers_tensorrt.so`]: Buffer.from('not taken'),
  });
  server = await startFakeNuget({ [ID]: { [VERSION]: nupkg } });
  work = mkdtempSync(join(tmpdir(), 'atp-cuda-'));
  // A stand-in for onnxruntime-node's bin folder where only copying is tested.
  fakeBin = join(work, 'bin');
  mkdirSync(fakeBin);
  writeFileSync(join(fakeBin, 'onnxruntime_binding.node'), 'binding');
  writeFileSync(join(fakeBin, 'libonnxruntime.so.1'), 'runtime');
});
after(async () => {
  await server.close();
  rmSync(work, { recursive: true, force: true });
});

let roots = 0;
const freshRoot = () => join(work, `root-${++roots}`);
// No proxy from the developer's environment: the proxy tests set their own.
const options = (root: string, extra: Parameters<typeof installCuda>[0] = {}) => ({
  root,
  feed: server.feed,
  ort: { version: VERSION, binDir: fakeBin },
  env: {},
  ...extra,
});

test('install: the package is checked against its published SHA-512, the two provider libraries and the runtime copy land in <root>/<version>', async () => {
  const root = freshRoot();
  const phases = new Set<string>();
  server.requests.length = 0;
  const outcome = await installCuda(options(root, { onProgress: (p: InstallProgress) => phases.add(p.phase) }));
  assert.equal(outcome.dir, join(root, VERSION));
  assert.deepEqual(readFileSync(join(outcome.dir, 'libonnxruntime_providers_cuda.so')), CUDA_LIBRARY);
  assert.deepEqual(readFileSync(join(outcome.dir, 'libonnxruntime_providers_shared.so')), LIBZ);
  assert.equal(readFileSync(join(outcome.dir, 'onnxruntime_binding.node'), 'utf8'), 'binding');
  assert.equal(existsSync(join(outcome.dir, 'libonnxruntime_providers_tensorrt.so')), false);
  assert.equal(outcome.manifest.package.sha512.length, 128);
  assert.equal(cudaRuntimeState(VERSION, { ATP_CUDA_DIR: root }).state, 'installed');
  assert.deepEqual([...phases], ['checksum', 'download', 'verify', 'install', 'extract']);
  assert.deepEqual(
    server.requests.map((r) => r.path),
    [`/v3/registration5-semver1/${ID}/${VERSION}.json`, `/v3/catalog0/data/${ID}.${VERSION}.json`, `/v3-flatcontainer/${ID}/${VERSION}/${ID}.${VERSION}.nupkg`],
  );
  // The download is gone once installed; no staging folder is left behind.
  assert.deepEqual(readdirSync(root).sort(), [VERSION, 'downloads']);
  assert.deepEqual(readdirSync(join(root, 'downloads')), []);
  // A damaged file is noticed: the engine would not use the folder.
  writeFileSync(join(outcome.dir, 'libonnxruntime_providers_cuda.so'), 'short');
  const broken = cudaRuntimeState(VERSION, { ATP_CUDA_DIR: root });
  assert.equal(broken.state, 'broken');
  assert.match(broken.state === 'broken' ? broken.problem : '', /libonnxruntime_providers_cuda\.so is 5 bytes, the install recorded 3145728/);
});

test('a transfer cut off keeps what arrived; the next install resumes it with a Range request and installs', async () => {
  const root = freshRoot();
  server.requests.length = 0;
  server.cutOffNextDownload(1 << 20);
  await assert.rejects(installCuda(options(root)), (error: Error) => {
    assert.match(
      error.message,
      new RegExp(
        `${ID}\\.${VERSION.replaceAll('.', '\\.')}\\.nupkg: the transfer stopped at [\\d.]+ MiB of [\\d.]+ MiB .*run the install again to resume from there`,
      ),
    );
    return true;
  });
  const part = join(root, 'downloads', `${ID}.${VERSION}.nupkg.part`);
  const kept = statSync(part).size;
  // What reached the disk before the connection dropped (the server sent 1 MiB; bytes still in flight are lost).
  assert.ok(kept > 0 && kept <= 1 << 20, `kept ${kept} of ${nupkg.length}`);
  assert.equal(cudaRuntimeState(VERSION, { ATP_CUDA_DIR: root }).state, 'absent');

  const outcome = await installCuda(options(root));
  const downloads = server.requests.filter((r) => r.path.endsWith('.nupkg'));
  assert.deepEqual(
    downloads.map((r) => [r.range, r.status]),
    [
      [undefined, 200],
      [`bytes=${kept}-`, 206],
    ],
  );
  assert.deepEqual(readFileSync(join(outcome.dir, 'libonnxruntime_providers_cuda.so')), CUDA_LIBRARY);
  assert.equal(existsSync(part), false);
});

test('a package that does not match the published SHA-512 is refused: nothing installed, the previous install untouched, the download removed', async () => {
  const root = freshRoot();
  const first = await installCuda(options(root));
  const before = readFileSync(join(first.dir, 'install.json'), 'utf8');
  server.publishWrongHash(true);
  try {
    await assert.rejects(
      installCuda(options(root)),
      /\.nupkg: SHA-512 mismatch \(expected [0-9a-f]{16}…, got [0-9a-f]{16}…\); nothing was installed and the download was removed/,
    );
  } finally {
    server.publishWrongHash(false);
  }
  assert.equal(readFileSync(join(first.dir, 'install.json'), 'utf8'), before);
  assert.equal(existsSync(join(root, 'downloads', `${ID}.${VERSION}.nupkg.part`)), false);
  // --sha512 given by the user is checked the same way.
  await assert.rejects(installCuda(options(freshRoot(), { sha512: 'ab'.repeat(64) })), /SHA-512 mismatch .*nothing was installed/);
  await assert.rejects(installCuda(options(freshRoot(), { sha512: 'abc' })), /--sha512: "abc" is not a SHA-512/);
});

test('cancelling during the download stops it: nothing installed, the partial file kept for the next try', async () => {
  const root = freshRoot();
  const controller = new AbortController();
  const onProgress = (p: InstallProgress) => {
    if (p.phase === 'download') controller.abort();
  };
  await assert.rejects(installCuda(options(root, { signal: controller.signal, onProgress })), (error: Error) => {
    assert.equal(error.name, 'InstallCancelledError');
    assert.match(error.message, /install cancelled; nothing was installed \(the partial download is kept and resumes next time\)/);
    return true;
  });
  assert.equal(cudaRuntimeState(VERSION, { ATP_CUDA_DIR: root }).state, 'absent');
  assert.ok(existsSync(join(root, 'downloads', `${ID}.${VERSION}.nupkg.part`)));
  const outcome = await installCuda(options(root));
  assert.deepEqual(readFileSync(join(outcome.dir, 'libonnxruntime_providers_cuda.so')), CUDA_LIBRARY);
});

test('404: the message names the URL and the manual steps', async () => {
  const root = freshRoot();
  const missing = cudaPackage('9.9.9', server.feed);
  await assert.rejects(installCuda({ root, feed: server.feed, ort: { version: '9.9.9', binDir: fakeBin } }), (error: Error) => {
    assert.ok(error.message.startsWith(`${missing.registrationUrl} answered 404. To install by hand: download ${missing.url}`), error.message);
    assert.match(error.message, /atp install-cuda --from FILE --sha512 HASH/);
    assert.ok(error.message.includes(`It installs into ${join(root, '9.9.9')}.`), error.message);
    return true;
  });
  // The package itself missing (a mirror given with --from URL): same.
  const url = `${server.feed}/v3-flatcontainer/${ID}/${VERSION}/other.nupkg`;
  await assert.rejects(installCuda(options(root, { from: url, env: { ATP_CUDA_ALLOW_HTTP: '1' } })), (error: Error) => {
    assert.ok(error.message.startsWith(`${url}: not found (404)`), error.message);
    assert.match(error.message, /To install by hand: download .*\.nupkg/);
    return true;
  });
  assert.equal(cudaRuntimeState(VERSION, { ATP_CUDA_DIR: root }).state, 'absent');
});

test('offline (connection refused): the message names what to fetch and where it goes; --from FILE --sha512 then installs without the network', async () => {
  const closed = await startFakeNuget({});
  const deadFeed = closed.feed;
  await closed.close();
  const root = freshRoot();
  const pkg = cudaPackage(VERSION, deadFeed);
  await assert.rejects(installCuda(options(root, { feed: deadFeed })), (error: Error) => {
    assert.ok(error.message.startsWith(`${pkg.registrationUrl}: cannot reach 127.0.0.1:`), error.message);
    assert.match(error.message, /ECONNREFUSED: offline, or behind a proxy/);
    assert.ok(error.message.includes(`download ${pkg.url}`), error.message);
    assert.ok(error.message.includes(join(root, VERSION)), error.message);
    return true;
  });
  const file = join(work, `${ID}.${VERSION}.nupkg`);
  writeFileSync(file, nupkg);
  const outcome = await installCuda(options(root, { feed: deadFeed, from: file, sha512: createHash('sha512').update(nupkg).digest('hex') }));
  assert.deepEqual(readFileSync(join(outcome.dir, 'libonnxruntime_providers_cuda.so')), CUDA_LIBRARY);
  assert.equal(outcome.manifest.package.source, file);
  assert.ok(existsSync(file), 'a file the user gave is left where it was');
});

test('ATP_CUDA_FEED is a mirror: its own catalog never vouches for its package; --sha512 or a pinned hash does', async () => {
  // A tampered mirror: another library under the provider's name, and a catalog that publishes that package's hash.
  const tamperedPackage = makeNupkg({
    [`${NATIVE}libonnxruntime_providers_shared.so`]: LIBZ,
    [`${NATIVE}libonnxruntime_providers_cuda.so`]: Buffer.from('anything the mirror likes'),
  });
  const tampered = await startFakeNuget({ [ID]: { [VERSION]: tamperedPackage } });
  const genuine = createHash('sha512').update(nupkg).digest('hex');
  const mirror = (extra: Parameters<typeof installCuda>[0] = {}) =>
    installCuda({ root: freshRoot(), ort: { version: VERSION, binDir: fakeBin }, env: { ATP_CUDA_FEED: tampered.feed, ATP_CUDA_ALLOW_HTTP: '1' }, ...extra });
  try {
    // No hash of its own: refused before anything is fetched from the mirror.
    await assert.rejects(mirror(), (error: Error) => {
      assert.ok(error instanceof InputError);
      assert.match(error.message, /^ATP_CUDA_FEED http:\/\/127\.0\.0\.1:\d+: a mirror cannot vouch for its own package.*--sha512.*Nothing was downloaded\.$/);
      assert.ok(error.message.includes(cudaPackage(VERSION).registrationUrl), 'names where the real hash is published');
      return true;
    });
    assert.deepEqual(tampered.requests, []);
    // The genuine hash from the user: the tampered package is refused, nothing installed.
    await assert.rejects(mirror({ sha512: genuine }), /SHA-512 mismatch .*nothing was installed/);
    // The same from ATP_CUDA_SHA512 (the editor's install, which has no --sha512): the mirror's package is checked
    // against it, never against the mirror's own catalog; a malformed value is refused by name.
    await assert.rejects(
      mirror({ env: { ATP_CUDA_FEED: tampered.feed, ATP_CUDA_ALLOW_HTTP: '1', ATP_CUDA_SHA512: genuine } }),
      /SHA-512 mismatch .*nothing was installed/,
    );
    await assert.rejects(
      mirror({ env: { ATP_CUDA_FEED: tampered.feed, ATP_CUDA_ALLOW_HTTP: '1', ATP_CUDA_SHA512: 'abc' } }),
      /ATP_CUDA_SHA512: "abc" is not a SHA-512/,
    );
    // A pinned hash: the same without --sha512, and a --sha512 that disagrees with the pin is refused.
    await assert.rejects(mirror({ pinned: { [VERSION]: genuine } }), /SHA-512 mismatch .*nothing was installed/);
    await assert.rejects(
      mirror({ pinned: { [VERSION]: genuine }, sha512: 'ab'.repeat(64) }),
      /--sha512: abababab.* is not the SHA-512 of .* \([0-9a-f]{16}…, pinned in this build\)/,
    );
    // Plain http needs ATP_CUDA_ALLOW_HTTP=1, for ATP_CUDA_FEED and for --from URL alike.
    const root = freshRoot();
    await assert.rejects(
      installCuda({ root, ort: { version: VERSION, binDir: fakeBin }, env: { ATP_CUDA_FEED: server.feed }, sha512: genuine }),
      /ATP_CUDA_FEED http:\/\/127\.0\.0\.1:\d+: plain http can be read and changed on the way; use https, or set ATP_CUDA_ALLOW_HTTP=1/,
    );
    await assert.rejects(installCuda(options(root, { from: `${server.feed}/x.nupkg` })), /--from http:\/\/.*plain http/);
    // An honest mirror with the genuine hash installs.
    const outcome = await installCuda({
      root,
      ort: { version: VERSION, binDir: fakeBin },
      env: { ATP_CUDA_FEED: server.feed, ATP_CUDA_ALLOW_HTTP: '1' },
      sha512: genuine,
    });
    assert.deepEqual(readFileSync(join(outcome.dir, 'libonnxruntime_providers_cuda.so')), CUDA_LIBRARY);
  } finally {
    await tampered.close();
  }
  // A pinned hash is used without asking the feed for one.
  server.requests.length = 0;
  await installCuda(options(freshRoot(), { pinned: { [VERSION]: genuine } }));
  assert.deepEqual(
    server.requests.map((r) => r.path),
    [`/v3-flatcontainer/${ID}/${VERSION}/${ID}.${VERSION}.nupkg`],
  );
});

test(
  '--from a folder, a FIFO or /dev/zero, and damaged archives with a correct --sha512, end in an InputError naming the file',
  { timeout: 30_000 },
  async () => {
    const folder = mkdtempSync(join(work, 'folder-'));
    const fifo = join(work, 'package.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    for (const [from, what] of [
      [folder, 'a folder'],
      [fifo, 'a FIFO'],
      ['/dev/zero', 'a character device'],
    ]) {
      await assert.rejects(installCuda(options(freshRoot(), { from, sha512: 'ab'.repeat(64) })), (error: Error) => {
        assert.ok(error instanceof InputError);
        assert.equal(error.message, `--from ${from} is not a regular file (${what})`);
        return true;
      });
    }
    // A package whose directory is damaged, given with its own correct hash: the zip reader's InputError, naming it.
    const damaged = Buffer.from(nupkg);
    const eocd = damaged.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    damaged.writeUInt32LE(damaged.length - 10, eocd + 16);
    const file = join(work, 'damaged.nupkg');
    writeFileSync(file, damaged);
    await assert.rejects(installCuda(options(freshRoot(), { from: file, sha512: createHash('sha512').update(damaged).digest('hex') })), (error: Error) => {
      assert.ok(error instanceof InputError, String(error));
      assert.ok(error.message.startsWith(`${file}: not a usable zip archive: `), error.message);
      return true;
    });
  },
);

test('proxies: HTTPS_PROXY for https, HTTP_PROXY for http, in either case; NO_PROXY hosts and domains go direct', () => {
  const https = new URL('https://api.nuget.org/v3/index.json');
  assert.equal(proxyFor(https, {}), undefined);
  assert.equal(proxyFor(https, { HTTPS_PROXY: 'http://proxy:3128' })?.host, 'proxy:3128');
  assert.equal(proxyFor(https, { https_proxy: 'proxy:8080' })?.href, 'http://proxy:8080/');
  assert.equal(proxyFor(https, { HTTP_PROXY: 'http://proxy:3128' }), undefined);
  assert.equal(proxyFor(new URL('http://mirror.local/x'), { HTTP_PROXY: 'http://proxy:3128' })?.host, 'proxy:3128');
  for (const noProxy of ['nuget.org', '.nuget.org', 'api.nuget.org:443', 'localhost, api.nuget.org', '*']) {
    assert.equal(proxyFor(https, { HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: noProxy }), undefined, noProxy);
  }
  assert.equal(proxyFor(https, { HTTPS_PROXY: 'http://proxy:3128', no_proxy: 'get.org' })?.host, 'proxy:3128');
});

test('through an HTTP proxy: a feed only the proxy can reach installs, every request went through it, and the proxy being down is named', async () => {
  const proxy = await startFakeProxy();
  try {
    const port = new URL(server.feed).port;
    // nuget.test does not resolve: only the proxy (which sends everything to 127.0.0.1) reaches it.
    const feed = `http://nuget.test:${port}`;
    const outcome = await installCuda(options(freshRoot(), { feed, env: { HTTP_PROXY: proxy.url } }));
    assert.deepEqual(readFileSync(join(outcome.dir, 'libonnxruntime_providers_cuda.so')), CUDA_LIBRARY);
    assert.deepEqual(proxy.requests, [
      `GET ${feed}/v3/registration5-semver1/${ID}/${VERSION}.json`,
      // The catalog link is the fake feed's own (127.0.0.1), also fetched through the proxy.
      `GET ${server.feed}/v3/catalog0/data/${ID}.${VERSION}.json`,
      `GET ${feed}/v3-flatcontainer/${ID}/${VERSION}/${ID}.${VERSION}.nupkg`,
    ]);
  } finally {
    await proxy.close();
  }
  const closed = await startFakeProxy();
  await closed.close();
  await assert.rejects(
    installCuda(options(freshRoot(), { env: { HTTP_PROXY: closed.url } })),
    new RegExp(
      `cannot reach 127\\.0\\.0\\.1:\\d+ through the proxy ${new URL(closed.url).host.replaceAll('.', '\\.')} \\(ECONNREFUSED\\)\\. To install by hand`,
    ),
  );
});

/** Runs the built atp without blocking this process's event loop (the fake feed lives here). */
function atp(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

test('atp install-cuda installs the real onnxruntime-node runtime with progress on stderr; the engine then loads ONNX Runtime from there and asks it for CUDA', async () => {
  requireBuiltCli();
  const ort = bundledOrt();
  const root = freshRoot();
  const env = { ATP_CUDA_DIR: root, ATP_CUDA_FEED: server.feed, ATP_CUDA_ALLOW_HTTP: '1', ATP_CACHE_DIR: join(work, 'cache') };
  // A mirror (ATP_CUDA_FEED) is never asked for the hash: without --sha512 (and no pin for this version) it is refused.
  const unhashed = await atp(['install-cuda'], env);
  assert.equal(unhashed.code, 2, unhashed.stderr);
  assert.match(unhashed.stderr, /a mirror cannot vouch for its own package/);
  assert.doesNotMatch(unhashed.stderr, /internal error|\n\s+at /);
  const install = await atp(['install-cuda', '--sha512', createHash('sha512').update(nupkg).digest('hex')], env);
  assert.equal(install.code, 0, install.stderr);
  assert.equal(install.stdout.trim(), join(root, ort.version));
  assert.match(install.stderr, /downloaded 3\.\d MiB/);
  assert.match(install.stderr, /extracting libonnxruntime_providers_cuda\.so \(3\.0 MiB\)/);
  const missing = missingNvidiaLibraries();
  if (missing.length > 0) assert.ok(install.stderr.includes(`note: not found on this machine: ${missing.join(', ')}`), install.stderr);
  const dir = join(root, ort.version);

  // A process that loads ONNX Runtime the way the CLI and the worker do, and asks it for CUDA.
  const probe = resolve(__dirname, '../support/ortProbe.ts');
  const run = (extra: Record<string, string>) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', probe], {
      cwd: resolve(__dirname, '../..'),
      encoding: 'utf8',
      env: { ...process.env, ATP_CUDA_DIR: root, ...extra },
    });
    assert.equal(r.status, 0, r.stderr);
    return { ...(JSON.parse(r.stdout) as { choice: string; cudaError: string; y: number[]; mapped: string[] }), stderr: r.stderr };
  };
  const installed = run({});
  assert.equal(installed.choice, `ONNX Runtime from the CUDA runtime in ${dir}`);
  assert.deepEqual(installed.y, [-1.5, 2]);
  assert.ok(
    installed.mapped.includes(join(dir, 'libonnxruntime.so.1')) && installed.mapped.includes(join(dir, 'onnxruntime_binding.node')),
    installed.mapped.join('\n'),
  );
  assert.ok(!installed.mapped.some((f) => f.startsWith(ort.binDir)), installed.mapped.join('\n'));
  // ONNX Runtime opened the provider library in the per-user folder (it is libz here, hence no Provider_SetHost) ...
  assert.match(installed.cudaError, /Cuda: Failed to load shared library/);
  assert.ok(installed.stderr.includes(`${dir}/libonnxruntime_providers_shared.so: undefined symbol: Provider_SetHost`), installed.stderr);
  // ... where onnxruntime-node's own runtime finds no provider at all.
  const bundled = run({ ATP_ORT_RUNTIME: 'bundled' });
  assert.equal(bundled.choice, 'ONNX Runtime from onnxruntime-node (ATP_ORT_RUNTIME=bundled)');
  assert.deepEqual(bundled.y, [-1.5, 2]);
  assert.ok(bundled.stderr.includes(`${ort.binDir}/libonnxruntime_providers_shared.so: cannot open shared object file`), bundled.stderr);

  // A run with --device cuda: the provider is installed, so the fallback says what else is missing; without the
  // install it says the provider is not installed (the editor then offers Install CUDA Support…).
  const model = join(work, 'model');
  writeRandomGpt2(model, { nLayers: 1, nHeads: 2, dModel: 16, seed: 3 });
  const data = resolve(__dirname, '../../examples/ioi.jsonl');
  const patch = async (cudaDir: string) => {
    const out = join(work, `result-${++roots}.json`);
    const r = await atp(['patch', '--model', model, '--data', data, '--out', out, '--device', 'cuda', '--method', 'atp'], { ...env, ATP_CUDA_DIR: cudaDir });
    assert.equal(r.code, 0, r.stderr);
    return parseResult(readFileSync(out, 'utf8'), out);
  };
  const withInstall = await patch(root);
  assert.equal(withInstall.device, 'cpu');
  const note = withInstall.warnings.find((w) => w.startsWith('cuda could not start'));
  assert.ok(note, withInstall.warnings.join('\n'));
  if (missing.length > 0)
    assert.ok(note.includes(`NVIDIA libraries not found: ${missing.join(', ')}; the CUDA provider needs an NVIDIA driver, CUDA 12 and cuDNN 9`), note);
  assert.ok(!note.includes(CUDA_NOT_INSTALLED), note);
  const withoutInstall = await patch(join(work, 'no-such-root'));
  assert.ok(
    withoutInstall.warnings.some((w) => w.includes(`cuda could not start (${CUDA_NOT_INSTALLED}: run \`atp install-cuda\``)),
    withoutInstall.warnings.join('\n'),
  );
});

test('atp install-cuda over https through a CONNECT proxy (HTTPS_PROXY): TLS to the feed inside the tunnel, its certificate checked', async () => {
  requireBuiltCli();
  const certDir = mkdtempSync(join(work, 'tls-'));
  const certificate = selfSignedCertificate('nuget.test', certDir);
  const secure = await startFakeNuget({ [ID]: { [bundledOrt().version]: nupkg } }, { tls: certificate, host: 'nuget.test' });
  const proxy = await startFakeProxy();
  try {
    const root = freshRoot();
    const env = { ATP_CUDA_DIR: root, ATP_CUDA_FEED: secure.feed, HTTPS_PROXY: proxy.url, NO_PROXY: '', no_proxy: '' };
    // Without trusting the feed's certificate the tunnel works but TLS refuses it.
    const sha512 = ['--sha512', createHash('sha512').update(nupkg).digest('hex')];
    const untrusted = await atp(['install-cuda', ...sha512], env);
    assert.equal(untrusted.code, 2, untrusted.stderr);
    assert.match(untrusted.stderr, /self.signed certificate \(through the proxy 127\.0\.0\.1:\d+\)/);
    assert.equal(cudaRuntimeState(bundledOrt().version, { ATP_CUDA_DIR: root }).state, 'absent');

    proxy.requests.length = 0;
    const trusted = await atp(['install-cuda', ...sha512], { ...env, NODE_EXTRA_CA_CERTS: certificate.certFile });
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.equal(cudaRuntimeState(bundledOrt().version, { ATP_CUDA_DIR: root }).state, 'installed');
    const port = new URL(secure.feed).port;
    // Only the package: a mirror's catalog is not asked for its hash.
    assert.deepEqual(proxy.requests, [`CONNECT nuget.test:${port}`]);
    assert.deepEqual(
      secure.requests.map((r) => r.status),
      [200],
    );
  } finally {
    await proxy.close();
    await secure.close();
  }
});
