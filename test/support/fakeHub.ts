// A fake Hugging Face hub on 127.0.0.1 for tests, speaking the real protocol:
//   GET  /api/models/{org}/{name}/revision/{revision}   → { id, sha, siblings: [{ rfilename }] }
//   HEAD|GET /{org}/{name}/resolve/{revision}/{file}    → small files: 200 with ETag "<git blob sha1>";
//        LFS files (*.safetensors, *.bin): 302 to a separate CDN server (another origin), X-Linked-Etag "<sha256>",
//        X-Linked-Size; both with X-Repo-Commit. Errors carry X-Error-Code as the hub's do.
//   CDN: GET|HEAD /cdn/{sha256}?expires=… with Range support (206 + Content-Range); refuses an Authorization header.
// Bare canonical ids (`gpt2`) answer as the hub does: 307 with a relative Location to their organisation's repo.
// Every request is logged; a request budget stops a runaway client; transfers can be cut off mid-body on demand.
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHash } from 'node:crypto';

export type FakeFiles = Record<string, Buffer | string>;

export interface FakeRepo {
  /** Branches and tags → the repo's files at that revision; each distinct file set gets its own commit. */
  revisions: Record<string, FakeFiles>;
  /** A gated repo: files need `Authorization: Bearer <token>` (the file list does not, as on the real hub). */
  gatedToken?: string;
  /** A private repo: everything needs the token; without it the hub says 401 RepoNotFound. */
  privateToken?: string;
}

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  range?: string;
  authorized: boolean;
  status: number;
}

