// Logging a finished run to W&B (src/engine/logging/) against a fake W&B server on 127.0.0.1 built from W&B's public
// client's protocol (test/support/fakeWandb.ts): the run with its config, the history row and summary, the tables
// as well-formed W&B table JSON equal to the Result's maps, the heatmap a valid PNG, the Result (and its sidecar) as an
// artefact whose manifest digests are the MD5s of the files' bytes; the key only ever in the basic-auth header; a
// refused key and an unreachable server become warnings that leave the Result as it was.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeResultAtomically } from '../../src/lib/files/resultFile';
import { logResultToWandb } from '../../src/engine/logging/logToWandb';
import { MAX_RESPONSE_BYTES } from '../../src/engine/logging/wandbApi';
import { artifactName } from '../../src/engine/logging/wandbContent';
import { heatmapPng, heatmapRgb } from '../../src/engine/logging/heatmapPng';
import { parseWandbBaseUrl, parseWandbProject, wandbTargetFromEnv, type WandbTarget } from '../../src/shared/wandb';
import { InputError } from '../../src/shared/errors';
import type { Result } from '../../src/shared/result';
import { comparisonResult } from '../support/comparisonResults';
import { type FakeWandb, startFakeWandb } from '../support/fakeWandb';

const KEY = 'local-0123456789abcdef0123456789abcdef01234567';
let root: string;
let server: FakeWandb;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'atp-wandb-'));
  server = await startFakeWandb(KEY);
});
after(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

const target = (overrides: Partial<WandbTarget> = {}): WandbTarget => ({
  project: 'atp-tests',
  apiKey: KEY,
  keySource: 'WANDB_API_KEY',
  baseUrl: server.url,
  ...overrides,
});

function sampleResult(): Result {
  const result = comparisonResult(
    [
      [0.5, -0.25, 0.125],
      [-1, 0.75, 0],
    ],
    [
      [0.1, 0.2],
      [-0.3, 0.4],
    ],
    '/models/tiny-gpt2',
  );
  result.dataset = { file: '/data/ioi.jsonl', examples: 1, contentHash: 'sha256:abc' };
  result.timings = { loadSeconds: 0.5, runSeconds: 1.25 };
  result.provenance = { engineVersion: '9.9.9', modelFiles: {}, tokenizerHash: 'none', method: 'atp', device: 'cpu', seed: 7 };
  return result;
}

const md5 = (bytes: Buffer) => createHash('md5').update(bytes).digest('base64');

/** Everything the server received, as text: the key must not be in any of it (bodies, paths, other headers). */
function everythingButAuthorization(): string {
  return server.requests
    .map((r) => {
      const { authorization: _auth, ...headers } = r.headers;
      return `${r.method} ${r.path}\n${JSON.stringify(headers)}\n${r.body.toString('latin1')}`;
    })
    .join('\n');
}

test('a run is logged with its config, metrics, tables, heatmap and the Result as an artefact; the key only as basic auth', async () => {
  const file = join(root, 'ioi.jsonl.atp-result.json');
  const result = sampleResult();
  // The run fitted its batch to memory: 3 ran where 8 were asked for.
  result.runtime = { provider: 'CPUExecutionProvider', batchSize: 3 };
  writeResultAtomically(file, result);
  const before = readFileSync(file);
  server.requests.length = 0;
  const outcome = await logResultToWandb(target(), result, file, {
    displayName: 'tiny-gpt2 · ioi.jsonl',
    jobType: 'patch',
    extraConfig: { precision: 'float32', batch_size: 8 },
  });
  assert.deepEqual(outcome.warnings, []);
  assert.equal(server.runs.length, 1);
  const run = server.runs[0];
  assert.deepEqual(outcome.urls, [`${server.url}/fake-user/atp-tests/runs/${run.name}`]);
  assert.match(run.name, /^[a-z0-9]{8}$/);
  assert.equal(run.entity, 'fake-user', 'no entity given: the key’s default entity from Viewer');
  assert.equal(run.displayName, 'tiny-gpt2 · ioi.jsonl');
  assert.equal(run.jobType, 'patch');
  // Config: W&B's {"key": {"value": v}} form, with what was run.
  const config = Object.fromEntries(Object.entries(run.config).map(([k, v]) => [k, v.value]));
  assert.equal(config.model, '/models/tiny-gpt2');
  assert.equal(config.method, 'atp');
  assert.equal(config.dataset, 'ioi.jsonl');
  assert.equal(config.n, 1);
  assert.equal(config.device, 'cpu');
  assert.equal(config.engine_version, '9.9.9');
  assert.equal(config.precision, 'float32');
  assert.equal(config.batch_size, 3, 'the batch the run used, from the Result');
  // History: one row at step 0 with the baselines and timings; the summary is that row.
  assert.equal(run.history.length, 1);
  const row = JSON.parse(run.history[0]);
  assert.equal(row._step, 0);
  assert.equal(row['baseline/clean_logit_diff'], 2);
  assert.equal(row['baseline/corrupted_logit_diff'], -1);
  assert.equal(row['timing/load_seconds'], 0.5);
  assert.equal(row['timing/run_seconds'], 1.25);
  assert.equal(row['heads/top_value'], -1, 'the head with the largest |attribution| is L1H0');
  assert.deepEqual(JSON.parse(run.summary!), row);
  // Tables: the uploaded file is W&B table JSON whose data are the Result's maps, cell by cell; the row points at it.
  const heads = row.heads;
  assert.equal(heads._type, 'table-file');
  const headsBytes = run.files.get(heads.path)!;
  assert.ok(headsBytes, `uploaded ${heads.path}`);
  assert.equal(heads.size, headsBytes.length);
  assert.equal(heads.sha256, createHash('sha256').update(headsBytes).digest('hex'));
  assert.match(heads.path, new RegExp(`^media/table/heads_0_${heads.sha256.slice(0, 20)}\\.table\\.json$`));
  const headsTable = JSON.parse(headsBytes.toString('utf8'));
  assert.deepEqual(Object.keys(headsTable).sort(), ['columns', 'data']);
  assert.deepEqual(headsTable.columns, ['layer', 'head', 'attribution']);
  assert.equal(headsTable.data.length, 6);
  for (const [layer, head, value] of headsTable.data) assert.equal(value, result.heads[layer][head]);
  assert.deepEqual([heads.ncols, heads.nrows], [3, 6]);
  const positions = JSON.parse(run.files.get(row.positions.path)!.toString('utf8'));
  for (const [layer, position, value] of positions.data) assert.equal(value, result.positions![layer][position]);
  const top = JSON.parse(run.files.get(row.top_heads.path)!.toString('utf8'));
  assert.deepEqual(top.data[0], [1, 'L1H0', 1, 0, -1]);
  assert.equal(row.heads_heatmap._type, 'image-file');
  assert.equal(run.files.get(row.heads_heatmap.path)!.subarray(0, 8).toString('hex'), '89504e470d0a1a0a');
  assert.deepEqual(new Set(run.uploaded), new Set(run.files.keys()), 'every uploaded run file reported to file_stream');
  assert.deepEqual(run.complete, { exitcode: 0 });
  // The artefact: committed, holding the Result's JSON; every manifest digest is the MD5 of the file's bytes.
  assert.equal(server.artifacts.length, 1);
  const artifact = server.artifacts[0];
  assert.equal(artifact.state, 'COMMITTED');
  assert.equal(artifact.type, 'atp-result');
  assert.equal(artifact.name, 'atp-ioi.jsonl');
  assert.equal(artifact.runName, run.name);
  const manifest = JSON.parse(artifact.manifest!.toString('utf8'));
  assert.equal(manifest.version, 1);
  assert.equal(manifest.storagePolicy, 'wandb-storage-policy-v1');
  assert.deepEqual(Object.keys(manifest.contents), ['ioi.jsonl.atp-result.json']);
  const entry = manifest.contents['ioi.jsonl.atp-result.json'];
  assert.equal(entry.digest, md5(before));
  assert.equal(entry.size, before.length);
  assert.deepEqual(server.storage.get(entry.digest), before);
  assert.equal(artifact.manifestDigest, md5(artifact.manifest!));
  // The artefact digest: MD5 of the v1 header and "path:digest" lines, computed here from the manifest as W&B does.
  const lines = Object.keys(manifest.contents)
    .sort()
    .map((path) => `${path}:${manifest.contents[path].digest}\n`)
    .join('');
  assert.equal(artifact.digest, createHash('md5').update(`wandb-artifact-manifest-v1\n${lines}`).digest('hex'));
  // The key: basic auth to the API, nothing to storage, nowhere else.
  const expected = `Basic ${Buffer.from(`api:${KEY}`).toString('base64')}`;
  for (const request of server.requests) {
    if (request.method === 'PUT') assert.equal(request.authorization, undefined, `no key sent to storage (${request.path})`);
    else assert.equal(request.authorization, expected, `${request.method} ${request.path}`);
  }
  assert.ok(!everythingButAuthorization().includes(KEY));
  assert.ok(!JSON.stringify(outcome).includes(KEY));
  assert.deepEqual(readFileSync(file), before, 'the Result is untouched');
});

test('a large Result is logged with its safetensors sidecar in the artefact; the same Result again is deduplicated', async () => {
  const dir = mkdtempSync(join(root, 'sidecar-'));
  const file = join(dir, 'big.atp-result.json');
  const result = sampleResult();
  writeResultAtomically(file, result, { layout: 'sidecar' });
  const sidecar = readdirSync(dir).find((name) => name.endsWith('.safetensors'))!;
  assert.ok(sidecar);
  const runsBefore = server.runs.length;
  const outcome = await logResultToWandb(target({ entity: 'team' }), result, file, { displayName: 'big', jobType: 'patch' });
  assert.deepEqual(outcome.warnings, []);
  const run = server.runs.at(-1)!;
  assert.equal(run.entity, 'team');
  const artifact = server.artifacts.at(-1)!;
  assert.equal(artifact.state, 'COMMITTED');
  const manifest = JSON.parse(artifact.manifest!.toString('utf8'));
  assert.deepEqual(Object.keys(manifest.contents).sort(), ['big.atp-result.json', sidecar].sort());
  for (const [name, bytes] of [
    ['big.atp-result.json', readFileSync(file)],
    [sidecar, readFileSync(join(dir, sidecar))],
  ] as const) {
    assert.equal(manifest.contents[name].digest, md5(bytes), name);
    assert.equal(manifest.contents[name].size, bytes.length, name);
    assert.deepEqual(server.storage.get(md5(bytes)), bytes, name);
  }
  // Logged again: a new W&B run, but the artefact's digest is known, so no file is uploaded again.
  const artifacts = server.artifacts.length;
  const puts = server.requests.filter((r) => r.method === 'PUT' && !r.path.includes('media')).length;
  const again = await logResultToWandb(target({ entity: 'team' }), result, file, { displayName: 'big', jobType: 'patch' });
  assert.deepEqual(again.warnings, []);
  assert.equal(server.runs.length, runsBefore + 2);
  assert.equal(server.artifacts.length, artifacts, 'CreateArtifact answered COMMITTED: nothing more');
  assert.equal(server.requests.filter((r) => r.method === 'PUT' && !r.path.includes('media')).length, puts);
});

test('a refused key becomes a warning naming where the key came from; the Result is as it was', async () => {
  const file = join(root, 'refused.atp-result.json');
  const result = sampleResult();
  writeResultAtomically(file, result);
  const before = readFileSync(file);
  const wrongKey = 'wrong-key-9876543210';
  const outcome = await logResultToWandb(target({ apiKey: wrongKey, keySource: 'WANDB_API_KEY' }), result, file, { displayName: 'x', jobType: 'patch' });
  assert.equal(outcome.urls.length, 0);
  assert.equal(outcome.warnings.length, 1);
  const [warning] = outcome.warnings;
  assert.match(
    warning,
    /W&B logging failed \(creating the run in atp-tests\): W&B at http:\/\/127\.0\.0\.1:\d+ refused the API key from WANDB_API_KEY \(HTTP 401/,
  );
  assert.ok(warning.includes(file), 'says where the Result is');
  assert.ok(!warning.includes(wrongKey));
  assert.equal(outcome.keyRefused, true, 'the editor offers a new key on this, not on the text');
  assert.deepEqual(readFileSync(file), before);
});

test('an unreachable server names its URL; a server error before or after the run is created is a warning, and a created run is finished', async () => {
  const file = join(root, 'flaky.atp-result.json');
  const result = sampleResult();
  writeResultAtomically(file, result);
  const before = readFileSync(file);
  // Nothing listens on a port just closed: connection refused.
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const refused = await logResultToWandb(target({ baseUrl: `http://127.0.0.1:${port}` }), result, file, { displayName: 'x', jobType: 'patch' });
  assert.equal(refused.warnings.length, 1);
  assert.match(refused.warnings[0], new RegExp(`could not reach W&B at http://127\\.0\\.0\\.1:${port}/graphql \\(Viewer\\): .*ECONNREFUSED`));
  assert.deepEqual(readFileSync(file), before);
  server.failWith(500);
  try {
    const failing = await logResultToWandb(target(), result, file, { displayName: 'x', jobType: 'patch' });
    assert.equal(failing.warnings.length, 1);
    assert.match(failing.warnings[0], /answered HTTP 500 to Viewer/);
    assert.equal(failing.keyRefused, undefined);
    // Failing at the artefact: the metrics are logged, the run is finished (exit code 1), the warning says what failed.
    server.failWith(503, 'CreateArtifact');
    const runs = server.runs.length;
    const partial = await logResultToWandb(target(), result, file, { displayName: 'x', jobType: 'patch' });
    assert.equal(server.runs.length, runs + 1);
    const run = server.runs.at(-1)!;
    assert.equal(run.history.length, 1);
    assert.deepEqual(run.complete, { exitcode: 1 });
    assert.deepEqual(partial.urls, [`${server.url}/fake-user/atp-tests/runs/${run.name}`]);
    assert.equal(partial.warnings.length, 1);
    assert.match(
      partial.warnings[0],
      /^W&B logging failed \(uploading the Result as an artefact of http:\/\/127.*\): W&B at http:\/\/127\.0\.0\.1:\d+\/graphql answered HTTP 503 to CreateArtifact/,
    );
  } finally {
    server.failWith(undefined);
  }
  assert.deepEqual(readFileSync(file), before);
});

test('a server that never answers is a warning after the timeout, naming its URL', async () => {
  const file = join(root, 'silent.atp-result.json');
  const result = sampleResult();
  writeResultAtomically(file, result);
  const silent = http.createServer(() => {
    // never answers
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  const port = (silent.address() as AddressInfo).port;
  try {
    const started = performance.now();
    const outcome = await logResultToWandb(target({ baseUrl: `http://127.0.0.1:${port}` }), result, file, {
      displayName: 'x',
      jobType: 'patch',
      timeoutMs: 300,
    });
    assert.ok(performance.now() - started < 10_000);
    assert.equal(outcome.warnings.length, 1);
    assert.match(outcome.warnings[0], new RegExp(`could not reach W&B at http://127\\.0\\.0\\.1:${port}/graphql \\(Viewer\\): no answer in time`));
  } finally {
    silent.closeAllConnections();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

/** A server on 127.0.0.1 that answers every request with `answer`; closed after `use`. */
async function withServer(answer: http.RequestListener, use: (url: string) => Promise<void>): Promise<void> {
  const hostile = http.createServer(answer);
  await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', () => resolve()));
  try {
    await use(`http://127.0.0.1:${(hostile.address() as AddressInfo).port}`);
  } finally {
    hostile.closeAllConnections();
    await new Promise<void>((resolve) => hostile.close(() => resolve()));
  }
}

test('a server that echoes our headers or the key in its errors: the warning holds the key in no form', async () => {
  const file = join(root, 'echo.atp-result.json');
  const result = sampleResult();
  writeResultAtomically(file, result);
  const basic = Buffer.from(`api:${KEY}`).toString('base64');
  const echoes: Array<[string, http.RequestListener]> = [
    ['an error status echoing the headers', (request, response) => response.writeHead(500).end(JSON.stringify(request.headers))],
    [
      'GraphQL errors echoing the headers and the key',
      (request, response) =>
        response.end(
          JSON.stringify({
            errors: [{ message: `bad auth ${request.headers.authorization} for ${KEY} (${encodeURIComponent(KEY)}, ${basic.replace(/=+$/, '')})` }],
          }),
        ),
    ],
  ];
  for (const [what, answer] of echoes) {
    await withServer(answer, async (url) => {
      const outcome = await logResultToWandb(target({ baseUrl: url }), result, file, { displayName: 'x', jobType: 'patch' });
      assert.equal(outcome.warnings.length, 1, what);
      const text = outcome.warnings.join('\n');
      for (const form of [KEY, basic, basic.replace(/=+$/, ''), Buffer.from(`api:${KEY}`).toString('base64url')])
        assert.ok(!text.includes(form), `${what}: ${text}`);
      assert.match(text, /\[API key\]/, what);
    });
  }
});

test('GraphQL errors of any shape (null entries, a string, an object, null) and JSON that is no object are server warnings, not TypeErrors', async () => {
  const file = join(root, 'shapes.atp-result.json');
  const result = sampleResult();
  writeResultAtomically(file, result);
  for (const body of [
    '{"errors":[null]}',
    '{"errors":[null,{"message":"boom"},"plain",{"message":7}]}',
    '{"errors":"down"}',
    '{"errors":{"message":"x"}}',
    'null',
    '[1]',
    '7',
  ]) {
    await withServer(
      (_request, response) => response.end(body),
      async (url) => {
        const outcome = await logResultToWandb(target({ baseUrl: url }), result, file, { displayName: 'x', jobType: 'patch' });
        assert.equal(outcome.warnings.length, 1, body);
        assert.match(outcome.warnings[0], /^W&B logging failed \(creating the run in .*\): W&B (Viewer: |at http)/, `${body}: ${outcome.warnings[0]}`);
        assert.doesNotMatch(outcome.warnings[0], /TypeError|Cannot read|is not a function/, body);
      },
    );
  }
});

test('an endless answer is cut off at MAX_RESPONSE_BYTES, not buffered', async () => {
  const file = join(root, 'endless.atp-result.json');
  const result = sampleResult();
  writeResultAtomically(file, result);
  let sent = 0;
  await withServer(
    (_request, response) => {
      const chunk = Buffer.alloc(1 << 20, 0x20);
      const more = () => {
        while (!response.destroyed && response.write(chunk)) sent += chunk.length;
        if (!response.destroyed) response.once('drain', more);
      };
      response.on('close', () => undefined);
      more();
    },
    async (url) => {
      const outcome = await logResultToWandb(target({ baseUrl: url }), result, file, { displayName: 'x', jobType: 'patch', timeoutMs: 60_000 });
      assert.equal(outcome.warnings.length, 1);
      assert.match(outcome.warnings[0], new RegExp(`answered Viewer with more than ${MAX_RESPONSE_BYTES / 1e6} MB`));
    },
  );
  assert.ok(sent < 4 * MAX_RESPONSE_BYTES, `the client stopped reading (${sent} bytes sent)`);
});

test('the heatmap PNG: valid chunks (CRC by zlib), the size of the map, the colour scale at each cell', () => {
  const map = [
    [1, -1, 0],
    [0.5, -0.5, 0.25],
  ];
  const { bytes, width, height } = heatmapPng(map);
  assert.equal(bytes.subarray(0, 8).toString('hex'), '89504e470d0a1a0a');
  const chunks: Array<{ type: string; data: Buffer }> = [];
  for (let at = 8; at < bytes.length;) {
    const length = bytes.readUInt32BE(at);
    const type = bytes.subarray(at + 4, at + 8).toString('ascii');
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (typeof zlib.crc32 === 'function') assert.equal(bytes.readUInt32BE(at + 8 + length), zlib.crc32(bytes.subarray(at + 4, at + 8 + length)), `${type} CRC`);
    chunks.push({ type, data });
    at += 12 + length;
  }
  assert.deepEqual(
    chunks.map((c) => c.type),
    ['IHDR', 'IDAT', 'IEND'],
  );
  assert.equal(chunks[0].data.readUInt32BE(0), width);
  assert.equal(chunks[0].data.readUInt32BE(4), height);
  const cell = width / 3;
  assert.equal(height, 2 * cell);
  const pixels = zlib.inflateSync(chunks[1].data);
  const stride = 1 + 3 * width;
  const at = (x: number, y: number) => [...pixels.subarray(y * stride + 1 + 3 * x, y * stride + 4 + 3 * x)];
  map.forEach((row, r) => row.forEach((value, c) => assert.deepEqual(at(c * cell + cell - 1, r * cell + cell - 1), heatmapRgb(value, 1), `cell ${r},${c}`)));
  assert.deepEqual(heatmapRgb(0, 1), [255, 255, 255], 'zero is white');
  assert.deepEqual(heatmapRgb(1, 1), [Math.round(255 * 0.2 + 33 * 0.8), Math.round(255 * 0.2 + 102 * 0.8), Math.round(255 * 0.2 + 172 * 0.8)]);
});

test('--wandb and its environment: [entity/]project, the key required, WANDB_BASE_URL checked', () => {
  assert.deepEqual(parseWandbProject('proj'), { project: 'proj' });
  assert.deepEqual(parseWandbProject('team/proj'), { entity: 'team', project: 'proj' });
  for (const bad of ['', 'a/b/c', 'has space', 'q?x', '/proj']) {
    assert.throws(
      () => parseWandbProject(bad),
      (error: unknown) => error instanceof InputError && error.field === 'wandb' && error.message.startsWith('--wandb'),
      bad,
    );
  }
  assert.throws(
    () => wandbTargetFromEnv('proj', {}),
    (error: unknown) => error instanceof InputError && error.field === 'wandbKey' && /--wandb needs a W&B API key in WANDB_API_KEY/.test(error.message),
  );
  const env = { WANDB_API_KEY: ` ${KEY} `, WANDB_BASE_URL: 'http://127.0.0.1:9/' };
  assert.deepEqual(wandbTargetFromEnv('team/proj', env), {
    entity: 'team',
    project: 'proj',
    apiKey: KEY,
    keySource: 'WANDB_API_KEY',
    baseUrl: 'http://127.0.0.1:9',
  });
  assert.equal(parseWandbBaseUrl(''), undefined);
  assert.throws(() => parseWandbBaseUrl('ftp://x'), /WANDB_BASE_URL: "ftp:\/\/x" is not an http\(s\) URL/);
  assert.throws(() => parseWandbBaseUrl('not a url'), /WANDB_BASE_URL/);
});

test('the artefact name comes from the result file’s name', () => {
  assert.equal(artifactName(basename('/x/my data.jsonl.atp-result.json')), 'atp-my-data.jsonl');
  assert.equal(artifactName('r.json'), 'atp-r');
});
