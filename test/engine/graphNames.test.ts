// The names a graph takes and gives are a contract between its builder (graphs.ts, atpStarGraph.ts) and the code
// that feeds and reads it (feeds.ts, atp.ts, exact.ts, atpStar.ts): every session sessionFor creates is checked
// against it, so a name changed on one side only is an internal error that says which names, not ONNX Runtime's
// "invalid feed" or an undefined output halfway through a run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/engine/model/load';
import { ATTRIBUTION_GRAPH_NAMES, buildLogitDiffGraph, checkGraphNames, LOGIT_DIFF_GRAPH_NAMES, LOGIT_DIFF_INPUT } from '../../src/engine/patching/graphs';
import { GRAPHS, type GraphKind, sessionFor } from '../../src/engine/patching/sessions';
import { releaseSessions } from '../../src/engine/process/runtime';
import { writeRandomGpt2 } from '../support/randomGpt2';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'atp-graph-names-'));
  process.env.ATP_CACHE_DIR = join(root, 'cache');
});
after(async () => {
  await releaseSessions();
  rmSync(root, { recursive: true, force: true });
});

test('checkGraphNames: equal names pass in any order; a missing or unknown name is named', () => {
  const expected = { inputs: ['a', 'b'], outputs: ['y'] };
  checkGraphNames('test', expected, { inputNames: ['b', 'a'], outputNames: ['y'] });
  assert.throws(
    () => checkGraphNames('test', expected, { inputNames: ['a', 'c'], outputNames: ['y', 'z'] }),
    (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.equal(
        error.message,
        'the test graph and its caller disagree on names: its caller expects inputs b that the graph does not have; the graph has inputs c that its caller does not know; ' +
          'the graph has outputs z that its caller does not know',
      );
      return true;
    },
  );
});

test("every graph kind's session has exactly the names its callers feed and read", async () => {
  const dir = join(root, 'model');
  writeRandomGpt2(dir, { nLayers: 2, nHeads: 2, dModel: 16, seed: 3 });
  const model = loadModel(dir);
  for (const kind of Object.keys(GRAPHS) as GraphKind[]) {
    const handle = await sessionFor(model, kind, { device: 'cpu', batchSize: 2 });
    checkGraphNames(kind, GRAPHS[kind].names, handle.session);
  }
  // The check can fail on a real session: the logit-diff graph is not the attribution graph.
  const logitDiff = await sessionFor(model, 'logit-diff', { device: 'cpu', batchSize: 2 });
  assert.throws(
    () => checkGraphNames('attribution', ATTRIBUTION_GRAPH_NAMES, logitDiff.session),
    /its caller expects inputs clean_ids, corrupted_ids that the graph does not have/,
  );
  assert.deepEqual([...logitDiff.session.inputNames].sort(), [...LOGIT_DIFF_GRAPH_NAMES.inputs].sort());
});

test('a builder that renames an input is caught when its session is created, by name', async () => {
  const dir = join(root, 'renamed');
  writeRandomGpt2(dir, { nLayers: 2, nHeads: 2, dModel: 16, seed: 4 });
  const model = loadModel(dir);
  const original = GRAPHS['logit-diff'].build;
  GRAPHS['logit-diff'].build = (arch, b, w) => {
    const input = b.input.bind(b);
    b.input = (name, ...rest) => input(name === LOGIT_DIFF_INPUT ? 'input_ids' : name, ...rest);
    buildLogitDiffGraph(arch, b, w);
  };
  try {
    await assert.rejects(
      sessionFor(model, 'logit-diff', { device: 'cpu', batchSize: 2 }),
      /^Error: the logit-diff graph and its caller disagree on names: its caller expects inputs ids that the graph does not have; the graph has inputs input_ids that its caller does not know$/,
    );
  } finally {
    GRAPHS['logit-diff'].build = original;
  }
});
