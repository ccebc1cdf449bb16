// Model names researchers already type, beyond org/name: the hub's bare canonical ids and TransformerLens's aliases.
//
// Bare canonical ids (`gpt2`, `distilgpt2`, …) are repos from before the hub had organisations. The hub still
// serves them under the bare name, redirecting to the organisation's repo (openai-community/gpt2); transformers'
// from_pretrained("gpt2") therefore caches them as models--gpt2, and so do we (the repo id stays the bare name),
// so the two share one copy. Only the canonical ids of families the engine runs are listed: others would be
// refused when their config.json is read anyway, and a bare word that is neither a folder nor listed is more
// likely a mistyped folder than a repo.
//
// TransformerLens names models by its own aliases (HookedTransformer.from_pretrained("gpt2-small")); its
// MODEL_ALIASES table (transformer_lens/loading_from_pretrained.py) maps them to hub ids, case-insensitively.
// The aliases of the families the engine runs map to the same repos here, with a note naming the repo.

/** The hub's bare canonical ids of models in the families the engine runs (GPT-2), as the hub spells them. */
const CANONICAL_HUB_IDS: readonly string[] = ['gpt2', 'gpt2-medium', 'gpt2-large', 'gpt2-xl', 'distilgpt2'];

/** TransformerLens's aliases (its MODEL_ALIASES) → the hub id it loads, for the GPT-2 and GPT-Neo families. */
const TRANSFORMER_LENS_ALIASES: Readonly<Record<string, readonly string[]>> = {
  gpt2: ['gpt2-small'],
  distilgpt2: ['distillgpt2', 'distill-gpt2', 'distil-gpt2', 'gpt2-xs'],
  'EleutherAI/gpt-neo-125M': ['gpt-neo-125M', 'gpt-neo-small', 'neo-small', 'neo'],
  'EleutherAI/gpt-neo-1.3B': ['gpt-neo-1.3B', 'gpt-neo-medium', 'neo-medium'],
  'EleutherAI/gpt-neo-2.7B': ['gpt-neo-2.7B', 'gpt-neo-large', 'neo-large'],
  'roneneldan/TinyStories-1M': ['tiny-stories-1M'],
  'roneneldan/TinyStories-3M': ['tiny-stories-3M'],
  'roneneldan/TinyStories-8M': ['tiny-stories-8M'],
  'roneneldan/TinyStories-28M': ['tiny-stories-28M'],
  'roneneldan/TinyStories-33M': ['tiny-stories-33M'],
  'roneneldan/TinyStories-Instruct-1M': ['tiny-stories-instruct-1M'],
  'roneneldan/TinyStories-Instruct-3M': ['tiny-stories-instruct-3M'],
  'roneneldan/TinyStories-Instruct-8M': ['tiny-stories-instruct-8M'],
  'roneneldan/TinyStories-Instruct-28M': ['tiny-stories-instruct-28M'],
  'roneneldan/TinyStories-Instruct-33M': ['tiny-stories-instruct-33M'],
  'roneneldan/TinyStories-1Layer-21M': ['tiny-stories-1L-21M'],
  'roneneldan/TinyStories-2Layers-33M': ['tiny-stories-2L-33M'],
  'roneneldan/TinyStories-Instuct-1Layer-21M': ['tiny-stories-instruct-1L-21M'],
  'roneneldan/TinyStories-Instruct-2Layers-33M': ['tiny-stories-instruct-2L-33M'],
};

export interface HubName {
  /** The repo id to resolve: a bare canonical id stays bare (the cache folder Python uses for it). */
  readonly repo: string;
  /** For an alias: what it stands for, to tell the user. */
  readonly note?: string;
}

const CANONICAL = new Map(CANONICAL_HUB_IDS.map((id) => [id.toLowerCase(), id]));
const ALIASES = new Map(
  Object.entries(TRANSFORMER_LENS_ALIASES).flatMap(([repo, aliases]) => aliases.map((alias) => [alias.toLowerCase(), { alias, repo }] as const)),
);

/** Where the hub redirects a bare canonical id (what a note shows); the org repo of the same model. */
const CANONICAL_HOMES: Readonly<Record<string, string>> = {
  gpt2: 'openai-community/gpt2',
  'gpt2-medium': 'openai-community/gpt2-medium',
  'gpt2-large': 'openai-community/gpt2-large',
  'gpt2-xl': 'openai-community/gpt2-xl',
  distilgpt2: 'distilbert/distilgpt2',
};

/** The repo a bare canonical id or a TransformerLens alias names (case-insensitive), or undefined. */
export function findHubName(name: string): HubName | undefined {
  const key = name.trim().toLowerCase();
  const canonical = CANONICAL.get(key);
  if (canonical) return { repo: canonical };
  const aliased = ALIASES.get(key);
  if (!aliased) return undefined;
  const home = CANONICAL_HOMES[aliased.repo];
  const what = home ? `the hub's ${aliased.repo} (${home})` : aliased.repo;
  return { repo: aliased.repo, note: `${name.trim()} is TransformerLens's name for ${what}; loading ${aliased.repo}` };
}

/** A few bare names that resolve, for messages. */
export const BARE_NAME_EXAMPLES = 'gpt2, gpt2-medium, distilgpt2, or TransformerLens names such as gpt2-small';
