// atp serve: a long-lived process that runs atp's engine commands for the CLI, so that ONNX Runtime sessions (the
// seconds of a large model's load) are built once and reused by later calls. Clients (serveClient.ts) reach it
// through a socket only this user can open; each request runs main.ts's own command code (runCommand) with the
// client's folder, environment and output, one request at a time.
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, lstatSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { InputError } from '../shared/errors';
import { releaseSessions, sessionStatistics } from '../engine/process/runtime';
import { heldModel, keepOneModelAtATime } from '../engine/patching/sessions';
import {
  askServer,
  privateFolder,
  readLines,
  sendLine,
  type ServeMessage,
  type ServeRequest,
  type ServerAddress,
  serverAddress,
  type ServeStatus,
} from './serveClient';
import type { CliStreams } from './streams';

export const SERVE_USAGE = `  atp serve [--idle MINUTES] [--detach]
  atp serve --status | --stop`;

export const SERVE_HELP = `atp serve keeps a process running that runs atp patch, validate, circuit, sweep and test for the atp commands
you type, so that a model's ONNX Runtime sessions are built once (seconds for a 0.5B model) and reused by later
calls. While it listens, those commands run in it (stderr says so; results and exit status are the same); with
--no-server (or ATP_NO_SERVER=1) a command runs in its own process. It runs one request at a time, keeps one
model's sessions (about the weights' size again in memory; a run on another model releases them) and exits after
--idle MINUTES without a request (default 30). In the foreground Ctrl-C stops it; --detach starts it in the
background (its output in a log file in the cache folder) and prints its pid; --status describes it; --stop stops
it. A client that goes away mid-run (Ctrl-C) stops the server at once: that run writes nothing. Only the user who
started it can reach it, and only the same build of atp with the same cache folder and startup environment.`;

/** main.ts's runCommand: the one implementation of every command, here run with a client's streams. */
export type CommandRunner = (argv: readonly string[], streams: CliStreams, oneShot: boolean) => Promise<number>;

const DEFAULT_IDLE_MINUTES = 30;

function idleMinutes(text: string | undefined): number {
  if (text === undefined) return DEFAULT_IDLE_MINUTES;
  const minutes = Number(text);
  if (text.trim() === '' || !Number.isFinite(minutes) || minutes <= 0) throw new InputError(`--idle: expected a number of minutes > 0, got "${text}"`);
  return minutes;
}

export async function serveCommand(args: readonly string[], streams: CliStreams, run: CommandRunner): Promise<number> {
  const say = (text: string) => void streams.stderr.write(`${text}\n`);
  let values;
  let idle: number;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        idle: { type: 'string' },
        detach: { type: 'boolean', default: false },
        status: { type: 'boolean', default: false },
        stop: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
    idle = idleMinutes(values.idle);
    if ([values.detach, values.status, values.stop].filter(Boolean).length > 1) throw new InputError('give at most one of --detach, --status and --stop');
  } catch (error) {
    say(`atp: ${(error as Error).message}\n\nUsage:\n${SERVE_USAGE}\n\n${SERVE_HELP}`);
    return 2;
  }
  if (values.help) {
    streams.stdout.write(`Usage:\n${SERVE_USAGE}\n\n${SERVE_HELP}\n`);
    return 0;
  }
  const address = serverAddress();
  if (values.status) return status(address, streams);
  if (values.stop) return stop(address, say);
  const running = await askServer({ kind: 'status' }, address);
  if (running?.kind === 'status') {
    say(`atp serve: an atp server is already running (pid ${running.pid}) at ${address.path}`);
    return values.detach ? 0 : 1;
  }
  if (values.detach) return detach(address, idle, streams);
  return serve(address, idle, say, run);
}

