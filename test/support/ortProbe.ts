// Loads ONNX Runtime the way the CLI and the worker do (src/engine/process/ortRuntime first), asks it for the CUDA
// provider, runs a one-node graph (Neg) on the CPU, and prints as JSON what was chosen, what CUDA said, the output,
// and which onnxruntime files this process mapped. Run by test/engine/cudaInstall.test.ts in a fresh process.
import { ortRuntimeChoice } from '../../src/engine/process/ortRuntime';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/engine/graph/builder';

async function main(): Promise<void> {
  ort.env.logLevel = 'error';
  const graph = new GraphBuilder();
  graph.output(graph.node('Neg', [graph.input('x', 'float32', [2])], {}, { dtype: 'float32', shape: [2] }), 'y');
  const model = graph.toBytes();
  let cudaError = '';
  try {
    await ort.InferenceSession.create(model, { executionProviders: ['cuda'] });
  } catch (error) {
    cudaError = (error as Error).message;
  }
  const cpu = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
  const y = (await cpu.run({ x: new ort.Tensor('float32', Float32Array.from([1.5, -2]), [2]) })).y.data as Float32Array;
  const mapped = [
    ...new Set(
      readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .map((line) => line.split(/\s+/).pop() ?? '')
        .filter((file) => /onnxruntime/.test(file)),
    ),
  ];
  process.stdout.write(JSON.stringify({ choice: ortRuntimeChoice, cudaError, y: [...y], mapped }));
}
void main();
