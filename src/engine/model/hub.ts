// Models from the Hugging Face hub, kept in the standard Hugging Face cache so that Python's huggingface_hub and
// this engine share one copy of every file.
//
// Cache layout: hubCache.ts. Parsing what --model names: modelSource.ts. Transport helpers: hubHttp.ts.
//
// Protocol (the hub's public HTTP API; HF_ENDPOINT replaces https://huggingface.co):
//   GET  {endpoint}/api/models/{repo}/revision/{revision}   → { sha, siblings: [{ rfilename }] }
//   HEAD {endpoint}/{repo}/resolve/{commit}/{file}          → 200 (small files) or 302 to a CDN (LFS files), with
//        X-Repo-Commit, ETag or X-Linked-Etag, X-Linked-Size or Content-Length; X-Error-Code on errors
//   GET  the same URL, or the CDN's Location (without the Authorization header: it goes to another host)
// Every request goes through httpFetch (../httpTransport.ts): HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured.
// The token goes only into Authorization headers for the hub's own origin; it is never logged or put in a message.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { InputError } from '../../shared/errors';
import { builtInNameOf, isCommitHash, parseModelSource, type ModelSource } from '../../lib/model/modelSource';
import { DEFAULT_ENDPOINT, type Env, hubCacheDir, hubEndpoint, isOfflineByEnv, linkIntoSnapshot, repoCacheDir, sha256File } from './hubCache';
import { findHubToken, hubTokenPath } from './hubToken';
import { httpFetch, proxySettings } from '../httpTransport';
import { describeCause, encodeFile, encodeRepo, HubUnreachable, isAbort, normalizeEtag, parseSize, sleep, TransferBroken } from './hubHttp';
import { readInputText } from '../../lib/files/readInput';

// ---- resolving -----------------------------------------------------------------------------------------------

export interface DownloadProgress {
  /** The file's name in the repo, e.g. "model.safetensors". */
  file: string;
  /** Bytes of it on disk so far (a resumed download starts above 0). */
  received: number;
  /** Its size, when the hub said. */
  total?: number;
}

export interface ResolveOptions {
  /**
   * A Hugging Face access token for gated or private repos; sent only to the hub's own origin, never shown. When
   * absent, the one huggingface_hub would use: HF_TOKEN, else the token file of `hf auth login` (hubToken.ts).
   */
  token?: string;
  /** Use only the local cache (also when HF_HUB_OFFLINE=1). */
  offline?: boolean;
  onProgress?: (progress: DownloadProgress) => void;
  /** Aborts requests and downloads (a partial download stays as .incomplete, to be resumed). */
  signal?: AbortSignal;
  /** Further tries per file after broken transfers, each resuming (default 5), and the first wait (default 500 ms, doubling). */
  retries?: number;
  retryDelayMs?: number;
  /** Defaults to process.env; read for HF_ENDPOINT, HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME, HF_HUB_OFFLINE. */
  env?: Env;
}

export interface ResolvedModel {
  /** A folder in Hugging Face layout, for loadModel. */
  dir: string;
  /** What to show for the model: the folder as given, or the repo id (with @revision when one was given). */
  source: string;
  /** Hub models: the repo id, the revision asked for (default "main") and the commit it resolved to. */
  repo?: string;
  revision?: string;
  commit?: string;
  /** The preset name, when one was used. */
  preset?: string;
  /** True when the hub could not be asked (offline, or unreachable) and the cached snapshot was used. */
  fromCache?: boolean;
  /** Things the user should know (e.g. "the hub could not be reached; using the cached snapshot"). */
  notes: string[];
}

/** Small files fetched alongside the weights when the repo has them. */
const REQUIRED_FILES = ['config.json', 'tokenizer.json'] as const;
const OPTIONAL_FILES = ['tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'] as const;
const SINGLE_WEIGHTS = 'model.safetensors';
const WEIGHTS_INDEX = 'model.safetensors.index.json';
const PICKLE = /\.(bin|pt|pth|ckpt|pkl)$/;

const TOKEN_HELP =
  'Create a read token at https://huggingface.co/settings/tokens, then give it: on the command line in the HF_TOKEN ' +
  'environment variable (HF_TOKEN=hf_… atp patch …) or log in once with `hf auth login` (the token file it writes is read); in VS Code with the command "Attribution Patching: Set Hugging Face Token" ' +
  "(kept in the editor's SecretStorage).";

