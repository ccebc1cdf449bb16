// First: where ONNX Runtime is loaded from must be decided before anything loads it.
import '../engine/process/ortRuntime';
import { parseArgs } from 'node:util';
import { basename, relative } from 'node:path';
import { InputError } from '../shared/errors';
import { type FieldId, fieldRef } from '../shared/fields';
import { parseIntegerFlag } from '../engine/integers';
import { openModel } from '../engine/model/open';
import { formatBuiltInTable, formatPresetTable } from '../lib/model/presets';
import { readDataset } from '../lib/dataset';
import { type CommandIo, GENERATE_USAGE, generateCommand } from './generate';
import type { CliStreams } from './streams';
import { EXPORT_USAGE, exportCommand } from './export';
import { COMPARE_USAGE, compareCommand } from './compare';
import { SWEEP_USAGE, sweepCommand } from './sweep';
import { INSTALL_CUDA_USAGE, installCudaCommand } from './installCuda';
import { TEST_HELP, TEST_USAGE, testCommand } from './test';
import { CIRCUIT_HELP, CIRCUIT_SYNOPSIS, circuitCommand } from './circuit';
import { ProgressLine } from './progressLine';
import { SERVE_HELP, serveCommand, SERVE_USAGE } from './serve';
import { runInServer, SERVED_COMMANDS, serverRefusedByEnv } from './serveClient';
import type { ProgressEvent } from '../shared/workerProtocol';
import { runAttributionPatching } from '../engine/patching/run';
import { parsePrecision } from '../engine/patching/precision';
import { parseDevice, releaseSessions } from '../engine/process/runtime';
import { refuseShard, type Result, topHeads } from '../shared/result';
import { readResultFile, removeStaleSidecars, resultFilesToWrite } from '../lib/files/resultFile';
import { type FileToWrite, writeFilesAtomically, writeTextAtomically } from '../lib/files/atomicWrite';
import { renderHtmlReport } from '../report/htmlReport';
import { validateHeads, validatePositions } from '../engine/patching/validation';
import { ATPSTAR_AUTO_MAX_TOKENS, BUDGET, parseMethod } from '../engine/patching/methods';
import { agreementsOf, describeAgreement, MAP_TITLES } from '../shared/checkAgreement';
import { componentLabel } from '../engine/patching/exact';
import { describeRuntime, METHOD_NAMES } from '../shared/result';
import { contentHash } from '../lib/files/contentHash';
import { mapMethodLabel, suspectCells } from '../shared/resultMethods';
import { signedFixed } from '../shared/colorScale';
import { fileHash, mergeShards, parseShard, readShards, runShard, shardRange } from '../engine/patching/shards';
import { checkCommandOutputs, modelFolderInputs, prepareOutputFolder } from '../lib/files/outputPaths';
import { type WandbOutcome, wandbProjectPath } from '../shared/wandb';
import { wandbTargetForCommandLine } from '../lib/wandb/wandbKey';
import { logResultToWandb } from '../engine/logging/logToWandb';
import { modelLabel } from '../shared/modelNames';
import { versionText } from './version';
import { readInputText } from '../lib/files/readInput';

/** The synopsis of the commands on one model and dataset (patch, merge, report, validate). */
const PATCH_SYNOPSIS = `  atp patch --model MODEL --data FILE --out FILE [--method auto|atp|atpstar|exact] [--grad-drop] [--check K] [--html REPORT.html] [--device auto|cpu|cuda|dml|coreml|webgpu] [--batch-size N] [--precision float32|float16|float64] [--top K] [--offline] [--wandb [ENTITY/]PROJECT]
  atp patch --shard I/N --model MODEL --data FILE --out SHARD.json [same options, but no --check or --html]
  atp merge SHARD.json [SHARD.json ...] --out RESULT.json [--html REPORT.html] [--top K]
  atp report --out REPORT.html RESULT.json [RESULT.json ...]
  atp validate --model MODEL --data FILE [--device D] [--batch-size N] [--top K]`;

