// A fake Weights & Biases server on 127.0.0.1 for tests, speaking the protocol of W&B's public Python client
// (wandb/sdk/internal/internal_api.py, core/internal/filestream, the artifact saver): what a real server checks, it
// checks too, so a client that gets the protocol wrong fails here as it would there.
//   POST /graphql        basic auth "api:<key>" (else 401): Viewer, UpsertBucket, CreateRunFiles, CreateArtifact,
//                        CreateArtifactManifest, CreateArtifactFiles, CommitArtifact; an unknown operation is a
//                        GraphQL error
//   POST /files/{entity}/{project}/{run}/file_stream   same auth; history lines must arrive at the next offset
//   PUT  /upload/...     signed upload URLs (a ?sig= query); refuses an Authorization header (storage never gets the
//                        key); artefact files carry Content-MD5, checked against the bytes, as cloud storage does
// Every request is recorded (method, path, operation, headers, body) for the tests to inspect.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';

export interface RecordedRequest {
  method: string;
  path: string;
  operation?: string;
  authorization?: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface FakeRun {
  entity: string;
  project: string;
  name: string;
  displayName?: string;
  group?: string;
  jobType?: string;
  config: Record<string, { value: unknown }>;
  history: string[];
  summary?: string;
  uploaded: string[];
  files: Map<string, Buffer>;
  complete?: { exitcode: number };
}

export interface FakeArtifact {
  id: string;
  type: string;
  name: string;
  digest: string;
  runName: string;
  state: 'PENDING' | 'COMMITTED';
  /** Declared with CreateArtifactFiles: name → base64 MD5. */
  declared: Map<string, string>;
  manifestDigest?: string;
  manifest?: Buffer;
}

export interface FakeWandb {
  readonly url: string;
  readonly requests: RecordedRequest[];
  readonly runs: FakeRun[];
  readonly artifacts: FakeArtifact[];
  /** Stored file bytes by base64 MD5 (artefact storage, deduplicated). */
  readonly storage: Map<string, Buffer>;
  /** Every GraphQL request (or only `operation`'s) answers this HTTP status until set back to undefined. */
  failWith(status: number | undefined, operation?: string): void;
  close(): Promise<void>;
}

const b64md5 = (bytes: Buffer) => createHash('md5').update(bytes).digest('base64');

export async function startFakeWandb(validKey: string, options: { entity?: string } = {}): Promise<FakeWandb> {
  const entity = options.entity ?? 'fake-user';
  const requests: RecordedRequest[] = [];
  const runs: FakeRun[] = [];
  const artifacts: FakeArtifact[] = [];
  const storage = new Map<string, Buffer>();
  const pendingUploads = new Map<
    string,
    { kind: 'run'; run: FakeRun; file: string } | { kind: 'artifact'; md5: string } | { kind: 'manifest'; artifact: FakeArtifact }
  >();
  let failure: { status: number; operation?: string } | undefined;
  let nextId = 1;
  let url = '';

  const expectedAuth = `Basic ${Buffer.from(`api:${validKey}`).toString('base64')}`;
  const uploadUrl = (what: string) => {
    const token = `u${nextId++}`;
    return { token, url: `${url}/upload/${token}/${encodeURIComponent(what)}?sig=signed-${token}` };
  };
  const findRun = (e: string, p: string, n: string) => runs.find((r) => r.entity === e && r.project === p && r.name === n);

  type Answer = { status: number; json: unknown };
  const gqlError = (message: string): Answer => ({ status: 200, json: { errors: [{ message }] } });

  function graphql(operation: string, variables: Record<string, unknown>): Answer {
    const v = variables as Record<string, any>;
    switch (operation) {
      case 'Viewer':
        return { status: 200, json: { data: { viewer: { id: 'VXNlcjox', entity, username: entity } } } };
      case 'UpsertBucket': {
        if (typeof v.project !== 'string' || typeof v.entity !== 'string' || typeof v.name !== 'string')
          return gqlError('UpsertBucket needs entity, project, name');
        let config: FakeRun['config'] = {};
        if (v.config !== null && v.config !== undefined) {
          if (typeof v.config !== 'string') return gqlError('config must be a JSONString');
          config = JSON.parse(v.config);
          for (const [key, value] of Object.entries(config)) {
            if (!value || typeof value !== 'object' || !('value' in value)) return gqlError(`config key ${key} is not {"value": …}`);
          }
        }
        let run = findRun(v.entity, v.project, v.name);
        const inserted = !run;
        if (!run) {
          run = { entity: v.entity, project: v.project, name: v.name, config, history: [], uploaded: [], files: new Map() };
          runs.push(run);
        }
        Object.assign(run, { displayName: v.displayName ?? undefined, group: v.groupName ?? undefined, jobType: v.jobType ?? undefined, config });
        return {
          status: 200,
          json: {
            data: {
              upsertBucket: {
                bucket: {
                  id: `run-${run.name}`,
                  name: run.name,
                  displayName: run.displayName,
                  project: { id: 'p', name: run.project, entity: { id: 'e', name: run.entity } },
                },
                inserted,
              },
            },
          },
        };
      }
      case 'CreateRunFiles': {
        const run = findRun(v.entity, v.project, v.run);
        if (!run) return { status: 200, json: { data: { createRunFiles: { runID: null, uploadHeaders: [], files: [] } } } };
        const files = (v.files as string[]).map((name) => {
          const target = uploadUrl(name);
          pendingUploads.set(target.token, { kind: 'run', run, file: name });
          return { name, uploadUrl: target.url };
        });
        return { status: 200, json: { data: { createRunFiles: { runID: `run-${run.name}`, uploadHeaders: ['X-Fake-Upload: run-file'], files } } } };
      }
      case 'CreateArtifact': {
        const run = findRun(v.entityName, v.projectName, v.runName);
        if (!run) return gqlError(`no run ${v.runName}`);
        if (!/^[0-9a-f]{32}$/.test(v.digest)) return gqlError('digest must be a hex MD5 (MANIFEST_MD5)');
        const name = (v.artifactCollectionNames as string[])[0];
        const same = artifacts.find((a) => a.name === name && a.digest === v.digest && a.state === 'COMMITTED');
        const latest = [...artifacts].reverse().find((a) => a.name === name && a.state === 'COMMITTED');
        if (same)
          return {
            status: 200,
            json: {
              data: {
                createArtifact: {
                  artifact: { id: same.id, state: 'COMMITTED', artifactSequence: { id: 's', latestArtifact: { id: same.id, versionIndex: 0 } } },
                },
              },
            },
          };
        const artifact: FakeArtifact = {
          id: `art${nextId++}`,
          type: v.artifactTypeName,
          name,
          digest: v.digest,
          runName: run.name,
          state: 'PENDING',
          declared: new Map(),
        };
        artifacts.push(artifact);
        const latestArtifact = latest ? { id: latest.id, versionIndex: 0 } : null;
        return {
          status: 200,
          json: { data: { createArtifact: { artifact: { id: artifact.id, state: 'PENDING', artifactSequence: { id: 's', latestArtifact } } } } },
        };
      }
      case 'CreateArtifactManifest': {
        const artifact = artifacts.find((a) => a.id === v.artifactID);
        if (!artifact) return gqlError(`no artifact ${v.artifactID}`);
        if (v.name !== 'wandb_manifest.json') return gqlError('manifest name');
        artifact.manifestDigest = v.digest;
        const file: Record<string, unknown> = { id: 'f', name: v.name, displayName: v.name };
        if (v.includeUpload) {
          const target = uploadUrl('wandb_manifest.json');
          pendingUploads.set(target.token, { kind: 'manifest', artifact });
          file.uploadUrl = target.url;
          file.uploadHeaders = [`Content-MD5:${v.digest}`];
        }
        return { status: 200, json: { data: { createArtifactManifest: { artifactManifest: { id: `m-${artifact.id}`, file } } } } };
      }
      case 'CreateArtifactFiles': {
        if (v.storageLayout !== 'V2' && v.storageLayout !== 'V1') return gqlError('storageLayout');
        const edges = (v.artifactFiles as Array<{ artifactID: string; artifactManifestID: string; name: string; md5: string }>).map((spec) => {
          const artifact = artifacts.find((a) => a.id === spec.artifactID);
          if (!artifact) throw new Error(`no artifact ${spec.artifactID}`);
          artifact.declared.set(spec.name, spec.md5);
          // Bytes the server already holds need no upload (W&B deduplicates by MD5).
          if (storage.has(spec.md5))
            return {
              node: { id: 'x', name: spec.name, displayName: spec.name, uploadUrl: null, uploadHeaders: [], storagePath: 'p', artifact: { id: artifact.id } },
            };
          const target = uploadUrl(spec.name);
          pendingUploads.set(target.token, { kind: 'artifact', md5: spec.md5 });
          return {
            node: {
              id: 'x',
              name: spec.name,
              displayName: spec.name,
              uploadUrl: target.url,
              uploadHeaders: [`Content-MD5:${spec.md5}`],
              storagePath: 'p',
              artifact: { id: artifact.id },
            },
          };
        });
        return { status: 200, json: { data: { createArtifactFiles: { files: { edges } } } } };
      }
      case 'CommitArtifact': {
        const artifact = artifacts.find((a) => a.id === v.artifactID);
        if (!artifact) return gqlError(`no artifact ${v.artifactID}`);
        if (!artifact.manifest) return gqlError('commit before the manifest was uploaded');
        for (const md5 of artifact.declared.values()) if (!storage.has(md5)) return gqlError(`file ${md5} never uploaded`);
        artifact.state = 'COMMITTED';
        return { status: 200, json: { data: { commitArtifact: { artifact: { id: artifact.id, digest: artifact.digest } } } } };
      }
      default:
        return gqlError(`unknown operation ${operation}`);
    }
  }

  function handle(request: RecordedRequest): Answer {
    const path = request.path.split('?')[0];
    if (request.method === 'POST' && path === '/graphql') {
      if (request.authorization !== expectedAuth) return { status: 401, json: { error: 'unauthorized' } };
      const { query, variables } = JSON.parse(request.body.toString('utf8')) as { query: string; variables?: Record<string, unknown> };
      const operation = /^\s*(?:query|mutation)\s+(\w+)/.exec(query)?.[1] ?? '';
      request.operation = operation;
      if (failure && (failure.operation === undefined || failure.operation === operation))
        return { status: failure.status, json: { error: 'failing on purpose' } };
      return graphql(operation, variables ?? {});
    }
    const stream = /^\/files\/([^/]+)\/([^/]+)\/([^/]+)\/file_stream$/.exec(path);
    if (request.method === 'POST' && stream) {
      if (request.authorization !== expectedAuth) return { status: 401, json: { error: 'unauthorized' } };
      const run = findRun(...(stream.slice(1).map(decodeURIComponent) as [string, string, string]));
      if (!run) return { status: 404, json: { error: 'no such run' } };
      const body = JSON.parse(request.body.toString('utf8')) as {
        files?: Record<string, { offset: number; content: string[] }>;
        uploaded?: string[];
        complete?: boolean;
        exitcode?: number;
      };
      for (const [file, chunk] of Object.entries(body.files ?? {})) {
        if (file === 'wandb-history.jsonl') {
          if (chunk.offset !== run.history.length) return { status: 400, json: { error: `history offset ${chunk.offset}, expected ${run.history.length}` } };
          run.history.push(...chunk.content);
        } else if (file === 'wandb-summary.json') run.summary = chunk.content.at(-1);
        else return { status: 400, json: { error: `unexpected file ${file}` } };
      }
      run.uploaded.push(...(body.uploaded ?? []));
      if (body.complete) run.complete = { exitcode: body.exitcode ?? 0 };
      return { status: 200, json: { exitcode: null, limits: {} } };
    }
    const upload = /^\/upload\/([^/]+)\//.exec(path);
    if (request.method === 'PUT' && upload) {
      if (request.authorization !== undefined) return { status: 400, json: { error: 'storage never takes an Authorization header' } };
      if (!request.path.includes('?sig=')) return { status: 403, json: { error: 'unsigned' } };
      const pending = pendingUploads.get(upload[1]);
      if (!pending) return { status: 404, json: { error: 'no such upload' } };
      const md5Header = request.headers['content-md5'];
      if (pending.kind !== 'run' && md5Header !== b64md5(request.body)) return { status: 400, json: { error: 'Content-MD5 does not match the bytes' } };
      if (pending.kind === 'run') {
        if (request.headers['x-fake-upload'] !== 'run-file') return { status: 400, json: { error: 'the upload headers were not sent' } };
        pending.run.files.set(pending.file, request.body);
      } else if (pending.kind === 'artifact') storage.set(pending.md5, request.body);
      else {
        pending.artifact.manifest = request.body;
        storage.set(b64md5(request.body), request.body);
      }
      return { status: 200, json: {} };
    }
    return { status: 404, json: { error: `no route ${request.method} ${path}` } };
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      requests.push(recorded);
      let answer: Answer;
      try {
        answer = handle(recorded);
      } catch (error) {
        answer = { status: 500, json: { error: (error as Error).message } };
      }
      res.writeHead(answer.status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(answer.json));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    runs,
    artifacts,
    storage,
    failWith: (status, operation) => (failure = status === undefined ? undefined : { status, ...(operation ? { operation } : {}) }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
