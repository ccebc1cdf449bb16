// Logs one finished run to Weights & Biases: a W&B run with the run's config, one history row (and summary) of its
// metrics with the head and position maps as tables and the head map as a PNG, and the Result (its JSON and, for a
// large Result, its safetensors sidecar) as an artefact of type "atp-result". Called after the Result is written:
// whatever goes wrong here becomes a warning naming what failed, never an error, so a run is never lost to it.
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Result } from '../../shared/result';
import { type WandbOutcome, type WandbTarget, wandbProjectPath } from '../../shared/wandb';
import { cellLabel, type SweepCell } from '../sweep/plan';
import { modelLabel } from '../../shared/modelNames';
import { DEFAULT_BASE_URL, redactKey, WandbApi, WandbError } from './wandbApi';
import { artifactDigest, artifactName, type ExtraConfig, manifestJson, type ManifestEntry, md5Base64, runContent } from './wandbContent';
import { readInputFile } from '../../lib/files/readInput';

export interface WandbRunOptions {
  /** The run's name on its page (W&B's display name). */
  displayName: string;
  /** W&B's job type: "patch" for atp patch, "sweep-cell" for a sweep's cells. */
  jobType: string;
  /** Runs of one sweep share a group. */
  group?: string;
  /** What the Result does not record (the batch size). */
  extraConfig?: ExtraConfig;
  /** Heads in the top-heads table (at least 10). */
  top?: number;
  /** Seconds the run took (W&B's _runtime); absent: the Result's timings. */
  runtimeSeconds?: number;
  /** Per request; default 30 s. */
  timeoutMs?: number;
}

/** The W&B group of a sweep's runs: its folder's name, so a resumed sweep's new cells join the same group. */
export const sweepGroup = (outDir: string) => `atp-sweep-${path.basename(path.resolve(outDir))}`;

/** How a sweep's cell is logged (CLI and worker alike): named by its model's short name and feature, grouped by the sweep. */
export function sweepCellRunOptions(cell: SweepCell, outDir: string, settings: { batchSize: number; top?: number }): WandbRunOptions {
  const group = sweepGroup(outDir);
  return {
    displayName: cellLabel({ ...cell, model: modelLabel(cell.model) }),
    jobType: 'sweep-cell',
    group,
    extraConfig: { batch_size: settings.batchSize, sweep: group, sweep_model: cell.model, feature: cell.feature, command_set: cell.commandSet ?? 'none' },
    ...(settings.top !== undefined ? { top: settings.top } : {}),
  };
}

/** W&B's run ids: 8 characters of [a-z0-9]. */
export function newRunId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(8)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

/** The web page of a run: wandb.ai for W&B's cloud API, the server itself when self-hosted. */
export function runPageUrl(baseUrl: string, run: { entity: string; project: string; name: string }): string {
  const app = baseUrl.replace(/\/+$/, '') === DEFAULT_BASE_URL ? 'https://wandb.ai' : baseUrl.replace(/\/+$/, '');
  return `${app}/${encodeURIComponent(run.entity)}/${encodeURIComponent(run.project)}/runs/${encodeURIComponent(run.name)}`;
}

/** The Result's files as the artefact holds them: the JSON under `name` and the sidecar its JSON names, if any. */
export function resultArtifactFiles(resultFile: string, name: string): Array<{ name: string; bytes: Buffer }> {
  const json = readInputFile(resultFile, 'result');
  const files = [{ name, bytes: json }];
  let sidecar: unknown;
  try {
    sidecar = (JSON.parse(json.toString('utf8').replace(/^\uFEFF/, '')) as { sidecar?: { file?: unknown } } | null)?.sidecar?.file;
  } catch {
    sidecar = undefined; // not ours to judge here: the Result was checked when it was written
  }
  // Only a file beside the JSON (what our writer names): never a path that reaches elsewhere.
  if (typeof sidecar === 'string' && sidecar === path.basename(sidecar))
    files.push({ name: sidecar, bytes: readInputFile(path.join(path.dirname(resultFile), sidecar), 'sidecar') });
  return files;
}

const failure = (what: string, error: unknown) => `W&B logging failed (${what}): ${error instanceof Error ? error.message : String(error)}`;

const refusedKey = (error: unknown) => error instanceof WandbError && error.kind === 'auth';

/**
 * Logs a run whose Result is already written at `resultFile`. Never throws: a failure is a warning that says what
 * failed (a refused key names where the key came from, a network failure names the URL) and that the Result is saved.
 */
export async function logResultToWandb(target: WandbTarget, result: Result, resultFile: string, options: WandbRunOptions): Promise<WandbOutcome> {
  const outcome = await logRun(target, result, resultFile, options);
  // Whatever a server sent back (an entity, a run name, an error text echoing our headers) reaches the user without
  // the key in any form: the last line of defence behind WandbApi's own redaction of quoted server text.
  const clean = (text: string) => redactKey(text, target.apiKey);
  return { ...outcome, urls: outcome.urls.map(clean), warnings: outcome.warnings.map(clean) };
}

