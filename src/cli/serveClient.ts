// The client side of `atp serve` (serve.ts): where this atp's server listens, the messages both sides exchange,
// and the CLI's part: send an engine command to a listening server and relay its output, or say that none listens
// (the command then runs in this process, as it always did). No onnxruntime import here.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cacheRoot } from '../lib/files/cacheRoot';

/** The commands that run models (and so build ONNX Runtime sessions): the ones worth sending to a server. */
export const SERVED_COMMANDS: ReadonlySet<string> = new Set(['patch', 'validate', 'circuit', 'sweep', 'test']);

/**
 * Variables the engine (or the native libraries under it) reads once, when the process starts: a server started
 * with other values would run differently from this process, so they are part of the server's key. (Those read
 * per call, such as HF_TOKEN, HF_HOME or WANDB_API_KEY, travel with each request instead.)
 */
export const STARTUP_ENVIRONMENT = [
  'ATP_ORT_RUNTIME', // cudaRuntime.ts: which ONNX Runtime binding is loaded
  'ATP_CUDA_DIR', // cudaRuntime.ts: where the per-user CUDA runtime is
  'XDG_CACHE_HOME', // cudaRuntime.ts too (the runtime's default folder)
  'LD_LIBRARY_PATH', // where the dynamic loader finds the CUDA and cuDNN libraries
  'CUDA_VISIBLE_DEVICES', // read once by the CUDA driver
  'VK_DRIVER_FILES', // read once by Dawn (WebGPU) when it opens its adapter
  'VK_ICD_FILENAMES',
  'NODE_OPTIONS', // the server's Node flags (heap size, say)
] as const;

/** ATP_NO_SERVER=1 (or any value but 0 and empty): always run in this process. */
export function serverRefusedByEnv(env: NodeJS.ProcessEnv): boolean {
  const value = env.ATP_NO_SERVER;
  return value !== undefined && value !== '' && value !== '0';
}

/** This atp's code: a rebuilt or upgraded atp must never talk to a server still running the old code. */
function codeIdentity(): string {
  const hash = createHash('sha256').update(readFileSync(__filename));
  try {
    hash.update(readFileSync(require.resolve('onnxruntime-node/package.json')));
  } catch {
    // No onnxruntime-node found from here: the server would not find it either; the script's bytes decide.
  }
  return hash.digest('hex');
}

/**
 * What client and server must agree on, hashed: the code (this bundle and onnxruntime-node's version), Node, the
 * engine's cache folder, and STARTUP_ENVIRONMENT. Different keys are different servers at different addresses.
 */
export function serverKey(env: NodeJS.ProcessEnv = process.env): string {
  const parts = [codeIdentity(), process.execPath, process.version, cacheRoot(), ...STARTUP_ENVIRONMENT.map((name) => `${name}=${env[name] ?? '\0unset'}`)];
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16);
}

export interface ServerAddress {
  /** What net.connect and server.listen take: a Unix socket's path, or a Windows named pipe. */
  readonly path: string;
  /** The server's log when it runs detached (`atp serve --detach`): in the cache folder. */
  readonly logFile: string;
  /** The private folder the Unix socket is in (absent for a Windows pipe). */
  readonly socketDir?: string;
}

/** A Unix socket's path must fit sockaddr_un.sun_path: 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

/** Where this atp's server listens: a socket in a private folder of the cache (or of the temp folder when that path is too long). */
export function serverAddress(env: NodeJS.ProcessEnv = process.env): ServerAddress {
  const key = serverKey(env);
  const serveDir = join(cacheRoot(), 'serve');
  const logFile = join(serveDir, `${key}.log`);
  if (process.platform === 'win32') {
    // The user's name in it: pipes are machine-wide names.
    const user = createHash('sha256').update(userInfo().username).digest('hex').slice(0, 8);
    return { path: `\\\\.\\pipe\\atp-serve-${user}-${key}`, logFile };
  }
  const inCache = join(serveDir, `${key}.sock`);
  if (Buffer.byteLength(inCache) <= MAX_SOCKET_PATH_BYTES) return { path: inCache, logFile, socketDir: serveDir };
  const shortDir = join(tmpdir(), `atp-${process.getuid?.() ?? userInfo().uid}`);
  return { path: join(shortDir, `${key}.sock`), logFile, socketDir: shortDir };
}

/**
 * Creates (or checks) a folder only this user can enter: the socket's, and the log's. A folder that is a link or
 * belongs to someone else (a shared temp folder) is refused rather than used.
 */