const PATCH_HELP = `Runs attribution patching over a dataset (.jsonl, one {"clean", "corrupted", "correct", "incorrect"} object per
line, or the .atp prompt format: see docs/DATASETS.md) and writes the Result JSON to --out (atomically: a failed run leaves the previous file as it was).
Progress goes to stderr. --html (or atp report) writes a standalone HTML report with the heatmaps.
--method: atp estimates every component with attribution patching (two forward passes and one backward pass);
atpstar is AtP* (Kramár et al. 2024): AtP plus query and key nodes of every head with the attention softmax
recomputed exactly (the QK fix), and with --grad-drop GradDrop magnitudes that flag cells where AtP may hide a
cancellation (L more passes); exact runs activation patching of every component (one patched run each: small
models and prompts only); auto (the default) takes exact when it costs at most ${BUDGET}× AtP, else AtP* for prompts
up to ${ATPSTAR_AUTO_MAX_TOKENS} tokens, else atp. The passes each needs are printed before the run starts. Either way, the effect of each token that differs between the prompts (what the editor colours)
is computed exactly, one forward pass per differing token, unless that exceeds the same budget.
--wandb [ENTITY/]PROJECT also logs the run to Weights & Biases (after the Result is written; a W&B failure is a
warning, never a failed run): config, baselines and other metrics, the head and position maps as W&B tables, the
head map as an image, and the Result as an artefact. The key comes from WANDB_API_KEY, else ~/.netrc (NETRC) as
"wandb login" writes it (never printed); WANDB_BASE_URL
names a self-hosted server. Off unless given.
--check K patches the K components with the largest |attribution| and K random others exactly and reports how
well the estimates agree (Result "checks").
--precision: float32 (the default); float16 is mixed precision for GPUs (weights and activations in float16,
norms, softmax, the metric and the attributions' sums in float32, the backward loss-scaled so that small gradients
do not vanish; atp and exact only, and on WebGPU only where the adapter has shader-f16; measured accuracy in
README.md); float64 is for validation against references.
--shard I/N runs only the I-th of N contiguous slices of the dataset (sizes differing by at most one; a slice may
be empty) and writes a raw shard: values in logit-difference units, not yet divided by the whole dataset's
n·(LD_clean − LD_corrupted). atp merge checks that the shards come from one run (model, dataset bytes, method,
all N present once) and writes the Result a single run over the whole dataset gives.
atp validate compares the head attributions with exact activation patching of every head at the answer
position (one corrupted run per head and example) and prints their rank correlation and top heads.`;

const MODEL_HELP = `MODEL is a folder in Hugging Face layout (config.json, *.safetensors, tokenizer.json), a Hugging Face repo id
(org/name, optionally @revision; downloaded into the Hugging Face cache, HF_HOME / HF_HUB_CACHE, once; gated
repos need a token: HF_TOKEN, else the one "hf auth login" saved, HF_TOKEN_PATH or $HF_HOME/token), a bare
canonical hub id (gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2) or a TransformerLens name (gpt2-small,
gpt-neo-125M, tiny-stories-33M, …), one of the built-in models shipped in models/:
${formatBuiltInTable()}
or one of the seed notebook's presets:
${formatPresetTable()}`;

const USAGE = `Usage:
${PATCH_SYNOPSIS}
${CIRCUIT_SYNOPSIS}
${TEST_USAGE}
${SERVE_USAGE}
  atp COMMAND --help          one command's help (atp help COMMAND)
  atp --version               the engine's, ONNX Runtime's and Node's versions

${PATCH_HELP}

${CIRCUIT_HELP}

${MODEL_HELP}

${TEST_HELP}

${SERVE_HELP}

${GENERATE_USAGE}

${EXPORT_USAGE}

${SWEEP_USAGE}

${COMPARE_USAGE}

${INSTALL_CUDA_USAGE}`;

const PATCH_COMMAND_HELP = `Usage:\n${PATCH_SYNOPSIS}\n\n${PATCH_HELP}\n\n${MODEL_HELP}`;

/** Every command's own help (`atp COMMAND --help`, `atp help COMMAND`); the keys are every command there is. */
export const COMMAND_HELP: Readonly<Record<string, string>> = {
  patch: PATCH_COMMAND_HELP,
  merge: PATCH_COMMAND_HELP,
  report: PATCH_COMMAND_HELP,
  validate: PATCH_COMMAND_HELP,
  circuit: `Usage:\n${CIRCUIT_SYNOPSIS}\n\n${CIRCUIT_HELP}\n\n${MODEL_HELP}`,
  test: `Usage:\n${TEST_USAGE}\n\n${TEST_HELP}`,
  serve: `Usage:\n${SERVE_USAGE}\n\n${SERVE_HELP}`,
  generate: GENERATE_USAGE,
  export: EXPORT_USAGE,
  compare: COMPARE_USAGE,
  sweep: SWEEP_USAGE,
  'install-cuda': INSTALL_CUDA_USAGE,
};

