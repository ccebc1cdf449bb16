// The attribution graph's size and ONNX Runtime's session creation time for a model (issue "Scale": session creation
// grows with the node count). Prints the graph's nodes by op type (as built, before ONNX Runtime's optimiser), then
// creates the CPU session at optimisation 'disabled' and 'all', alternated `rounds` times in this one process (the
// machine is shared: A/B in one process says more than runs minutes apart). Dev-time only:
//   node --import tsx bench/graphSize.ts MODEL_DIR [rounds] [--float64]
// (the matrix's random models: .atp-cache/bench-models/<shape>, written by `node --import tsx bench/matrix.ts --write-model <shape>`).
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/engine/graph/builder';
import { GraphWeights } from '../src/engine/graph/weights';
import { loadModel, weightLookup } from '../src/engine/model/load';
import { buildAttributionGraph } from '../src/engine/patching/graphs';
import { prepareGraphDir, writeGraphFile } from '../src/engine/process/runtime';

const [modelDir, roundsArg] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const floatType = process.argv.includes('--float64') ? 'float64' : 'float32';
const rounds = Number(roundsArg ?? 2);

(async () => {
  const model = loadModel(modelDir);
  const graphDir = prepareGraphDir(model.weightFiles);
  const builder = new GraphBuilder(floatType);
  const weights = new GraphWeights(builder, weightLookup(model), graphDir.locations);
  buildAttributionGraph(model.architecture, builder, weights);
  const proto = builder.toModelProto();
  const byType = new Map<string, number>();
  for (const node of proto.graph!.node!) byType.set(node.opType!, (byType.get(node.opType!) ?? 0) + 1);
  const sorted = [...byType].sort((p, q) => q[1] - p[1]);
  console.log(`${model.spec.nLayers} layers, ${floatType}: ${builder.nodeCount} nodes (${(builder.nodeCount / model.spec.nLayers).toFixed(0)} per layer)`);
  console.log(sorted.map(([op, n]) => `${op} ${n}`).join(', '));
  const file = writeGraphFile(graphDir, builder.toBytes(), `graph-size-${floatType}`);
  for (let round = 0; round < rounds; round++) {
    for (const level of ['disabled', 'all'] as const) {
      const start = performance.now();
      const session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: level, logSeverityLevel: 3 });
      console.log(`session creation, optimisation ${level}: ${((performance.now() - start) / 1000).toFixed(2)} s`);
      await session.release();
    }
  }
})();