async function status(address: ServerAddress, streams: CliStreams): Promise<number> {
  const answer = await askServer({ kind: 'status' }, address);
  if (answer?.kind !== 'status') {
    streams.stderr.write(`atp serve: no atp server is running for this atp (it would listen at ${address.path})\n`);
    return 1;
  }
  const { sessions } = answer;
  streams.stdout.write(
    [
      `atp server: pid ${answer.pid}, listening at ${answer.address}`,
      `  since ${answer.since}; ${answer.requests} request${answer.requests === 1 ? '' : 's'} served${answer.running ? ', one running now' : ''}; exits after ${answer.idleMinutes} minutes without a request`,
      `  model: ${answer.model ?? 'none yet'}; ${sessions.held} ONNX Runtime session${sessions.held === 1 ? '' : 's'} held (${sessions.built} built, ${sessions.reused} reused since it started)`,
    ].join('\n') + '\n',
  );
  return 0;
}

/** Whether the process is still there (signal 0 tests without sending anything). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Asks the server to stop and returns once its process has exited. */
async function stop(address: ServerAddress, say: (text: string) => void): Promise<number> {
  const answer = await askServer({ kind: 'stop' }, address);
  if (answer?.kind !== 'stopping') {
    say('atp serve: no atp server is running for this atp');
    return 0;
  }
  for (let waited = 0; alive(answer.pid) && waited < 30_000; waited += 50) await sleep(50);
  if (alive(answer.pid)) {
    say(`atp serve: the atp server (pid ${answer.pid}) has not exited after 30 s`);
    return 1;
  }
  say(`atp serve: stopped the atp server (pid ${answer.pid})`);
  return 0;
}

/** Starts the server as a detached process with its output in the log file; returns once it listens. */
async function detach(address: ServerAddress, idle: number, streams: CliStreams): Promise<number> {
  privateFolder(dirname(address.logFile));
  const log = openSync(address.logFile, 'w', 0o600);
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], 'serve', '--idle', String(idle)], {
    detached: true,
    stdio: ['ignore', log, log],
    env: process.env,
  });
  closeSync(log);
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = signal ?? String(code)));
  const logTail = () => readFileSync(address.logFile, 'utf8').split('\n').slice(-20).join('\n');
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(100)) {
    if (exited !== undefined) {
      streams.stderr.write(`atp serve: the server exited (${exited}) before it listened; its log, ${address.logFile}:\n${logTail()}\n`);
      return 1;
    }
    const answer = await askServer({ kind: 'status' }, address);
    if (answer?.kind === 'status' && answer.pid === child.pid) {
      child.unref();
      streams.stdout.write(
        `atp serve: pid ${child.pid}, listening at ${address.path}, log ${address.logFile}; exits after ${idle} minutes without a request\n`,
      );
      return 0;
    }
  }
  child.kill();
  streams.stderr.write(`atp serve: the server did not listen within 120 s; its log, ${address.logFile}:\n${logTail()}\n`);
  return 1;
}

