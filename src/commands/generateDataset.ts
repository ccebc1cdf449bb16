// "Attribution Patching: Generate IOI Dataset…" and "… Generate TinySQL Dataset…": ask for the generator's options
// (quick picks and input boxes), generate in the engine's worker with the configured model's tokenizer (the same
// generateDataset as `atp generate`), write the dataset as a NEW FILE in the workspace folder (a name saying what it
// holds, never overwriting; with no folder open, a save dialog asks where) and open it, ready for "Attribution Patch
// Current File" (which needs a file on disk: its result is saved next to the dataset).
import * as vscode from 'vscode';
import { checkOutputPaths, modelFolderInputs } from '../lib/files/outputPaths';
import { type CommandSet, type GenerateSpec, MAX_GENERATED_EXAMPLES, TINYSQL_FEATURES, type TinySqlFeature } from '../shared/generateSpec';
import { generatedFileName, integerInputProblem, minimumCommandSet, TINYSQL_FEATURE_DESCRIPTIONS, uniqueFileName } from '../services/datasetGeneration';
import type { Services } from '../services/services';
import { effectiveModel, readSettings } from '../services/settings';
import { HF_TOKEN_SECRET } from '../views/sidebar';
import { COMMANDS } from './ids';

export const GENERATE_IOI = COMMANDS.generateIoiDataset;
export const GENERATE_TINYSQL = COMMANDS.generateTinySqlDataset;

type Picked<T> = vscode.QuickPickItem & { value: T };

async function pick<T>(title: string, items: Picked<T>[], placeHolder: string): Promise<T | undefined> {
  return (await vscode.window.showQuickPick(items, { title, placeHolder, ignoreFocusOut: true }))?.value;
}

async function askInteger(title: string, prompt: string, value: string, minimum: number, maximum?: number): Promise<number | undefined> {
  const text = await vscode.window.showInputBox({ title, prompt, value, ignoreFocusOut: true, validateInput: (t) => integerInputProblem(t, minimum, maximum) });
  return text === undefined ? undefined : Number(text.trim());
}

async function askCountAndSeed(title: string): Promise<{ count: number; seed: number } | undefined> {
  const count = await askInteger(title, `How many examples (1 to ${MAX_GENERATED_EXAMPLES})`, '20', 1, MAX_GENERATED_EXAMPLES);
  if (count === undefined) return undefined;
  const seed = await askInteger(title, 'Random seed (the same seed and options give the same dataset)', '0', 0);
  return seed === undefined ? undefined : { count, seed };
}

async function askFormat(title: string): Promise<'atp' | 'jsonl' | undefined> {
  return pick<'atp' | 'jsonl'>(
    title,
    [
      {
        label: '.atp',
        description: 'prompt format',
        detail: 'one line per example: the prompt with {clean|corrupted} spans => "correct" | "incorrect"',
        value: 'atp',
      },
      { label: '.jsonl', description: 'JSON Lines', detail: '{"clean", "corrupted", "correct", "incorrect"} per line', value: 'jsonl' },
    ],
    'File format',
  );
}

async function askTinySql(): Promise<{ spec: GenerateSpec; format: 'atp' | 'jsonl' } | undefined> {
  const title = 'Generate TinySQL Dataset';
  const feature = await pick<TinySqlFeature>(
    title,
    TINYSQL_FEATURES.map((f) => ({ label: f, detail: `Corrupts ${TINYSQL_FEATURE_DESCRIPTIONS[f]}`, value: f })),
    'Feature: what the corrupted prompt changes',
  );
  if (!feature) return undefined;
  const sets: Picked<CommandSet>[] = [
    { label: 'Command set 1', detail: 'SELECT fields FROM table', value: 1 as CommandSet },
    { label: 'Command set 2', detail: 'adds ORDER BY a field, ascending or descending', value: 2 as CommandSet },
    { label: 'Command set 3', detail: 'aggregates (COUNT, MAX, …) and ORDER BY', value: 3 as CommandSet },
  ].filter((s) => s.value >= minimumCommandSet(feature));
  const commandSet = await pick(title, sets, 'Command set');
  if (!commandSet) return undefined;
  const numbers = await askCountAndSeed(title);
  if (!numbers) return undefined;
  const options = await vscode.window.showQuickPick(
    [
      { label: 'Novel names', detail: 'corrupt with words never seen in training (star, hammer, …)', value: 'novel' },
      { label: 'Synonyms', detail: 'name the table and fields by their synonyms in the English request', value: 'synonyms' },
    ],
    { title, placeHolder: 'Options (none, one or both; Enter to go on)', canPickMany: true, ignoreFocusOut: true },
  );
  if (!options) return undefined;
  const format = await askFormat(title);
  if (!format) return undefined;
  const chosen = new Set(options.map((o) => o.value));
  return { spec: { kind: 'tinysql', feature, commandSet, ...numbers, novel: chosen.has('novel'), synonyms: chosen.has('synonyms') }, format };
}

