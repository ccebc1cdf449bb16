import { parseArgs } from 'node:util';
import { relative } from 'node:path';
import { InputError } from './engine/errors';
import { parseIntegerFlag } from './engine/integers';
import { openModel } from './engine/model/open';
import { formatPresetTable } from './engine/model/presets';
import { readDataset } from './engine/dataset';
import { GENERATE_USAGE, generateCommand } from './commands/generate';
import { runAttributionPatching, type Precision } from './engine/patching';
import { parseDevice, releaseSessions } from './engine/runtime';
import { parseResult, type Result, serializeResult, topHeads } from './engine/result';
import { type FileToWrite, writeFilesAtomically, writeTextAtomically } from './engine/atomicWrite';
import { renderHtmlReport } from './report/htmlReport';
import { validateHeads } from './engine/validation';
import { readFileSync } from 'node:fs';
import { checkOutputPaths, modelFolderInputs, type NamedPath, prepareOutputFolder } from './engine/outputPaths';

const USAGE = `Usage:
  atp patch --model MODEL --data FILE --out FILE [--html REPORT.html] [--device auto|cpu|cuda|dml|coreml|webgpu] [--batch-size N] [--precision float32|float64] [--top K] [--offline]
  atp report --out REPORT.html RESULT.json [RESULT.json ...]
  atp validate --model MODEL --data FILE [--device D] [--batch-size N] [--top K]

Runs attribution patching over a dataset (.jsonl, one {"clean", "corrupted", "correct", "incorrect"} object per
line, or the .atp prompt format: see docs/DATASETS.md) and writes the Result JSON to --out (atomically: a failed run leaves the previous file as it was).
Progress goes to stderr. --html (or atp report) writes a standalone HTML report with the heatmaps.
atp validate compares the head attributions with exact activation patching of every head at the answer
position (one corrupted run per head and example) and prints their rank correlation and top heads.

MODEL is a folder in Hugging Face layout (config.json, *.safetensors, tokenizer.json), a Hugging Face repo id
(org/name, optionally @revision; downloaded into the Hugging Face cache, HF_HOME / HF_HUB_CACHE, once; gated
repos need a token in HF_TOKEN), or one of the seed notebook's presets:
${formatPresetTable()}

${GENERATE_USAGE}`;

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function integer(text: string | undefined, flag: string, fallback: number): number {
  return parseIntegerFlag(text, flag, fallback, 1);
}

function precision(text: string | undefined): Precision {
  if (text === undefined || text === 'float32' || text === 'float64') return text ?? 'float32';
  throw new InputError(`--precision: expected float32 or float64, got "${text}"`);
}

const format = (value: number) => (value >= 0 ? '+' : '') + value.toFixed(4);

export function summary(result: Result, top: number): string {
  const m = result.model;
  const lines = [
    `model: ${m.source} (${m.modelType}, ${m.layers} layers × ${m.heads} heads, dModel ${m.dModel}, ${m.dtype}) on ${result.device}`,
    `examples: ${result.dataset.examples} from ${result.dataset.file}`,
    `clean logit diff:     ${format(result.metric.cleanLogitDiff)}`,
    `corrupted logit diff: ${format(result.metric.corruptedLogitDiff)}`,
    `top heads (attribution to the normalised logit diff at the answer position, summed over examples):`,
    ...topHeads(result, top).map((h) => `  L${h.layer}H${h.head}  ${format(h.value)}`),
  ];
  return lines.join('\n');
}

/** Opens --model (folder, repo id or preset), reporting downloads and notes on stderr. */
async function openModelWithProgress(source: string, offline = false) {
  log(`loading ${source}`);
  let lastReport = 0;
  const { model, notes } = await openModel(source, {
    token: process.env.HF_TOKEN || undefined,
    offline,
    onProgress: ({ file, received, total }) => {
      const now = Date.now();
      if (now - lastReport < 1000 && received !== total) return;
      lastReport = now;
      log(`downloading ${file}: ${(received / 2 ** 20).toFixed(1)}${total ? ` / ${(total / 2 ** 20).toFixed(1)}` : ''} MiB`);
    },
  });
  for (const note of notes) log(note);
  return model;
}

