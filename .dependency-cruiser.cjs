// The import boundaries of docs/ARCHITECTURE.md, checked by `npm run lint` (a step of `npm test`).
// Paths are relative to the folder depcruise runs in; test/unit/boundaries.test.ts runs this same file on
// fixtures in a temp folder, where packages do not resolve, so a package matches with or without node_modules/.
// "type-only" means `import type` (or every specifier marked `type`): erased by the build, so allowed where
// a rule says "at run time". A value import used only for types is a violation here, though esbuild would drop
// it: `import type` says so explicitly and keeps it true if the build's elision ever changes.

const pkg = (name) => `^(node_modules/)?${name}(/|$)`;

// The extension host: it must never load the engine (the engine runs in worker.ts, a child process).
const HOST = '^src/(extension\\.ts$|editor/|views/|commands/|services/|panel/|testing/)';
// The engine is the native compute: graphs, sessions and runs over onnxruntime-node and the tokenizer. What the host
// loads in-process too (datasets, Result files, claims, presets, the CUDA runtime's state and download) is src/lib/.
const ENGINE_NATIVE = [pkg('onnxruntime-node'), pkg('@huggingface/tokenizers'), '^src/engine/'];

// The engine's front ends besides the extension host: the atp command line and the HTML reports it writes.
const FRONT_ENDS = '^src/(cli|report)/';

// What the webview bundle (a browser iife) may pull in, besides type-only imports.
const WEBVIEW_ALLOWED = ['^webview/', '^src/shared/', pkg('d3'), pkg('@vscode-elements/[^/]+')];

module.exports = {
  forbidden: [
    {
      name: 'engine-no-vscode',
      comment: 'src/engine/ and src/lib/ run in the CLI and the worker process, where there is no vscode module (type imports included).',
      severity: 'error',
      from: { path: '^src/(engine|lib)/' },
      to: { path: ['^vscode$', '(^|/)node_modules/@types/vscode/'] },
    },
    {
      name: 'host-no-engine-native',
      comment:
        'The extension host never loads the engine (src/engine/), onnxruntime-node or the tokenizer: those run in the worker. It uses src/lib/ and src/shared/. Type-only imports are fine.',
      severity: 'error',
      from: { path: HOST },
      to: { path: ENGINE_NATIVE, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'lib-no-engine',
      comment:
        'src/lib/ is loaded by the extension host too: it never imports the engine, onnxruntime-node or the tokenizer at run time (type-only imports are fine).',
      severity: 'error',
      from: { path: '^src/lib/' },
      to: { path: ENGINE_NATIVE, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'host-no-cli',
      comment: 'src/cli/ is the atp command line: it loads the tokenizer and sessions in its own process; the host never imports it.',
      severity: 'error',
      from: { path: HOST },
      to: { path: '^src/cli/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'webview-allowed-imports',
      comment: 'The webview is a browser bundle: src/shared/, d3, @vscode-elements and its own files; anything else as a type only.',
      severity: 'error',
      from: { path: '^webview/' },
      to: { pathNot: WEBVIEW_ALLOWED, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-circular',
      comment: 'No module reaches itself through its imports (type-only ones included): each folder is a floor that imports only the floors below it.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'shared-no-src-outside',
      comment:
        'src/shared/ is the ground floor: it imports nothing from the rest of src/, not even types. Contracts (devices, generation specs, circuit options) live in it and the engine implements them.',
      severity: 'error',
      from: { path: '^src/shared/' },
      to: { path: '^(src|webview)/', pathNot: '^src/shared/' },
    },
    {
      name: 'engine-no-front-end',
      comment:
        'The engine and src/lib/ serve the front ends (the atp CLI, the report, the extension host, the webview) and import none of them, not even types.',
      severity: 'error',
      from: { path: '^src/(engine|lib)/' },
      to: { path: [FRONT_ENDS, HOST, '^webview/'] },
    },
    {
      name: 'cli-no-extension',
      comment: 'The atp command line runs without VS Code: it imports no module of the extension host, not even types.',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: HOST },
    },
    {
      name: 'shared-only-shared',
      comment: 'src/shared/ is read by engine, CLI, host and webview alike: it imports nothing but src/shared/ and types.',
      severity: 'error',
      from: { path: '^src/shared/' },
      to: { pathNot: '^src/shared/', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.d.ts'] },
  },
};
