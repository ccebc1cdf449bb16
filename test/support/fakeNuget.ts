// A fake NuGet feed on 127.0.0.1 for the CUDA install tests, speaking the parts of the real protocol the install uses:
//   GET /v3/registration5-semver1/{id}/{version}.json → { catalogEntry: "<catalog leaf URL>" }
//   GET /v3/catalog0/data/{id}.{version}.json          → { packageHash: "<SHA-512, base64>", packageHashAlgorithm: "SHA512" }
//   GET /v3-flatcontainer/{id}/{version}/{id}.{version}.nupkg → the package, with Range support (206 + Content-Range)
// Anything else is 404. Every request is logged with its Range header; transfers can be cut off mid-body, and the
// published hash can be made wrong.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeNuget {
  readonly feed: string;
  readonly requests: Array<{ path: string; range?: string; status: number }>;
  /** The next package GET sends the headers and `afterBytes` bytes of the body, then drops the connection. */
  cutOffNextDownload(afterBytes: number): void;
  /** Publishes the hash of other bytes than the package's. */
  publishWrongHash(wrong: boolean): void;
  close(): Promise<void>;
}

/**
 * Serves `packages` (package id lower-case → version → .nupkg bytes), over https when `tls` is given, and names
 * itself `https://<host>:<port>` in the URLs it hands out (for a host only a proxy can reach).
 */
export async function startFakeNuget(
  packages: Record<string, Record<string, Buffer>>,
  options: { tls?: { key: string; cert: string }; host?: string } = {},
): Promise<FakeNuget> {
  const requests: FakeNuget['requests'] = [];
  let cutOff: number | undefined;
  let wrongHash = false;
  const sockets = new Set<Socket>();
  let feed = '';
  const handler = (request: http.IncomingMessage, response: http.ServerResponse) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    const send = (status: number, body: Buffer | string, headers: Record<string, string | number> = {}) => {
      requests.push({ path, range: request.headers.range, status });
      response.writeHead(status, headers);
      response.end(body);
    };
    let m = /^\/v3\/registration5-semver1\/([^/]+)\/([^/]+)\.json$/.exec(path);
    if (m && packages[m[1]]?.[m[2]])
      return send(200, JSON.stringify({ catalogEntry: `${feed}/v3/catalog0/data/${m[1]}.${m[2]}.json` }), { 'content-type': 'application/json' });
    m = /^\/v3\/catalog0\/data\/(.+?)\.(\d+\.\d+\.\d+)\.json$/.exec(path);
    if (m && packages[m[1]]?.[m[2]]) {
      const bytes = wrongHash ? Buffer.concat([packages[m[1]][m[2]], Buffer.from('x')]) : packages[m[1]][m[2]];
      return send(200, JSON.stringify({ packageHash: createHash('sha512').update(bytes).digest('base64'), packageHashAlgorithm: 'SHA512' }), {
        'content-type': 'application/json',
      });
    }
    m = /^\/v3-flatcontainer\/([^/]+)\/([^/]+)\/([^/]+)\.nupkg$/.exec(path);
    const bytes = m && m[3] === `${m[1]}.${m[2]}` ? packages[m[1]]?.[m[2]] : undefined;
    if (!bytes) return send(404, 'not found');
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    if (start >= bytes.length && range) return send(416, '', { 'content-range': `bytes */${bytes.length}` });
    const body = bytes.subarray(start);
    const headers = {
      'content-length': body.length,
      'content-type': 'application/octet-stream',
      ...(range ? { 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    };
    const status = range ? 206 : 200;
    if (cutOff !== undefined) {
      const after = cutOff;
      cutOff = undefined;
      requests.push({ path, range: request.headers.range, status });
      response.writeHead(status, headers);
      response.write(body.subarray(0, after), () => setTimeout(() => request.socket.destroy(), 20));
      return;
    }
    send(status, body, headers);
  };
  const server = options.tls ? https.createServer(options.tls, handler) : http.createServer(handler);
  server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  feed = `${options.tls ? 'https' : 'http'}://${options.host ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}`;
  return {
    feed,
    requests,
    cutOffNextDownload: (afterBytes) => {
      cutOff = afterBytes;
    },
    publishWrongHash: (wrong) => {
      wrongHash = wrong;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A .nupkg (a zip) with `files` (path in package → bytes), written by Python's zipfile: an implementation independent
 * of the reader under test. Deflated, as NuGet's are.
 */
export function makeNupkg(files: Record<string, Buffer>): Buffer {
  const script = `
import sys, json, base64, zipfile, io
files = json.load(sys.stdin)
out = io.BytesIO()
with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
    for name, data in files.items():
        z.writestr(name, base64.b64decode(data))
sys.stdout.write(base64.b64encode(out.getvalue()).decode())
`;
  const input = JSON.stringify(Object.fromEntries(Object.entries(files).map(([name, bytes]) => [name, bytes.toString('base64')])));
  const run = spawnSync('/usr/bin/python3', ['-c', script], { input, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (run.status !== 0) throw new Error(`python3 zipfile failed: ${run.stderr}`);
  return Buffer.from(run.stdout, 'base64');
}

export interface FakeProxy {
  readonly url: string;
  /** What the proxy was asked for: CONNECT host:port, or GET with the absolute URL. */
  readonly requests: string[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy on 127.0.0.1 that sends every target to 127.0.0.1:<the target's port>: CONNECT tunnels (for https)
 * and absolute-URL requests (for http). So a feed under a name that does not resolve is reachable only through it.
 */
export async function startFakeProxy(): Promise<FakeProxy> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    const target = new URL(request.url ?? '');
    const upstream = http.request(
      { host: '127.0.0.1', port: Number(target.port), path: target.pathname + target.search, method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  server.on('connect', (request: http.IncomingMessage, client: Socket, head: Buffer) => {
    requests.push(`CONNECT ${request.url}`);
    const port = Number(String(request.url).split(':').pop());
    const upstream = net.connect(port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A self-signed certificate for `host` (openssl), for an https fake feed a child process trusts via NODE_EXTRA_CA_CERTS. */
export function selfSignedCertificate(host: string, dir: string): { key: string; cert: string; certFile: string } {
  const keyFile = `${dir}/key.pem`;
  const certFile = `${dir}/cert.pem`;
  const run = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      `/CN=${host}`,
      '-addext',
      `subjectAltName=DNS:${host}`,
    ],
    { encoding: 'utf8' },
  );
  if (run.status !== 0) throw new Error(`openssl failed: ${run.stderr}`);
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile };
}