/** Replaces this process's environment by `env` (keys not in it are removed). */
function replaceEnvironment(env: Record<string, string | undefined>): void {
  for (const name of Object.keys(process.env)) if (!(name in env)) delete process.env[name];
  for (const [name, value] of Object.entries(env)) if (value !== undefined) process.env[name] = value;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Serves requests until stopped, idle too long, or a client leaves mid-run; resolves with the exit status. */
async function serve(address: ServerAddress, idle: number, say: (text: string) => void, run: CommandRunner): Promise<number> {
  if (address.socketDir) privateFolder(address.socketDir);
  keepOneModelAtATime();
  const since = new Date().toISOString();
  const queue: Array<{ socket: Socket; request: Extract<ServeRequest, { kind: 'run' }> }> = [];
  let busy = false;
  let requests = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));

  const removeSocket = () => {
    if (process.platform === 'win32') return;
    try {
      if (lstatSync(address.path).isSocket()) unlinkSync(address.path);
    } catch {
      // Already gone.
    }
  };
  const server = createServer();
  const shutdown = async (why: string) => {
    say(`atp serve: ${why}; exiting`);
    clearTimeout(idleTimer);
    removeSocket();
    // A run in progress cannot be let finish after its client was told the server stopped: end the process now.
    if (busy) process.exit(0);
    server.close();
    await releaseSessions();
    finish(0);
  };
  const armIdleTimer = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => void shutdown(`no request for ${idle} minutes; released the sessions`), idle * 60_000);
  };
  const statusOf = (): ServeStatus => ({
    pid: process.pid,
    since,
    idleMinutes: idle,
    ...(heldModel() !== undefined ? { model: heldModel() } : {}),
    sessions: sessionStatistics(),
    requests,
    running: busy,
    address: address.path,
  });

  const serveRun = async (socket: Socket, request: Extract<ServeRequest, { kind: 'run' }>) => {
    // Ctrl-C on the client closes its socket: the run must not go on and write its output later, so the server
    // exits at once (results are written atomically: the previous output stays as it was).
    const clientLeft = () => {
      say('atp serve: the client went away mid-run (Ctrl-C?); exiting at once so that the run writes nothing');
      removeSocket();
      process.exit(1);
    };
    socket.once('close', clientLeft);
    const send = (message: ServeMessage) => void sendLine(socket, message);
    const started = performance.now();
    const before = sessionStatistics();
    const own = { cwd: process.cwd(), env: { ...process.env } };
    let code = 1;
    send({ kind: 'started', pid: process.pid });
    try {
      process.chdir(request.cwd);
      replaceEnvironment(request.env);
      const streams: CliStreams = {
        stdout: { write: (text: string) => send({ kind: 'stdout', text }) },
        stderr: { write: (text: string) => send({ kind: 'stderr', text }), isTTY: request.stderrIsTTY },
      };
      code = await run(request.argv, streams, false);
      const after = sessionStatistics();
      const built = after.built - before.built;
      const reused = after.reused - before.reused;
      if (built + reused > 0)
        send({
          kind: 'stderr',
          text: `atp: the atp server built ${plural(built, 'ONNX Runtime session')} for this run and reused ${reused} it held\n`,
        });
    } catch (error) {
      // runCommand reports its own errors; this is the server's (a folder that cannot be entered, say).
      send({ kind: 'stderr', text: `atp: the atp server could not run this in ${request.cwd}: ${(error as Error).message}\n` });
    } finally {
      replaceEnvironment(own.env);
      process.chdir(own.cwd);
    }
    socket.off('close', clientLeft);
    requests += 1;
    // The command's name only: arguments and environment (tokens) are never logged.
    say(`atp serve: request ${requests}: atp ${request.argv[0]}: exit ${code} after ${((performance.now() - started) / 1000).toFixed(1)} s`);
    send({ kind: 'exit', code });
    socket.end();
  };

  const drain = async () => {
    busy = true;
    clearTimeout(idleTimer);
    for (let next = queue.shift(); next; next = queue.shift()) {
      // A waiting client that gave up: nothing ran for it.
      if (!next.socket.destroyed) await serveRun(next.socket, next.request);
    }
    busy = false;
    armIdleTimer();
  };

  server.on('connection', (socket) => {
    socket.on('error', () => undefined);
    let answered = false;
    readLines<ServeRequest>(socket, (request) => {
      if (answered) return;
      answered = true;
      if (request.kind === 'status') {
        sendLine(socket, { kind: 'status', ...statusOf() });
        socket.end();
      } else if (request.kind === 'stop') {
        sendLine(socket, { kind: 'stopping', pid: process.pid });
        socket.end();
        void shutdown('asked to stop (atp serve --stop)');
      } else if (request.kind === 'run') {
        if (busy) sendLine(socket, { kind: 'waiting', pid: process.pid });
        queue.push({ socket, request });
        if (!busy) void drain();
      } else socket.destroy();
    });
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    say(`atp serve: cannot listen at ${address.path}: ${(error as Error).message}`);
    return 1;
  }
  if (process.platform !== 'win32') chmodSync(address.path, 0o600);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      say(`atp serve: ${signal}; exiting`);
      removeSocket();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  say(`atp serve: listening at ${address.path} (pid ${process.pid}); exits after ${idle} minutes without a request; Ctrl-C or atp serve --stop stops it`);
  armIdleTimer();
  return finished;
}