async function validate(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { model: { type: 'string' }, data: { type: 'string' }, device: { type: 'string', default: 'auto' }, 'batch-size': { type: 'string' }, top: { type: 'string' }, offline: { type: 'boolean', default: false } },
    strict: true,
  });
  for (const flag of ['model', 'data'] as const) {
    if (!values[flag]) throw new InputError(`--${flag} is required\n\n${USAGE}`);
  }
  const device = parseDevice(values.device!);
  const datasetWarnings: string[] = [];
  const dataset = readDataset(values.data!, datasetWarnings);
  for (const warning of datasetWarnings) log(warning);
  const model = await openModelWithProgress(values.model!, values.offline);
  const top = integer(values.top, '--top', 3);
  const v = await validateHeads(model, dataset, { device, batchSize: integer(values['batch-size'], '--batch-size', 64), onProgress: log }, top);
  const list = (heads: Array<{ layer: number; head: number; value: number }>) => heads.map((h) => `L${h.layer}H${h.head} ${format(h.value)}`).join(', ');
  process.stdout.write(
    [
      summary(v.result, top),
      `exact activation patching of every head at the answer position, against attribution patching:`,
      `  Spearman ${v.spearman.toFixed(3)}, Pearson ${v.pearson.toFixed(3)}`,
      `  top ${top} by attribution patching: ${list(v.topByAttribution)}`,
      `  top ${top} by activation patching:  ${list(v.topByActivationPatching)}`,
      `  named by both: ${v.topOverlap} of ${top}`,
    ].join('\n') + '\n',
  );
}

async function patch(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      out: { type: 'string' },
      device: { type: 'string', default: 'auto' },
      'batch-size': { type: 'string' },
      precision: { type: 'string' },
      top: { type: 'string' },
      offline: { type: 'boolean', default: false },
      html: { type: 'string' },
    },
    strict: true,
  });
  for (const flag of ['model', 'data', 'out'] as const) {
    if (!values[flag]) throw new InputError(`--${flag} is required\n\n${USAGE}`);
  }
  const device = parseDevice(values.device!);
  const batchSize = integer(values['batch-size'], '--batch-size', 8);
  const top = integer(values.top, '--top', 10);
  // The dataset's own warnings (an .atp line whose prompts are the same) are already "file:line:col: warning: …".
  const datasetWarnings: string[] = [];
  const dataset = readDataset(values.data!, datasetWarnings);
  for (const warning of datasetWarnings) log(warning);
  const model = await openModelWithProgress(values.model!, values.offline);
  // Before the run: an output that is an input (or the other output) is refused at no cost.
  const outputs: NamedPath[] = [{ path: values.out!, role: '--out' }, ...(values.html ? [{ path: values.html, role: '--html' }] : [])];
  checkOutputPaths([{ path: values.data!, role: '--data' }, ...modelFolderInputs(model.dir), ...model.weightFiles.map((file) => ({ path: file, role: 'the model weights' }))], outputs);
  for (const output of outputs) prepareOutputFolder(output.path, output.role);
  log(`running ${dataset.examples.length} examples on ${device}`);
  const result = await runAttributionPatching(model, dataset, { device, batchSize, precision: precision(values.precision), onProgress: log });
  for (const warning of result.warnings) log(`warning: ${warning}`);
  // Kept with the Result, as the editor shows its own: whoever opens the file later sees them too.
  result.warnings = [...datasetWarnings, ...result.warnings];
  // Render both, then write both: a report that cannot be made or written leaves the previous --out as it was.
  const files: FileToWrite[] = [{ file: values.out!, contents: serializeResult(result), what: 'the result' }];
  if (values.html) files.push({ file: values.html, contents: renderHtmlReport([{ title: dataset.file, result }]), what: 'the report' });
  writeFilesAtomically(files);
  if (values.html) log(`wrote ${values.html}`);
  process.stdout.write(`${summary(result, top)}\nwrote ${relative(process.cwd(), values.out!) || values.out}\n`);
}

function writeReport(file: string, html: string, role: string): void {
  prepareOutputFolder(file, role);
  writeTextAtomically(file, html, 'the report');
  log(`wrote ${file}`);
}

function report(args: string[]): void {
  const { values, positionals } = parseArgs({ args, options: { out: { type: 'string' } }, allowPositionals: true, strict: true });
  if (!values.out || positionals.length === 0) throw new InputError(`atp report needs --out FILE and at least one result file\n\n${USAGE}`);
  checkOutputPaths(positionals.map((file) => ({ path: file, role: 'the result file' })), [{ path: values.out, role: '--out' }]);
  const results = positionals.map((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new InputError(`${file}: cannot read: ${(error as Error).message}`);
    }
    return { title: file, result: parseResult(text, file) };
  });
  writeReport(values.out, renderHtmlReport(results), '--out');
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'patch') await patch(rest);
    else if (command === 'report') report(rest);
    else if (command === 'validate') await validate(rest);
    else if (command === 'generate') await generateCommand(rest, { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) });
    else if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 1 : 0;
    } else throw new InputError(`unknown command "${command}"\n\n${USAGE}`);
    return 0;
  } catch (error) {
    if (error instanceof InputError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      log(`atp: ${error.message}`);
      return 2;
    }
    log(`atp: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return 1;
  } finally {
    await releaseSessions();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
