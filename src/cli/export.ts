// atp export: a Result's circuit in a format researchers' tools read (EAP-IG's graph JSON, circuit-tracer's
// attribution graph for the Neuronpedia frontend, QuantaMechInterp's useful nodes); see src/shared/circuitFormats.ts.
// And any Result's per-example arrays for Python: --format tensors (src/lib/files/resultTensors.ts).
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFilesAtomically, writeTextAtomically } from '../lib/files/atomicWrite';
import { resultTensors, tensorsMetadataFile } from '../lib/files/resultTensors';
import { checkCommandOutputs } from '../lib/files/outputPaths';
import { CIRCUIT_FORMAT_NAMES, CIRCUIT_FORMATS, toEapIgJson, toNeuronpediaJson, toQmiJson, type CircuitFormat } from '../shared/circuitFormats';
import { InputError } from '../shared/errors';
import { fieldRef } from '../shared/fields';
import { refuseShard } from '../shared/result';
import { readResultFile } from '../lib/files/resultFile';

export const EXPORT_USAGE = `Usage:
  atp export RESULT.json --format eap-ig|neuronpedia|qmi --out FILE [--name NAME] [--min-share S]
  atp export RESULT.json --format tensors --out FILE.safetensors

Writes the circuit of a Result (atp circuit) to --out, atomically:
  eap-ig       ${CIRCUIT_FORMAT_NAMES['eap-ig']}: every node and edge with score and in_graph
  neuronpedia  ${CIRCUIT_FORMAT_NAMES.neuronpedia}: the circuit's nodes and edges as nodes and links
               (--name: the graph's slug; default: the dataset's file name without extension)
  qmi          ${CIRCUIT_FORMAT_NAMES.qmi}: the circuit's heads and MLPs at the positions where their
               attribution summed over examples reaches --min-share (default 0.1) of the largest, tagged
               "Attribution:NAME" (--name: the behaviour, e.g. EngTableName; default: the dataset's file name)
  tensors      any Result's per-example attributions for Python (numpy or torch; README, "Reading Results from
               Python"): safetensors keyed by TransformerLens hook names (blocks.L.attn.hook_z [examples,
               positions, heads], blocks.L.hook_resid_pre/hook_attn_out/hook_mlp_out [examples, positions]; NaN
               past each example's length, given in "lengths"), the token ids and each example's logit
               differences; beside it FILE.json: model, dataset, baselines and the method of every map`;

export function exportCommand(args: string[], log: (line: string) => void): void {
  const { values, positionals } = parseArgs({
    args,
    options: { format: { type: 'string' }, out: { type: 'string' }, name: { type: 'string' }, 'min-share': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1 || !values.out || !values.format)
    throw new InputError(`atp export needs one RESULT.json, --format and --out\n\n${EXPORT_USAGE}`);
  if (values.format === 'tensors') return exportTensors(positionals[0], values.out, values, log);
  const format = values.format as CircuitFormat;
  if (!CIRCUIT_FORMATS.includes(format)) throw InputError.about('format', `expected ${CIRCUIT_FORMATS.join(', ')} or tensors, got "${values.format}"`);
  const minShare = values['min-share'] === undefined ? 0.1 : Number(values['min-share']);
  if (values['min-share'] !== undefined && (format !== 'qmi' || !(minShare >= 0 && minShare <= 1))) {
    throw InputError.about(
      'minShare',
      format !== 'qmi' ? `only for ${fieldRef('format', 'qmi')}` : `expected a number from 0 to 1, got "${values['min-share']}"`,
    );
  }
  const [file] = positionals;
  checkCommandOutputs('export', values, [{ path: file, role: 'the result file' }]);
  const result = refuseShard(readResultFile(file), file);
  if (!result.circuit) throw new InputError(`${file}: this Result has no circuit (field "circuit"); run \`atp circuit\` on the dataset first`);
  const name = values.name ?? basename(result.dataset.file).replace(/\.[^.]+$/, '');
  const output = format === 'eap-ig' ? toEapIgJson(result) : format === 'neuronpedia' ? toNeuronpediaJson(result, name) : toQmiJson(result, name, minShare);
  writeTextAtomically(values.out, output, `the ${format} export`);
  log(`wrote ${values.out} (${CIRCUIT_FORMAT_NAMES[format]})`);
}

function exportTensors(file: string, out: string, values: { name?: string; 'min-share'?: string }, log: (line: string) => void): void {
  for (const [flag, field] of [
    ['name', 'name'],
    ['min-share', 'minShare'],
  ] as const) {
    if (values[flag] !== undefined) throw InputError.about(field, `not used by ${fieldRef('format', 'tensors')}`);
  }
  if (!/\.safetensors$/i.test(out))
    throw InputError.about('out', `"${out}": ${fieldRef('format', 'tensors')} writes a .safetensors file (and its .json beside it)`);
  const metadataFile = tensorsMetadataFile(out);
  checkCommandOutputs('export', { out }, [{ path: file, role: 'the result file' }], { outputs: [{ path: metadataFile, role: "--out's metadata JSON" }] });
  const result = refuseShard(readResultFile(file), file);
  const { tensors, metadata } = resultTensors(result, file, out);
  writeFilesAtomically([
    { file: out, contents: tensors, what: 'the tensors' },
    { file: metadataFile, contents: metadata, what: 'their metadata' },
  ]);
  log(`wrote ${out} and ${metadataFile} (${result.examples.length} examples × ${result.model.layers} layers, keyed by TransformerLens hook names)`);
}