const HELP_FLAGS = new Set(['--help', '-h']);

/** The help that argv asks for (`atp COMMAND … --help`, `atp help [COMMAND]`, `atp --help`), or undefined. */
function requestedHelp(argv: readonly string[]): string | undefined {
  const [command, ...rest] = argv;
  if (command === 'help' || (command !== undefined && HELP_FLAGS.has(command))) return COMMAND_HELP[rest[0] ?? ''] ?? USAGE;
  if (command === undefined || !Object.hasOwn(COMMAND_HELP, command)) return undefined;
  const end = rest.indexOf('--');
  return (end < 0 ? rest : rest.slice(0, end)).some((arg) => HELP_FLAGS.has(arg)) ? COMMAND_HELP[command] : undefined;
}

/** One invocation of a command: its output and its progress line (per invocation: `atp serve` runs many). */
interface Cli {
  /** A result line on stdout (what scripts parse). */
  out(text: string): void;
  /** A message on stderr, ending the progress line first. */
  log(message: string): void;
  /** Batches and exact runs: one updating line on a terminal, a line every 10% when piped. */
  onStep(event: ProgressEvent): void;
  io: CommandIo;
  /** Whether the process exits after this command (see RunOptions.oneShot): the plain CLI; not `atp serve`. */
  oneShot: boolean;
}

function cliFor(streams: CliStreams, oneShot: boolean): Cli {
  const progressLine = new ProgressLine(streams.stderr, streams.stderr.isTTY === true);
  const io = { stdout: (s: string) => void streams.stdout.write(s), stderr: (s: string) => void streams.stderr.write(s) };
  return {
    out: io.stdout,
    log: (message) => progressLine.message(message),
    onStep: (event) => progressLine.step(event),
    io,
    oneShot,
  };
}

function integer(text: string | undefined, field: FieldId, fallback: number, minimum = 1): number {
  return parseIntegerFlag(text, field, fallback, minimum);
}

export function summary(result: Result, top: number): string {
  const m = result.model;
  const lines = [
    `model: ${m.source} (${m.modelType}, ${m.layers} layers × ${m.heads} heads, dModel ${m.dModel}, ${m.dtype}) on ${result.device}`,
    ...(result.runtime ? [`runtime: ${describeRuntime(result.runtime)}`] : []),
    `examples: ${result.dataset.examples} from ${result.dataset.file}`,
    `clean logit diff:     ${signedFixed(result.metric.cleanLogitDiff)}`,
    `corrupted logit diff: ${signedFixed(result.metric.corruptedLogitDiff)}`,
    ...(result.run ? [`method: ${METHOD_NAMES[result.run.method]} (${result.run.reason}); token effects: ${METHOD_NAMES[result.methods!.tokenScores]}`] : []),
    // Which rows of the maps are exact although the map estimates (resid_pre at layer 0: the token effects).
    ...(result.methods?.maps && result.methods.maps.residPre.exactLayers.length > 0
      ? [`position map (hook_resid_pre): ${mapMethodLabel(result.methods.maps.residPre)} (layer 0 is the token effect)`]
      : []),
    `top heads (${result.methods?.heads === 'exact' ? 'exact effect' : 'attribution'} to the normalised logit diff at the answer position, summed over examples):`,
    ...topHeads(result, top).map((h) => `  L${h.layer}H${h.head}  ${signedFixed(h.value)}`),
  ];
  if (result.atpStar) lines.push(...atpStarSummary(result));
  if (result.checks) lines.push(...checkSummary(result.checks));
  return lines.join('\n');
}

