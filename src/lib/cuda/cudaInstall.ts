// `atp install-cuda` and "Attribution Patching: Install CUDA Support": fetch the CUDA provider libraries that match
// the installed onnxruntime-node (the NuGet package its own install script downloads, Microsoft.ML.OnnxRuntime.Gpu.Linux
// at the same version), verify the package against the SHA-512 NuGet publishes for it, and install them with a copy
// of onnxruntime-node's bin folder into the per-user runtime folder (see cudaRuntime.ts for why a copy).
// The download resumes where it stopped (HTTP Range); the install is staged in a sibling folder and renamed into
// place, so a failure at any step leaves the previous state. Pure Node (no onnxruntime): the extension host runs it.
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { basename, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InputError } from '../../shared/errors';
import { extractZipEntry, listZip } from '../files/zipReader';
import { openInputFile, READ_LIMITS, streamInputFile } from '../files/readInput';
import {
  bundledOrt,
  CUDA_PLATFORM,
  cudaRuntimeRoot,
  type InstallManifest,
  MANIFEST_FILE,
  MANIFEST_SCHEMA,
  missingNvidiaLibraries,
  NVIDIA_REQUIREMENT,
  PROVIDER_LIBRARIES,
} from './cudaRuntime';

/** nuget.org, where onnxruntime-node's install script (script/install-metadata.js, feed "nuget") finds the package. */
export const NUGET = 'https://api.nuget.org';
export const PACKAGE_ID = 'Microsoft.ML.OnnxRuntime.Gpu.Linux';
/**
 * The package's SHA-512 (hex) per onnxruntime-node version: NuGet's packageHash for that exact file, as nuget.org's
 * catalog publishes it. A pinned hash is what the package is checked against whatever feed or URL it came from (a
 * mirror's word on its own package is worth nothing). Add the new version's hash here when onnxruntime-node is
 * upgraded: `curl -s https://api.nuget.org/v3/registration5-semver1/microsoft.ml.onnxruntime.gpu.linux/<version>.json`
 * → catalogEntry → packageHash (base64; normalizeSha512 takes it as it is). 1.30.0's is not pinned yet: the
 * machines this was written on cannot reach nuget.org, and a hash copied from anywhere else would be a guess.
 * Without a pin the hash comes from --sha512, or from nuget.org itself when the package does (never from
 * ATP_CUDA_FEED).
 */
export const PINNED_PACKAGE_SHA512: Readonly<Record<string, string>> = Object.freeze({});

/** Set to 1 to let ATP_CUDA_FEED or --from name a plain http:// URL (a mirror on a trusted network). */
export const ALLOW_HTTP_VARIABLE = 'ATP_CUDA_ALLOW_HTTP';

/** Where the provider libraries are inside the package (onnxruntime-node's script/install-metadata.js). */
const PATH_IN_PACKAGE = 'runtimes/linux-x64/native/';

export interface CudaPackage {
  id: string;
  version: string;
  fileName: string;
  /** The .nupkg in NuGet's flat container (the URL install.js builds from PackageBaseAddress/3.0.0). */
  url: string;
  /** NuGet's registration leaf: its catalogEntry holds packageHash (SHA-512, base64) for exactly this file. */
  registrationUrl: string;
}

/** The package for an onnxruntime-node version; `feed` replaces https://api.nuget.org (ATP_CUDA_FEED, a mirror, the tests' server). */
export function cudaPackage(ortVersion: string, feed: string = NUGET): CudaPackage {
  const id = PACKAGE_ID.toLowerCase();
  const version = ortVersion.toLowerCase();
  const base = feed.replace(/\/+$/, '');
  return {
    id: PACKAGE_ID,
    version: ortVersion,
    fileName: `${id}.${version}.nupkg`,
    url: `${base}/v3-flatcontainer/${id}/${version}/${id}.${version}.nupkg`,
    registrationUrl: `${base}/v3/registration5-semver1/${id}/${version}.json`,
  };
}

export type InstallPhase = 'checksum' | 'download' | 'verify' | 'extract' | 'install';

export interface InstallProgress {
  phase: InstallPhase;
  message: string;
  done?: number;
  total?: number;
}

