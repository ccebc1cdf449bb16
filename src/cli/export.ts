// atp export: a Result's circuit in a format researchers' tools read (EAP-IG's graph JSON, circuit-tracer's
// attribution graph for the Neuronpedia frontend, QuantaMechInterp's useful nodes); see src/shared/circuitFormats.ts.
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { writeTextAtomically } from '../lib/files/atomicWrite';
import { checkOutputPaths, prepareOutputFolder } from '../lib/files/outputPaths';
import { CIRCUIT_FORMAT_NAMES, CIRCUIT_FORMATS, toEapIgJson, toNeuronpediaJson, toQmiJson, type CircuitFormat } from '../shared/circuitFormats';
import { InputError } from '../shared/errors';
import { fieldRef } from '../shared/fields';
import { refuseShard } from '../shared/result';
import { readResultFile } from '../lib/files/resultFile';

export const EXPORT_USAGE = `Usage:
  atp export RESULT.json --format eap-ig|neuronpedia|qmi --out FILE [--name NAME] [--min-share S]

Writes the circuit of a Result (atp circuit) to --out, atomically:
  eap-ig       ${CIRCUIT_FORMAT_NAMES['eap-ig']}: every node and edge with score and in_graph
  neuronpedia  ${CIRCUIT_FORMAT_NAMES.neuronpedia}: the circuit's nodes and edges as nodes and links
               (--name: the graph's slug; default: the dataset's file name without extension)
  qmi          ${CIRCUIT_FORMAT_NAMES.qmi}: the circuit's heads and MLPs at the positions where their
               attribution summed over examples reaches --min-share (default 0.1) of the largest, tagged
               "Attribution:NAME" (--name: the behaviour, e.g. EngTableName; default: the dataset's file name)`;

export function exportCommand(args: string[], log: (line: string) => void): void {
  const { values, positionals } = parseArgs({
    args,
    options: { format: { type: 'string' }, out: { type: 'string' }, name: { type: 'string' }, 'min-share': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1 || !values.out || !values.format)
    throw new InputError(`atp export needs one RESULT.json, --format and --out\n\n${EXPORT_USAGE}`);
  const format = values.format as CircuitFormat;
  if (!CIRCUIT_FORMATS.includes(format)) throw InputError.about('format', `expected ${CIRCUIT_FORMATS.join(', ')}, got "${values.format}"`);
  const minShare = values['min-share'] === undefined ? 0.1 : Number(values['min-share']);
  if (values['min-share'] !== undefined && (format !== 'qmi' || !(minShare >= 0 && minShare <= 1))) {
    throw InputError.about(
      'minShare',
      format !== 'qmi' ? `only for ${fieldRef('format', 'qmi')}` : `expected a number from 0 to 1, got "${values['min-share']}"`,
    );
  }
  const [file] = positionals;
  checkOutputPaths([{ path: file, role: 'the result file' }], [{ path: values.out, role: '--out' }]);
  const result = refuseShard(readResultFile(file), file);
  if (!result.circuit) throw new InputError(`${file}: this Result has no circuit (field "circuit"); run \`atp circuit\` on the dataset first`);
  const name = values.name ?? basename(result.dataset.file).replace(/\.[^.]+$/, '');
  const output = format === 'eap-ig' ? toEapIgJson(result) : format === 'neuronpedia' ? toNeuronpediaJson(result, name) : toQmiJson(result, name, minShare);
  prepareOutputFolder(values.out, '--out');
  writeTextAtomically(values.out, output, `the ${format} export`);
  log(`wrote ${values.out} (${CIRCUIT_FORMAT_NAMES[format]})`);
}
