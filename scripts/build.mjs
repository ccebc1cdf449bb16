// Bundles, with esbuild: the CLI, the VS Code extension (host side), the engine's child-process worker, and the
// heatmap webview app (a browser bundle of its own: d3 + @vscode-elements/elements, no remote resources).
// onnxruntime-node is a native addon and stays external (shipped in node_modules); 'vscode' is the host's API.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';

const node = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['onnxruntime-node', 'vscode'],
  logLevel: 'warning',
};

await Promise.all([
  build({ ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } }),
  build({ ...node, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js' }),
  build({ ...node, entryPoints: ['src/engine/process/worker.ts'], outfile: 'dist/worker.js' }),
  build({
    bundle: true,
    platform: 'browser',
    target: 'chrome120',
    format: 'iife',
    sourcemap: true,
    minify: true,
    entryPoints: ['webview/main.ts'],
    outfile: 'dist/webview/heatmap.js',
    logLevel: 'warning',
  }),
]);
chmodSync('dist/cli.js', 0o755);