export interface InstallOptions {
  /** A downloaded .nupkg (a file) or another URL for it, instead of the feed. */
  from?: string;
  /** The expected SHA-512 (hex or base64); without it, the pinned hash, else nuget.org's published one. */
  sha512?: string;
  /** Root of the per-user runtimes (default cudaRuntimeRoot()): the install goes to <root>/<onnxruntime version>. */
  root?: string;
  /**
   * The feed trusted like nuget.org, for its packages and their published hashes (default https://api.nuget.org;
   * the tests' fake nuget.org). Code only: the environment's ATP_CUDA_FEED is a mirror, trusted for nothing.
   */
  feed?: string;
  /** The pinned hashes by onnxruntime-node version (default PINNED_PACKAGE_SHA512; the tests' own). */
  pinned?: Readonly<Record<string, string>>;
  onProgress?: (progress: InstallProgress) => void;
  signal?: AbortSignal;
  env?: Record<string, string | undefined>;
  /** onnxruntime-node's version and bin folder (default: the installed one). */
  ort?: { version: string; binDir: string };
}

export interface InstallOutcome {
  dir: string;
  manifest: InstallManifest;
  /** What is still missing for CUDA to run (NVIDIA libraries), in words. */
  notes: string[];
}

/** An install that cannot go on; the message names what failed and how to install by hand. */
export class CudaInstallError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'CudaInstallError';
  }
}

export class InstallCancelledError extends Error {
  constructor() {
    super('install cancelled; nothing was installed (the partial download is kept and resumes next time)');
    this.name = 'InstallCancelledError';
  }
}

/** The manual route, for every failure that involves the network. */
export function manualSteps(pkg: CudaPackage, root: string): string {
  return (
    `To install by hand: download ${pkg.url} on a machine that can reach it, note its SHA-512 ` +
    `(packageHash in the catalog entry that ${pkg.registrationUrl} links to), copy the file here and run ` +
    `\`atp install-cuda --from FILE --sha512 HASH\` (or in VS Code: Attribution Patching: Install CUDA Support → Install from File…). ` +
    `It installs into ${join(root, pkg.version)}.`
  );
}

/** A hash given as hex (128 digits) or base64 (NuGet's form), as bytes in hex. */
export function normalizeSha512(text: string, what: string): string {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{128}$/.test(trimmed)) return trimmed.toLowerCase();
  const bytes = Buffer.from(trimmed, 'base64');
  if (bytes.length === 64 && /^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) return bytes.toString('hex');
  throw new CudaInstallError(`${what}: "${trimmed.slice(0, 40)}${trimmed.length > 40 ? '…' : ''}" is not a SHA-512 (128 hex digits or 88 base64 characters)`);
}

type Env = Record<string, string | undefined>;

/** The proxy for `url`: HTTPS_PROXY for https, HTTP_PROXY for http (either case), unless NO_PROXY names its host. */
export function proxyFor(url: URL, env: Env): URL | undefined {
  const raw = url.protocol === 'https:' ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (!raw) return undefined;
  const host = url.hostname.toLowerCase();
  const bypass = (env.NO_PROXY ?? env.no_proxy ?? '')
    .split(',')
    .map((entry) => entry.trim().toLowerCase().replace(/:\d+$/, ''))
    .filter(Boolean)
    .some((entry) => entry === '*' || host === entry.replace(/^\./, '') || host.endsWith(entry.startsWith('.') ? entry : `.${entry}`));
  if (bypass) return undefined;
  try {
    return new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    throw new CudaInstallError(`${url.protocol === 'https:' ? 'HTTPS_PROXY' : 'HTTP_PROXY'}: "${raw}" is not a URL`);
  }
}

const proxyAuthorization = (proxy: URL): Record<string, string> =>
  proxy.username
    ? { 'proxy-authorization': `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}` }
    : {};

/**
 * The connection for an https request through an HTTP proxy: a CONNECT tunnel to the target, then TLS inside it
 * (verified against the target's name as usual).
 */
