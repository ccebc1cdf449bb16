// The hook vocabulary: one row per hook point, with every spelling of it the project uses — the engine's kind
// (graph names, Result.checks' Component.hook), the Result's attributions field, TransformerLens' hook name, the
// short label views show, and the shapes. Everything that maps one spelling to another looks it up here.

/** The hook points every architecture exposes, in the order graphs declare and compute them. */
export const HOOK_KINDS = ['resid_pre', 'z', 'attn_out', 'mlp_out'] as const;
export type HookKind = (typeof HOOK_KINDS)[number];

/** The Result's ExampleAttributions field of each hook (JSON field names, kept for compatibility). */
export type AttributionField = 'residPre' | 'z' | 'attnOut' | 'mlpOut';

export interface HookRow {
  readonly kind: HookKind;
  /** Where its attributions sit in a Result: example.attributions[field]. */
  readonly field: AttributionField;
  /** TransformerLens' hook name with `{l}` for the layer (HookedTransformer's cache keys). */
  readonly transformerLens: string;
  /** The short label views and reports show (TransformerLens' name without the block prefix). */
  readonly label: string;
  /** Whether the hook has one entry per query head (only hook_z). */
  readonly perHead: boolean;
  /** The activation's shape in the forward pass. */
  readonly activationShape: readonly string[];
  /** The attribution's shape in a Result (summed over the last activation axis). */
  readonly attributionShape: readonly string[];
}

export const HOOKS: Readonly<Record<HookKind, HookRow>> = {
  resid_pre: {
    kind: 'resid_pre',
    field: 'residPre',
    transformerLens: 'blocks.{l}.hook_resid_pre',
    label: 'hook_resid_pre',
    perHead: false,
    activationShape: ['batch', 'seq', 'dModel'],
    attributionShape: ['layer', 'pos'],
  },
  z: {
    kind: 'z',
    field: 'z',
    transformerLens: 'blocks.{l}.attn.hook_z',
    label: 'hook_z',
    perHead: true,
    activationShape: ['batch', 'seq', 'heads', 'dHead'],
    attributionShape: ['layer', 'pos', 'head'],
  },
  attn_out: {
    kind: 'attn_out',
    field: 'attnOut',
    transformerLens: 'blocks.{l}.hook_attn_out',
    label: 'hook_attn_out',
    perHead: false,
    activationShape: ['batch', 'seq', 'dModel'],
    attributionShape: ['layer', 'pos'],
  },
  mlp_out: {
    kind: 'mlp_out',
    field: 'mlpOut',
    transformerLens: 'blocks.{l}.hook_mlp_out',
    label: 'hook_mlp_out',
    perHead: false,
    activationShape: ['batch', 'seq', 'dModel'],
    attributionShape: ['layer', 'pos'],
  },
};

/** The Result fields of the hooks with one value per position (no heads): resid_pre, attn_out, mlp_out. */
export type PositionField = Exclude<AttributionField, 'z'>;
export type PositionHookRow = HookRow & { readonly field: PositionField };
export const POSITION_FIELDS = HOOK_KINDS.filter((kind) => !HOOKS[kind].perHead).map((kind) => HOOKS[kind].field) as readonly PositionField[];

/** { residPre, attnOut, mlpOut } (the Result's per-position fields), each the value of its hook's kind. */
export function byPositionField<T>(valueOf: (kind: HookKind) => T): Record<PositionField, T> {
  const fields = {} as Record<PositionField, T>;
  for (const kind of HOOK_KINDS) {
    const field = HOOKS[kind].field;
    if (field !== 'z') fields[field] = valueOf(kind);
  }
  return fields;
}

export function isHookKind(value: unknown): value is HookKind {
  return typeof value === 'string' && (HOOK_KINDS as readonly string[]).includes(value);
}

/** The hook whose attributions sit in example.attributions[field]. */
export function hookOfField(field: AttributionField): HookRow {
  const row = HOOK_KINDS.map((kind) => HOOKS[kind]).find((hook) => hook.field === field);
  if (!row) throw new Error(`no hook has the Result field "${field}"`);
  return row;
}

/** The hook whose Result field a string names, or undefined (e.g. a panel selection's kind 'attnOut'). */
export function hookOfFieldName(name: string): HookRow | undefined {
  return HOOK_KINDS.map((kind) => HOOKS[kind]).find((hook) => hook.field === name);
}

/** TransformerLens' name of a hook at one layer, e.g. blocks.3.attn.hook_z. */
export function transformerLensName(kind: HookKind, layer: number): string {
  return HOOKS[kind].transformerLens.replace('{l}', String(layer));
}
