// Experiment logging to Weights & Biases, as both front ends name it: where to log ([entity/]project), with which key
// and server, and what came of it. The client is src/engine/logging/ (the CLI and the worker run it); the extension
// host only reads its setting and secret and passes them on, so this file holds no I/O.
import { InputError } from './errors';
import { fieldRef } from './fields';

/** Where a run is logged, and with what. apiKey travels in memory only: never printed, logged or written. */
export interface WandbTarget {
  /** Absent: the key's default entity (W&B's viewer). */
  entity?: string;
  project: string;
  apiKey: string;
  /** Where the key came from, in the front end's words, for the message when W&B refuses it. */
  keySource: string;
  /** A self-hosted server (WANDB_BASE_URL); absent: https://api.wandb.ai. */
  baseUrl?: string;
}

/** What logging one run (or a sweep's runs) came to: the runs' pages, and a warning per failure. */
export interface WandbOutcome {
  urls: string[];
  warnings: string[];
  /** W&B refused the key (401, or no access to the entity): the editor offers to set another. */
  keyRefused?: boolean;
}

/** `[entity/]project` as the user wrote it, for messages. */
export const wandbProjectPath = (target: { entity?: string; project: string }): string =>
  target.entity ? `${target.entity}/${target.project}` : target.project;

/** Adds one run's outcome to a sweep's. */
export function addWandbOutcome(into: WandbOutcome, outcome: WandbOutcome): void {
  into.urls.push(...outcome.urls);
  into.warnings.push(...outcome.warnings);
  if (outcome.keyRefused) into.keyRefused = true;
}

// W&B's own rule for entity and project names: no slashes, backslashes, '#', '?', '%' or ':', at most 128 characters.
const NAME = /^[^/\\#?%:\s]{1,128}$/;

/** `[entity/]project` (the --wandb flag, the attributionPatching.wandb.project setting); an InputError names the field. */
export function parseWandbProject(text: string): { entity?: string; project: string } {
  const trimmed = text.trim();
  const parts = trimmed.split('/');
  if (parts.length > 2 || !parts.every((part) => NAME.test(part))) {
    throw new InputError(
      `${fieldRef('wandb', JSON.stringify(trimmed))}: expected PROJECT or ENTITY/PROJECT, names without spaces, \\, #, ?, % or : (at most 128 characters each)`,
      { field: 'wandb' },
    );
  }
  return parts.length === 2 ? { entity: parts[0], project: parts[1] } : { project: parts[0] };
}

/** WANDB_BASE_URL checked: an http(s) URL, without a trailing slash; undefined when unset or empty. */
export function parseWandbBaseUrl(text: string | undefined): string | undefined {
  const value = text?.trim();
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw InputError.about('wandbBaseUrl', `"${value}" is not a URL (expected e.g. https://wandb.example.com)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw InputError.about('wandbBaseUrl', `"${value}" is not an http(s) URL`);
  return value.replace(/\/+$/, '');
}

/**
 * The command line's target: `--wandb [entity/]project` with the key from WANDB_API_KEY and the server from
 * WANDB_BASE_URL. Refused before the run (no key, a bad name or URL) rather than after it: a run's cost is never
 * spent on logging that cannot happen.
 */
export function wandbTargetFromEnv(projectText: string, env: Record<string, string | undefined>): WandbTarget {
  const where = parseWandbProject(projectText);
  const apiKey = env.WANDB_API_KEY?.trim();
  if (!apiKey) {
    throw new InputError(
      `${fieldRef('wandb')} needs a W&B API key in ${fieldRef('wandbKey')} (see https://wandb.ai/authorize), or a login: \`wandb login\` saves it in ~/.netrc`,
      { field: 'wandbKey' },
    );
  }
  const baseUrl = parseWandbBaseUrl(env.WANDB_BASE_URL);
  return { ...where, apiKey, keySource: 'WANDB_API_KEY', ...(baseUrl ? { baseUrl } : {}) };
}