function tunnel(proxy: URL, target: URL): http.RequestOptions['createConnection'] {
  return (_options, oncreate) => {
    const port = Number(target.port || 443);
    const connect = (proxy.protocol === 'https:' ? https : http).request({
      host: proxy.hostname,
      port: Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80)),
      method: 'CONNECT',
      path: `${target.hostname}:${port}`,
      headers: { host: `${target.hostname}:${port}`, ...proxyAuthorization(proxy) },
    });
    connect.on('connect', (response, socket) => {
      if (response.statusCode !== 200) {
        socket.destroy();
        return oncreate(new Error(`the proxy ${proxy.host} refused to connect to ${target.host} (${response.statusCode})`), undefined as never);
      }
      oncreate(null as never, tls.connect({ socket, servername: target.hostname }));
    });
    connect.on('error', (error) => oncreate(error, undefined as never));
    connect.end();
    return undefined as never;
  };
}

/** One GET, through the proxy the environment names, following up to five redirects; resolves with the response (status not checked). */
function get(
  url: string,
  headers: Record<string, string>,
  env: Env,
  signal?: AbortSignal,
  redirects = 5,
): Promise<{ response: http.IncomingMessage; url: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const proxy = proxyFor(target, env);
    const allHeaders = { 'user-agent': 'attribution-patching', ...headers };
    const onResponse = (response: http.IncomingMessage) => {
      const location = response.headers.location;
      if (response.statusCode && response.statusCode >= 300 && response.statusCode < 400 && location) {
        response.resume();
        if (redirects === 0) return reject(new Error(`${url}: too many redirects`));
        return resolve(get(new URL(location, target).toString(), headers, env, signal, redirects - 1));
      }
      resolve({ response, url });
    };
    let request: http.ClientRequest;
    if (!proxy) request = (target.protocol === 'http:' ? http : https).get(target, { headers: allHeaders, signal }, onResponse);
    else if (target.protocol === 'https:') request = https.get(target, { headers: allHeaders, signal, createConnection: tunnel(proxy, target) }, onResponse);
    // Plain http through a proxy: the absolute URL in the request line, as HTTP proxies expect.
    else
      request = http.get(
        {
          host: proxy.hostname,
          port: Number(proxy.port || 80),
          path: target.href,
          headers: { ...allHeaders, host: target.host, ...proxyAuthorization(proxy) },
          signal,
        },
        onResponse,
      );
    request.on('error', reject);
  });
}

/** Network failures in words, with the manual route. */
function networkError(url: string, error: unknown, pkg: CudaPackage, root: string, env: Env, signal?: AbortSignal): Error {
  if (signal?.aborted) return new InstallCancelledError();
  const code = (error as NodeJS.ErrnoException).code;
  const proxy = proxyFor(new URL(url), env);
  const unreachable = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ENETUNREACH' || code === 'ETIMEDOUT';
  const why = !unreachable
    ? `${(error as Error).message}${proxy ? ` (through the proxy ${proxy.host})` : ''}`
    : proxy
      ? `cannot reach ${new URL(url).host} through the proxy ${proxy.host} (${code})`
      : `cannot reach ${new URL(url).host} (${code}: offline, or behind a proxy: set HTTPS_PROXY)`;
  return new CudaInstallError(`${url}: ${why}. ${manualSteps(pkg, root)}`);
}

/** The most a NuGet JSON answer (registration leaf, catalog entry) may hold. */
const MAX_JSON_RESPONSE_BYTES = 16e6;

async function getJson(url: string, pkg: CudaPackage, root: string, env: Env, signal?: AbortSignal): Promise<unknown> {
  let response: http.IncomingMessage;
  try {
    ({ response } = await get(url, { accept: 'application/json' }, env, signal));
  } catch (error) {
    throw networkError(url, error, pkg, root, env, signal);
  }
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of response) {
    length += (chunk as Buffer).length;
    // A catalog entry is a few kB: an endless body is cut off, not buffered.
    if (length > MAX_JSON_RESPONSE_BYTES) {
      response.destroy();
      throw new CudaInstallError(`${url}: the answer is over ${MAX_JSON_RESPONSE_BYTES / 1e6} MB, not a NuGet catalog document`);
    }
    chunks.push(chunk as Buffer);
  }
  if (response.statusCode !== 200) throw new CudaInstallError(`${url} answered ${response.statusCode}. ${manualSteps(pkg, root)}`);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new CudaInstallError(`${url}: not JSON (${(error as Error).message})`);
  }
}

