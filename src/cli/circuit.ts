// atp circuit: edge attribution (EAP, EAP-IG), a circuit chosen from the scored edges, its faithfulness and the
// curve, written as a full Result with Result.circuit set.
import { parseArgs } from 'node:util';
import { relative } from 'node:path';
import { InputError } from '../shared/errors';
import { parseIntegerFlag } from '../engine/integers';
import { readDataset } from '../lib/dataset';
import { parseDevice } from '../engine/process/runtime';
import { type Circuit, type CircuitMethod, CIRCUIT_METHOD_NAMES, CIRCUIT_METHODS, edgeName } from '../shared/circuit';
import { type Result, serializeResult } from '../shared/result';
import { writeFilesAtomically } from '../lib/files/atomicWrite';
import { checkCommandOutputs, modelFolderInputs } from '../lib/files/outputPaths';
import type { LoadedModel } from '../engine/model/load';
import { runCircuit } from '../engine/circuits/run';
import type { CircuitSelectionRequest } from '../shared/circuit';
import { signedFixed } from '../shared/colorScale';
import { checkPrecisionFor } from '../engine/patching/precision';

export const CIRCUIT_SYNOPSIS =
  '  atp circuit --model MODEL --data FILE --out FILE --method eap|eap-ig|eap-ig-activations|eap-corrupted|eap-ig-activations-corrupted [--steps M] (--edges N | --threshold T | --greedy N) [--curve-points K] [--device D] [--batch-size N] [--precision float32|float64] [--offline]';

export const CIRCUIT_HELP = `atp circuit scores every edge between components (the input embedding, each attention head, each MLP, the
logits; a head's query, key and value inputs separately, as EAP-IG does) as EAP-IG defines its methods: EAP (one gradient
at the clean run), EAP-IG (--steps M gradients at input embeddings corrupted + (k/M)(clean − corrupted),
k = 0…M−1, default 5) or EAP-IG over activations (each sender group — the input, a layer's heads, an MLP — set in
turn to α·clean + (1 − α)·corrupted in the clean run, α = k/M, k = 1…M); or this product's variants anchored at the
corrupted run instead, eap-corrupted (one gradient there, AtP's point) and eap-ig-activations-corrupted (α = k/M
toward clean from the corrupted run, k = 0…M−1), which EAP-IG does not compute. Scores are in the units of the
normalised logit difference; keeps a circuit (--edges N: the N largest |score|; --threshold T: every
|score| ≥ T; --greedy N: grown from the logits as EAP-IG's greedy does, by |score|), prunes edges that cannot
carry anything, and measures its faithfulness: the normalised metric of a clean run in which every edge outside
the circuit carries its corrupted value (1 = the full model, 0 = the corrupted run). With --curve-points K
(default 16; 0 for none) it also measures the top-n circuits at K sizes spaced in log(n) and random circuits of
the same sizes (3 seeded draws each). The Result written to --out holds the usual attribution patching (method
auto) and the circuit.`;

export interface CircuitCommandDeps {
  log: (message: string) => void;
  stdout: (text: string) => void;
  openModel: (source: string, offline: boolean) => Promise<LoadedModel>;
  /** The dataset text's hash as the editor computes it. */
  datasetTextHash: (file: string) => string;
}

function method(text: string | undefined): CircuitMethod {
  if ((CIRCUIT_METHOD_NAMES as readonly string[]).includes(text ?? '')) return text as CircuitMethod;
  throw InputError.about('circuitMethod', `expected ${CIRCUIT_METHOD_NAMES.join(', ')}, got ${text === undefined ? 'nothing' : `"${text}"`}`);
}

function selection(values: { edges?: string; threshold?: string; greedy?: string }): CircuitSelectionRequest {
  const given = (['edges', 'threshold', 'greedy'] as const).filter((flag) => values[flag] !== undefined);
  if (given.length !== 1)
    throw new InputError(
      `give exactly one of --edges N, --threshold T or --greedy N${given.length > 1 ? ` (got ${given.map((f) => `--${f}`).join(' and ')})` : ''}`,
    );
  if (values.threshold !== undefined) {
    const threshold = Number(values.threshold);
    if (values.threshold.trim() === '' || !Number.isFinite(threshold) || threshold < 0)
      throw InputError.about('threshold', `expected a number ≥ 0, got "${values.threshold}"`);
    return { rule: 'threshold', threshold };
  }
  if (values.greedy !== undefined) return { rule: 'greedy', edges: parseIntegerFlag(values.greedy, 'greedy', 0, 1) };
  return { rule: 'top-n', edges: parseIntegerFlag(values.edges, 'edges', 0, 1) };
}