/**
 * Turns a --model value (or a parsed source) into a local folder: a folder as is; a hub repo as its snapshot folder
 * in the Hugging Face cache, downloading only what is missing (config, tokenizer files and safetensors weights).
 */
export async function resolveModel(source: string | ModelSource, options: ResolveOptions = {}): Promise<ResolvedModel> {
  const parsed = typeof source === 'string' ? parseModelSource(source) : source;
  if (parsed.kind === 'folder') {
    let isDirectory = false;
    try {
      isDirectory = fs.statSync(parsed.path).isDirectory();
    } catch {
      throw InputError.about('model', `folder ${parsed.text} does not exist`);
    }
    if (!isDirectory) throw InputError.about('model', `${parsed.text} is a file; give the model's folder (with config.json, tokenizer.json and *.safetensors)`);
    return { dir: parsed.path, source: builtInNameOf(parsed.path) ?? parsed.text, notes: [] };
  }
  return new HubResolver(parsed, options).resolve();
}

// ---- the resolver --------------------------------------------------------------------------------------------

interface FileMeta {
  etag: string;
  size?: number;
  commit?: string;
  /** Where to GET the bytes (the CDN's URL for LFS files). */
  url: string;
}

/** A file name from the hub or an index: relative, forward slashes, no . or .. segments. */
function checkRepoFileName(name: string, repo: string): string {
  const segments = name.split('/');
  if (name === '' || name.includes('\\') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new InputError(`${repo}: the hub listed a file with an unsafe name ${JSON.stringify(name)}; refusing to write it`);
  }
  return name;
}

class HubResolver {
  private readonly repo: string;
  private readonly revision: string;
  private readonly env: Env;
  private readonly endpoint: string;
  private readonly repoDir: string;
  private readonly display: string;
  private readonly notes: string[] = [];
  /** Read when the hub is first asked (never for a run from the cache): the options' token or huggingface_hub's. */
  private token?: string;

  constructor(
    private readonly source: Extract<ModelSource, { kind: 'hub' }>,
    private readonly options: ResolveOptions,
  ) {
    this.repo = source.repo;
    this.revision = source.revision ?? 'main';
    this.env = options.env ?? process.env;
    this.endpoint = hubEndpoint(this.env);
    this.repoDir = repoCacheDir(this.repo, this.env);
    this.display = source.preset ? `${source.preset} (${this.repo}@${this.revision})` : `${this.repo}@${this.revision}`;
    if (source.note) this.notes.push(source.note);
  }

  private result(commit: string, fromCache: boolean): ResolvedModel {
    const { source } = this;
    return {
      dir: path.join(this.repoDir, 'snapshots', commit),
      source: source.revision === undefined ? this.repo : `${this.repo}@${source.revision}`,
      repo: this.repo,
      revision: this.revision,
      commit,
      preset: source.preset,
      fromCache,
      notes: this.notes,
    };
  }

  async resolve(): Promise<ResolvedModel> {
    const offline = this.options.offline === true || isOfflineByEnv(this.env);
    if (offline) {
      const why = this.options.offline ? 'offline mode' : 'offline mode (HF_HUB_OFFLINE is set)';
      return this.fromCache(why);
    }
    // A commit fully present in the cache needs no network at all (as in huggingface_hub).
    if (isCommitHash(this.revision) && this.missingInSnapshot(this.revision).length === 0) return this.result(this.revision, true);

    this.token = this.options.token ?? findHubToken(this.env)?.token;
    proxySettings(this.env); // a malformed proxy variable is the user's error, not an unreachable hub
    let info: { commit: string; files: string[] };
    try {
      info = await this.revisionInfo();
    } catch (error) {
      if (error instanceof HubUnreachable) {
        this.notes.push(`the hub (${this.endpoint}) could not be reached (${error.message}); using the cached snapshot`);
        return this.fromCache(`the hub (${this.endpoint}) could not be reached (${error.message})`);
      }
      throw error;
    }
    const wanted = await this.wantedFiles(info.commit, info.files);
    const snapshot = path.join(this.repoDir, 'snapshots', info.commit);
    for (const file of wanted) {
      if (fs.existsSync(path.join(snapshot, file))) continue;
      await this.fetchFile(info.commit, file);
    }
    if (this.revision !== info.commit) this.writeRef(info.commit);
    return this.result(info.commit, false);
  }

