// atp generate: writes a generated dataset (IOI or TinySQL) as JSONL, or .atp when --out ends with .atp.
import { parseArgs } from 'node:util';
import { writeTextAtomically } from '../lib/files/atomicWrite';
import { InputError } from '../shared/errors';
import { fieldRef } from '../shared/fields';
import { parseIntegerFlag } from '../engine/integers';
import { checkCommandOutputs, modelFolderInputs } from '../lib/files/outputPaths';
import { MAX_GENERATED_EXAMPLES } from '../shared/generateSpec';
import { ModelTokenizer } from '../engine/model/tokenizer';
import { builtInModelDir } from '../lib/model/modelSource';
import { findBuiltInModel } from '../lib/model/presets';
import { formatDataset, generateDataset, type GenerateSpec } from '../lib/dataset/generate';
import { parseTinySqlFeature, type CommandSet } from '../lib/dataset/tinysql';

export const GENERATE_USAGE = `Usage:
  atp generate ioi [-n N] [--seed S] --model DIR --out FILE
  atp generate tinysql --feature F [--cs 1|2|3] [-n N] [--seed S] [--novel] [--synonyms] --model DIR --out FILE

Generates clean/corrupted prompt pairs for the tokenizer in --model (a folder with tokenizer.json, or a built-in
model: tinysql-demo, ioi-demo) and writes
them to --out: JSONL, or the .atp format when the file name ends with .atp. Defaults: -n 100 (at most 10000), --seed 0, --cs 1.
TinySQL features: EngTableName, EngFieldName, DefCreateTable, DefTableName, DefFieldName, DefFieldSeparator,
DefOrderByField and DefOrderByDirection (the last two need --cs 2 or 3). --novel corrupts with words never seen
in training; --synonyms names the table and fields by their synonyms in the English request.`;

export interface CommandIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

export { formatDataset };

export async function generateCommand(args: string[], io: CommandIo): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        model: { type: 'string' },
        out: { type: 'string' },
        feature: { type: 'string' },
        cs: { type: 'string' },
        n: { type: 'string', short: 'n' },
        seed: { type: 'string' },
        novel: { type: 'boolean' },
        synonyms: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new InputError(`${(error as Error).message}\n\n${GENERATE_USAGE}`);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || (positionals[0] !== 'ioi' && positionals[0] !== 'tinysql')) {
    throw new InputError(
      `atp generate: say what to generate, ioi or tinysql${positionals.length > 0 ? ` (got ${positionals.join(' ')})` : ''}\n\n${GENERATE_USAGE}`,
    );
  }
  const kind = positionals[0];
  for (const flag of ['model', 'out'] as const) {
    if (!values[flag]) throw new InputError(`${fieldRef(flag)} is required\n\n${GENERATE_USAGE}`, { field: flag });
  }
  const count = parseIntegerFlag(values.n, 'count', 100, 1, MAX_GENERATED_EXAMPLES);
  const seed = parseIntegerFlag(values.seed, 'seed', 0, 0);
  const out = values.out!;
  const atp = out.toLowerCase().endsWith('.atp');
  if (!atp && !out.toLowerCase().endsWith('.jsonl')) throw InputError.about('out', `the file name must end with .jsonl or .atp, got "${out}"`);

  let spec: GenerateSpec;
  if (kind === 'ioi') {
    for (const flag of ['feature', 'cs', 'novel', 'synonyms'] as const) {
      if (values[flag] !== undefined) throw new InputError(`--${flag} is for tinysql only`);
    }
    spec = { kind: 'ioi', count, seed };
  } else {
    if (values.feature === undefined) throw new InputError(`${fieldRef('feature')} is required for tinysql\n\n${GENERATE_USAGE}`, { field: 'feature' });
    const feature = parseTinySqlFeature(values.feature);
    const cs = parseIntegerFlag(values.cs, 'commandSet', 1, 1);
    if (cs > 3) throw InputError.about('commandSet', `expected 1, 2 or 3, got "${values.cs}"`);
    spec = { kind: 'tinysql', feature, commandSet: cs as CommandSet, count, seed, novel: values.novel ?? false, synonyms: values.synonyms ?? false };
  }
  // The tokenizer files are inputs: a dataset written over one of them would destroy the model.
  const builtIn = findBuiltInModel(values.model!);
  const modelDir = builtIn ? builtInModelDir(builtIn.name) : values.model!;
  checkCommandOutputs('generate', values, modelFolderInputs(modelDir));
  const tokenizer = ModelTokenizer.fromDir(modelDir);
  const generated = generateDataset(tokenizer, spec, atp ? 'atp' : 'jsonl', builtIn ? builtIn.name : values.model!);
  const skipped = Object.entries(generated.skipped);
  if (skipped.length > 0) io.stderr(`skipped candidates: ${skipped.map(([reason, n]) => `${reason} (${n})`).join(', ')}\n`);
  const examples = generated.examples;
  writeTextAtomically(out, generated.text, 'the dataset');
  io.stdout(`wrote ${examples.length} examples to ${out}\n`);
}