/** AtP*'s query and key nodes with the largest effect, and the cells GradDrop flags. */
function atpStarSummary(result: Result): string[] {
  const star = result.atpStar!;
  const cells = (map: number[][], name: (l: number, h: number) => string) =>
    map
      .flatMap((row, l) => row.map((value, h) => ({ name: name(l, h), value })))
      .sort((a, b) => Math.abs(b.value) - Math.abs(a.value))
      .slice(0, 3);
  const list = (items: Array<{ name: string; value: number }>) => items.map((c) => `${c.name} ${signedFixed(c.value)}`).join(', ');
  const lines = [
    `AtP* (QK fix), summed over positions and examples: queries ${list(cells(star.maps.q, (l, h) => `L${l}H${h}`))}; keys ${list(cells(star.maps.k, (l, g) => `L${l}KV${g}`))}`,
  ];
  if (star.gradDrop) {
    const flagged = suspectCells(result.heads, star.gradDrop.heads).map(
      ({ layer, column, atp, gradDrop }) => `L${layer}H${column} (AtP ${signedFixed(atp)}, GradDrop ${gradDrop.toFixed(4)})`,
    );
    lines.push(
      flagged.length > 0
        ? `GradDrop ≫ |AtP| (possible cancellation; check them): ${flagged.join(', ')}`
        : 'GradDrop flags no head (no sign of cancellation hiding an effect)',
    );
  }
  return lines;
}

/** The checks: each map's agreement led by its error, then the components where estimate and exact disagree most. */
function checkSummary(checks: NonNullable<Result['checks']>): string[] {
  const worst = [...checks.items].sort((a, b) => Math.abs(b.exact - b.attribution) - Math.abs(a.exact - a.attribution)).slice(0, 5);
  return [
    `checked ${checks.items.length} components against exact activation patching (per map: top ${checks.k} by |attribution| and up to ${checks.k} random):`,
    ...agreementsOf(checks).map((agreement) => `  ${MAP_TITLES[agreement.map]}: ${describeAgreement(agreement)}`),
    `  all maps together: Pearson ${checks.pearson.toFixed(3)}, Spearman ${checks.spearman.toFixed(3)}; largest disagreements:`,
    ...worst.map(
      (item) =>
        `  ${componentLabel(item).padEnd(28)} attribution ${signedFixed(item.attribution)}  exact ${signedFixed(item.exact)}  (${item.pick}${item.signDiffers ? ', sign differs' : ''})`,
    ),
  ];
}