export function privateFolder(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = lstatSync(dir);
  const uid = process.getuid?.();
  if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid)) {
    throw new Error(`${dir} is not a folder of this user; atp serve needs a private folder for its socket there`);
  }
  if ((stat.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/** What a client sends first, one JSON line. */
export type ServeRequest =
  | {
      kind: 'run';
      argv: string[];
      cwd: string;
      /** The client's whole environment: tokens (HF_TOKEN, WANDB_API_KEY) reach the run this way and are never logged. */
      env: Record<string, string>;
      stderrIsTTY: boolean;
      columns?: number;
    }
  | { kind: 'status' }
  | { kind: 'stop' };

export interface ServeStatus {
  pid: number;
  /** When the server started (ISO time). */
  since: string;
  idleMinutes: number;
  /** The model whose sessions it keeps, as the user named it. */
  model?: string;
  /** Sessions held now; built and reused since it started. */
  sessions: { held: number; built: number; reused: number };
  requests: number;
  running: boolean;
  address: string;
}

/** What the server sends, one JSON line each. */
export type ServeMessage =
  | { kind: 'waiting'; pid: number }
  | { kind: 'started'; pid: number }
  | { kind: 'stdout'; text: string }
  | { kind: 'stderr'; text: string }
  | { kind: 'exit'; code: number }
  | ({ kind: 'status' } & ServeStatus)
  | { kind: 'stopping'; pid: number };

/** Calls `onMessage` for each JSON line that arrives on the socket. */
export function readLines<T>(socket: Socket, onMessage: (message: T) => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let end: number;
    while ((end = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      if (line.trim() === '') continue;
      let message: T;
      try {
        message = JSON.parse(line) as T;
      } catch {
        // Not our protocol: whoever is on the other end gets nothing more.
        socket.destroy();
        return;
      }
      onMessage(message);
    }
  });
}

export const sendLine = (socket: Socket, message: ServeRequest | ServeMessage) => socket.write(`${JSON.stringify(message)}\n`);

/**
 * A connection to this atp's server, or undefined when none listens. A socket file that nobody listens on (a
 * server that was killed) is removed, so that the next server can listen there.
 */
export async function connectToServer(address: ServerAddress = serverAddress()): Promise<Socket | undefined> {
  if (process.platform !== 'win32' && !existsSync(address.path)) return undefined;
  const first = await tryConnect(address.path);
  if (first !== 'refused') return first;
  // A server binds its socket file a moment before it listens: refused twice, 50 ms apart, means nobody will.
  await sleep(50);
  const second = await tryConnect(address.path);
  if (second !== 'refused') return second;
  try {
    if (lstatSync(address.path).isSocket()) unlinkSync(address.path);
  } catch {
    // Gone already, or another client removed it first.
  }
  return undefined;
}

function tryConnect(path: string): Promise<Socket | undefined | 'refused'> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' && process.platform !== 'win32' ? 'refused' : undefined));
  });
}

/** A one-message exchange (status, stop): the server's answer, or undefined when no server listens. */
export async function askServer(request: ServeRequest & { kind: 'status' | 'stop' }, address?: ServerAddress): Promise<ServeMessage | undefined> {
  const socket = await connectToServer(address);
  if (!socket) return undefined;
  return new Promise((resolve) => {
    let answer: ServeMessage | undefined;
    readLines<ServeMessage>(socket, (message) => {
      answer ??= message;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(answer));
    sendLine(socket, request);
  });
}

interface ClientStreams {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; readonly isTTY?: boolean; readonly columns?: number };
}

/**
 * Runs `argv` in this atp's server when one listens, relaying its stdout and stderr: resolves to the run's exit
 * status, or undefined when no server listens or it closed before starting the run (nothing ran: run here).
 */
export async function runInServer(argv: readonly string[], streams: ClientStreams): Promise<number | undefined> {
  const address = serverAddress();
  const socket = await connectToServer(address);
  if (!socket) return undefined;
  return new Promise((resolve) => {
    let started = false;
    let finished = false;
    let pid = 0;
    readLines<ServeMessage>(socket, (message) => {
      if (message.kind === 'waiting') streams.stderr.write(`atp: the atp server (pid ${message.pid}) is busy with another run; waiting for it\n`);
      else if (message.kind === 'started') {
        started = true;
        pid = message.pid;
        streams.stderr.write(`atp: running in the atp server (pid ${pid}; atp serve --stop stops it, --no-server runs without it)\n`);
      } else if (message.kind === 'stdout') streams.stdout.write(message.text);
      else if (message.kind === 'stderr') streams.stderr.write(message.text);
      else if (message.kind === 'exit') {
        finished = true;
        socket.end();
        resolve(message.code);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (finished) return;
      if (!started) return resolve(undefined);
      streams.stderr.write(`atp: the atp server (pid ${pid}) stopped before the run finished; its log: ${address.logFile} (when started with --detach)\n`);
      resolve(1);
    });
    const env = Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined));
    sendLine(socket, {
      kind: 'run',
      argv: [...argv],
      cwd: process.cwd(),
      env,
      stderrIsTTY: streams.stderr.isTTY === true,
      ...(streams.stderr.columns !== undefined ? { columns: streams.stderr.columns } : {}),
    });
  });
}
