// The built `atp` command line (dist/cli.js, built by `npm test` before the tests run), run as a user runs it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export const CLI = resolve(__dirname, '../../dist/cli.js');

export function requireBuiltCli(): void {
  assert.ok(existsSync(CLI), 'dist/cli.js exists (run `npm run build`)');
}

/**
 * Runs `atp args…` with its graph cache in `cacheDir` (tests never share the user's cache, nor meet a user's
 * `atp serve`, whose address derives from it), in `cwd` when given, with `env` added to the environment.
 */
export function runCli(
  cacheDir: string,
  args: readonly string[],
  cwd?: string,
  env: Record<string, string> = {},
): { code: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd, env: { ...process.env, ...env, ATP_CACHE_DIR: cacheDir } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}
