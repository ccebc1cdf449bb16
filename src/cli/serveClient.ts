// The client side of `atp serve` (serve.ts): where this atp's server listens, the messages both sides exchange,
// and the CLI's part: send an engine command to a listening server and relay its output, or say that none listens
// (the command then runs in this process, as it always did). No onnxruntime import here.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InputError } from '../shared/errors';
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

const fits = (socket: string) => Buffer.byteLength(socket) <= MAX_SOCKET_PATH_BYTES;

/**
 * Where this atp's server listens: a socket in a private folder of the cache; when that path is too long for a
 * socket, one in $XDG_RUNTIME_DIR/atp (a folder only this user can enter, when that variable names one), and only
 * then in the temp folder ($TMPDIR/atp-<uid>, whose folder a client checks before it sends anything).
 */
export function serverAddress(env: NodeJS.ProcessEnv = process.env): ServerAddress {
  const key = serverKey(env);
  const serveDir = join(cacheRoot(), 'serve');
  const logFile = join(serveDir, `${key}.log`);
  if (process.platform === 'win32') return { path: windowsPipeName(serveDir, key), logFile };
  const inCache = join(serveDir, `${key}.sock`);
  if (fits(inCache)) return { path: inCache, logFile, socketDir: serveDir };
  const runtime = env.XDG_RUNTIME_DIR;
  // The runtime folder must itself be private (it is, when the login manager made it): else it is no better than /tmp.
  if (runtime && isAbsolute(runtime) && folderProblem(runtime) === undefined && fits(join(runtime, 'atp', `${key}.sock`))) {
    return { path: join(runtime, 'atp', `${key}.sock`), logFile, socketDir: join(runtime, 'atp') };
  }
  const shortDir = join(tmpdir(), `atp-${process.getuid?.() ?? userInfo().uid}`);
  return { path: join(shortDir, `${key}.sock`), logFile, socketDir: shortDir };
}

/**
 * A named pipe on Windows: pipe names are machine-wide, so anyone could create ours first and receive a client's
 * request. The name carries a random secret kept in the user's cache folder (readable by that user only, as the
 * profile folder is), so another user cannot know it in advance. Not tested here (no Windows machine runs the tests).
 */
function windowsPipeName(serveDir: string, key: string): string {
  const file = join(serveDir, 'pipe-secret');
  let secret = '';
  try {
    secret = readFileSync(file, 'utf8').trim();
  } catch {
    // None yet: made below.
  }
  if (!/^[0-9a-f]{32}$/.test(secret)) {
    mkdirSync(serveDir, { recursive: true });
    secret = randomBytes(16).toString('hex');
    try {
      // 'wx': of two processes making it at once, the second reads the first one's.
      writeFileSync(file, `${secret}\n`, { flag: 'wx', mode: 0o600 });
    } catch {
      secret = readFileSync(file, 'utf8').trim();
    }
  }
  return `\\\\.\\pipe\\atp-serve-${secret}-${key}`;
}

/**
 * Why `dir` cannot hold this user's socket, or undefined when it can: it must be a folder itself (not a link to
 * one), owned by this user, with no access for group or others. `uid` is this user's (a parameter for tests).
 */
export function folderProblem(dir: string, uid: number | undefined = process.getuid?.()): string | undefined {
  let stat;
  try {
    stat = lstatSync(dir);
  } catch (error) {
    return `${dir} cannot be examined (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
  }
  if (stat.isSymbolicLink()) return `${dir} is a symbolic link, not a folder of this user`;
  if (!stat.isDirectory()) return `${dir} is not a folder`;
  if (uid !== undefined && stat.uid !== uid) return `${dir} belongs to another user (uid ${stat.uid}), not to this one (uid ${uid})`;
  if ((stat.mode & 0o077) !== 0) return `${dir} is open to other users (mode ${(stat.mode & 0o777).toString(8)}; it must be 700)`;
  return undefined;
}

/** Why the socket at `path` is not this user's server's, or undefined when it may be: a socket (not a link), this user's, private. */
export function socketProblem(path: string, uid: number | undefined = process.getuid?.()): string | undefined {
  let stat;
  try {
    stat = lstatSync(path);
  } catch (error) {
    return `${path} cannot be examined (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
  }
  if (stat.isSymbolicLink()) return `${path} is a symbolic link, not this user's socket`;
  if (!stat.isSocket()) return `${path} is not a socket`;
  if (uid !== undefined && stat.uid !== uid) return `${path} belongs to another user (uid ${stat.uid}), not to this one (uid ${uid})`;
  if ((stat.mode & 0o077) !== 0) return `${path} is open to other users (mode ${(stat.mode & 0o777).toString(8)}; it must be 600)`;
  return undefined;
}

/**
 * An address this client will not send to: its folder or socket is not this user's alone, so whoever made them
 * could read the request (the user's environment, tokens included) and answer anything.
 */
export class UntrustedAddress extends InputError {}

/**
 * Creates (or checks) the folder only this user can enter, for the server's socket and log. A folder that is a
 * link, not a folder, or another user's (one pre-created in a shared temp folder) is refused, never used; one of
 * this user's that others may enter is closed (chmod 700).
 */
export function privateFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new UntrustedAddress(`cannot create ${dir} for atp serve's socket (${(error as Error).message})`);
  }
  const problem = folderProblem(dir);
  if (problem === undefined) return;
  const stat = lstatSync(dir);
  const uid = process.getuid?.();
  if (stat.isDirectory() && !stat.isSymbolicLink() && (uid === undefined || stat.uid === uid)) {
    chmodSync(dir, 0o700);
    return;
  }
  throw new UntrustedAddress(
    `${problem}; atp serve needs a folder only this user can enter for its socket, so remove it or set ATP_CACHE_DIR to a shorter path`,
  );
}

