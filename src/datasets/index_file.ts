import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';
import { MASKED, NO_CLASS, SPLITS, type LabelColumn, type RelatednessTable, type Split, type TaskSpec } from './types.js';

/**
 * The normalized index every adapter produces: per split, sample ids, where each image comes from
 * and one label column per task. Stored as one JSON file, columnar so that 400k-sample datasets
 * stay compact (multi-label matrices as base64 bytes).
 */

export const INDEX_VERSION = 1;

/** A face or object box in source pixels: x, y, width, height. */
export type Box = [number, number, number, number];

export type ImageRefs =
  /** Image files under `root` (jpg, png, svg, …), optionally cropped to a box before resizing. */
  | { kind: 'files'; root: string; paths: string[]; boxes?: (Box | null)[] }
  /** Items of an IDX image file (MNIST-style), by position. */
  | { kind: 'idx'; file: string; items: number[] };

export interface IndexSplit {
  ids: string[];
  images: ImageRefs;
  labels: Record<string, LabelColumn>;
}

export interface DatasetIndex {
  version: number;
  id: string;
  name: string;
  format: string;
  createdAt: string;
  /** Digest of the manifest entry's index-relevant keys: a changed entry means a stale index. */
  entryDigest: string;
  root: string;
  tasks: TaskSpec[];
  /** Tables read from the dataset's own files (priors are resolved from the manifest at load time). */
  relatedness: RelatednessTable[];
  splits: Record<Split, IndexSplit>;
  /** Things the adapter wants the user to know (skipped rows, missing frames, …). */
  notes: string[];
}

/** Collects samples one by one and lays them out as columns per split. */
export class IndexBuilder {
  private readonly parts = new Map<
    Split,
    {
      ids: string[];
      images: (string | number)[];
      boxes: (Box | null)[];
      hasBox: boolean;
      categorical: Map<string, number[]>;
      multilabel: Map<string, Uint8Array[]>;
    }
  >();

  constructor(
    private readonly tasks: TaskSpec[],
    private readonly imageKind: 'files' | 'idx',
    private readonly imageRoot: string,
  ) {
    for (const split of SPLITS) {
      this.parts.set(split, {
        ids: [],
        images: [],
        boxes: [],
        hasBox: false,
        categorical: new Map(tasks.filter((t) => t.kind === 'categorical').map((t) => [t.name, []])),
        multilabel: new Map(tasks.filter((t) => t.kind === 'multilabel').map((t) => [t.name, []])),
      });
    }
  }

  /**
   * Adds one sample. `labels[task]` is a class index (categorical; undefined or NO_CLASS = none)
   * or a row of 0/1/MASKED (multi-label; undefined = fully masked).
   */
  add(split: Split, id: string, image: string | number, labels: Record<string, number | Uint8Array | undefined>, box?: Box | null): void {
    const part = this.parts.get(split)!;
    part.ids.push(id);
    part.images.push(image);
    part.boxes.push(box ?? null);
    if (box) part.hasBox = true;
    for (const task of this.tasks) {
      const value = labels[task.name];
      if (task.kind === 'categorical') {
        const cls = value === undefined ? NO_CLASS : (value as number);
        if (!Number.isInteger(cls) || cls < NO_CLASS || cls >= task.labels.length)
          throw new Error(`internal: class ${cls} out of range for task ${task.name}`);
        part.categorical.get(task.name)!.push(cls);
      } else {
        const width = task.labels.length;
        const row = value === undefined ? new Uint8Array(width).fill(MASKED) : (value as Uint8Array);
        if (row.length !== width) throw new Error(`internal: row of ${row.length} for task ${task.name} of width ${width}`);
        part.multilabel.get(task.name)!.push(row);
      }
    }
  }

  count(split: Split): number {
    return this.parts.get(split)!.ids.length;
  }

  build(): Record<Split, IndexSplit> {
    const out = {} as Record<Split, IndexSplit>;
    for (const split of SPLITS) {
      const part = this.parts.get(split)!;
      const labels: Record<string, LabelColumn> = {};
      for (const task of this.tasks) {
        if (task.kind === 'categorical')
          labels[task.name] = { kind: 'categorical', values: Int32Array.from(part.categorical.get(task.name)!) };
        else {
          const width = task.labels.length;
          const rows = part.multilabel.get(task.name)!;
          const values = new Uint8Array(rows.length * width);
          rows.forEach((row, i) => values.set(row, i * width));
          labels[task.name] = { kind: 'multilabel', width, values };
        }
      }
      const images: ImageRefs =
        this.imageKind === 'files'
          ? { kind: 'files', root: this.imageRoot, paths: part.images as string[], ...(part.hasBox ? { boxes: part.boxes } : {}) }
          : { kind: 'idx', file: this.imageRoot, items: part.images as number[] };
      out[split] = { ids: part.ids, images, labels };
    }
    return out;
  }
}

// ---------- serialization ----------

// Columns hold up to hundreds of thousands of entries: checked with plain loops, which are several
// times faster than element-wise schema validation and keep loading a large index quick.
function arrayOf(check: (v: unknown) => boolean, what: string) {
  return z.custom<unknown[]>((v) => Array.isArray(v) && v.every(check), { message: `expected an array of ${what}` });
}
const stringArray = arrayOf((v) => typeof v === 'string', 'strings') as z.ZodType<string[]>;
const classArray = arrayOf((v) => Number.isInteger(v) && (v as number) >= NO_CLASS, 'class indices') as z.ZodType<number[]>;
const itemArray = arrayOf((v) => Number.isInteger(v) && (v as number) >= 0, 'item numbers') as z.ZodType<number[]>;
const boxArray = arrayOf(
  (v) => v === null || (Array.isArray(v) && v.length === 4 && v.every((n) => typeof n === 'number')),
  'boxes or null',
) as z.ZodType<(Box | null)[]>;

