// Runs every test/**/*.test.ts with node's test runner (Node 20 has no glob for --test).
// `--fast` (npm run test:fast): only the pure tests, test/unit/** without the ones listed in NOT_PURE: no PyTorch
// reference, no e2e, no network.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

// Unit tests that are not pure, each with why (they run in the full `npm test`).
const NOT_PURE = {
  'test/unit/referenceSelfCheck.test.ts': 'runs the PyTorch reference (python3 with torch)',
};

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

const args = process.argv.slice(2);
const fast = args[0] === '--fast';
const only = fast ? args.slice(1) : args;
let files = only.length > 0 ? only : find(fast ? 'test/unit' : 'test').sort();
if (fast) {
  // A renamed entry would silently make the fast tier impure: fail instead.
  for (const path of Object.keys(NOT_PURE)) {
    if (!existsSync(path)) {
      console.error(`test.mjs: ${path} (NOT_PURE) does not exist; update the list`);
      process.exit(2);
    }
  }
  files = files.filter((path) => !(path.replaceAll('\\', '/') in NOT_PURE));
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