/** Opens --model (folder, repo id or preset), reporting downloads and notes on stderr. */
async function openModelWithProgress(cli: Cli, source: string, offline = false) {
  const log = cli.log;
  log(`loading ${source}`);
  let lastReport = 0;
  const { model, notes } = await openModel(source, {
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

function maxError(a: number[][], b: number[][]): number {
  let max = 0;
  a.forEach((row, i) => row.forEach((value, j) => (max = Math.max(max, Math.abs(value - b[i][j])))));
  return max;
}

/**
 * The cells that either method ranks in its top k by |value| (and any GradDrop flags), AtP and exact side by side,
 * largest exact first. AtP* equals AtP for these hook points (its QK fix concerns query and key nodes); its GradDrop
 * column, when given, is the magnitude that flags a possible cancellation.
 */
function sideBySide(atp: number[][], exact: number[][], label: (layer: number, column: number) => string, k: number, gradDrop?: number[][]): string[] {
  const cells = atp.flatMap((row, layer) =>
    row.map((value, column) => ({ layer, column, name: label(layer, column), atp: value, exact: exact[layer][column] })),
  );
  const top = (key: 'atp' | 'exact') => [...cells].sort((a, b) => Math.abs(b[key]) - Math.abs(a[key])).slice(0, k);
  const flagged = new Set(gradDrop ? suspectCells(atp, gradDrop).map((c) => `${c.layer}:${c.column}`) : []);
  const shown = [...new Set([...top('exact'), ...top('atp'), ...cells.filter((c) => flagged.has(`${c.layer}:${c.column}`))])].sort(
    (a, b) => Math.abs(b.exact) - Math.abs(a.exact),
  );
  const dropColumn = (c: { layer: number; column: number }) => (gradDrop ? gradDrop[c.layer][c.column].toFixed(4).padStart(10) : '');
  return [
    `  ${''.padEnd(12)}${'AtP = AtP*'.padStart(11)}${gradDrop ? 'GradDrop'.padStart(10) : ''}${'exact'.padStart(10)}`,
    ...shown.map(
      (c) =>
        `  ${c.name.padEnd(12)}${signedFixed(c.atp).padStart(11)}${dropColumn(c)}${signedFixed(c.exact).padStart(10)}` +
        `${Math.sign(c.atp) !== Math.sign(c.exact) ? '  opposite signs' : ''}${flagged.has(`${c.layer}:${c.column}`) ? '  GradDrop ≫ |AtP|' : ''}`,
    ),
  ];
}

async function validate(cli: Cli, args: string[]): Promise<void> {
  const { log, onStep } = cli;
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      device: { type: 'string', default: 'auto' },
      'batch-size': { type: 'string' },
      top: { type: 'string' },
      offline: { type: 'boolean', default: false },
    },
    strict: true,
  });
  for (const flag of ['model', 'data'] as const) {
    if (!values[flag]) throw new InputError(`${fieldRef(flag)} is required\n\n${USAGE}`, { field: flag });
  }
  const device = parseDevice(values.device!);
  const datasetWarnings: string[] = [];
  const dataset = readDataset(values.data!, datasetWarnings);
  for (const warning of datasetWarnings) log(warning);
  const model = await openModelWithProgress(cli, values.model!, values.offline);
  const top = integer(values.top, 'top', 3);
  const options = { device, batchSize: integer(values['batch-size'], 'batchSize', 64), onProgress: log, onStep };
  const v = await validateHeads(model, dataset, { ...options, method: 'atpstar' }, top);
  const gradDrop = v.result.atpStar?.gradDrop;
  const positions = await validatePositions(model, dataset, v.result, options);
  const list = (heads: Array<{ layer: number; head: number; value: number }>) => heads.map((h) => `L${h.layer}H${h.head} ${signedFixed(h.value)}`).join(', ');
  const lines = [
    summary(v.result, top),
    `exact activation patching of every head at the answer position, against attribution patching:`,
    `  Spearman ${v.spearman.toFixed(3)}, Pearson ${v.pearson.toFixed(3)}, max |AtP − exact| ${maxError(v.result.heads, v.exact).toFixed(4)}`,
    `  top ${top} by attribution patching: ${list(v.topByAttribution)}`,
    `  top ${top} by activation patching:  ${list(v.topByActivationPatching)}`,
    `  named by both: ${v.topOverlap} of ${top}`,
    ...sideBySide(v.result.heads, v.exact, (layer, head) => `L${layer}H${head}`, top, gradDrop?.heads),
  ];
  if (positions) {
    lines.push(
      `exact activation patching of resid_pre at every layer and position, against attribution patching:`,
      `  Spearman ${positions.spearman.toFixed(3)}, Pearson ${positions.pearson.toFixed(3)}, max |AtP − exact| ${maxError(positions.atp, positions.exact).toFixed(4)}`,
      ...sideBySide(positions.atp, positions.exact, (layer, pos) => `L${layer} pos ${pos}`, top, gradDrop?.positions ?? undefined),
    );
  } else {
    lines.push('(positions: the prompts have different lengths, so there is no position map to validate)');
  }
  cli.out(lines.join('\n') + '\n');
}