async function askIoi(): Promise<{ spec: GenerateSpec; format: 'atp' | 'jsonl' } | undefined> {
  const title = 'Generate IOI Dataset';
  const numbers = await askCountAndSeed(title);
  if (!numbers) return undefined;
  const format = await askFormat(title);
  return format ? { spec: { kind: 'ioi', ...numbers }, format } : undefined;
}

async function targetUri(name: string, services: Services): Promise<vscode.Uri | undefined> {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  if (!folder)
    return vscode.window.showSaveDialog({
      title: 'Save the generated dataset',
      defaultUri: vscode.Uri.joinPath(services.context.globalStorageUri, name),
      saveLabel: 'Save Dataset',
    });
  const free = await uniqueFileName(name, (candidate) =>
    Promise.resolve(
      vscode.workspace.fs.stat(vscode.Uri.joinPath(folder, candidate)).then(
        () => true,
        () => false,
      ),
    ),
  );
  return vscode.Uri.joinPath(folder, free);
}

async function generate(services: Services, ask: () => Promise<{ spec: GenerateSpec; format: 'atp' | 'jsonl' } | undefined>): Promise<void> {
  const answers = await ask();
  if (!answers) return;
  const { spec, format } = answers;
  const model = effectiveModel(readSettings(), services.context.extensionUri);
  const hfToken = await services.context.secrets.get(HF_TOKEN_SECRET);
  services.log.info(`generate: ${JSON.stringify(spec)} as .${format} with the tokenizer of ${model}`);
  const outcome = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Generating ${spec.kind === 'ioi' ? 'IOI' : `TinySQL ${spec.feature}`} examples` },
    () => services.engine.generate({ model, hfToken, spec, format }),
  );
  if (outcome.kind === 'failed') {
    services.log.error(`generate: ${outcome.message}`);
    void vscode.window.showErrorMessage(`Attribution Patching: could not generate the dataset: ${outcome.message.split('\n')[0]}`);
    return;
  }
  const skipped = Object.entries(outcome.skipped);
  if (skipped.length > 0) services.log.info(`generate: skipped candidates: ${skipped.map(([reason, n]) => `${reason} (${n})`).join(', ')}`);
  const target = await targetUri(generatedFileName(spec, format), services);
  if (!target) return;
  // The save dialog can name any file, the model's own tokenizer.json included: never write over the model.
  try {
    if (target.scheme === 'file') checkOutputPaths(modelFolderInputs(outcome.modelDir ?? model), [{ path: target.fsPath, role: 'the dataset file' }]);
  } catch (error) {
    void vscode.window.showErrorMessage(`Attribution Patching: ${(error as Error).message}`);
    return;
  }
  await vscode.workspace.fs.writeFile(target, Buffer.from(outcome.text, 'utf8'));
  services.log.info(`generate: wrote ${outcome.examples} examples to ${target.fsPath}`);
  await vscode.window.showTextDocument(target, { preview: false });
  if (outcome.examples < spec.count) {
    void vscode.window.showWarningMessage(
      `Attribution Patching: generated ${outcome.examples} of ${spec.count} examples (the tokenizer split too many candidates; see the log).`,
    );
  }
}

export function registerGenerateDatasets(services: Services): vscode.Disposable {
  return vscode.Disposable.from(
    vscode.commands.registerCommand(GENERATE_IOI, () => generate(services, askIoi)),
    vscode.commands.registerCommand(GENERATE_TINYSQL, () => generate(services, askTinySql)),
  );
}