  // -- cache only --

  /** The files a snapshot folder needs and lacks (by name), or a pickle-only explanation. */
  private missingInSnapshot(commit: string): string[] {
    const snapshot = path.join(this.repoDir, 'snapshots', commit);
    const has = (file: string) => fs.existsSync(path.join(snapshot, file)); // follows the symlink: a dangling one is missing
    const missing: string[] = REQUIRED_FILES.filter((file) => !has(file));
    if (has(SINGLE_WEIGHTS)) return missing;
    if (has(WEIGHTS_INDEX)) {
      try {
        const shards = indexShards(readInputText(path.join(snapshot, WEIGHTS_INDEX), 'json'), `${this.display}: ${WEIGHTS_INDEX}`);
        return [...missing, ...shards.filter((shard) => !has(shard))];
      } catch {
        return [...missing, `${WEIGHTS_INDEX} (unreadable)`];
      }
    }
    return [...missing, `${SINGLE_WEIGHTS} (or ${WEIGHTS_INDEX} and its shards)`];
  }

  private readRef(): string | undefined {
    if (isCommitHash(this.revision)) return this.revision;
    try {
      const commit = readInputText(path.join(this.repoDir, 'refs', ...this.revision.split('/')), 'json').trim();
      return isCommitHash(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  private fromCache(why: string): ResolvedModel {
    const cache = hubCacheDir(this.env);
    const commit = this.readRef();
    const rerun = 'Run once with network access (and without HF_HUB_OFFLINE) to download it, or give a local folder.';
    if (!commit || !fs.existsSync(path.join(this.repoDir, 'snapshots', commit))) {
      const detail = commit
        ? `no snapshots/${commit}`
        : fs.existsSync(this.repoDir)
          ? `${this.repoDir} has no refs/${this.revision}`
          : `nothing under ${cache} for ${this.repo}`;
      throw new InputError(`${this.display}: ${why}, and the Hugging Face cache has no copy of it (${detail}). ${rerun}`);
    }
    const snapshot = path.join(this.repoDir, 'snapshots', commit);
    const pickles = fs.existsSync(snapshot) ? fs.readdirSync(snapshot).filter((name) => PICKLE.test(name)) : [];
    const missing = this.missingInSnapshot(commit);
    if (missing.length > 0) {
      if (pickles.length > 0 && missing.some((m) => m.startsWith(SINGLE_WEIGHTS))) throw new InputError(this.pickleMessage(pickles));
      throw new InputError(`${this.display}: ${why}, and the cached snapshot ${snapshot} is incomplete: missing ${missing.join(', ')}. ${rerun}`);
    }
    return this.result(commit, true);
  }

  private writeRef(commit: string): void {
    const ref = path.join(this.repoDir, 'refs', ...this.revision.split('/'));
    fs.mkdirSync(path.dirname(ref), { recursive: true });
    let current: string | undefined;
    try {
      current = readInputText(ref, 'json');
    } catch {
      current = undefined;
    }
    if (current !== commit) {
      const temp = `${ref}.${process.pid}.tmp`;
      fs.writeFileSync(temp, commit); // huggingface_hub writes the bare hash, no newline
      fs.renameSync(temp, ref);
    }
  }

  // -- network --

  private headers(url: string, extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = { 'User-Agent': 'attribution-patching', ...extra };
    if (this.token && new URL(url).origin === new URL(this.endpoint).origin) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  /** One request, following redirects by hand: the token never goes to another origin (the CDN). */
  private async request(
    url: string,
    init: { method: 'GET' | 'HEAD'; headers?: Record<string, string>; followAbsolute: boolean; timeoutMs?: number },
  ): Promise<{ response: Response; url: string }> {
    let current = url;
    for (let hop = 0; hop < 10; hop++) {
      const signals = [this.options.signal, init.timeoutMs ? AbortSignal.timeout(init.timeoutMs) : undefined].filter((s): s is AbortSignal => s !== undefined);
      let response: Response;
      try {
        response = await httpFetch(
          current,
          {
            method: init.method,
            headers: this.headers(current, init.headers),
            redirect: 'manual',
            signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
          },
          this.env,
        );
      } catch (error) {
        if (isAbort(error, this.options.signal)) throw this.options.signal!.reason ?? error;
        const reason = error instanceof Error && error.name === 'TimeoutError' ? 'no answer in time' : describeCause(error);
        throw new HubUnreachable(`${new URL(current).host}: ${reason}`);
      }
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        const relative = !/^[a-z][a-z0-9+.-]*:/i.test(location);
        if (!relative && !init.followAbsolute) return { response, url: current };
        await response.body?.cancel();
        current = new URL(location, current).toString();
        continue;
      }
      return { response, url: current };
    }
    throw new HubUnreachable(`too many redirects from ${url}`);
  }

  private async failure(response: Response, what: string): Promise<never> {
    await response.body?.cancel().catch(() => undefined);
    const code = response.headers.get('x-error-code') ?? '';
    const status = response.status;
    const hubText = this.endpoint === DEFAULT_ENDPOINT ? 'the Hugging Face hub' : `the hub at ${this.endpoint}`;
    if (status === 401 || status === 403) {
      const tokenState = this.token
        ? 'The token given was refused or has no access to it (for a gated repo, accept its terms on the repo page with the same account; check that the token is a read token and not expired).'
        : `No token was found (neither HF_TOKEN nor the token file ${hubTokenPath(this.env)}).`;
      if (code === 'RepoNotFound' && !this.token) {
        throw new InputError(`${this.display}: not found on ${hubText}, or private (then it needs a token). ${tokenState} ${TOKEN_HELP}`, { field: 'hfToken' });
      }
      const gated = code === 'GatedRepo' ? 'gated (its terms must be accepted on https://huggingface.co/' + this.repo + ')' : 'gated or private';
      throw new InputError(
        `${this.display}: ${hubText} answered ${status} for ${what}: this repo is ${gated} and needs a Hugging Face token. ${tokenState} ${TOKEN_HELP}`,
        { field: 'hfToken' },
      );
    }
    if (status === 404) {
      if (code === 'RevisionNotFound') {
        throw new InputError(`${this.display}: revision "${this.revision}" not found in ${this.repo} (no such branch, tag or commit on ${hubText})`);
      }
      if (code === 'EntryNotFound') throw new InputError(`${this.display}: ${what} not found in the repo`);
      throw new InputError(
        `${this.display}: repo ${this.repo} or revision "${this.revision}" not found on ${hubText} (check the spelling: org/name[@revision])`,
      );
    }
    if (status === 429 || status >= 500) throw new HubUnreachable(`${hubText} answered ${status} for ${what}`);
    throw new InputError(`${this.display}: ${hubText} answered ${status} ${response.statusText} for ${what}`);
  }

  private async revisionInfo(): Promise<{ commit: string; files: string[] }> {
    const url = `${this.endpoint}/api/models/${encodeRepo(this.repo)}/revision/${encodeURIComponent(this.revision)}`;
    const { response } = await this.request(url, { method: 'GET', followAbsolute: true, timeoutMs: 30_000 });
    if (!response.ok) return this.failure(response, 'its file list');
    let body: unknown;
    try {
      body = await response.json();
    } catch (error) {
      if (isAbort(error, this.options.signal)) throw error;
      throw new HubUnreachable(`the file list of ${this.repo} was not valid JSON`);
    }
    const { sha, siblings } = (body ?? {}) as { sha?: unknown; siblings?: unknown };
    if (typeof sha !== 'string' || !isCommitHash(sha) || !Array.isArray(siblings)) {
      throw new HubUnreachable(`the file list of ${this.repo} has no commit "sha" or no "siblings"`);
    }
    const files = siblings.map((s) => (s as { rfilename?: unknown } | null)?.rfilename).filter((name): name is string => typeof name === 'string');
    return { commit: sha, files };
  }

  private pickleMessage(pickles: string[]): string {
    return (
      `${this.display} has only pickle weights (${pickles.slice(0, 3).join(', ')}${pickles.length > 3 ? ', …' : ''}) and no model.safetensors: ` +
      'only safetensors weights are loaded, never pickle files (they can run code when loaded), so nothing was downloaded. ' +
      `Look on https://huggingface.co/${this.repo} for a safetensors version (an open "Adding \`safetensors\` variant" pull request ` +
      `can be used as ${this.repo}@refs/pr/<number>), or convert the model with save_pretrained(..., safe_serialization=True) and give the folder.`
    );
  }

  /** The files to have in the snapshot, from the repo's listing (the shard list comes from the index). */
  private async wantedFiles(commit: string, listed: string[]): Promise<string[]> {
    const set = new Set(listed);
    const missing = REQUIRED_FILES.filter((file) => !set.has(file));
    if (missing.includes('config.json')) throw new InputError(`${this.display}: the repo has no config.json: not a transformers model repo`);
    if (missing.includes('tokenizer.json')) {
      throw new InputError(
        `${this.display}: the repo has no tokenizer.json; the engine reads the fast-tokenizer file tokenizer.json ` +
          '(repos with only vocab.json/merges.txt or tokenizer.model are not supported): download the model, save its tokenizer with ' +
          'AutoTokenizer.from_pretrained(...).save_pretrained(folder) next to the weights, and give the folder',
      );
    }
    const files: string[] = [...REQUIRED_FILES, ...OPTIONAL_FILES.filter((file) => set.has(file))];
    if (set.has(SINGLE_WEIGHTS)) return [...files, SINGLE_WEIGHTS];
    if (set.has(WEIGHTS_INDEX)) {
      const indexPath = path.join(this.repoDir, 'snapshots', commit, WEIGHTS_INDEX);
      if (!fs.existsSync(indexPath)) await this.fetchFile(commit, WEIGHTS_INDEX);
      const shards = indexShards(readInputText(indexPath, 'json'), `${this.display}: ${WEIGHTS_INDEX}`);
      const absent = shards.filter((shard) => !set.has(shard));
      if (absent.length > 0) throw new InputError(`${this.display}: ${WEIGHTS_INDEX} names shards the repo does not have: ${absent.join(', ')}`);
      return [...files, WEIGHTS_INDEX, ...shards];
    }
    const pickles = listed.filter((name) => PICKLE.test(name));
    if (pickles.length > 0) throw new InputError(this.pickleMessage(pickles));
    const other = listed.filter((name) => name.endsWith('.safetensors'));
    throw new InputError(
      `${this.display}: the repo has no ${SINGLE_WEIGHTS} or ${WEIGHTS_INDEX}` +
        (other.length > 0 ? ` (it has ${other.slice(0, 3).join(', ')}, which transformers would not load either)` : '') +
        ': only Hugging Face safetensors checkpoints are supported',
    );
  }

  private async fileMeta(commit: string, file: string): Promise<FileMeta> {
    const url = `${this.endpoint}/${encodeRepo(this.repo)}/resolve/${commit}/${encodeFile(file)}`;
    const { response, url: answered } = await this.request(url, {
      method: 'HEAD',
      headers: { 'Accept-Encoding': 'identity' },
      followAbsolute: false,
      timeoutMs: 30_000,
    });
    const redirected = response.status >= 300 && response.status < 400;
    if (!response.ok && !redirected) return this.failure(response, file);
    const etag = normalizeEtag(response.headers.get('x-linked-etag') ?? response.headers.get('etag'));
    if (!etag || !/^[A-Za-z0-9._-]+$/.test(etag) || etag.startsWith('.')) {
      throw new HubUnreachable(`the answer for ${file} has no usable ETag (is HF_ENDPOINT a Hugging Face hub?)`);
    }
    const size = parseSize(response.headers.get('x-linked-size')) ?? (redirected ? undefined : parseSize(response.headers.get('content-length')));
    const location = response.headers.get('location');
    return {
      etag,
      size,
      commit: response.headers.get('x-repo-commit') ?? undefined,
      url: redirected && location ? new URL(location, answered).toString() : answered,
    };
  }

  /** Puts one file of the commit into the snapshot: from its blob if there, else downloaded into the blob first. */
  private async fetchFile(commit: string, file: string): Promise<void> {
    checkRepoFileName(file, this.repo);
    let meta: FileMeta;
    try {
      meta = await this.fileMeta(commit, file);
    } catch (error) {
      if (error instanceof HubUnreachable)
        throw new InputError(`${this.display}: cannot download ${file}: ${error.message}. Run again to retry (finished files are kept).`);
      throw error;
    }
    const blob = path.join(this.repoDir, 'blobs', meta.etag);
    const whole = (() => {
      try {
        return fs.statSync(blob).size === (meta.size ?? fs.statSync(blob).size);
      } catch {
        return false;
      }
    })();
    if (!whole) await this.download(file, meta, blob);
    linkIntoSnapshot(blob, path.join(this.repoDir, 'snapshots', commit, ...file.split('/')));
  }

  private async download(file: string, meta: FileMeta, blob: string): Promise<void> {
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    const partial = `${blob}.incomplete`;
    const total = meta.size;
    const maxFailures = this.options.retries ?? 5;
    let failures = 0;
    let delay = this.options.retryDelayMs ?? 500;
    const sizeOf = () => {
      try {
        return fs.statSync(partial).size;
      } catch {
        return 0;
      }
    };
    for (;;) {
      let have = sizeOf();
      if (total !== undefined && have > total) {
        fs.truncateSync(partial, 0);
        have = 0;
      }
      if (total !== undefined && have === total) break;
      try {
        have = await this.transfer(file, meta, partial, have);
        if (total === undefined || have === total) break;
        throw new TransferBroken(`the body ended after ${have} of ${total} bytes`);
      } catch (error) {
        if (!(error instanceof TransferBroken || error instanceof HubUnreachable)) throw error;
        const now = sizeOf();
        failures++;
        if (failures > maxFailures) {
          const of = total === undefined ? '' : ` of ${total}`;
          throw new InputError(
            `${this.display}: downloading ${file} failed (${error.message}) with ${now}${of} bytes received; run again to resume from there ` +
              `(the partial file is ${partial}).`,
          );
        }
        await sleep(delay, this.options.signal);
        delay = Math.min(delay * 2, 10_000);
      }
    }
    if (/^[0-9a-f]{64}$/.test(meta.etag)) {
      // LFS files are named by their sha256: check the bytes before they become the blob.
      const digest = await sha256File(partial);
      if (digest !== meta.etag) {
        fs.rmSync(partial, { force: true });
        throw new InputError(
          `${this.display}: ${file} arrived corrupted (sha256 ${digest}, expected ${meta.etag}); it was deleted: run again to download it anew`,
        );
      }
    }
    fs.renameSync(partial, blob);
  }

  /** One GET into the partial file, from `have` bytes on; returns the bytes on disk after it. */
  private async transfer(file: string, meta: FileMeta, partial: string, have: number): Promise<number> {
    const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
    if (have > 0) headers.Range = `bytes=${have}-`;
    const { response } = await this.request(meta.url, { method: 'GET', headers, followAbsolute: true, timeoutMs: undefined });
    let start: number;
    if (response.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
      start = range ? Number(range[1]) : -1;
      if (start !== have) {
        // Not the range asked for: start over rather than splice mismatched bytes.
        await response.body?.cancel();
        fs.truncateSync(partial, 0);
        throw new TransferBroken(`the server sent bytes from ${start} instead of ${have}`);
      }
    } else if (response.status === 200) {
      start = 0; // the server ignored the Range header: restart cleanly
    } else if (response.status === 416) {
      await response.body?.cancel();
      fs.truncateSync(partial, 0);
      throw new TransferBroken('the server refused the resume range');
    } else {
      return this.failure(response, file);
    }
    const handle = await fsp.open(partial, start === 0 ? 'w' : 'a');
    let received = start;
    this.options.onProgress?.({ file, received, total: meta.size });
    try {
      if (response.body) {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          for (let done = 0; done < chunk.length;) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
          received += chunk.length;
          this.options.onProgress?.({ file, received, total: meta.size });
        }
      }
    } catch (error) {
      if (isAbort(error, this.options.signal)) throw this.options.signal!.reason ?? error;
      throw new TransferBroken(describeCause(error));
    } finally {
      await handle.close();
    }
    return received;
  }
}

/** The shard files a model.safetensors.index.json names, in order; plain file names only. */
function indexShards(text: string, where: string): string[] {
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${where}: not valid JSON: ${(error as Error).message}`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new InputError(`${where}: field "weight_map" must be an object mapping tensor names to shard files`);
  }
  const shards = [...new Set(Object.values(weightMap as Record<string, unknown>))];
  for (const shard of shards) {
    if (typeof shard !== 'string' || shard === '' || shard === '.' || shard === '..' || /[/\\]/.test(shard)) {
      throw new InputError(`${where}: shard ${JSON.stringify(shard)} must be a plain file name`);
    }
  }
  return shards as string[];
}
