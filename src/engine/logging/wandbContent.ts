// What a run sends to Weights & Biases, built from a Result with no network: the run's config, one history row of
// metrics (its summary is the same row), W&B tables of the head and position maps, the heads heatmap as a PNG, and
// the artefact manifest of the Result's files. The formats are W&B's own, as its public Python client writes them
// (wandb/sdk/data_types/table.py, base_types/media.py, artifacts/artifact_manifests/artifact_manifest_v1.py):
// a table logged to a run is a run file media/table/<key>_<step>_<sha256[:20]>.table.json holding
// {"columns", "data"}, referred to from the history row by {"_type": "table-file", path, sha256, size, ncols, nrows};
// an image likewise under media/images/ as "image-file".
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { Result } from '../../shared/result';
import { concentration, DEFAULT_TOP_K, topCells } from '../../shared/compare';
import { heatmapPng } from './heatmapPng';

/** W&B's limit on rows of a table logged to a run (wandb.Table.MAX_ROWS); larger maps are refused, not truncated silently. */
export const MAX_TABLE_ROWS = 10_000;

/** A run file: its path inside the run (as W&B shows it) and its bytes. */
export interface RunFile {
  path: string;
  bytes: Buffer;
}

/** A table's contents as W&B stores it (the .table.json file). */
export interface TableJson {
  columns: string[];
  data: Array<Array<string | number | null>>;
}

/** What one Result sends: config, the history row (also the summary) and the media files the row refers to. */
export interface RunContent {
  config: Record<string, unknown>;
  row: Record<string, unknown>;
  files: RunFile[];
}

/** Extra settings of the run that the Result does not record (the batch size), from the front end. */
export type ExtraConfig = Record<string, string | number | boolean>;

const sha256Hex = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** W&B's media file name: <key>_<step>_<first 20 hex of the sha256><extension>. */
function mediaFile(folder: string, key: string, step: number, bytes: Buffer, extension: string): { file: RunFile; sha256: string } {
  const sha256 = sha256Hex(bytes);
  return { file: { path: `${folder}/${key}_${step}_${sha256.slice(0, 20)}${extension}`, bytes }, sha256 };
}

/** A table logged at `step` under `key`: the file to upload and the history value that points at it. */
export function tableMedia(key: string, step: number, table: TableJson): { file: RunFile; value: Record<string, unknown> } {
  if (table.data.length > MAX_TABLE_ROWS) throw new Error(`the ${key} table has ${table.data.length} rows, more than W&B's ${MAX_TABLE_ROWS}`);
  for (const row of table.data) {
    if (row.length !== table.columns.length) throw new Error(`the ${key} table has a row of ${row.length} values for ${table.columns.length} columns`);
  }
  const bytes = Buffer.from(JSON.stringify(table));
  const { file, sha256 } = mediaFile('media/table', key, step, bytes, '.table.json');
  return {
    file,
    value: { _type: 'table-file', sha256, size: bytes.length, path: file.path, ncols: table.columns.length, nrows: table.data.length, log_mode: 'IMMUTABLE' },
  };
}

/** A PNG logged at `step` under `key`. */
export function imageMedia(
  key: string,
  step: number,
  png: { bytes: Buffer; width: number; height: number },
): { file: RunFile; value: Record<string, unknown> } {
  const { file, sha256 } = mediaFile('media/images', key, step, png.bytes, '.png');
  return { file, value: { _type: 'image-file', sha256, size: png.bytes.length, path: file.path, format: 'png', width: png.width, height: png.height } };
}

/** A [row][column] map as a long table (one row per cell), the shape W&B's heatmap charts read. */
export function mapTable(map: readonly number[][], rowName: string, columnName: string, valueName = 'attribution'): TableJson {
  return { columns: [rowName, columnName, valueName], data: map.flatMap((row, r) => row.map((value, c) => [r, c, finiteOrNull(value)])) };
}

/** JSON has no NaN or Infinity: W&B (and JSON.parse) would reject the file, so such a value is null. */
const finiteOrNull = (value: number) => (Number.isFinite(value) ? value : null);

/** The run's config: what was run, on what, how; W&B stores each key as {"value": v}. */
export function runConfig(result: Result, extra: ExtraConfig = {}): Record<string, unknown> {
  const config: Record<string, unknown> = {
    model: result.model.source,
    model_type: result.model.modelType,
    architecture: result.model.architecture,
    layers: result.model.layers,
    heads: result.model.heads,
    d_model: result.model.dModel,
    weights_dtype: result.model.dtype,
    dataset: basename(result.dataset.file),
    dataset_hash: result.dataset.contentHash ?? null,
    n: result.dataset.examples,
    method: result.run?.method ?? 'atp',
    method_requested: result.run?.requested ?? 'atp',
    metric: result.metric.name,
    device: result.device,
    precision: result.runtime?.precision ?? 'float32',
    engine_version: result.provenance?.engineVersion ?? null,
    seed: result.provenance?.seed ?? null,
    ...extra,
    // The batch the run used, where the Result records it: less than the one asked for when that did not fit in memory.
    ...(result.runtime?.batchSize !== undefined ? { batch_size: result.runtime.batchSize } : {}),
  };
  return Object.fromEntries(Object.entries(config).map(([key, value]) => [key, { value }]));
}

