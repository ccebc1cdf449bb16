// Short names for the models of the seed notebook and the TinySQL fine-tunes, for `--model` and the extension's
// picker. Syntax (case-insensitive):
//   M0 … M5                      the seed's base models
//   bm<B>-cs<C>                  TinySQL fine-tune of base model B on command set C, semantic dataset (the default)
//   bm<B>-cs<C>-semantic         the same, said explicitly
//   bm<B>-cs<C>-nonsemantic      the non-semantic dataset variant
// Every preset may carry a revision like a repo id: "M2@main", "bm1-cs1@<commit>".
// Built-in models are the small models shipped in the extension's (and the repository's) models/ folder, named by
// their folder: tinysql-demo, ioi-demo. They need no download; the name is resolved to the folder by the caller
// that knows where models/ is (the CLI and worker from their own location, the extension host from its extension
// folder).
import { InputError } from '../../shared/errors';

export interface BuiltInModel {
  /** The folder name under models/, which is also the name the model setting and --model accept. */
  readonly name: string;
  /** One line for the CLI's help and the extension's picker. */
  readonly description: string;
  /** What the model was trained on, for the picker's label. */
  readonly task: string;
}

/** The shipped models, in display order; the first is the default (an empty model setting). */
export const BUILT_IN_MODELS: readonly BuiltInModel[] = Object.freeze([
  { name: 'tinysql-demo', task: 'TinySQL', description: 'built-in: 4 layers × 4 heads, trained by the project on TinySQL command set 1 (3.4 MB, no download)' },
  {
    name: 'ioi-demo',
    task: 'IOI',
    description: 'built-in: 4 layers × 4 heads, trained by the project on indirect object identification (3.4 MB, no download)',
  },
]);

/** The built-in model a name stands for ("ioi-demo", case-insensitive), or undefined. */
export function findBuiltInModel(name: string): BuiltInModel | undefined {
  const key = name.trim().toLowerCase();
  return BUILT_IN_MODELS.find((model) => model.name === key);
}

export interface ModelPreset {
  /** The canonical name, as listed (e.g. "M2", "bm1-cs1", "bm1-cs1-nonsemantic"). */
  readonly name: string;
  /** The Hugging Face repo id it stands for. */
  readonly repo: string;
  /** One line for the CLI's help and the extension's picker. */
  readonly description: string;
  readonly group: 'base' | 'tinysql';
}

const BASE_MODELS: ReadonlyArray<[string, string, string]> = [
  ['M0', 'openai-community/gpt2', 'GPT-2 small, 124M parameters, 12 layers'],
  ['M1', 'roneneldan/TinyStories-Instruct-2Layers-33M', 'TinyStories-Instruct, 2 layers, 33M parameters (GPT-Neo); TinySQL base model BM1'],
  ['M2', 'Qwen/Qwen2.5-0.5B-Instruct', 'Qwen2.5 0.5B Instruct, 24 layers; TinySQL base model BM2'],
  ['M3', 'withmartian/Llama-3.2-1B-Instruct', 'Llama 3.2 1B Instruct (ungated copy), 16 layers; TinySQL base model BM3'],
  ['M4', 'ibm-granite/granite-3.0-1b-a400m-instruct', 'Granite 3.0 1B-A400M Instruct, mixture of experts, 24 layers'],
  ['M5', 'HuggingFaceTB/SmolLM-360M-Instruct', 'SmolLM 360M Instruct, 32 layers'],
];

const BASE_NAMES: Record<number, string> = { 1: 'TinyStories-Instruct-2Layers-33M', 2: 'Qwen2.5-0.5B-Instruct', 3: 'Llama-3.2-1B-Instruct' };

/** TinySQL experiments: [base model, command set, semantic experiment, non-semantic experiment (if any)]. */
const TINYSQL: ReadonlyArray<[number, number, string, string | undefined]> = [
  [1, 1, '1.10', '1.8'],
  [1, 2, '2.10', '2.8'],
  [1, 3, '3.10', '3.8'],
  [1, 4, '1.1', undefined],
  [1, 5, '1.2', undefined],
  [2, 1, '4.3', '4.2'],
  [2, 2, '5.3', '5.2'],
  [2, 3, '6.3', '6.2'],
  [3, 1, '7.3', '7.2'],
  [3, 2, '8.3', '8.2'],
  [3, 3, '9.3', '9.2'],
];

function tinySqlPresets(): ModelPreset[] {
  return TINYSQL.flatMap(([bm, cs, semantic, nonSemantic]) => {
    const repo = (experiment: string) => `withmartian/sql_interp_bm${bm}_cs${cs}_experiment_${experiment}`;
    const what = `TinySQL: ${BASE_NAMES[bm]} (BM${bm}) fine-tuned on command set CS${cs}`;
    const presets: ModelPreset[] = [
      { name: `bm${bm}-cs${cs}`, repo: repo(semantic), description: `${what}, semantic dataset (experiment ${semantic})`, group: 'tinysql' },
    ];
    if (nonSemantic) {
      presets.push({
        name: `bm${bm}-cs${cs}-nonsemantic`,
        repo: repo(nonSemantic),
        description: `${what}, non-semantic dataset (experiment ${nonSemantic})`,
        group: 'tinysql',
      });
    }
    return presets;
  });
}

/** Every preset, in display order: M0–M5, then the TinySQL fine-tunes by base model and command set. */
export const MODEL_PRESETS: readonly ModelPreset[] = Object.freeze([
  ...BASE_MODELS.map(([name, repo, description]): ModelPreset => ({ name, repo, description, group: 'base' })),
  ...tinySqlPresets(),
]);

const BY_NAME = new Map(MODEL_PRESETS.map((preset) => [preset.name.toLowerCase(), preset]));

/** Names that are clearly meant as presets (so a typo gets the list, not "not a folder"). */
const PRESET_LIKE = /^(m\d+|bm\d+.*)$/i;

/** The preset a name stands for ("m2", "BM1-CS1", "bm1-cs1-semantic"), or undefined when the name is not a preset. */
export function findPreset(name: string): ModelPreset | undefined {
  const key = name.trim().toLowerCase();
  const semantic = key.startsWith('bm') && key.endsWith('-semantic');
  return BY_NAME.get(semantic ? key.slice(0, -'-semantic'.length) : key);
}

export function looksLikePreset(name: string): boolean {
  return PRESET_LIKE.test(name.trim());
}

/** The built-in models as aligned lines "name  description", for help texts. */
export function formatBuiltInTable(): string {
  const width = Math.max(...BUILT_IN_MODELS.map((m) => m.name.length));
  return BUILT_IN_MODELS.map((m) => `  ${m.name.padEnd(width)}  ${m.description}`).join('\n');
}

/** The presets as aligned lines "name  repo  description", for help texts and error messages. */
export function formatPresetTable(presets: readonly ModelPreset[] = MODEL_PRESETS): string {
  const nameWidth = Math.max(...presets.map((p) => p.name.length));
  const repoWidth = Math.max(...presets.map((p) => p.repo.length));
  return presets.map((p) => `  ${p.name.padEnd(nameWidth)}  ${p.repo.padEnd(repoWidth)}  ${p.description}`).join('\n');
}

/** The preset for a name; throws an InputError listing every preset when the name looks like one but is unknown. */
export function resolvePreset(name: string): ModelPreset | undefined {
  const preset = findPreset(name);
  if (preset || !looksLikePreset(name)) return preset;
  throw InputError.about(
    'model',
    `unknown preset "${name.trim()}". Presets (case-insensitive; bm<B>-cs<C> is the semantic dataset, add -nonsemantic for the other):\n` + formatPresetTable(),
  );
}
