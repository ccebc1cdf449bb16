// atp sweep: every model × feature, each dataset generated for the model's own tokenizer, every Result and one
// summary (JSON and HTML) written under --out; rerunning keeps the cells already finished. See engine/sweep.
import { parseArgs } from 'node:util';
import { existsSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { checkCommandOutputs, modelFolderInputs } from '../lib/files/outputPaths';
import { InputError } from '../shared/errors';
import { fieldRef } from '../shared/fields';
import { parseIntegerFlag } from '../engine/integers';
import { parseMethod } from '../engine/patching/methods';
import { parsePrecision } from '../engine/patching/precision';
import { parseDevice } from '../engine/process/runtime';
import { DEFAULT_TOP_K } from '../shared/compare';
import { MAX_GENERATED_EXAMPLES } from '../shared/generateSpec';
import { runSweep, SUMMARY_HTML, SUMMARY_JSON } from '../engine/sweep/sweep';
import { parseSweepFeature, planSweep } from '../engine/sweep/plan';
import { renderSweepReport } from '../engine/sweep/report';
import type { SweepSpec } from '../shared/sweep';
import type { CommandIo } from './generate';
import { addWandbOutcome, type WandbOutcome } from '../shared/wandb';
import { wandbTargetForCommandLine } from '../lib/wandb/wandbKey';
import { logResultToWandb, sweepCellRunOptions, sweepGroup } from '../engine/logging/logToWandb';

export const SWEEP_USAGE = `Usage:
  atp sweep --models M1,M2,... --features F1,F2,... --out DIR [--cs 1,2,3] [-n N] [--seed S] [--method atp|atpstar|exact|auto] [--device D] [--batch-size N] [--precision float32|float16] [--top K] [--offline]

For every model (folder, preset or repo id) and feature (the TinySQL features of atp generate, or IOI) generates the
dataset for that model's tokenizer and runs attribution patching on it: DIR/<model>/<feature>-cs<C>.jsonl and
.atp-result.json (IOI: <model>/IOI.*), then DIR/summary.json and summary.html: per model and feature the baselines,
the top heads and how concentrated the attribution is (top-K share, entropy), with each feature's depth profiles
across models. Command sets: --cs for every model, else a bm<B>-cs<C> preset's own C, else 1. Defaults: -n 20,
--seed 0, --method atp. Resumable: a cell whose Result is complete and was made from the same dataset, model and
method is kept. A cell that fails (a model that cannot be loaded, a feature its tokenizer cannot express) records
its error in the summary and the others go on; the exit status is then 3.
--wandb [ENTITY/]PROJECT logs each cell run now (kept cells are not logged again) as one W&B run, grouped by the
sweep's folder name (W&B "group"), as atp patch --wandb does; key from WANDB_API_KEY (else ~/.netrc), server from WANDB_BASE_URL.`;

const list = (text: string | undefined) =>
  (text ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');

/** Runs the sweep; the exit status: 0 when every cell has a Result, 3 when some failed. */
export async function sweepCommand(args: string[], io: CommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        models: { type: 'string' },
        features: { type: 'string' },
        cs: { type: 'string' },
        n: { type: 'string', short: 'n' },
        seed: { type: 'string' },
        method: { type: 'string', default: 'atp' },
        device: { type: 'string', default: 'auto' },
        'batch-size': { type: 'string' },
        precision: { type: 'string' },
        top: { type: 'string' },
        out: { type: 'string' },
        offline: { type: 'boolean', default: false },
        wandb: { type: 'string' },
      },
      strict: true,
    });
  } catch (error) {
    throw new InputError(`${(error as Error).message}\n\n${SWEEP_USAGE}`);
  }
  const { values } = parsed;
  for (const flag of ['models', 'features', 'out'] as const) {
    if (!values[flag]) throw new InputError(`${fieldRef(flag)} is required\n\n${SWEEP_USAGE}`, { field: flag });
  }
  const commandSets = values.cs === undefined ? undefined : list(values.cs).map((cs) => parseIntegerFlag(cs, 'commandSet', 1, 1, 3));
  const spec: SweepSpec = {
    models: list(values.models),
    features: list(values.features).map(parseSweepFeature),
    ...(commandSets ? { commandSets } : {}),
    count: parseIntegerFlag(values.n, 'count', 20, 1, MAX_GENERATED_EXAMPLES),
    seed: parseIntegerFlag(values.seed, 'seed', 0, 0),
    method: parseMethod(values.method!),
  };
  const device = parseDevice(values.device!);
  const batchSize = parseIntegerFlag(values['batch-size'], 'batchSize', 8, 1);
  const precision = parsePrecision(values.precision);
  const top = parseIntegerFlag(values.top, 'top', DEFAULT_TOP_K, 1);
  const out = values.out!;
  const wandb = values.wandb === undefined ? undefined : wandbTargetForCommandLine(values.wandb, process.env);
  const wandbOutcome: WandbOutcome = { urls: [], warnings: [] };
  // Before anything runs: names, features and folders that cannot work are refused at no cost.
  const cells = planSweep(spec);
  // Every file the sweep will write, against every local model folder's files: none may be an input, and the
  // folder may not be (or be inside) a model folder.
  const modelFolders = spec.models.filter((model) => existsSync(model) && statSync(model).isDirectory());
  checkCommandOutputs(
    'sweep',
    values,
    modelFolders.flatMap((model) => modelFolderInputs(model)),
    {
      inputFolders: modelFolders.map((model) => ({ path: model, role: 'the model folder' })),
      outputs: [
        ...cells.flatMap((cell) => [
          { path: join(out, cell.dataset), role: `the sweep's dataset` },
          { path: join(out, cell.result), role: `the sweep's Result` },
        ]),
        { path: join(out, SUMMARY_JSON), role: 'the sweep summary' },
        { path: join(out, SUMMARY_HTML), role: 'the sweep summary report' },
      ],
    },
  );
  io.stderr(
    `sweep: ${cells.length} cells (${spec.models.length} models × ${spec.features.length} features${commandSets ? ` × ${commandSets.length} command sets` : ''}) into ${out}\n`,
  );
  const summary = await runSweep(spec, out, {
    device,
    batchSize,
    precision,
    top,
    resolve: { offline: values.offline },
    renderHtml: renderSweepReport,
    onLog: (message) => io.stderr(`  ${message}\n`),
    ...(wandb
      ? {
          onCellResult: async ({ cell, result, resultFile }) => {
            const outcome = await logResultToWandb(wandb, result, resultFile, sweepCellRunOptions(cell, out, { batchSize, top }));
            for (const warning of outcome.warnings) io.stderr(`  warning: ${warning}\n`);
            for (const url of outcome.urls) io.stderr(`  W&B run: ${url}\n`);
            addWandbOutcome(wandbOutcome, outcome);
          },
        }
      : {}),
    onCell: ({ cell, cells: total, label, phase, error }) => {
      if (phase === 'start') io.stderr(`[${cell}/${total}] ${label}\n`);
      else io.stderr(`[${cell}/${total}] ${label}: ${phase}${error ? `: ${error}` : ''}\n`);
    },
  });
  const failed = summary.cells.filter((c) => c.status === 'failed');
  const counts = (['ran', 'kept', 'failed'] as const).map((status) => `${summary.cells.filter((c) => c.status === status).length} ${status}`).join(', ');
  const shown = relative(process.cwd(), out) || out;
  const lines = summary.cells.map((c) => {
    const what = `${c.model}  ${c.feature}${c.commandSet === null ? '' : ` CS${c.commandSet}`}`;
    if (!c.digest) return `  ${what}: failed: ${c.error}`;
    const d = c.digest;
    const share = d.concentration.topKShare === null ? '—' : d.concentration.topKShare.toFixed(3);
    return `  ${what}: LD ${d.cleanLogitDiff.toFixed(3)} → ${d.corruptedLogitDiff.toFixed(3)}, top ${d.topHeads
      .slice(0, 3)
      .map((h) => `L${h.layer}H${h.head}`)
      .join(' ')}, top-${top} share ${share} (${c.status})`;
  });
  io.stdout(`${lines.join('\n')}\n${counts}; wrote ${shown}/${SUMMARY_JSON} and ${shown}/${SUMMARY_HTML}\n`);
  if (wandb) {
    const failedLogs = wandbOutcome.warnings.length;
    io.stderr(
      `W&B: ${wandbOutcome.urls.length} run${wandbOutcome.urls.length === 1 ? '' : 's'} in group ${sweepGroup(out)}${failedLogs ? `, ${failedLogs} warning${failedLogs === 1 ? '' : 's'} above` : ''}\n`,
    );
  }
  return failed.length > 0 ? 3 : 0;
}