async function patch(cli: Cli, args: string[]): Promise<void> {
  const { log, onStep } = cli;
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
      method: { type: 'string', default: 'auto' },
      'grad-drop': { type: 'boolean', default: false },
      check: { type: 'string' },
      'check-seed': { type: 'string' },
      shard: { type: 'string' },
      wandb: { type: 'string' },
    },
    strict: true,
  });
  for (const flag of ['model', 'data', 'out'] as const) {
    if (!values[flag]) throw new InputError(`${fieldRef(flag)} is required\n\n${USAGE}`, { field: flag });
  }
  const device = parseDevice(values.device!);
  const batchSize = integer(values['batch-size'], 'batchSize', 8);
  const top = integer(values.top, 'top', 10);
  const method = parseMethod(values.method!);
  const check = integer(values.check, 'check', 0, 0);
  const checkSeed = integer(values['check-seed'], 'checkSeed', 0, 0);
  const shard = values.shard === undefined ? undefined : parseShard(values.shard);
  if (shard && check > 0)
    throw new InputError(`${fieldRef('check')} cannot be used with ${fieldRef('shard')}: checks choose components from the whole dataset's attributions`, {
      field: 'check',
    });
  if (shard && values.html)
    throw new InputError(
      `${fieldRef('html')} cannot be used with ${fieldRef('shard')}: a shard holds raw values; report the merged result (atp merge --html)`,
      { field: 'html' },
    );
  if (shard && values.wandb !== undefined)
    throw new InputError(`${fieldRef('wandb')} cannot be used with ${fieldRef('shard')}: a shard holds raw values; log the merged result`, { field: 'wandb' });
  const wandb = values.wandb === undefined ? undefined : wandbTargetForCommandLine(values.wandb, process.env);
  // The dataset's own warnings (an .atp line whose prompts are the same) are already "file:line:col: warning: …".
  const datasetWarnings: string[] = [];
  const dataset = readDataset(values.data!, datasetWarnings);
  for (const warning of datasetWarnings) log(warning);
  const model = await openModelWithProgress(cli, values.model!, values.offline);
  // Before the run: an output that is an input (or the other output) is refused at no cost.
  checkCommandOutputs('patch', values, [
    { path: values.data!, role: '--data' },
    ...modelFolderInputs(model.dir),
    ...model.weightFiles.map((file) => ({ path: file, role: 'the model weights' })),
  ]);
  const runPrecision = parsePrecision(values.precision);
  const runOptions = {
    device,
    batchSize,
    precision: runPrecision,
    onProgress: log,
    onStep,
    method,
    check,
    checkSeed,
    gradDrop: values['grad-drop'],
    // The plain CLI exits after the run: its sessions serve this run alone (see RunOptions.oneShot); `atp serve` keeps them.
    oneShot: cli.oneShot,
  };
  if (shard) {
    const { first, size } = shardRange(dataset.examples.length, shard.index, shard.count);
    log(`running shard ${shard.index}/${shard.count}: ${size} of ${dataset.examples.length} examples (from example ${first + 1}) on ${device}`);
  } else log(`running ${dataset.examples.length} examples on ${device}`);
  const result = shard
    ? await runShard(model, dataset, runOptions, { ...shard, datasetHash: fileHash(values.data!) })
    : await runAttributionPatching(model, dataset, runOptions);
  // The hash the editor compares with the dataset's text: a result written here opens as current there.
  result.dataset.contentHash = datasetTextHash(values.data!);
  for (const warning of result.warnings) log(`warning: ${warning}`);
  // Kept with the Result, as the editor shows its own: whoever opens the file later sees them too.
  result.warnings = [...datasetWarnings, ...result.warnings];
  // Render both, then write both: a report that cannot be made or written leaves the previous --out as it was.
  const files: FileToWrite[] = resultFilesToWrite(values.out!, result);
  if (values.html) files.push({ file: values.html, contents: renderHtmlReport([{ title: dataset.file, result }]), what: 'the report' });
  writeFilesAtomically(files);
  removeStaleSidecars(values.out!);
  if (values.html) log(`wrote ${values.html}`);
  const wrote = relative(process.cwd(), values.out!) || values.out;
  // A shard's numbers are raw, so no top heads: they mean something only after the merge.
  if (result.shard)
    cli.out(`wrote shard ${result.shard.index}/${result.shard.count} (${result.examples.length} examples, raw values for atp merge) to ${wrote}\n`);
  else cli.out(`${summary(result, top)}\nwrote ${wrote}\n`);
  // Last, with the Result safely written: whatever W&B answers, the run stands.
  if (wandb) {
    log(`logging to W&B (${wandbProjectPath(wandb)})`);
    reportWandb(
      cli,
      await logResultToWandb(wandb, result, values.out!, {
        displayName: `${modelLabel(result.model.source)} · ${basename(dataset.file)}`,
        jobType: 'patch',
        extraConfig: { batch_size: batchSize },
        top,
      }),
    );
  }
}

/** W&B's outcome on stderr: each run's page, each failure as a warning (the exit status stays the run's). */
function reportWandb(cli: Cli, outcome: WandbOutcome): void {
  for (const warning of outcome.warnings) cli.log(`warning: ${warning}`);
  for (const url of outcome.urls) cli.log(`W&B run: ${url}`);
}

/** contentHash of a dataset file's text as the editor holds it (VS Code drops a leading byte-order mark). */
function datasetTextHash(file: string): string {
  return contentHash(readInputText(file, 'dataset').replace(/^\uFEFF/, ''));
}

