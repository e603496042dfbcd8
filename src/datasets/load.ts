import fs from 'node:fs';
import { UserError } from '../util/errors.js';
import { cacheFolder, cacheSettings, ensureSplitCache, ShardImageSource, type CacheMeta } from './cache.js';
import { buildIndex, entryDigest } from './indexer.js';
import { INDEX_VERSION, readIndex, type DatasetIndex, type IndexSplit } from './index_file.js';
import { datasetLayout } from './layout.js';
import { getEntry, loadManifest, priorMatrix, type DatasetEntry, type Manifest } from './manifest.js';
import { terminalProgress, type ProgressFactory } from './progress.js';
import { SPLITS, type DatasetView, type LabelColumn, type RelatednessTable, type Split, type SplitData, type TaskSpec } from './types.js';

export interface EnsureIndexOptions {
  home?: string;
  /** Rebuild even when the stored index is current. */
  force?: boolean;
  onWarning?: (message: string) => void;
}

/** Why a stored index cannot be used as it is, or undefined when it can. */
export function indexStaleness(entry: DatasetEntry, index: DatasetIndex | undefined): string | undefined {
  if (!index) return 'not indexed';
  if (index.version !== INDEX_VERSION) return 'index written by another version';
  if (index.entryDigest !== entryDigest(entry)) return 'manifest entry changed';
  if (!fs.existsSync(index.root)) return `data folder ${index.root} is gone`;
  return undefined;
}

/** The current index of a dataset, built first when it is missing or stale and the data is here. */
export async function ensureIndex(entry: DatasetEntry, options: EnsureIndexOptions = {}): Promise<DatasetIndex> {
  const layout = datasetLayout(entry.id, options.home);
  let index: DatasetIndex | undefined;
  try {
    index = options.force ? undefined : readIndex(layout.indexFile);
  } catch {
    // A damaged index is rebuilt like a missing one.
    index = undefined;
  }
  if (!options.force && !indexStaleness(entry, index)) return index!;
  return buildIndex(entry, { home: options.home, onWarning: options.onWarning });
}

export interface EnsureCacheOptions {
  home?: string;
  progress?: ProgressFactory;
  concurrency?: number;
  shardBytes?: number;
  /** Decode every image again, reusing nothing of an earlier build. */
  force?: boolean;
  onWait?: (message: string) => void;
}

/** Decodes every split at `size` once (or reuses the cache); returns each split's cache folder and metadata. */
export async function ensureCache(
  entry: DatasetEntry,
  index: DatasetIndex,
  size: number,
  options: EnsureCacheOptions = {},
): Promise<Record<Split, { folder: string; meta: CacheMeta }>> {
  const layout = datasetLayout(entry.id, options.home);
  const settings = cacheSettings(entry, size);
  const out = {} as Record<Split, { folder: string; meta: CacheMeta }>;
  for (const split of SPLITS) {
    const folder = cacheFolder(layout.cacheDir, settings, split);
    const meta = await ensureSplitCache(folder, split, index.splits[split], settings, {
      datasetId: entry.id,
      progress: options.progress,
      concurrency: options.concurrency,
      shardBytes: options.shardBytes,
      force: options.force,
      onWait: options.onWait,
    });
    out[split] = { folder, meta };
  }
  return out;
}

/** Tables from the dataset's files (stored in the index) plus the manifest's priors laid out for its tasks. */
function relatednessTables(entry: DatasetEntry, manifest: Manifest, index: DatasetIndex): RelatednessTable[] {
  const tables = [...index.relatedness];
  for (const rel of entry.relatedness) {
    if (!('prior' in rel)) continue;
    const prior = manifest.priors.get(rel.prior)!;
    const from = index.tasks.find((t) => t.name === rel.from)!;
    const to = index.tasks.find((t) => t.name === rel.to)!;
    tables.push({
      from: from.name,
      to: to.name,
      source: 'prior',
      matrix: priorMatrix(prior, from.labels, to.labels),
      description: rel.description ?? prior.description,
    });
  }
  return tables;
}

function selectRows(column: LabelColumn, keep: number[]): LabelColumn {
  if (column.kind === 'categorical') return { kind: 'categorical', values: Int32Array.from(keep, (i) => column.values[i]) };
  const values = new Uint8Array(keep.length * column.width);
  keep.forEach((i, k) => values.set(column.values.subarray(i * column.width, (i + 1) * column.width), k * column.width));
  return { kind: 'multilabel', width: column.width, values };
}

function splitView(
  name: Split,
  split: IndexSplit,
  tasks: TaskSpec[],
  folder: string,
  meta: CacheMeta,
  memoryLimitBytes?: number,
): SplitData {
  const images = new ShardImageSource(folder, meta, { memoryLimitBytes });
  // Images that did not decode are left out, with their labels, so positions line up with the cache.
  if (meta.skipped.length === 0)
    return {
      split: name,
      count: split.ids.length,
      ids: split.ids,
      images,
      labels: Object.fromEntries(tasks.map((t) => [t.name, split.labels[t.name]])),
    };
  const skipped = new Set(meta.skipped.map((s) => s.index));
  const keep: number[] = [];
  for (let i = 0; i < split.ids.length; i++) if (!skipped.has(i)) keep.push(i);
  return {
    split: name,
    count: keep.length,
    ids: keep.map((i) => split.ids[i]),
    images,
    labels: Object.fromEntries(tasks.map((t) => [t.name, selectRows(split.labels[t.name], keep)])),
  };
}

export interface LoadDatasetOptions {
  /** Square input size in pixels the images are resized to. */
  inputSize: number;
  /** MTL_BENCH_HOME override. */
  home?: string;
  /** An already loaded manifest (else the package's datasets.yaml plus `manifestFiles`). */
  manifest?: Manifest;
  manifestFiles?: string[];
  /** Progress of index/cache builds; default: a bar on stderr when it is a terminal. */
  progress?: ProgressFactory;
  /** Splits whose cache is at most this many bytes are held in memory (default 256 MB). */
  memoryLimitBytes?: number;
  onWarning?: (message: string) => void;
}

/**
 * The trainer's entry point: the dataset's tasks, splits with labels and cached images, and its
 * relatedness tables. Builds the index and the image cache on first use when the data is here
 * (always the case for package datasets such as openmoji).
 */
export async function loadDataset(id: string, options: LoadDatasetOptions): Promise<DatasetView> {
  if (!Number.isInteger(options.inputSize) || options.inputSize < 4 || options.inputSize > 1024) {
    throw new UserError(`input size must be a whole number of pixels between 4 and 1024, got ${options.inputSize}`);
  }
  const manifest = options.manifest ?? loadManifest({ extra: options.manifestFiles });
  const entry = getEntry(manifest, id);
  const index = await ensureIndex(entry, { home: options.home, onWarning: options.onWarning });
  const caches = await ensureCache(entry, index, options.inputSize, {
    home: options.home,
    progress: options.progress ?? terminalProgress(),
    onWait: options.onWarning,
  });
  const splits = Object.fromEntries(
    SPLITS.map((s) => [s, splitView(s, index.splits[s], index.tasks, caches[s].folder, caches[s].meta, options.memoryLimitBytes)]),
  ) as Record<Split, SplitData>;
  return { id: entry.id, name: entry.name, tasks: index.tasks, splits, relatedness: relatednessTables(entry, manifest, index) };
}
