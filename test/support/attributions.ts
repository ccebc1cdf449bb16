import type { ExampleAttributions } from '../../src/shared/result';

/** All values of each hook kind, examples concatenated, in [example][layer][pos](,[head]) order. */
export function flattenAttributions(list: ExampleAttributions[]): Record<'z' | 'resid_pre' | 'attn_out' | 'mlp_out', number[]> {
  return {
    z: list.flatMap((a) => a.z.flat(2)),
    resid_pre: list.flatMap((a) => a.residPre.flat()),
    attn_out: list.flatMap((a) => a.attnOut.flat()),
    mlp_out: list.flatMap((a) => a.mlpOut.flat()),
  };
}