/** NuGet's published SHA-512 of the package: registration leaf → catalogEntry → packageHash. */
export async function publishedSha512(pkg: CudaPackage, root: string, env: Env, signal?: AbortSignal): Promise<string> {
  const leaf = (await getJson(pkg.registrationUrl, pkg, root, env, signal)) as { catalogEntry?: unknown };
  if (typeof leaf?.catalogEntry !== 'string') throw new CudaInstallError(`${pkg.registrationUrl}: no catalogEntry URL`);
  const entry = (await getJson(leaf.catalogEntry, pkg, root, env, signal)) as { packageHash?: unknown; packageHashAlgorithm?: unknown };
  if (typeof entry?.packageHash !== 'string' || String(entry.packageHashAlgorithm).toUpperCase() !== 'SHA512') {
    throw new CudaInstallError(`${leaf.catalogEntry}: no SHA512 packageHash`);
  }
  return normalizeSha512(entry.packageHash, `${leaf.catalogEntry}: packageHash`);
}

/**
 * Downloads `url` into `partFile`, resuming from its current length with a Range request. Resolves when the whole
 * body arrived; a transfer cut off keeps what arrived and says so (the next call resumes).
 */
export async function downloadResumable(
  url: string,
  partFile: string,
  context: { pkg: CudaPackage; root: string; env: Env; signal?: AbortSignal; onProgress?: (progress: InstallProgress) => void },
): Promise<void> {
  const have = existsSync(partFile) ? statSync(partFile).size : 0;
  let response: http.IncomingMessage;
  try {
    ({ response } = await get(url, have > 0 ? { range: `bytes=${have}-` } : {}, context.env, context.signal));
  } catch (error) {
    throw networkError(url, error, context.pkg, context.root, context.env, context.signal);
  }
  const status = response.statusCode ?? 0;
  if (status === 416 && have > 0) {
    // Nothing left to send: the partial file is already whole (the checksum decides).
    response.resume();
    return;
  }
  let offset = 0;
  if (status === 206) {
    const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(String(response.headers['content-range'] ?? ''));
    if (!range || Number(range[1]) !== have) {
      response.resume();
      rmSync(partFile, { force: true });
      throw new CudaInstallError(
        `${url}: the server resumed at the wrong place (${response.headers['content-range'] ?? 'no Content-Range'}); the partial download was removed, run again`,
      );
    }
    offset = have;
  } else if (status !== 200) {
    response.resume();
    const what = status === 404 ? 'not found (404): this onnxruntime-node version may have no CUDA package there' : `answered ${status}`;
    throw new CudaInstallError(`${url}: ${what}. ${manualSteps(context.pkg, context.root)}`);
  }
  const length = Number(response.headers['content-length']);
  const total = Number.isFinite(length) ? offset + length : undefined;
  let received = offset;
  let lastReport = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      // An endless body would fill the disk: stop at the largest package the reader takes.
      if (received > READ_LIMITS.package.bytes) return done(new Error(`more than ${READ_LIMITS.package.bytes / 1e9} GB, the most a package may be`));
      const now = Date.now();
      if (now - lastReport > 250) {
        lastReport = now;
        context.onProgress?.({ phase: 'download', message: `downloading ${basename(url)}`, done: received, total });
      }
      done(null, chunk);
    },
  });
  context.onProgress?.({ phase: 'download', message: offset > 0 ? `resuming ${basename(url)} at ${mib(offset)}` : `downloading ${url}`, done: offset, total });
  const file = createWriteStream(partFile, { flags: offset > 0 ? 'a' : 'w' });
  try {
    await pipeline(response, counter, file);
  } catch (error) {
    // A write already under way still lands after the pipeline gives up: wait for it, so that the partial file has
    // its final length before anyone (the next install's Range request) reads it.
    if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
    if (context.signal?.aborted) throw new InstallCancelledError();
    throw new CudaInstallError(
      `${url}: the transfer stopped at ${mib(received)}${total ? ` of ${mib(total)}` : ''} (${(error as Error).message}); run the install again to resume from there`,
    );
  }
  if (total !== undefined && received < total) {
    throw new CudaInstallError(`${url}: the transfer stopped at ${mib(received)} of ${mib(total)}; run the install again to resume from there`);
  }
  context.onProgress?.({ phase: 'download', message: `downloaded ${mib(received)}`, done: received, total: received });
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

