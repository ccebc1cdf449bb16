// `npm run demo`: the main job on the embedded default, from a fresh clone and offline.
// Until the project's trained TinySQL model ships (issue 6), the default model is a small GPT-2 with seeded
// random weights and the real GPT-2 tokenizer, built here on first use: the run is real, the heads mean nothing.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeRandomGpt2 } from '../test/support/randomGpt2';

const root = resolve(__dirname, '..');
const modelDir = join(root, '.atp-cache', 'demo-gpt2-random');
if (!existsSync(join(modelDir, 'config.json'))) {
  process.stderr.write(`building the demo model (random-weight GPT-2, 4 layers × 8 heads) in ${modelDir}\n`);
  writeRandomGpt2(modelDir, { nLayers: 4, nHeads: 8, dModel: 128, seed: 2024, weightStd: 0.08 });
}
process.stderr.write('demo model: GPT-2 layout with seeded random weights and the real GPT-2 tokenizer; its heads carry no meaning yet\n');
const out = join(root, 'demo-output', 'ioi.result.json');
const run = spawnSync(
  process.execPath,
  [join(root, 'dist', 'cli.js'), 'patch', '--model', modelDir, '--data', join(root, 'examples', 'ioi.jsonl'), '--out', out, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
process.exit(run.status ?? 1);
