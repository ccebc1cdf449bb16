// `atp export --format tensors`: a Result's per-example arrays for Python, keyed by TransformerLens hook names, as
// a safetensors file (readable with numpy alone: README, "Reading Results from Python") and a JSON of what they are.
//
// Tensors (n examples, P the longest example's token count, L layers, H heads):
//   blocks.{l}.attn.hook_z                        F32 [n, P, H]   attribution of each head's z, summed over d_head
//   blocks.{l}.hook_resid_pre / hook_attn_out / hook_mlp_out   F32 [n, P]   summed over d_model
//   lengths                                       I64 [n]         each example's token count; NaN (ids: -1) past it
//   clean_ids, corrupted_ids                      I64 [n, P]
//   correct_id, incorrect_id                      I64 [n]
//   clean_logit_diff, corrupted_logit_diff        F64 [n]         each example's own logit differences
// The JSON: the model, the dataset, the baselines the metric is normalised by, and the method of every map.
import { basename } from 'node:path';
import { InputError } from '../../shared/errors';
import { HOOK_KINDS, HOOKS, transformerLensName, type HookKind } from '../../shared/hooks';
import type { Result } from '../../shared/result';
import { methodsOf } from '../../shared/resultMethods';
import type { SafetensorsDtype } from '../model/safetensors';
import { encodeSafetensors } from './resultFile';

export const TENSORS_FORMAT = 'attribution-patching/tensors@1';

/** The axes of each hook's tensor: the Result's attribution shape with the examples first and the layer split out. */
const AXES: Record<HookKind, string[]> = Object.fromEntries(
  HOOK_KINDS.map((kind) => [
    kind,
    ['examples', ...HOOKS[kind].attributionShape.filter((axis) => axis !== 'layer').map((axis) => (axis === 'pos' ? 'positions' : `${axis}s`))],
  ]),
) as Record<HookKind, string[]>;

interface Tensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: Uint8Array;
}

const bytesOf = (array: Float32Array | Float64Array | BigInt64Array) => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

/** The .json that goes with a tensors file: the same name with .json for .safetensors. */
export function tensorsMetadataFile(tensorsFile: string): string {
  return tensorsFile.replace(/\.safetensors$/i, '') + '.json';
}

/** The safetensors bytes and the metadata JSON text for a Result read from `resultFile`, written as `tensorsFile`. */
export function resultTensors(result: Result, resultFile: string, tensorsFile: string): { tensors: Uint8Array; metadata: string } {
  const n = result.examples.length;
  const { layers, heads } = result.model;
  const lengths = result.examples.map((example) => example.cleanIds.length);
  const positions = Math.max(0, ...lengths);
  const wrong = (i: number, what: string): never => {
    throw new InputError(`${resultFile}: example ${i + 1} (line ${result.examples[i].line}): ${what}; the Result is inconsistent`);
  };

  const ids = (read: (i: number) => number[]) => {
    const out = new BigInt64Array(n * positions).fill(-1n);
    for (let i = 0; i < n; i += 1) {
      const row = read(i);
      if (row.length !== lengths[i]) wrong(i, `${row.length} corrupted token ids for ${lengths[i]} clean ones`);
      row.forEach((id, p) => (out[i * positions + p] = BigInt(id)));
    }
    return out;
  };
  const perExample = <T extends Float64Array | BigInt64Array>(array: T, value: (i: number) => number | bigint): T => {
    for (let i = 0; i < n; i += 1) array[i] = value(i) as never;
    return array;
  };
  const tensors: Tensor[] = [
    { name: 'lengths', dtype: 'I64', shape: [n], bytes: bytesOf(perExample(new BigInt64Array(n), (i) => BigInt(lengths[i]))) },
    { name: 'clean_ids', dtype: 'I64', shape: [n, positions], bytes: bytesOf(ids((i) => result.examples[i].cleanIds)) },
    { name: 'corrupted_ids', dtype: 'I64', shape: [n, positions], bytes: bytesOf(ids((i) => result.examples[i].corruptedIds)) },
    { name: 'correct_id', dtype: 'I64', shape: [n], bytes: bytesOf(perExample(new BigInt64Array(n), (i) => BigInt(result.examples[i].correctId))) },
    { name: 'incorrect_id', dtype: 'I64', shape: [n], bytes: bytesOf(perExample(new BigInt64Array(n), (i) => BigInt(result.examples[i].incorrectId))) },
    { name: 'clean_logit_diff', dtype: 'F64', shape: [n], bytes: bytesOf(perExample(new Float64Array(n), (i) => result.examples[i].cleanLogitDiff)) },
    {
      name: 'corrupted_logit_diff',
      dtype: 'F64',
      shape: [n],
      bytes: bytesOf(perExample(new Float64Array(n), (i) => result.examples[i].corruptedLogitDiff)),
    },
  ];

  const method = methodsOf(result).attributions;
  const hooks: Record<string, { hook: string; layer: number; axes: string[]; method: string }> = {};
  for (let layer = 0; layer < layers; layer += 1) {
    for (const kind of HOOK_KINDS) {
      const { field, perHead } = HOOKS[kind];
      const width = perHead ? heads : 1;
      const values = new Float32Array(n * positions * width).fill(NaN);
      for (let i = 0; i < n; i += 1) {
        const rows = result.examples[i].attributions[field][layer] as Array<number | number[]> | undefined;
        if (!rows || rows.length !== lengths[i]) wrong(i, `${HOOKS[kind].label} of layer ${layer} has ${rows?.length ?? 0} positions for ${lengths[i]} tokens`);
        rows!.forEach((cell, p) => {
          const at = (i * positions + p) * width;
          if (!perHead) values[at] = cell as number;
          else if ((cell as number[]).length !== heads)
            wrong(i, `hook_z of layer ${layer} at position ${p} has ${(cell as number[]).length} heads, not ${heads}`);
          else values.set(cell as number[], at);
        });
      }
      const name = transformerLensName(kind, layer);
      tensors.push({ name, dtype: 'F32', shape: perHead ? [n, positions, heads] : [n, positions], bytes: bytesOf(values) });
      hooks[name] = { hook: HOOKS[kind].transformerLens, layer, axes: AXES[kind], method };
    }
  }

  const metadata = {
    format: TENSORS_FORMAT,
    tensors: basename(tensorsFile),
    result: basename(resultFile),
    createdAt: result.createdAt,
    model: result.model,
    dataset: result.dataset,
    // The metric every value is a change of: N = (LD − corruptedLogitDiff) / (cleanLogitDiff − corruptedLogitDiff).
    metric: result.metric,
    methods: methodsOf(result),
    values:
      'each hook tensor holds the change of the normalised logit difference when that activation is patched from the clean run into ' +
      'the corrupted run (an attribution-patching estimate, or exact, per "method"), summed over d_head (hook_z) or d_model',
    padding: { values: 'NaN', ids: -1, lengths: 'lengths' },
    hooks,
    examples: result.examples.map(({ line, clean, corrupted, correct, incorrect }) => ({ line, clean, corrupted, correct, incorrect })),
  };
  return {
    tensors: encodeSafetensors(tensors, { format: TENSORS_FORMAT, metadata: basename(tensorsMetadataFile(tensorsFile)) }),
    metadata: JSON.stringify(metadata, null, 2) + '\n',
  };
}