const storedColumn = z.union([
  z.strictObject({ kind: z.literal('categorical'), values: classArray }),
  z.strictObject({ kind: z.literal('multilabel'), width: z.number().int().positive(), base64: z.string() }),
]);
const storedImages = z.union([
  z.strictObject({ kind: z.literal('files'), root: z.string(), paths: stringArray.nullable(), boxes: boxArray.optional() }),
  z.strictObject({ kind: z.literal('idx'), file: z.string(), items: itemArray }),
]);
const storedSplit = z.strictObject({ ids: stringArray, images: storedImages, labels: z.record(z.string(), storedColumn) });
const storedIndex = z.strictObject({
  version: z.number(),
  id: z.string(),
  name: z.string(),
  format: z.string(),
  createdAt: z.string(),
  entryDigest: z.string(),
  root: z.string(),
  tasks: z.array(z.strictObject({ name: z.string(), kind: z.enum(['categorical', 'multilabel']), labels: z.array(z.string()) })),
  relatedness: z.array(
    z.strictObject({
      from: z.string(),
      to: z.string(),
      source: z.enum(['prior', 'file']),
      matrix: z.array(z.array(z.number())),
      description: z.string().optional(),
    }),
  ),
  splits: z.strictObject({ train: storedSplit, val: storedSplit, test: storedSplit }),
  notes: z.array(z.string()),
});

function serializeSplit(split: IndexSplit): z.infer<typeof storedSplit> {
  const labels: Record<string, z.infer<typeof storedColumn>> = {};
  for (const [name, column] of Object.entries(split.labels)) {
    labels[name] =
      column.kind === 'categorical'
        ? { kind: 'categorical', values: Array.from(column.values) }
        : {
            kind: 'multilabel',
            width: column.width,
            base64: Buffer.from(column.values.buffer, column.values.byteOffset, column.values.byteLength).toString('base64'),
          };
  }
  let images: z.infer<typeof storedImages>;
  if (split.images.kind === 'files') {
    // Most datasets name samples by their relative image path: store it once.
    const { paths } = split.images;
    const same = paths.length === split.ids.length && paths.every((p, i) => p === split.ids[i]);
    images = {
      kind: 'files',
      root: split.images.root,
      paths: same ? null : paths,
      ...(split.images.boxes ? { boxes: split.images.boxes } : {}),
    };
  } else images = split.images;
  return { ids: split.ids, images, labels };
}

function serializeIndex(index: DatasetIndex): string {
  const splits = Object.fromEntries(SPLITS.map((s) => [s, serializeSplit(index.splits[s])]));
  return JSON.stringify({ ...index, splits });
}

function parseIndex(text: string, file: string): DatasetIndex {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new UserError(`${file}: damaged index (not JSON); run "mtl-bench datasets index" again`);
  }
  const parsed = storedIndex.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserError(
      `${file}: damaged or outdated index (${issue.path.join('.')}: ${issue.message}); run "mtl-bench datasets index" again`,
    );
  }
  const stored = parsed.data;
  const splits = {} as Record<Split, IndexSplit>;
  for (const name of SPLITS) {
    const s = stored.splits[name];
    const labels: Record<string, LabelColumn> = {};
    for (const [task, column] of Object.entries(s.labels)) {
      if (column.kind === 'categorical') labels[task] = { kind: 'categorical', values: Int32Array.from(column.values) };
      else {
        const bytes = Buffer.from(column.base64, 'base64');
        labels[task] = {
          kind: 'multilabel',
          width: column.width,
          values: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        };
      }
    }
    const images: ImageRefs =
      s.images.kind === 'files'
        ? { kind: 'files', root: s.images.root, paths: s.images.paths ?? s.ids, ...(s.images.boxes ? { boxes: s.images.boxes } : {}) }
        : s.images;
    const n = s.ids.length;
    const lengths = [
      images.kind === 'files' ? images.paths.length : images.items.length,
      images.kind === 'files' ? (images.boxes?.length ?? n) : n,
      ...Object.values(labels).map((c) => (c.kind === 'categorical' ? c.values.length : c.values.length / c.width)),
    ];
    if (lengths.some((l) => l !== n))
      throw new UserError(`${file}: damaged index (the ${name} split's columns differ in length); run "mtl-bench datasets index" again`);
    splits[name] = { ids: s.ids, images, labels };
  }
  return { ...stored, splits };
}

export async function writeIndex(file: string, index: DatasetIndex): Promise<void> {
  await writeFileAtomic(file, serializeIndex(index));
}

export function readIndex(file: string): DatasetIndex | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseIndex(text, file);
}

/** Digest of one split's images: the cache of a split is valid exactly as long as this is unchanged. */
export function imagesDigest(split: IndexSplit): string {
  const hash = createHash('sha256');
  const images = split.images;
  if (images.kind === 'files') {
    hash.update(`files\0${images.root}\0`);
    images.paths.forEach((p, i) => {
      const box = images.boxes?.[i];
      hash.update(box ? `${p}\0${box.join(',')}\n` : `${p}\n`);
    });
  } else {
    hash.update(`idx\0${images.file}\0${images.items.join(',')}`);
  }
  return hash.digest('hex');
}