/**
 * Before a client sends anything: undefined when no server can be there (no socket file), else the address checked
 * to be this user's own (UntrustedAddress when not). Node cannot ask the peer's credentials (no SO_PEERCRED), so
 * ownership and mode of the folder and the socket, by lstat (links refused), stand for them: only this user (or
 * root) can make a socket owned by this user in a folder only this user can enter.
 */
function checkAddress(address: ServerAddress): 'absent' | 'checked' {
  if (process.platform === 'win32') return 'checked';
  if (address.socketDir !== undefined) {
    if (!existsSync(address.socketDir) && !isLink(address.socketDir)) return 'absent';
    const folder = folderProblem(address.socketDir);
    if (folder !== undefined) throw new UntrustedAddress(folder);
  }
  if (!existsSync(address.path) && !isLink(address.path)) return 'absent';
  const socket = socketProblem(address.path);
  if (socket !== undefined) throw new UntrustedAddress(socket);
  return 'checked';
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
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
  | { kind: 'stopping'; pid: number }
  /** A request the server cannot take (not our protocol, too long): nothing ran. */
  | { kind: 'refused'; reason: string };

/**
 * The longest request line a server reads: a client's argv and whole environment take far less (Linux caps both
 * together at a few MB); anything longer is refused before it is parsed, so a line never costs more than this.
 */
export const MAX_REQUEST_LINE = 8 * 1024 * 1024;

/** Most arguments and environment variables a request may carry (far more than any shell passes). */
const MAX_ARGV = 10_000;
const MAX_ENV = 10_000;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A request line's value checked against ServeRequest: the request, or why it is not one (a sentence for the
 * client). Every field is checked, so a run never starts from a half-formed request.
 */
export function parseServeRequest(value: unknown): ServeRequest | string {
  if (!isRecord(value)) return `expected a JSON object with "kind", got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`;
  const { kind } = value;
  if (kind === 'status' || kind === 'stop') return { kind };
  if (kind !== 'run') return `"kind" must be "run", "status" or "stop", got ${JSON.stringify(kind) ?? 'nothing'}`;
  const { argv, cwd, env, stderrIsTTY, columns } = value;
  if (!Array.isArray(argv) || argv.length === 0 || argv.length > MAX_ARGV || !argv.every((arg) => typeof arg === 'string'))
    return `"argv" must be a non-empty list of at most ${MAX_ARGV} strings`;
  if (!SERVED_COMMANDS.has(argv[0] as string)) return `"argv" must start with one of ${[...SERVED_COMMANDS].join(', ')}, got ${JSON.stringify(argv[0])}`;
  if (typeof cwd !== 'string' || !isAbsolute(cwd) || cwd.includes('\0')) return '"cwd" must be an absolute path';
  if (!isRecord(env)) return '"env" must be an object of strings';
  const entries = Object.entries(env);
  if (entries.length > MAX_ENV) return `"env" must hold at most ${MAX_ENV} variables`;
  for (const [name, text] of entries) {
    if (typeof text !== 'string' || name === '' || /[=\0]/.test(name) || text.includes('\0'))
      return '"env" must map variable names (no "=" or NUL) to strings without NUL';
  }
  if (typeof stderrIsTTY !== 'boolean') return '"stderrIsTTY" must be true or false';
  if (columns !== undefined && !(Number.isInteger(columns) && (columns as number) > 0 && (columns as number) < 100_000))
    return '"columns" must be a positive integer when given';
  return {
    kind: 'run',
    argv: argv as string[],
    cwd,
    // Without a prototype: a variable named __proto__ is a name like any other.
    env: Object.assign(Object.create(null) as Record<string, string>, Object.fromEntries(entries)),
    stderrIsTTY,
    ...(columns !== undefined ? { columns: columns as number } : {}),
  };
}

/**
 * Calls `onLine` with each line's parsed JSON (or `onBad` when a line is not JSON, or is longer than `maxLine`
 * characters: the socket gets nothing more from this reader). Each chunk is searched once for its newline, so a
 * long line costs time linear in its length.
 */
