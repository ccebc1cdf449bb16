// The second pass of `npm run lint`: what the extension host reaches at run time, through any chain of modules.
// dependency-cruiser's reachability follows every edge, type-only ones included, so this pass reads the modules
// as compiled (tsPreCompilationDeps: false): type-only imports are gone, as they are from dist/extension.js.
const base = require('./.dependency-cruiser.cjs');
const direct = base.forbidden.find((rule) => rule.name === 'host-no-engine-native');

module.exports = {
  forbidden: [
    {
      name: 'host-no-engine-native-transitively',
      comment:
        'Whatever the host imports at run time ends up in dist/extension.js: it must not reach the engine (src/engine/), onnxruntime-node or the tokenizer through another module either (src/lib/ is what it may load).',
      severity: 'error',
      from: direct.from,
      to: { path: direct.to.path, reachable: true },
    },
  ],
  options: { ...base.options, tsPreCompilationDeps: false },
};