export interface FakeHub {
  /** The hub's base URL, for HF_ENDPOINT. */
  readonly endpoint: string;
  readonly cdnOrigin: string;
  readonly requests: LoggedRequest[];
  /** The commit a repo's revision resolves to. */
  commit(repo: string, revision?: string): string;
  /** Replaces (or adds) a repo, e.g. to move a branch to a new commit. */
  setRepo(repo: string, spec: FakeRepo): void;
  /** The next `times` CDN GETs of `file` (any repo) send the headers and `afterBytes` bytes, then drop the connection. */
  cutOff(file: string, afterBytes: number, times?: number): void;
  /** Download requests (GET of a file, on the hub or the CDN) since the log was last cleared. */
  downloads(): LoggedRequest[];
  clearLog(): void;
  /** The CDN answers Range requests with the whole file (200), as a server without range support does. */
  setIgnoreRange(ignore: boolean): void;
  /** Makes every request fail at the socket (the hub "goes down") or work again. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

const LFS = /\.(safetensors|bin)$/;

function gitBlobSha1(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

interface Commit {
  sha: string;
  files: Map<string, Buffer>;
}

function commitOf(files: FakeFiles): Commit {
  const entries = Object.entries(files)
    .map(([name, content]) => [name, Buffer.isBuffer(content) ? content : Buffer.from(content)] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  const hash = createHash('sha1');
  for (const [name, bytes] of entries) hash.update(`${name}\0${gitBlobSha1(bytes)}\n`);
  return { sha: hash.digest('hex'), files: new Map(entries) };
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function startFakeHub(
  repos: Record<string, FakeRepo>,
  options: { maxRequests?: number; /** Bare canonical ids → the repo the hub redirects them to. */ renamed?: Record<string, string> } = {},
): Promise<FakeHub> {
  const renamed = new Map(Object.entries(options.renamed ?? {}));
  const maxRequests = options.maxRequests ?? 500;
  let served = 0;
  let down = false;
  let ignoreRange = false;
  const requests: LoggedRequest[] = [];
  const state = new Map<string, { spec: FakeRepo; refs: Map<string, Commit>; commits: Map<string, Commit> }>();
  const blobs = new Map<string, Buffer>(); // sha256 → bytes, for the CDN
  const cuts = new Map<string, { afterBytes: number; times: number }>();
  const blobNames = new Map<string, string>(); // sha256 → a file name, for cutOff

  const setRepo = (repo: string, spec: FakeRepo) => {
    const refs = new Map<string, Commit>();
    const commits = new Map<string, Commit>();
    for (const [revision, files] of Object.entries(spec.revisions)) {
      const commit = commitOf(files);
      refs.set(revision, commit);
      commits.set(commit.sha, commit);
      for (const [name, bytes] of commit.files) {
        if (!LFS.test(name)) continue;
        blobs.set(sha256(bytes), bytes);
        blobNames.set(sha256(bytes), name);
      }
    }
    state.set(repo, { spec, refs, commits });
  };
  for (const [repo, spec] of Object.entries(repos)) setRepo(repo, spec);

  const sockets = new Set<Socket>();
  const track = (server: http.Server) =>
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      if (down) socket.destroy();
    });

  const log = (server: 'hub' | 'cdn', req: http.IncomingMessage, status: number) =>
    requests.push({
      server,
      method: req.method ?? '',
      path: req.url ?? '',
      range: req.headers.range,
      authorized: req.headers.authorization !== undefined,
      status,
    });

  function send(
    server: 'hub' | 'cdn',
    req: http.IncomingMessage,
    res: http.ServerResponse,
    status: number,
    headers: Record<string, string | number>,
    body?: Buffer | string,
  ) {
    log(server, req, status);
    const bytes = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
    res.writeHead(status, { 'Content-Length': bytes.length, ...headers });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  }

  const error = (server: 'hub' | 'cdn', req: http.IncomingMessage, res: http.ServerResponse, status: number, code: string, message: string) =>
    send(
      server,
      req,
      res,
      status,
      { 'Content-Type': 'application/json', 'X-Error-Code': code, 'X-Error-Message': message },
      JSON.stringify({ error: message }),
    );

  let cdnOrigin = '';

  const hub = http.createServer((req, res) => {
    if (++served > maxRequests) return error('hub', req, res, 429, 'TooManyRequests', 'fake hub: request budget exhausted');
    const url = new URL(req.url ?? '/', 'http://hub');
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    const bearer = req.headers.authorization?.replace(/^Bearer /, '');

    // A bare canonical id: /api/models/{id}/revision/{revision} or /{id}/resolve/{revision}/{file...} → its org repo.
    const bareApi = parts[0] === 'api' && parts[1] === 'models' && parts[3] === 'revision' ? renamed.get(parts[2]) : undefined;
    const bareResolve = parts[1] === 'resolve' ? renamed.get(parts[0]) : undefined;
    if (bareApi || bareResolve) {
      const rest = url.pathname
        .split('/')
        .slice(bareApi ? 4 : 2)
        .join('/');
      return send('hub', req, res, 307, { Location: bareApi ? `/api/models/${bareApi}/${rest}` : `/${bareResolve}/${rest}` });
    }

    // /api/models/{org}/{name}/revision/{revision}
    if (parts[0] === 'api' && parts[1] === 'models' && parts[4] === 'revision' && parts.length === 6 && req.method === 'GET') {
      const repo = `${parts[2]}/${parts[3]}`;
      const entry = state.get(repo);
      if (!entry) return error('hub', req, res, 404, 'RepoNotFound', `Repository Not Found for url: ${url.pathname}`);
      if (entry.spec.privateToken && bearer !== entry.spec.privateToken) return error('hub', req, res, 401, 'RepoNotFound', 'Invalid credentials');
      const commit = entry.refs.get(parts[5]) ?? entry.commits.get(parts[5]);
      if (!commit) return error('hub', req, res, 404, 'RevisionNotFound', `Invalid rev id: ${parts[5]}`);
      const body = {
        _id: 'fake',
        id: repo,
        modelId: repo,
        sha: commit.sha,
        private: entry.spec.privateToken !== undefined,
        gated: entry.spec.gatedToken !== undefined ? 'manual' : false,
        siblings: [...commit.files.keys()].map((rfilename) => ({ rfilename })),
      };
      return send('hub', req, res, 200, { 'Content-Type': 'application/json' }, JSON.stringify(body));
    }

    // /{org}/{name}/resolve/{revision}/{file...}
    if (parts[2] === 'resolve' && parts.length >= 5 && (req.method === 'GET' || req.method === 'HEAD')) {
      const repo = `${parts[0]}/${parts[1]}`;
      const entry = state.get(repo);
      if (!entry) return error('hub', req, res, 404, 'RepoNotFound', 'Repository not found');
      const token = entry.spec.privateToken ?? entry.spec.gatedToken;
      if (token !== undefined && bearer !== token) {
        return entry.spec.privateToken
          ? error('hub', req, res, 401, 'RepoNotFound', 'Invalid credentials')
          : error(
              'hub',
              req,
              res,
              401,
              'GatedRepo',
              `Access to model ${repo} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
            );
      }
      const commit = entry.refs.get(parts[3]) ?? entry.commits.get(parts[3]);
      if (!commit) return error('hub', req, res, 404, 'RevisionNotFound', `Invalid rev id: ${parts[3]}`);
      const file = parts.slice(4).join('/');
      const bytes = commit.files.get(file);
      if (!bytes) return error('hub', req, res, 404, 'EntryNotFound', `Entry not found: ${file}`);
      if (LFS.test(file)) {
        const digest = sha256(bytes);
        // The 302's own ETag differs from the file's: clients must use X-Linked-Etag.
        return send('hub', req, res, 302, {
          Location: `${cdnOrigin}/cdn/${digest}?expires=9999999999&signature=fake`,
          'X-Repo-Commit': commit.sha,
          'X-Linked-Etag': `"${digest}"`,
          'X-Linked-Size': bytes.length,
          ETag: `"redirect-${digest.slice(0, 8)}"`,
        });
      }
      return send('hub', req, res, 200, { 'X-Repo-Commit': commit.sha, ETag: `"${gitBlobSha1(bytes)}"`, 'Content-Type': 'text/plain; charset=utf-8' }, bytes);
    }
    return error('hub', req, res, 404, 'NotFound', `fake hub: no route for ${req.method} ${url.pathname}`);
  });

  const cdn = http.createServer((req, res) => {
    if (++served > maxRequests) return error('cdn', req, res, 429, 'TooManyRequests', 'fake CDN: request budget exhausted');
    const url = new URL(req.url ?? '/', 'http://cdn');
    const match = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    const bytes = match ? blobs.get(match[1]) : undefined;
    if (!match || !bytes || (req.method !== 'GET' && req.method !== 'HEAD')) return error('cdn', req, res, 404, 'NotFound', 'no such object');
    // Presigned URLs reject a second authentication mechanism, as S3 does.
    if (req.headers.authorization) return error('cdn', req, res, 400, 'InvalidArgument', 'Only one auth mechanism allowed');
    const headers = { ETag: `"cdn-${match[1].slice(0, 16)}"`, 'Accept-Ranges': 'bytes', 'Content-Type': 'binary/octet-stream' };

    let start = 0;
    let status = 200;
    const range = req.headers.range;
    if (range && !ignoreRange) {
      const parsed = /^bytes=(\d+)-$/.exec(range);
      if (!parsed || Number(parsed[1]) >= bytes.length) {
        return send('cdn', req, res, 416, { 'Content-Range': `bytes */${bytes.length}` });
      }
      start = Number(parsed[1]);
      status = 206;
    }
    const body = bytes.subarray(start);
    const rangeHeaders: Record<string, string> = status === 206 ? { 'Content-Range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {};

    const cut = req.method === 'GET' ? cuts.get(blobNames.get(match[1]) ?? '') : undefined;
    if (cut && cut.times > 0) {
      cut.times--;
      log('cdn', req, status);
      res.writeHead(status, { ...headers, ...rangeHeaders, 'Content-Length': body.length });
      res.write(body.subarray(0, cut.afterBytes), () => {
        // Give the bytes a moment to leave, then drop the connection mid-body.
        setTimeout(() => res.socket?.destroy(), 20);
      });
      return;
    }
    send('cdn', req, res, status, { ...headers, ...rangeHeaders }, body);
  });

  track(hub);
  track(cdn);
  const endpoint = await listen(hub);
  cdnOrigin = await listen(cdn);

  return {
    endpoint,
    cdnOrigin,
    requests,
    commit(repo, revision = 'main') {
      const commit = state.get(repo)?.refs.get(revision);
      if (!commit) throw new Error(`fake hub: no ${repo}@${revision}`);
      return commit.sha;
    },
    setRepo,
    cutOff(file, afterBytes, times = 1) {
      cuts.set(file, { afterBytes, times });
    },
    downloads: () => requests.filter((r) => r.method === 'GET' && (r.server === 'cdn' || r.path.includes('/resolve/'))),
    clearLog() {
      requests.length = 0;
    },
    setIgnoreRange(value) {
      ignoreRange = value;
    },
    setDown(value) {
      down = value;
      if (value) for (const socket of sockets) socket.destroy();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await Promise.all([hub, cdn].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}