/**
 * The metrics of one Result as a history row at `step` with the media it refers to: baselines, concentration,
 * timings, check agreement, and the head/position maps as tables and the head map as a PNG.
 */
export function runContent(
  result: Result,
  options: { step?: number; runtimeSeconds: number; timestamp: number; top?: number; extra?: ExtraConfig },
): RunContent {
  const step = options.step ?? 0;
  const top = options.top ?? DEFAULT_TOP_K;
  const files: RunFile[] = [];
  const row: Record<string, unknown> = { _step: step, _runtime: options.runtimeSeconds, _timestamp: options.timestamp };
  const metric = (key: string, value: number | null | undefined) => {
    if (typeof value === 'number' && Number.isFinite(value)) row[key] = value;
  };
  metric('baseline/clean_logit_diff', result.metric.cleanLogitDiff);
  metric('baseline/corrupted_logit_diff', result.metric.corruptedLogitDiff);
  metric('baseline/gap', result.metric.cleanLogitDiff - result.metric.corruptedLogitDiff);
  metric('examples', result.dataset.examples);
  // A fixed K, so the metric keeps one name across runs (--top changes only the top-heads table).
  const spread = concentration(result.heads, DEFAULT_TOP_K);
  metric(`heads/top${DEFAULT_TOP_K}_share`, spread.topKShare);
  metric('heads/normalised_entropy', spread.normalisedEntropy);
  metric('heads/effective_heads', spread.effectiveHeads);
  metric('heads/total_abs_attribution', spread.total);
  const best = topCells(result.heads, 1)[0];
  if (best) metric('heads/top_value', best.value);
  for (const [name, seconds] of Object.entries(result.timings ?? {})) metric(`timing/${snake(name)}`, seconds);
  if (result.checks) {
    metric('checks/pearson', result.checks.pearson);
    metric('checks/spearman', result.checks.spearman);
  }
  const media = (key: string, made: { file: RunFile; value: Record<string, unknown> }) => {
    files.push(made.file);
    row[key] = made.value;
  };
  media('heads', tableMedia('heads', step, mapTable(result.heads, 'layer', 'head')));
  media(
    'top_heads',
    tableMedia('top_heads', step, {
      columns: ['rank', 'head', 'layer', 'head_index', 'attribution'],
      data: topCells(result.heads, Math.max(top, 10)).map((cell, index) => [
        index + 1,
        `L${cell.layer}H${cell.head}`,
        cell.layer,
        cell.head,
        finiteOrNull(cell.value),
      ]),
    }),
  );
  if (result.positions && result.positions.length * (result.positions[0]?.length ?? 0) <= MAX_TABLE_ROWS) {
    media('positions', tableMedia('positions', step, mapTable(result.positions, 'layer', 'position')));
  }
  if (result.heads.length > 0 && result.heads[0].length > 0) media('heads_heatmap', imageMedia('heads_heatmap', step, heatmapPng(result.heads)));
  return { config: runConfig(result, options.extra), row, files };
}

const snake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

// ---- artefacts -----------------------------------------------------------------------------------------------

/** W&B's file digest: the base64 MD5 of the bytes (what createArtifactFiles and the manifest carry). */
export const md5Base64 = (bytes: Buffer) => createHash('md5').update(bytes).digest('base64');

export interface ManifestEntry {
  digest: string;
  size: number;
  birthArtifactID?: string;
}

/** The artefact's digest as W&B computes it: hex MD5 of "wandb-artifact-manifest-v1\n" then "path:digest\n" per entry, sorted by path. */
export function artifactDigest(entries: Record<string, { digest: string }>): string {
  const hash = createHash('md5').update('wandb-artifact-manifest-v1\n');
  for (const path of Object.keys(entries).sort()) hash.update(`${path}:${entries[path].digest}\n`);
  return hash.digest('hex');
}

/** wandb_manifest.json (manifest v1, W&B's storage policy), as the Python client writes it (json.dump, indent 4). */
export function manifestJson(entries: Record<string, ManifestEntry>): Buffer {
  const contents = Object.fromEntries(Object.keys(entries).map((path) => [path, entries[path]]));
  const manifest = { version: 1, storagePolicy: 'wandb-storage-policy-v1', storagePolicyConfig: { storageLayout: 'V2' }, contents };
  return Buffer.from(JSON.stringify(manifest, null, 4));
}

/** An artefact name W&B accepts (letters, digits, '-', '_', '.'), from a file name. */
export function artifactName(text: string): string {
  const name = text
    .replace(/\.atp-result\.json$|\.json$/i, '')
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return `atp-${name || 'result'}`.slice(0, 128);
}