/** What the CLI prints: the method, the circuit's size and faithfulness, the checks, the curve and the top edges. */
export function circuitSummary(circuit: Circuit, top = 10): string {
  const { selection: chosen, faithfulness, curve } = circuit;
  const rule = chosen.rule === 'threshold' ? `|score| ≥ ${chosen.requested}` : `${chosen.rule} ${chosen.requested}`;
  const lines = [
    `circuit: ${circuit.method}${CIRCUIT_METHODS[circuit.method].oneGradient ? '' : `, ${circuit.steps} steps`}; ${chosen.edges} of ${circuit.edges.length} edges kept (${rule}, pruned)`,
    `faithfulness: circuit ${faithfulness.circuit.toFixed(4)}; checks: full graph ${faithfulness.full.toFixed(6)} (should be 1), empty graph ${faithfulness.empty.toFixed(6)} (should be 0)`,
  ];
  if (curve) {
    lines.push(
      `curve over ${curve.edges.length} sizes (0 to ${circuit.edges.length} edges, log-spaced): area ${curve.area.toFixed(4)} for the top edges vs ${curve.randomArea.toFixed(4)} for random edges (${curve.randomDraws} draws, seed ${curve.randomSeed})`,
    );
  }
  lines.push(`top ${Math.min(top, circuit.edges.length)} edges by |score| (normalised logit difference; * = in the circuit):`);
  const kept = new Set(circuit.inCircuit);
  circuit.edges.slice(0, top).forEach((edge, i) => lines.push(`  ${kept.has(i) ? '*' : ' '} ${edgeName(edge).padEnd(24)} ${signedFixed(edge.score)}`));
  return lines.join('\n');
}

export async function circuitCommand(args: string[], deps: CircuitCommandDeps): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      out: { type: 'string' },
      method: { type: 'string' },
      steps: { type: 'string' },
      edges: { type: 'string' },
      threshold: { type: 'string' },
      greedy: { type: 'string' },
      'curve-points': { type: 'string' },
      device: { type: 'string', default: 'auto' },
      'batch-size': { type: 'string' },
      precision: { type: 'string' },
      offline: { type: 'boolean', default: false },
    },
    strict: true,
  });
  for (const flag of ['model', 'data', 'out', 'method'] as const) {
    if (!values[flag]) throw new InputError(`--${flag} is required\n\nUsage:\n${CIRCUIT_SYNOPSIS}\n\n${CIRCUIT_HELP}`);
  }
  const request = {
    method: method(values.method),
    steps: parseIntegerFlag(values.steps, 'steps', 5, 1, 1000),
    selection: selection(values),
    curvePoints: parseIntegerFlag(values['curve-points'], 'curvePoints', 16, 0, 200),
  };
  // Before the model loads: runCircuit would refuse it too, later.
  if (values.precision === 'float16') checkPrecisionFor('float16', 'circuits');
  if (values.precision !== undefined && values.precision !== 'float32' && values.precision !== 'float64') {
    throw InputError.about('precision', `expected float32 or float64, got "${values.precision}"`);
  }
  const device = parseDevice(values.device!);
  const batchSize = parseIntegerFlag(values['batch-size'], 'batchSize', 8, 1);
  const datasetWarnings: string[] = [];
  const dataset = readDataset(values.data!, datasetWarnings);
  for (const warning of datasetWarnings) deps.log(warning);
  const model = await deps.openModel(values.model!, values.offline!);
  checkCommandOutputs('circuit', values, [
    { path: values.data!, role: '--data' },
    ...modelFolderInputs(model.dir),
    ...model.weightFiles.map((file) => ({ path: file, role: 'the model weights' })),
  ]);
  deps.log(`running ${dataset.examples.length} examples on ${device}`);
  const result: Result = await runCircuit(
    model,
    dataset,
    { device, batchSize, precision: values.precision as 'float32' | 'float64' | undefined, onProgress: deps.log, method: 'auto' },
    request,
  );
  result.dataset.contentHash = deps.datasetTextHash(values.data!);
  for (const warning of result.warnings) deps.log(`warning: ${warning}`);
  result.warnings = [...datasetWarnings, ...result.warnings];
  writeFilesAtomically([{ file: values.out!, contents: serializeResult(result), what: 'the result' }]);
  deps.stdout(`${circuitSummary(result.circuit!)}\nwrote ${relative(process.cwd(), values.out!) || values.out}\n`);
}
