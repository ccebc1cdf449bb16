// Our client of W&B's public HTTP API: the few calls a finished run needs, learned from W&B's public Python client
// (wandb/sdk/internal/internal_api.py, core/internal/filestream, the artifact saver and storage policy) and written
// here, because the npm @wandb/sdk (0.5.1, its latest) has no artefacts and no media (docs/ARCHITECTURE.md).
//   POST {base}/graphql           GraphQL, HTTP basic auth "api:<key>": Viewer, UpsertBucket (the run),
//                                 CreateRunFiles, CreateArtifact, CreateArtifactManifest, CreateArtifactFiles, CommitArtifact
//   POST {base}/files/{entity}/{project}/{run}/file_stream
//                                 {"files": {"wandb-history.jsonl": {offset, content: [lines]}, "wandb-summary.json": …},
//                                  "uploaded": [run files], "complete": true, "exitcode": 0}, same auth
//   PUT  <upload URL>             the bytes, with the headers the server returned ("Key:Value" strings); no key is
//                                 sent there (a signed URL, possibly another host's storage)
// The key is only ever in the Authorization header: no message, log or error text holds it, and no URL with a
// query string (a signed upload URL) is quoted either.
import { httpFetch } from '../httpTransport';

/** Where a W&B error comes from, so a front end can say what to fix: the key, the network, the server. */
export type WandbErrorKind = 'auth' | 'network' | 'server';

export class WandbError extends Error {
  constructor(
    message: string,
    readonly kind: WandbErrorKind,
  ) {
    super(message);
    this.name = 'WandbError';
  }
}

export interface WandbConnection {
  apiKey: string;
  /** Where the key came from, in the words of the front end ("WANDB_API_KEY"), for a 401's message. */
  keySource: string;
  /** https://api.wandb.ai, or WANDB_BASE_URL for a self-hosted server. */
  baseUrl: string;
  /** Per request; a server that does not answer within it is a network failure. */
  timeoutMs?: number;
}

export const DEFAULT_BASE_URL = 'https://api.wandb.ai';

/**
 * The most of a W&B answer that is read: GraphQL answers are a few kB, so an endless or huge body is cut off here
 * (and is a server error) instead of being buffered.
 */
export const MAX_RESPONSE_BYTES = 16e6;
/** Of an error answer only the start is quoted (200 characters); this much is read. */
const ERROR_BODY_BYTES = 4096;

/**
 * Every way the key can be written in text a server sends back (an echo of our request headers): the key itself,
 * URL-encoded, and the basic-auth credentials `api:<key>` in base64 (and base64url). Longest first, so a longer
 * form is replaced whole.
 */
export function keyForms(apiKey: string): string[] {
  if (apiKey === '') return [];
  const basic = Buffer.from(`api:${apiKey}`);
  const forms = [apiKey, encodeURIComponent(apiKey), basic.toString('base64'), basic.toString('base64url'), basic.toString('base64').replace(/=+$/, '')];
  return [...new Set(forms)].sort((a, b) => b.length - a.length);
}

/** Text from a server with every form of the key replaced by "[API key]". */
export function redactKey(text: string, apiKey: string): string {
  let out = text;
  for (const form of keyForms(apiKey)) out = out.split(form).join('[API key]');
  return out;
}

/** At most `limit` bytes of a body; more is cancelled and `over` says so (never buffered beyond the limit). */
async function readLimited(response: Response, limit: number): Promise<{ bytes: Buffer; over: boolean }> {
  const reader = response.body?.getReader();
  if (!reader) return { bytes: Buffer.alloc(0), over: false };
  const chunks: Buffer[] = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes: Buffer.concat(chunks), over: false };
    chunks.push(Buffer.from(value));
    length += value.length;
    if (length > limit) {
      await reader.cancel().catch(() => undefined);
      return { bytes: Buffer.concat(chunks).subarray(0, limit), over: true };
    }
  }
}

/** A URL as it may appear in a message: origin and path, never a query string (signed URLs carry credentials). */
export function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return '(an invalid URL)';
  }
}

function causeOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'no answer in time';
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    const inner = cause instanceof AggregateError && cause.errors[0] instanceof Error ? cause.errors[0].message : cause.message;
    return code && !inner.includes(code) ? `${code}: ${inner}` : inner || error.message;
  }
  return error.message;
}

export interface UpsertRunInput {
  entity: string;
  project: string;
  /** The run's id in its project (8 characters of [a-z0-9], as W&B makes them). */
  name: string;
  displayName: string;
  group?: string;
  jobType: string;
  config: Record<string, unknown>;
  tags?: string[];
}

export interface UploadTarget {
  url: string;
  headers: Record<string, string>;
}

export interface CreatedArtifact {
  id: string;
  state: string;
  /** The previous version of this artefact, when there is one (the manifest's base). */
  latestId?: string;
}

export interface ArtifactFileUpload {
  name: string;
  /** null: the server already holds these bytes (deduplicated by digest). */
  upload: UploadTarget | null;
  birthArtifactId: string;
}

/** "Key:Value" strings (W&B's uploadHeaders) as headers. */
export function parseUploadHeaders(headers: readonly string[] | null | undefined): Record<string, string> {
  const parsed: Record<string, string> = {};
  for (const header of headers ?? []) {
    const colon = header.indexOf(':');
    if (colon > 0) parsed[header.slice(0, colon).trim()] = header.slice(colon + 1).trim();
  }
  return parsed;
}

export class WandbApi {
  readonly baseUrl: string;
  private readonly authorization: string;
  private readonly timeoutMs: number;

  constructor(private readonly connection: WandbConnection) {
    this.baseUrl = connection.baseUrl.replace(/\/+$/, '');
    this.authorization = `Basic ${Buffer.from(`api:${connection.apiKey}`).toString('base64')}`;
    this.timeoutMs = connection.timeoutMs ?? 30_000;
  }