export async function sha512OfFile(file: string): Promise<string> {
  const hash = createHash('sha512');
  // A regular file only: `--from /dev/zero` would hash forever, a folder would be an internal error.
  for await (const chunk of streamInputFile(file, 'package')) hash.update(chunk);
  return hash.digest('hex');
}

/**
 * Refuses a plain http:// mirror or URL unless ATP_CUDA_ALLOW_HTTP=1: the package is checked against its hash
 * either way, but a hash-less mistake (a missing pin, a typo in --sha512) should not also be readable and
 * changeable on the way.
 */
function refusePlainHttp(url: string, what: string, env: Env): void {
  if (/^http:\/\//i.test(url) && env[ALLOW_HTTP_VARIABLE] !== '1') {
    throw new CudaInstallError(
      `${what} ${url}: plain http can be read and changed on the way; use https, or set ${ALLOW_HTTP_VARIABLE}=1 to allow it (the package is still checked against its SHA-512)`,
    );
  }
}

const isUrl = (text: string) => /^https?:\/\//i.test(text);

/** Downloads (or takes), verifies and installs the CUDA provider libraries; see the file's header. */
export async function installCuda(options: InstallOptions = {}): Promise<InstallOutcome> {
  const env = options.env ?? process.env;
  if (`${process.platform}/${process.arch}` !== CUDA_PLATFORM && !options.ort) {
    throw new CudaInstallError(
      `CUDA support is installed on Linux x64 only (this is ${process.platform}/${process.arch}); on Windows use --device dml, on macOS --device coreml`,
    );
  }
  const ort = options.ort ?? bundledOrt();
  const root = options.root ?? cudaRuntimeRoot(env);
  // nuget.org (or the feed code names) is trusted like a registry, for packages and hashes; ATP_CUDA_FEED is a
  // mirror: it may serve the bytes, never the hash they are checked against.
  const trusted = cudaPackage(ort.version, options.feed ?? NUGET);
  const mirror = options.feed === undefined && env.ATP_CUDA_FEED ? env.ATP_CUDA_FEED : undefined;
  if (mirror !== undefined) refusePlainHttp(mirror, 'ATP_CUDA_FEED', env);
  if (options.from !== undefined && isUrl(options.from)) refusePlainHttp(options.from, '--from', env);
  const pkg = mirror === undefined ? trusted : cudaPackage(ort.version, mirror);
  const progress = options.onProgress ?? (() => undefined);
  const target = join(root, ort.version);
  try {
    mkdirSync(join(root, 'downloads'), { recursive: true });
  } catch (error) {
    throw new CudaInstallError(`cannot create ${root}: ${(error as Error).message}; choose another folder with --dir (and set ATP_CUDA_DIR to it)`);
  }

  const localFile = options.from !== undefined && !isUrl(options.from) ? options.from : undefined;
  if (localFile !== undefined) {
    if (!existsSync(localFile)) throw new CudaInstallError(`--from ${localFile}: no such file`);
    // A folder, a FIFO or /dev/zero is refused now, naming it, before anything is fetched.
    try {
      closeSync(openInputFile(localFile, 'package').fd);
    } catch (error) {
      throw new CudaInstallError(`--from ${(error as Error).message}`);
    }
  }
  // The hash from whoever set up the mirror (ATP_CUDA_SHA512, the environment the editor's install also runs in), never
  // from the mirror itself; --sha512 wins.
  const given =
    options.sha512 !== undefined
      ? normalizeSha512(options.sha512, '--sha512')
      : env.ATP_CUDA_SHA512
        ? normalizeSha512(env.ATP_CUDA_SHA512, 'ATP_CUDA_SHA512')
        : undefined;
  const pinnedText = (options.pinned ?? PINNED_PACKAGE_SHA512)[ort.version];
  const pinned = pinnedText !== undefined ? normalizeSha512(pinnedText, `the pinned SHA-512 of ${pkg.id} ${ort.version}`) : undefined;
  let expected: string;
  if (pinned !== undefined) {
    if (given !== undefined && given !== pinned) {
      throw new CudaInstallError(
        `--sha512: ${given.slice(0, 16)}… is not the SHA-512 of ${pkg.id} ${ort.version} (${pinned.slice(0, 16)}…, pinned in this build); nothing was installed`,
      );
    }
    expected = pinned;
  } else if (given !== undefined) expected = given;
  else if (mirror !== undefined) {
    throw new CudaInstallError(
      `ATP_CUDA_FEED ${mirror}: a mirror cannot vouch for its own package, and this build pins no SHA-512 for ${pkg.id} ${ort.version}; ` +
        `give the hash nuget.org publishes for it with --sha512 or ATP_CUDA_SHA512 (packageHash in the catalog entry that ${trusted.registrationUrl} links to). Nothing was downloaded.`,
    );
  } else {
    progress({ phase: 'checksum', message: `reading the package's SHA-512 from ${trusted.registrationUrl}` });
    expected = await publishedSha512(trusted, root, env, options.signal);
  }

  let archive: string;
  if (localFile !== undefined) archive = localFile;
  else {
    archive = join(root, 'downloads', `${pkg.fileName}.part`);
    await downloadResumable(options.from ?? pkg.url, archive, { pkg, root, env, signal: options.signal, onProgress: progress });
  }

  progress({ phase: 'verify', message: 'checking the SHA-512' });
  const actual = await sha512OfFile(archive);
  if (actual !== expected) {
    // A download that does not match is useless for resuming too: start over next time.
    if (localFile === undefined) rmSync(archive, { force: true });
    throw new CudaInstallError(
      `${localFile ?? options.from ?? pkg.url}: SHA-512 mismatch (expected ${expected.slice(0, 16)}…, got ${actual.slice(0, 16)}…); nothing was installed` +
        (localFile === undefined ? ' and the download was removed' : ''),
    );
  }
  if (options.signal?.aborted) throw new InstallCancelledError();

  const staging = join(root, `.${ort.version}.staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    progress({ phase: 'install', message: `copying onnxruntime-node ${ort.version}'s runtime from ${ort.binDir}` });
    const files: Record<string, number> = {};
    for (const name of readdirSync(ort.binDir)) {
      if (!statSync(join(ort.binDir, name)).isFile()) continue;
      copyFileSync(join(ort.binDir, name), join(staging, name));
      files[name] = statSync(join(staging, name)).size;
    }
    if (!('onnxruntime_binding.node' in files)) throw new CudaInstallError(`${ort.binDir}: no onnxruntime_binding.node (is onnxruntime-node installed?)`);
    const entries = listZip(archive);
    for (const name of PROVIDER_LIBRARIES) {
      const entry = entries.find((e) => e.name === PATH_IN_PACKAGE + name);
      if (!entry) throw new CudaInstallError(`${archive}: has no ${PATH_IN_PACKAGE + name}; is it ${pkg.fileName}?`);
      progress({ phase: 'extract', message: `extracting ${name} (${mib(entry.size)})` });
      await extractZipEntry(archive, entry, join(staging, name));
      files[name] = entry.size;
      if (options.signal?.aborted) throw new InstallCancelledError();
    }
    const manifest: InstallManifest = {
      schema: MANIFEST_SCHEMA,
      onnxruntimeVersion: ort.version,
      package: { id: pkg.id, version: pkg.version, sha512: expected, source: localFile ?? options.from ?? pkg.url },
      files,
      installedAt: new Date().toISOString(),
    };
    writeFileSync(join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    // Into place: the old install (if any) moves aside first, so the folder is always either old or new.
    const old = join(root, `.${ort.version}.old-${process.pid}`);
    if (existsSync(target)) renameSync(target, old);
    renameSync(staging, target);
    rmSync(old, { recursive: true, force: true });
    if (localFile === undefined) rmSync(archive, { force: true });
    progress({ phase: 'install', message: `installed into ${target}` });
    const missing = missingNvidiaLibraries();
    const notes = missing.length > 0 ? [`not found on this machine: ${missing.join(', ')}; ${NVIDIA_REQUIREMENT}`] : [];
    return { dir: target, manifest, notes };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