function merge(cli: Cli, args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    options: { out: { type: 'string' }, html: { type: 'string' }, top: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (!values.out || positionals.length === 0) throw new InputError(`atp merge needs --out FILE and the shard files\n\n${USAGE}`);
  const top = integer(values.top, 'top', 10);
  checkCommandOutputs(
    'merge',
    values,
    positionals.map((file) => ({ path: file, role: 'a shard file' })),
  );
  const result = mergeShards(readShards(positionals));
  const files: FileToWrite[] = resultFilesToWrite(values.out, result);
  if (values.html) files.push({ file: values.html, contents: renderHtmlReport([{ title: result.dataset.file, result }]), what: 'the report' });
  writeFilesAtomically(files);
  removeStaleSidecars(values.out);
  if (values.html) cli.log(`wrote ${values.html}`);
  cli.out(`${summary(result, top)}\nmerged ${positionals.length} shards into ${relative(process.cwd(), values.out) || values.out}\n`);
}

function writeReport(cli: Cli, file: string, html: string, role: string): void {
  prepareOutputFolder(file, role);
  writeTextAtomically(file, html, 'the report');
  cli.log(`wrote ${file}`);
}

function report(cli: Cli, args: string[]): void {
  const { values, positionals } = parseArgs({ args, options: { out: { type: 'string' } }, allowPositionals: true, strict: true });
  if (!values.out || positionals.length === 0) throw new InputError(`atp report needs --out FILE and at least one result file\n\n${USAGE}`);
  checkCommandOutputs(
    'report',
    values,
    positionals.map((file) => ({ path: file, role: 'the result file' })),
  );
  const results = positionals.map((file) => ({ title: file, result: refuseShard(readResultFile(file), file) }));
  writeReport(cli, values.out, renderHtmlReport(results), '--out');
}

/**
 * Runs one command with its output on `streams`: the plain CLI (main, oneShot) and `atp serve` (serve.ts, once per
 * client request, not oneShot) run this same code. Returns the exit status.
 */
export async function runCommand(argv: readonly string[], streams: CliStreams, oneShot: boolean): Promise<number> {
  const cli = cliFor(streams, oneShot);
  const { log, io } = cli;
  const [command, ...rest] = argv;
  const help = requestedHelp(argv);
  if (help !== undefined) {
    cli.out(`${help}\n`);
    return 0;
  }
  if (command === '--version' || command === 'version') {
    cli.out(`${versionText()}\n`);
    return 0;
  }
  try {
    if (command === 'patch') await patch(cli, rest);
    else if (command === 'report') report(cli, rest);
    else if (command === 'merge') merge(cli, rest);
    else if (command === 'validate') await validate(cli, rest);
    else if (command === 'circuit') {
      const openModel = (source: string, offline: boolean) => openModelWithProgress(cli, source, offline);
      await circuitCommand(rest, { log, stdout: cli.out, openModel, datasetTextHash });
    } else if (command === 'test') return await testCommand(rest, io);
    else if (command === 'export') exportCommand(rest, log);
    else if (command === 'generate') await generateCommand(rest, io);
    else if (command === 'compare') compareCommand(rest, io);
    else if (command === 'sweep') return await sweepCommand(rest, io);
    else if (command === 'install-cuda') await installCudaCommand(rest, io);
    else if (command === undefined) {
      cli.out(`${USAGE}\n`);
      return 1;
    } else throw new InputError(`unknown command "${command}"\n\n${USAGE}`);
    return 0;
  } catch (error) {
    if (error instanceof InputError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      log(`atp: ${error.message}`);
      return 2;
    }
    log(`atp: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return 1;
  }
}

export async function main(argv: string[]): Promise<number> {
  // --no-server (anywhere) or ATP_NO_SERVER=1: run here even when an `atp serve` listens.
  const args = argv.filter((arg) => arg !== '--no-server');
  const streams: CliStreams = { stdout: process.stdout, stderr: process.stderr };
  // Help and the version never start, or go to, a server.
  if (requestedHelp(args) !== undefined || args[0] === '--version' || args[0] === 'version') return runCommand(args, streams, true);
  if (args[0] === 'serve') return serveCommand(args.slice(1), streams, runCommand);
  const noServer = args.length !== argv.length || serverRefusedByEnv(process.env);
  if (SERVED_COMMANDS.has(args[0]) && !noServer) {
    const code = await runInServer(args, streams);
    if (code !== undefined) return code;
  }
  try {
    return await runCommand(args, streams, true);
  } finally {
    await releaseSessions();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