  private async send(url: string, init: RequestInit, what: string, authorized: boolean, timeoutMs = this.timeoutMs): Promise<Response> {
    let response: Response;
    try {
      response = await httpFetch(url, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), ...(authorized ? { Authorization: this.authorization } : {}) },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new WandbError(`could not reach W&B at ${shownUrl(url)} (${what}): ${causeOf(error)}`, 'network');
    }
    if (authorized && (response.status === 401 || response.status === 403)) {
      await response.body?.cancel();
      throw new WandbError(
        `W&B at ${shownUrl(this.baseUrl)} refused the API key from ${this.connection.keySource} (HTTP ${response.status} to ${what}): check or replace the key`,
        'auth',
      );
    }
    if (!response.ok) {
      const { bytes } = await readLimited(response, ERROR_BODY_BYTES).catch(() => ({ bytes: Buffer.alloc(0) }));
      const body = this.quote(bytes.toString('utf8')).slice(0, 200).replace(/\s+/g, ' ').trim();
      throw new WandbError(`W&B at ${shownUrl(url)} answered HTTP ${response.status} to ${what}${body ? `: ${body}` : ''}`, 'server');
    }
    return response;
  }

  /** Server text as a message may quote it: the key in none of its forms (a server may echo our headers). */
  private quote(text: string): string {
    return redactKey(text, this.connection.apiKey);
  }

  async graphql<T>(operation: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const url = `${this.baseUrl}/graphql`;
    const response = await this.send(
      url,
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ query, variables }) },
      operation,
      true,
    );
    let read: { bytes: Buffer; over: boolean };
    try {
      read = await readLimited(response, MAX_RESPONSE_BYTES);
    } catch (error) {
      throw new WandbError(`could not read W&B's answer at ${shownUrl(url)} (${operation}): ${causeOf(error)}`, 'network');
    }
    if (read.over) throw new WandbError(`W&B at ${shownUrl(url)} answered ${operation} with more than ${MAX_RESPONSE_BYTES / 1e6} MB`, 'server');
    let parsed: unknown;
    try {
      parsed = JSON.parse(read.bytes.toString('utf8'));
    } catch {
      throw new WandbError(`W&B at ${shownUrl(url)} answered ${operation} with something other than JSON`, 'server');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new WandbError(`W&B at ${shownUrl(url)} answered ${operation} with JSON that is not an object`, 'server');
    const body = parsed as { data?: T; errors?: unknown };
    // Any shape of `errors` (null entries, a string, an object) is the server's error, never our TypeError.
    const errors = body.errors === undefined || body.errors === null ? [] : Array.isArray(body.errors) ? body.errors : [body.errors];
    if (errors.length > 0) {
      const text = (e: unknown) =>
        typeof e === 'string'
          ? e
          : typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string'
            ? (e as { message: string }).message
            : 'unknown error';
      const message = this.quote(errors.map(text).join('; ')).slice(0, 1000);
      // W&B says "permission denied" or "not authorized" in a 200 for a key without access to the entity.
      const kind: WandbErrorKind = /permission|not authori[sz]ed|unauthori[sz]ed/i.test(message) ? 'auth' : 'server';
      throw new WandbError(`W&B ${operation}: ${message}${kind === 'auth' ? ` (the API key from ${this.connection.keySource})` : ''}`, kind);
    }
    if (!body.data) throw new WandbError(`W&B at ${shownUrl(url)} answered ${operation} without data`, 'server');
    return body.data;
  }

  /** The key's user and default entity; a key W&B does not know is an auth error. */
  async viewer(): Promise<{ entity: string; username?: string }> {
    const data = await this.graphql<{ viewer: { entity?: string; username?: string } | null }>('Viewer', 'query Viewer { viewer { id entity username } }');
    if (!data.viewer?.entity) throw new WandbError(`W&B at ${shownUrl(this.baseUrl)} does not know the API key from ${this.connection.keySource}`, 'auth');
    return { entity: data.viewer.entity, ...(data.viewer.username ? { username: data.viewer.username } : {}) };
  }

  /** Creates the run (or updates it): the run W&B made, with the entity and project it landed in. */
  async upsertRun(input: UpsertRunInput): Promise<{ name: string; entity: string; project: string }> {
    const data = await this.graphql<{
      upsertBucket: { bucket: { name: string; project?: { name: string; entity?: { name: string } } } } | null;
    }>(
      'UpsertBucket',
      `mutation UpsertBucket($name: String, $project: String, $entity: String, $groupName: String, $displayName: String,
  $config: JSONString, $jobType: String, $tags: [String!]) {
  upsertBucket(input: { name: $name, modelName: $project, entityName: $entity, groupName: $groupName, displayName: $displayName,
    config: $config, jobType: $jobType, tags: $tags }) {
    bucket { id name displayName project { id name entity { id name } } }
    inserted
  }
}`,
      {
        name: input.name,
        project: input.project,
        entity: input.entity,
        groupName: input.group ?? null,
        displayName: input.displayName,
        config: JSON.stringify(input.config),
        jobType: input.jobType,
        tags: input.tags ?? null,
      },
    );
    const bucket = data.upsertBucket?.bucket;
    if (!bucket?.name) throw new WandbError('W&B UpsertBucket answered without the run', 'server');
    return { name: bucket.name, entity: bucket.project?.entity?.name ?? input.entity, project: bucket.project?.name ?? input.project };
  }

  /** One file_stream request: history lines from `historyOffset`, the summary, uploaded files, completion. */
  async fileStream(
    run: { entity: string; project: string; name: string },
    request: { history?: { offset: number; lines: string[] }; summary?: string; uploaded?: string[]; complete?: { exitCode: number } },
  ): Promise<void> {
    const files: Record<string, { offset: number; content: string[] }> = {};
    if (request.history) files['wandb-history.jsonl'] = { offset: request.history.offset, content: request.history.lines };
    if (request.summary !== undefined) files['wandb-summary.json'] = { offset: 0, content: [request.summary] };
    const body = {
      ...(Object.keys(files).length ? { files } : {}),
      ...(request.uploaded?.length ? { uploaded: request.uploaded } : {}),
      ...(request.complete ? { complete: true, exitcode: request.complete.exitCode } : {}),
    };
    const path = [run.entity, run.project, run.name].map(encodeURIComponent).join('/');
    const response = await this.send(
      `${this.baseUrl}/files/${path}/file_stream`,
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) },
      'file_stream',
      true,
    );
    await response.body?.cancel();
  }

  /** Upload URLs for run files (by their paths in the run). */
  async createRunFiles(run: { entity: string; project: string; name: string }, files: string[]): Promise<Map<string, UploadTarget>> {
    const data = await this.graphql<{
      createRunFiles: { runID: string | null; uploadHeaders: string[] | null; files: Array<{ name: string; uploadUrl: string | null }> } | null;
    }>(
      'CreateRunFiles',
      `mutation CreateRunFiles($entity: String!, $project: String!, $run: String!, $files: [String!]!) {
  createRunFiles(input: { entityName: $entity, projectName: $project, runName: $run, files: $files }) {
    runID uploadHeaders files { name uploadUrl }
  }
}`,
      { entity: run.entity, project: run.project, run: run.name, files },
    );
    const created = data.createRunFiles;
    if (!created?.runID) throw new WandbError(`W&B CreateRunFiles: no run ${run.entity}/${run.project}/${run.name}`, 'server');
    const headers = parseUploadHeaders(created.uploadHeaders);
    const targets = new Map<string, UploadTarget>();
    for (const file of Array.isArray(created.files) ? created.files : []) if (file?.uploadUrl) targets.set(file.name, { url: file.uploadUrl, headers });
    for (const file of files) if (!targets.has(file)) throw new WandbError(`W&B CreateRunFiles gave no upload URL for ${file}`, 'server');
    return targets;
  }

  /** PUTs bytes to an upload URL the server gave (no key: see the top of this file). */
  async upload(target: UploadTarget, bytes: Buffer, what: string): Promise<void> {
    // A large sidecar on a slow link: the time allowed grows with the bytes (at least 256 KiB/s).
    const timeoutMs = this.timeoutMs + Math.ceil((bytes.length / (256 * 1024)) * 1000);
    const response = await this.send(target.url, { method: 'PUT', headers: target.headers, body: bytes }, `the upload of ${what}`, false, timeoutMs);
    await response.body?.cancel();
  }

  async createArtifact(input: {
    entity: string;
    project: string;
    runName: string;
    type: string;
    name: string;
    digest: string;
    description?: string;
    metadata?: Record<string, unknown>;
    aliases?: string[];
  }): Promise<CreatedArtifact> {
    const data = await this.graphql<{
      createArtifact: { artifact: { id: string; state: string; artifactSequence?: { latestArtifact?: { id: string } | null } } } | null;
    }>(
      'CreateArtifact',
      `mutation CreateArtifact($artifactTypeName: String!, $artifactCollectionNames: [String!], $entityName: String!, $projectName: String!,
  $runName: String, $description: String, $digest: String!, $aliases: [ArtifactAliasInput!], $metadata: JSONString) {
  createArtifact(input: { artifactTypeName: $artifactTypeName, artifactCollectionNames: $artifactCollectionNames, entityName: $entityName,
    projectName: $projectName, runName: $runName, description: $description, digest: $digest, digestAlgorithm: MANIFEST_MD5,
    aliases: $aliases, metadata: $metadata, enableDigestDeduplication: true }) {
    artifact { id state artifactSequence { id latestArtifact { id versionIndex } } }
  }
}`,
      {
        artifactTypeName: input.type,
        artifactCollectionNames: [input.name],
        entityName: input.entity,
        projectName: input.project,
        runName: input.runName,
        description: input.description ?? null,
        digest: input.digest,
        aliases: (input.aliases ?? ['latest']).map((alias) => ({ artifactCollectionName: input.name, alias })),
        metadata: input.metadata ? JSON.stringify(input.metadata) : null,
      },
    );
    const artifact = data.createArtifact?.artifact;
    if (!artifact?.id) throw new WandbError('W&B CreateArtifact answered without the artefact', 'server');
    const latest = artifact.artifactSequence?.latestArtifact?.id;
    return { id: artifact.id, state: artifact.state, ...(latest && latest !== artifact.id ? { latestId: latest } : {}) };
  }

  /** The artefact's manifest record; with includeUpload, where to PUT wandb_manifest.json. */
  async createArtifactManifest(input: {
    entity: string;
    project: string;
    runName: string;
    artifactId: string;
    baseArtifactId?: string;
    digest: string;
    includeUpload: boolean;
  }): Promise<{ id: string; upload: UploadTarget | null }> {
    const data = await this.graphql<{
      createArtifactManifest: { artifactManifest: { id: string; file: { uploadUrl?: string | null; uploadHeaders?: string[] | null } } } | null;
    }>(
      'CreateArtifactManifest',
      `mutation CreateArtifactManifest($name: String!, $digest: String!, $artifactID: ID!, $baseArtifactID: ID, $entityName: String!,
  $projectName: String!, $runName: String!, $includeUpload: Boolean!) {
  createArtifactManifest(input: { name: $name, digest: $digest, artifactID: $artifactID, baseArtifactID: $baseArtifactID,
    entityName: $entityName, projectName: $projectName, runName: $runName }) {
    artifactManifest { id file { id name displayName uploadUrl @include(if: $includeUpload) uploadHeaders @include(if: $includeUpload) } }
  }
}`,
      {
        name: 'wandb_manifest.json',
        digest: input.digest,
        artifactID: input.artifactId,
        baseArtifactID: input.baseArtifactId ?? null,
        entityName: input.entity,
        projectName: input.project,
        runName: input.runName,
        includeUpload: input.includeUpload,
      },
    );
    const manifest = data.createArtifactManifest?.artifactManifest;
    if (!manifest?.id) throw new WandbError('W&B CreateArtifactManifest answered without the manifest', 'server');
    const url = manifest.file?.uploadUrl;
    return { id: manifest.id, upload: url ? { url, headers: parseUploadHeaders(manifest.file.uploadHeaders) } : null };
  }

  /** Upload URLs for the artefact's files, by name; a file the server already holds comes back without one. */
  async createArtifactFiles(artifactId: string, manifestId: string, files: Array<{ name: string; md5: string }>): Promise<Map<string, ArtifactFileUpload>> {
    const data = await this.graphql<{
      createArtifactFiles: {
        files: { edges: Array<{ node: { displayName: string; uploadUrl: string | null; uploadHeaders: string[] | null; artifact: { id: string } } }> };
      } | null;
    }>(
      'CreateArtifactFiles',
      `mutation CreateArtifactFiles($storageLayout: ArtifactStorageLayout!, $artifactFiles: [CreateArtifactFileSpecInput!]!) {
  createArtifactFiles(input: { artifactFiles: $artifactFiles, storageLayout: $storageLayout }) {
    files { edges { node { id name displayName uploadUrl uploadHeaders storagePath artifact { id } } } }
  }
}`,
      {
        storageLayout: 'V2',
        artifactFiles: files.map((file) => ({ artifactID: artifactId, artifactManifestID: manifestId, name: file.name, md5: file.md5 })),
      },
    );
    const uploads = new Map<string, ArtifactFileUpload>();
    const edges = data.createArtifactFiles?.files?.edges;
    for (const { node } of (Array.isArray(edges) ? edges : []).filter((edge) => edge?.node)) {
      uploads.set(node.displayName, {
        name: node.displayName,
        upload: node.uploadUrl ? { url: node.uploadUrl, headers: parseUploadHeaders(node.uploadHeaders) } : null,
        birthArtifactId: node.artifact?.id ?? artifactId,
      });
    }
    for (const file of files) if (!uploads.has(file.name)) throw new WandbError(`W&B CreateArtifactFiles left out ${file.name}`, 'server');
    return uploads;
  }

  async commitArtifact(artifactId: string): Promise<void> {
    await this.graphql(
      'CommitArtifact',
      'mutation CommitArtifact($artifactID: ID!) { commitArtifact(input: { artifactID: $artifactID }) { artifact { id digest } } }',
      { artifactID: artifactId },
    );
  }
}