export function readLines(
  socket: Socket,
  onLine: (value: unknown) => void,
  { maxLine = Infinity, onBad = () => void socket.destroy() }: { maxLine?: number; onBad?: (reason: string) => void } = {},
): void {
  let pending: string[] = [];
  let pendingLength = 0;
  let stopped = false;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    let rest = chunk;
    while (!stopped) {
      const end = rest.indexOf('\n');
      if (end < 0) {
        pending.push(rest);
        pendingLength += rest.length;
        if (pendingLength > maxLine) bad(`a request line is longer than ${maxLine} characters`);
        return;
      }
      if (pendingLength + end > maxLine) return bad(`a request line is longer than ${maxLine} characters`);
      const line = pending.join('') + rest.slice(0, end);
      pending = [];
      pendingLength = 0;
      rest = rest.slice(end + 1);
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        return bad('a request line is not JSON');
      }
      onLine(value);
    }
  });
  function bad(reason: string): void {
    stopped = true;
    pending = [];
    onBad(reason);
  }
}

export const sendLine = (socket: Socket, message: ServeRequest | ServeMessage) => socket.write(`${JSON.stringify(message)}\n`);

/**
 * A connection to this atp's server, or undefined when none listens. A socket file that nobody listens on (a
 * server that was killed) is removed, so that the next server can listen there. UntrustedAddress (before any
 * connection) when the socket or its folder is not this user's alone.
 */
export async function connectToServer(address: ServerAddress = serverAddress()): Promise<Socket | undefined> {
  if (checkAddress(address) === 'absent') return undefined;
  const first = await tryConnect(address.path);
  if (first !== 'refused') return first;
  // A server binds its socket file a moment before it listens: refused twice, 50 ms apart, means nobody will.
  await sleep(50);
  const second = await tryConnect(address.path);
  if (second !== 'refused') return second;
  try {
    if (socketProblem(address.path) === undefined) unlinkSync(address.path);
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

const KINDS: ReadonlySet<string> = new Set(['waiting', 'started', 'stdout', 'stderr', 'exit', 'status', 'stopping', 'refused']);

/** The server's message, or undefined for what is not one (a value with no known kind). */
const serveMessage = (value: unknown): ServeMessage | undefined =>
  isRecord(value) && typeof value.kind === 'string' && KINDS.has(value.kind) ? (value as ServeMessage) : undefined;

/** A one-message exchange (status, stop): the server's answer, or undefined when no server listens. */
export async function askServer(request: ServeRequest & { kind: 'status' | 'stop' }, address?: ServerAddress): Promise<ServeMessage | undefined> {
  const socket = await connectToServer(address);
  if (!socket) return undefined;
  return new Promise((resolve) => {
    let answer: ServeMessage | undefined;
    readLines(socket, (value) => {
      answer ??= serveMessage(value);
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
  let socket: Socket | undefined;
  try {
    socket = await connectToServer(address);
  } catch (error) {
    if (!(error instanceof UntrustedAddress)) throw error;
    // Nothing was sent: the command runs here, and the user learns why the server was not used.
    streams.stderr.write(`atp: not using the atp server: ${error.message}; running in this process\n`);
    return undefined;
  }
  if (!socket) return undefined;
  const connected = socket;
  return new Promise((resolve) => {
    let started = false;
    let finished = false;
    let pid = 0;
    readLines(connected, (value) => {
      const message = serveMessage(value);
      if (!message) return;
      if (message.kind === 'waiting') streams.stderr.write(`atp: the atp server (pid ${message.pid}) is busy with another run; waiting for it\n`);
      else if (message.kind === 'started') {
        started = true;
        pid = message.pid;
        streams.stderr.write(`atp: running in the atp server (pid ${pid}; atp serve --stop stops it, --no-server runs without it)\n`);
      } else if (message.kind === 'stdout') streams.stdout.write(message.text);
      else if (message.kind === 'stderr') streams.stderr.write(message.text);
      else if (message.kind === 'refused' && !started)
        streams.stderr.write(`atp: the atp server refused the request (${message.reason}); running in this process\n`);
      else if (message.kind === 'exit') {
        finished = true;
        connected.end();
        resolve(message.code);
      }
    });
    connected.on('error', () => undefined);
    connected.on('close', () => {
      if (finished) return;
      if (!started) return resolve(undefined);
      streams.stderr.write(`atp: the atp server (pid ${pid}) stopped before the run finished; its log: ${address.logFile} (when started with --detach)\n`);
      resolve(1);
    });
    const env = Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined));
    sendLine(connected, {
      kind: 'run',
      argv: [...argv],
      cwd: process.cwd(),
      env,
      stderrIsTTY: streams.stderr.isTTY === true,
      ...(streams.stderr.columns !== undefined ? { columns: streams.stderr.columns } : {}),
    });
  });
}
