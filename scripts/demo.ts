// `npm run demo`: the main job on the embedded default, from a fresh clone and offline. The default model is the
// project's small TinySQL model (models/tinysql-demo, trained on command set 1). For two of the seed's features
// it generates clean/corrupted prompts with the project's TinySQL generator, runs attribution patching, prints the
// baselines and the top heads, and writes each Result JSON and one standalone HTML report with the heatmaps.
import { join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = resolve(__dirname, '..');
// Paths relative to where npm runs us (the repository root), so the output and report read cleanly.
const model = relative(process.cwd(), join(root, 'models', 'tinysql-demo')) || '.';
const outDir = relative(process.cwd(), join(root, 'demo-output')) || '.';
const cli = join(root, 'dist', 'cli.js');

function atp(...args: string[]): void {
  const run = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (run.status !== 0) process.exit(run.status ?? 1);
}

const results: string[] = [];
for (const feature of ['DefTableName', 'EngFieldName']) {
  process.stdout.write(`\n== TinySQL CS1, feature ${feature} ==\n`);
  const data = join(outDir, `tinysql-${feature}.jsonl`);
  const result = join(outDir, `tinysql-${feature}.result.json`);
  atp('generate', 'tinysql', '--feature', feature, '--cs', '1', '-n', '24', '--seed', '7', '--model', model, '--out', data);
  atp('patch', '--model', model, '--data', data, '--out', result, '--top', '5', ...process.argv.slice(2));
  results.push(result);
}
atp('report', '--out', join(outDir, 'report.html'), ...results);
process.stdout.write(`\nopen ${join(outDir, 'report.html')} in a browser for the heatmaps\n`);
