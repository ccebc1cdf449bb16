// The output of one `atp` invocation: main.ts runs every command with it, serve.ts gives it each client's.
/** Where one invocation's output goes: this process's stdout and stderr, or an `atp serve` client's (serve.ts). */
export interface CliStreams {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; readonly isTTY?: boolean };
}
