// The engine's one HTTP transport (src/engine/httpTransport.ts) honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY as curl
// and requests do: hub downloads and W&B logging go through a small HTTP proxy written here (CONNECT tunnels, which
// undici's proxy agent uses, and absolute-URI forwarding), NO_PROXY goes direct, and a malformed proxy variable is
// an error naming the variable without its value.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModel } from '../../src/engine/model/hub';
import { proxySettings } from '../../src/engine/httpTransport';
import { logResultToWandb } from '../../src/engine/logging/logToWandb';
import { writeResultAtomically } from '../../src/lib/files/resultFile';
import { InputError } from '../../src/shared/errors';
import { startFakeHub, type FakeFiles, type FakeHub } from '../support/fakeHub';
import { startFakeWandb, type FakeWandb } from '../support/fakeWandb';
import { writeRandomGpt2 } from '../support/randomGpt2';
import { comparisonResult } from '../support/comparisonResults';

interface Proxy {
  url: string;
  /** "CONNECT host:port" or "GET http://…" per request it relayed. */
  seen: string[];
  close(): Promise<void>;
}

/** An HTTP proxy on 127.0.0.1: CONNECT tunnels and plain forwarding of absolute-URI requests. */
async function startProxy(): Promise<Proxy> {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const target = new URL(req.url ?? '');
    const upstream = http.request(target, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const root = fs.mkdtempSync(join(tmpdir(), 'atp-proxy-'));
let hub: FakeHub;
let proxy: Proxy;
let wandb: FakeWandb;
const WANDB_KEY = 'local-proxy-test-key-0123456789abcdef';

before(async () => {
  const dir = join(root, 'model');
  writeRandomGpt2(dir, { nLayers: 1, nHeads: 2, dModel: 8, seed: 4 });
  const files: FakeFiles = Object.fromEntries(fs.readdirSync(dir).map((name) => [name, fs.readFileSync(join(dir, name))]));
  hub = await startFakeHub({ 'org/tiny': { revisions: { main: files } } });
  proxy = await startProxy();
  wandb = await startFakeWandb(WANDB_KEY);
});
after(async () => {
  await hub.close();
  await proxy.close();
  await wandb.close();
  fs.rmSync(root, { recursive: true, force: true });
});

let counter = 0;
const env = (extra: Record<string, string>) => ({
  HF_ENDPOINT: hub.endpoint,
  HF_HUB_CACHE: join(root, `cache-${counter++}`),
  HF_HOME: join(root, 'hf-home'),
  ...extra,
});

test('hub downloads go through HTTP_PROXY (the hub and its CDN alike); NO_PROXY goes direct', async () => {
  proxy.seen.length = 0;
  const port = (origin: string) => new URL(origin).port;
  const resolved = await resolveModel('org/tiny', { env: env({ HTTP_PROXY: proxy.url }), retryDelayMs: 10 });
  assert.ok(fs.existsSync(join(resolved.dir, 'model.safetensors')));
  const targets = new Set(
    proxy.seen.map((line) =>
      line
        .replace(/^CONNECT /, '')
        .replace(/^\w+ http:\/\//, '')
        .replace(/\/.*$/, ''),
    ),
  );
  assert.ok(targets.has(`127.0.0.1:${port(hub.endpoint)}`), proxy.seen.join('\n'));
  assert.ok(targets.has(`127.0.0.1:${port(hub.cdnOrigin)}`), proxy.seen.join('\n'));
  const requests = hub.requests.length;

  proxy.seen.length = 0;
  await resolveModel('org/tiny', { env: env({ http_proxy: proxy.url, NO_PROXY: 'example.com,127.0.0.1' }), retryDelayMs: 10 });
  assert.deepEqual(proxy.seen, []);
  assert.ok(hub.requests.length > requests, 'the hub was asked directly');
});

test('a malformed proxy variable is an InputError naming it, never its value; host:port is an http proxy', async () => {
  assert.equal(proxySettings({ HTTPS_PROXY: 'proxy.corp:3128' }).httpsProxy, 'http://proxy.corp:3128');
  const secret = 'hunter2-proxy-password';
  for (const [name, value, pattern] of [
    ['HTTPS_PROXY', `http://user:${secret}@[bad`, /HTTPS_PROXY is not a URL/],
    ['http_proxy', `socks5://user:${secret}@127.0.0.1:1080`, /http_proxy must be an http:\/\/ or https:\/\/ proxy URL, not socks5:/],
  ] as const) {
    assert.throws(
      () => proxySettings({ [name]: value }),
      (error: unknown) => error instanceof InputError && pattern.test(error.message) && !error.message.includes(secret),
    );
    await assert.rejects(
      resolveModel('org/tiny', { env: env({ [name]: value }) }),
      (error: unknown) => error instanceof InputError && pattern.test(error.message),
    );
  }
});

test('W&B logging goes through HTTP_PROXY too', async () => {
  const file = join(root, 'result.json');
  const result = comparisonResult([[0.5, -0.25]], null, '/models/tiny');
  writeResultAtomically(file, result);
  const saved = process.env.HTTP_PROXY;
  proxy.seen.length = 0;
  process.env.HTTP_PROXY = proxy.url;
  try {
    const outcome = await logResultToWandb({ project: 'p', apiKey: WANDB_KEY, keySource: 'test', baseUrl: wandb.url }, result, file, {
      displayName: 'proxied',
      jobType: 'patch',
      top: 3,
    });
    assert.deepEqual(outcome.warnings, []);
  } finally {
    if (saved === undefined) delete process.env.HTTP_PROXY;
    else process.env.HTTP_PROXY = saved;
  }
  assert.equal(wandb.runs.length, 1);
  assert.ok(
    proxy.seen.some((line) => line.includes(new URL(wandb.url).port)),
    proxy.seen.join('\n'),
  );
});
