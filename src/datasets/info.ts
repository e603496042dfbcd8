import fs from 'node:fs';
import { createRequire } from 'node:module';
import { cacheFolder, cacheSettings, readCacheMeta } from './cache.js';
import { readIndex, type DatasetIndex } from './index_file.js';
import { datasetLayout, readSourceRecord } from './layout.js';
import { ensureIndex, indexStaleness } from './load.js';
import { declaredSize, getEntry, type DatasetEntry, type Manifest } from './manifest.js';
import { MASKED, NO_CLASS, SPLITS, type Split } from './types.js';

export interface TaskStats {
  task: string;
  kind: 'categorical' | 'multilabel';
  /** Samples carrying a label for the task (for multi-label: at least one unmasked entry). */
  samples: number;
  /** Samples without any label for the task. */
  unlabelled: number;
  /** samples / split size. */
  coverage: number;
  /** Classes (categorical) or labels with a positive (multi-label) seen in this split, and how many exist. */
  classesPresent: number;
  classes: number;
  /** Multi-label only: masked entries inside labelled rows (e.g. CUB "not visible", BP4D 9). */
  maskedEntries?: number;
  /** Multi-label only: share of unmasked entries that are 1. */
  positiveRate?: number;
}

export interface SplitStats {
  split: Split;
  count: number;
  tasks: TaskStats[];
}

export interface DatasetInfo {
  id: string;
  name: string;
  access: string;
  format: string;
  root: string;
  indexedAt: string;
  tasks: { name: string; kind: string; labels: number }[];
  splits: SplitStats[];
  relatedness: { from: string; to: string; source: string; shape: [number, number] }[];
  /** Per cached input size: images that did not decode, per split. */
  undecodable: { size: number; split: Split; count: number; examples: string[] }[];
  notes: string[];
}

function splitStats(index: DatasetIndex, split: Split): SplitStats {
  const data = index.splits[split];
  const count = data.ids.length;
  const tasks = index.tasks.map((task): TaskStats => {
    const column = data.labels[task.name];
    if (column.kind === 'categorical') {
      const seen = new Set<number>();
      let samples = 0;
      for (const v of column.values) {
        if (v === NO_CLASS) continue;
        samples++;
        seen.add(v);
      }
      return {
        task: task.name,
        kind: 'categorical',
        samples,
        unlabelled: count - samples,
        coverage: count ? samples / count : 0,
        classesPresent: seen.size,
        classes: task.labels.length,
      };
    }
    const width = column.width;
    let samples = 0;
    let maskedEntries = 0;
    let positives = 0;
    let known = 0;
    const positiveLabels = new Uint8Array(width);
    for (let r = 0; r < count; r++) {
      let rowKnown = 0;
      let rowMasked = 0;
      for (let c = 0; c < width; c++) {
        const v = column.values[r * width + c];
        if (v === MASKED) rowMasked++;
        else {
          rowKnown++;
          if (v === 1) {
            positives++;
            positiveLabels[c] = 1;
          }
        }
      }
      if (rowKnown > 0) {
        samples++;
        maskedEntries += rowMasked;
        known += rowKnown;
      }
    }
    return {
      task: task.name,
      kind: 'multilabel',
      samples,
      unlabelled: count - samples,
      coverage: count ? samples / count : 0,
      classesPresent: positiveLabels.reduce((a, b) => a + b, 0),
      classes: width,
      maskedEntries,
      positiveRate: known ? positives / known : 0,
    };
  });
  return { split, count, tasks };
}

/** The statistics of a dataset of the manifest, indexing it first when its index is missing or stale. */
export async function describeDataset(
  id: string,
  options: { manifest: Manifest; home?: string; onWarning?: (message: string) => void },
): Promise<DatasetInfo> {
  const entry = getEntry(options.manifest, id);
  const index = await ensureIndex(entry, { home: options.home, onWarning: options.onWarning });
  return datasetInfo(entry, index, options.home);
}

export function datasetInfo(entry: DatasetEntry, index: DatasetIndex, home?: string): DatasetInfo {
  const layout = datasetLayout(entry.id, home);
  const undecodable: DatasetInfo['undecodable'] = [];
  if (fs.existsSync(layout.cacheDir)) {
    for (const folder of fs.readdirSync(layout.cacheDir)) {
      const size = Number(/^(\d+)px-/.exec(folder)?.[1]);
      if (!Number.isFinite(size)) continue;
      const settings = cacheSettings(entry, size);
      for (const split of SPLITS) {
        const meta = readCacheMeta(cacheFolder(layout.cacheDir, settings, split));
        if (meta && meta.skipped.length > 0)
          undecodable.push({
            size,
            split,
            count: meta.skipped.length,
            examples: meta.skipped.slice(0, 3).map((s) => `${s.id}: ${s.reason}`),
          });
      }
    }
  }
  return {
    id: entry.id,
    name: entry.name,
    access: entry.access,
    format: entry.format,
    root: index.root,
    indexedAt: index.createdAt,
    tasks: index.tasks.map((t) => ({ name: t.name, kind: t.kind, labels: t.labels.length })),
    splits: SPLITS.map((s) => splitStats(index, s)),
    relatedness: index.relatedness.map((r) => ({
      from: r.from,
      to: r.to,
      source: r.source,
      shape: [r.matrix.length, r.matrix[0]?.length ?? 0] as [number, number],
    })),
    undecodable,
    notes: index.notes,
  };
}

export interface DatasetStatus {
  id: string;
  name: string;
  access: string;
  format: string;
  /** Declared download size in bytes, when every file states one. */
  size?: number;
  fetched: boolean;
  indexed: boolean;
  /** Why the index is not current (when fetched but not indexed). */
  staleness?: string;
}

function packageInstalled(entry: DatasetEntry): boolean {
  const require = createRequire(import.meta.url);
  return entry.files
    .filter((f) => f.package)
    .every((f) => {
      try {
        require.resolve(`${f.package}/package.json`);
        return true;
      } catch {
        return false;
      }
    });
}

function datasetStatus(entry: DatasetEntry, home?: string): DatasetStatus {
  const layout = datasetLayout(entry.id, home);
  const fetched = entry.access === 'package' ? packageInstalled(entry) : readSourceRecord(layout) !== undefined;
  let staleness: string | undefined;
  try {
    staleness = indexStaleness(entry, readIndex(layout.indexFile));
  } catch {
    staleness = 'damaged index';
  }
  return {
    id: entry.id,
    name: entry.name,
    access: entry.access,
    format: entry.format,
    size: declaredSize(entry),
    fetched,
    indexed: staleness === undefined,
    ...(staleness && fetched ? { staleness } : {}),
  };
}

export function datasetStatuses(manifest: Manifest, home?: string): DatasetStatus[] {
  return [...manifest.datasets.values()].map((entry) => datasetStatus(entry, home));
}