async function logRun(target: WandbTarget, result: Result, resultFile: string, options: WandbRunOptions): Promise<WandbOutcome> {
  const baseUrl = target.baseUrl ?? DEFAULT_BASE_URL;
  const api = new WandbApi({ apiKey: target.apiKey, keySource: target.keySource, baseUrl, timeoutMs: options.timeoutMs });
  const saved = `; the Result is saved at ${resultFile}`;
  let run: { entity: string; project: string; name: string };
  let content: ReturnType<typeof runContent>;
  try {
    content = runContent(result, {
      runtimeSeconds: options.runtimeSeconds ?? Object.values(result.timings ?? {}).reduce((sum, seconds) => sum + seconds, 0),
      timestamp: Date.now() / 1000,
      top: options.top,
      extra: options.extraConfig,
    });
  } catch (error) {
    return { urls: [], warnings: [failure('preparing the metrics', error) + saved] };
  }
  try {
    const entity = target.entity ?? (await api.viewer()).entity;
    run = await api.upsertRun({
      entity,
      project: target.project,
      name: newRunId(),
      displayName: options.displayName,
      jobType: options.jobType,
      config: content.config,
      ...(options.group ? { group: options.group } : {}),
    });
  } catch (error) {
    const warning = failure(`creating the run in ${wandbProjectPath(target)}`, error) + saved;
    return { urls: [], warnings: [warning], ...(refusedKey(error) ? { keyRefused: true } : {}) };
  }
  const url = runPageUrl(baseUrl, run);
  const warnings: string[] = [];
  const uploaded: string[] = [];
  let keyRefused = false;
  try {
    const targets = await api.createRunFiles(
      run,
      content.files.map((file) => file.path),
    );
    for (const file of content.files) {
      await api.upload(targets.get(file.path)!, file.bytes, file.path);
      uploaded.push(file.path);
    }
    const line = JSON.stringify(content.row);
    await api.fileStream(run, { history: { offset: 0, lines: [line] }, summary: line });
  } catch (error) {
    warnings.push(failure(`logging the metrics of ${url}`, error) + saved);
    keyRefused ||= refusedKey(error);
  }
  if (warnings.length === 0) {
    try {
      const name = path.basename(resultFile);
      await logArtifact(api, run, resultArtifactFiles(resultFile, name), result, name);
    } catch (error) {
      warnings.push(failure(`uploading the Result as an artefact of ${url}`, error) + saved);
      keyRefused ||= refusedKey(error);
    }
  }
  try {
    // The run ends either way: a W&B run left "running" would look as if it were still computing.
    await api.fileStream(run, { uploaded, complete: { exitCode: warnings.length === 0 ? 0 : 1 } });
  } catch (error) {
    if (warnings.length === 0) warnings.push(failure(`finishing ${url}`, error) + saved);
  }
  return { urls: [url], warnings, ...(keyRefused ? { keyRefused } : {}) };
}

/**
 * The artefact flow of W&B's artifact saver: CreateArtifact (by manifest digest; a digest the server already holds
 * comes back COMMITTED and nothing more is sent) → a manifest record → CreateArtifactFiles (upload URLs by MD5) →
 * PUT each file → the manifest JSON uploaded under its MD5 → CommitArtifact.
 */
async function logArtifact(
  api: WandbApi,
  run: { entity: string; project: string; name: string },
  files: Array<{ name: string; bytes: Buffer }>,
  result: Result,
  resultName: string,
): Promise<void> {
  const entries: Record<string, ManifestEntry> = {};
  for (const file of files) entries[file.name] = { digest: md5Base64(file.bytes), size: file.bytes.length };
  const scope = { entity: run.entity, project: run.project, runName: run.name };
  const artifact = await api.createArtifact({
    ...scope,
    type: 'atp-result',
    name: artifactName(resultName),
    digest: artifactDigest(entries),
    description: `Attribution patching Result: ${result.model.source} on ${path.basename(result.dataset.file)} (${result.dataset.examples} examples)`,
    metadata: { schema: result.schema, model: result.model.source, dataset: path.basename(result.dataset.file), method: result.run?.method ?? 'atp' },
  });
  if (artifact.state === 'COMMITTED') return;
  if (artifact.state !== 'PENDING' && artifact.state !== 'DELETED')
    throw new WandbError(`W&B CreateArtifact: unknown artefact state "${artifact.state}"`, 'server');
  const base = artifact.latestId ? { baseArtifactId: artifact.latestId } : {};
  const manifest = await api.createArtifactManifest({ ...scope, ...base, artifactId: artifact.id, digest: '', includeUpload: false });
  const uploads = await api.createArtifactFiles(
    artifact.id,
    manifest.id,
    files.map((file) => ({ name: file.name, md5: entries[file.name].digest })),
  );
  for (const file of files) {
    const upload = uploads.get(file.name)!;
    entries[file.name].birthArtifactID = upload.birthArtifactId;
    if (upload.upload) await api.upload(upload.upload, file.bytes, file.name);
  }
  const manifestBytes = manifestJson(entries);
  const recorded = await api.createArtifactManifest({ ...scope, ...base, artifactId: artifact.id, digest: md5Base64(manifestBytes), includeUpload: true });
  if (!recorded.upload) throw new WandbError('W&B CreateArtifactManifest gave no upload URL for wandb_manifest.json', 'server');
  await api.upload(recorded.upload, manifestBytes, 'wandb_manifest.json');
  await api.commitArtifact(artifact.id);
}
