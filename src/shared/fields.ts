// Every field a user sets, in either front end: its command-line flag, its editor setting, and the words for it.
// Engine errors name a field by a placeholder (fieldRef) instead of by a flag, and each front end renders it in its
// own terms: `--batch-size 2` on the command line, "the batch size 2 (setting attributionPatching.batchSize)" in the
// editor. One table, read by the CLI (through InputError's message) and the editor (src/commands/runFailure.ts).

export type FieldId =
  | 'model'
  | 'data'
  | 'out'
  | 'device'
  | 'batchSize'
  | 'method'
  | 'gradDrop'
  | 'check'
  | 'checkSeed'
  | 'precision'
  | 'top'
  | 'html'
  | 'offline'
  | 'shard'
  | 'models'
  | 'features'
  | 'feature'
  | 'commandSet'
  | 'count'
  | 'seed'
  | 'novel'
  | 'synonyms'
  | 'format'
  | 'name'
  | 'minShare'
  | 'circuitMethod'
  | 'steps'
  | 'edges'
  | 'threshold'
  | 'greedy'
  | 'curvePoints'
  | 'json'
  | 'svg'
  | 'junit'
  | 'rerun'
  | 'hfToken'
  | 'wandb'
  | 'wandbKey'
  | 'wandbBaseUrl'
  | 'resultLocation'
  | 'openWalkthroughOnFirstRun';

export interface FieldInfo {
  /** How the command line sets it: a flag, or HF_TOKEN's environment variable; absent where only the editor has it. */
  cli?: string;
  /** The editor's setting id; absent where the editor asks for it another way (a dialog, secret storage) or not at all. */
  setting?: string;
  /** What it is, in words, for a front end with neither. */
  words: string;
}

export const FIELDS: Record<FieldId, FieldInfo> = {
  model: { cli: '--model', setting: 'attributionPatching.model', words: 'the model' },
  data: { cli: '--data', words: 'the dataset' },
  out: { cli: '--out', words: 'the output' },
  device: { cli: '--device', setting: 'attributionPatching.device', words: 'the device' },
  batchSize: { cli: '--batch-size', setting: 'attributionPatching.batchSize', words: 'the batch size' },
  method: { cli: '--method', setting: 'attributionPatching.method', words: 'the method' },
  gradDrop: { cli: '--grad-drop', setting: 'attributionPatching.gradDrop', words: 'GradDrop' },
  check: { cli: '--check', setting: 'attributionPatching.checkTopK', words: 'the number of components checked' },
  checkSeed: { cli: '--check-seed', words: 'the seed of the checks' },
  precision: { cli: '--precision', setting: 'attributionPatching.precision', words: 'the precision' },
  top: { cli: '--top', words: 'the number of top heads shown' },
  html: { cli: '--html', words: 'the HTML report' },
  offline: { cli: '--offline', words: 'offline mode' },
  shard: { cli: '--shard', words: 'the shard' },
  models: { cli: '--models', words: 'the models' },
  features: { cli: '--features', words: 'the features' },
  feature: { cli: '--feature', words: 'the TinySQL feature' },
  commandSet: { cli: '--cs', words: 'the command set' },
  count: { cli: '-n', words: 'the number of examples' },
  seed: { cli: '--seed', words: 'the seed' },
  novel: { cli: '--novel', words: 'novel names' },
  synonyms: { cli: '--synonyms', words: 'synonyms' },
  format: { cli: '--format', words: 'the export format' },
  name: { cli: '--name', words: 'the name' },
  minShare: { cli: '--min-share', words: 'the minimum share' },
  circuitMethod: { cli: '--method', words: 'the edge attribution method' },
  steps: { cli: '--steps', words: 'the number of integrated-gradient steps' },
  edges: { cli: '--edges', words: 'the number of edges kept' },
  threshold: { cli: '--threshold', words: 'the edge score threshold' },
  greedy: { cli: '--greedy', words: 'the number of edges grown greedily' },
  curvePoints: { cli: '--curve-points', words: 'the number of faithfulness curve points' },
  json: { cli: '--json', words: 'the JSON output' },
  svg: { cli: '--svg', words: 'the SVG output' },
  junit: { cli: '--junit', words: 'the JUnit report' },
  rerun: { cli: '--rerun', words: 'rerunning' },
  hfToken: { cli: 'HF_TOKEN', words: 'the Hugging Face token' },
  wandb: { cli: '--wandb', setting: 'attributionPatching.wandb.project', words: 'the W&B project' },
  wandbKey: { cli: 'WANDB_API_KEY', words: 'the W&B API key' },
  wandbBaseUrl: { cli: 'WANDB_BASE_URL', words: 'the W&B server (WANDB_BASE_URL)' },
  resultLocation: { setting: 'attributionPatching.resultLocation', words: 'where results are saved' },
  openWalkthroughOnFirstRun: { setting: 'attributionPatching.openWalkthroughOnFirstRun', words: 'the walkthrough on first run' },
};

export const FIELD_IDS = Object.keys(FIELDS) as FieldId[];

export function isFieldId(value: unknown): value is FieldId {
  return typeof value === 'string' && Object.hasOwn(FIELDS, value);
}

/**
 * A field named in an error's text, with the value the user could give it (`fieldRef('batchSize', 2)` is
 * `--batch-size 2` on the command line): the front end renders it (renderFieldText).
 */
export function fieldRef(field: FieldId, value?: string | number): string {
  return `{{${field}${value === undefined ? '' : `=${value}`}}}`;
}

const REF = /\{\{([A-Za-z]+)(?:=([^{}]*))?\}\}/g;

export type FrontEnd = 'cli' | 'editor';

/** The text with each fieldRef in one front end's terms; anything that only looks like one stays as it is. */
export function renderFieldText(text: string, front: FrontEnd): string {
  return text.replace(REF, (whole, field: string, value: string | undefined) => (isFieldId(field) ? renderField(field, front, value) : whole));
}

function renderField(field: FieldId, front: FrontEnd, value: string | undefined): string {
  const info = FIELDS[field];
  const valued = (name: string) => (value === undefined ? name : `${name} ${value}`);
  if (front === 'cli') return valued(info.cli ?? info.words);
  return info.setting ? `${valued(info.words)} (setting ${info.setting})` : valued(info.words);
}
