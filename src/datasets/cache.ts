import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError, errorMessage } from '../util/errors.js';
import { readIdx, type IdxArray } from './adapters/idx.js';
import { renderImage, type RenderSettings } from './decode.js';
import { imagesDigest, type IndexSplit } from './index_file.js';
import type { DatasetEntry } from './manifest.js';
import { silentProgress, type ProgressFactory } from './progress.js';
import type { ImageSource, Split } from './types.js';
import { describeOwner, withLock } from '../util/lock.js';
import { homeWriteError } from './fs_errors.js';

/**
 * The preprocessed image cache: each split's images decoded once, resized and stored as raw uint8
 * HWC in shard files of at most ~64 MB. A shard is written atomically with a small JSON beside it,
 * so a killed build resumes at the first missing shard; meta.json appears last, when the split is
 * complete. Readers fetch images by offset, so a large dataset never has to fit in memory.
 *
 * The cache is keyed on content: besides the settings and the image paths, its key holds the size
 * and modification time of every source file, so images replaced at the same paths are decoded
 * again (only the shards that hold them). An image that failed to decode is never taken from an
 * earlier build: its shard is decoded again by the next build, and a complete cache that skipped
 * it is rebuilt as soon as the file changes (is restored, say).
 */

const CACHE_VERSION = 2;
const SHARD_BYTES = 64 * 1024 * 1024;
/** Source files examined at once when stamping a split. */
const STAT_BATCH = 256;

export interface CacheSettings extends RenderSettings {
  /** Fraction of a split's images allowed to fail decoding before the build stops. */
  maxBadFraction: number;
}

export interface SkippedImage {
  index: number;
  id: string;
  reason: string;
}

interface ShardRecord {
  /** Settings and image paths of the whole split (shard boundaries depend on them). */
  digest: string;
  /** Size and modification time of this shard's source files. */
  sources: string;
  first: number;
  total: number;
  decoded: number;
  skipped: SkippedImage[];
}

export interface CacheMeta {
  version: number;
  digest: string;
  split: Split;
  size: number;
  channels: number;
  /** Samples in the index split. */
  total: number;
  /** Samples whose image decoded (the view's count). */
  decoded: number;
  shards: { file: string; count: number }[];
  skipped: SkippedImage[];
  builtAt: string;
  buildSeconds: number;
}

export function cacheSettings(entry: DatasetEntry, size: number): CacheSettings {
  return {
    size,
    channels: entry.image.channels,
    fit: entry.image.fit,
    background: entry.image.background,
    maxBadFraction: entry.image.max_bad_fraction,
  };
}

export function cacheFolder(cacheDir: string, settings: CacheSettings, split: Split): string {
  return path.join(
    cacheDir,
    `${settings.size}px-${settings.channels}c-${settings.fit}-${settings.background.slice(1).toLowerCase()}`,
    split,
  );
}

/** The split's layout: settings and image paths, not their content. */
function layoutDigest(split: IndexSplit, settings: CacheSettings): string {
  const { size, channels, fit, background } = settings;
  return createHash('sha256')
    .update(JSON.stringify({ v: CACHE_VERSION, size, channels, fit, background: background.toLowerCase(), images: imagesDigest(split) }))
    .digest('hex');
}

/** One stamp per sample: its source file's size and modification time (in ns), or "missing". */
async function sourceStamps(split: IndexSplit): Promise<string[]> {
  const images = split.images;
  const stamp = async (file: string): Promise<string> => {
    try {
      const stat = await fs.promises.stat(file, { bigint: true });
      return `${stat.size}:${stat.mtimeNs}`;
    } catch {
      return 'missing';
    }
  };
  // An IDX split reads every sample from one file: its stamp stands for all of them.
  if (images.kind === 'idx') return new Array<string>(split.ids.length).fill(await stamp(images.file));
  const stamps = new Array<string>(images.paths.length);
  for (let start = 0; start < images.paths.length; start += STAT_BATCH) {
    const batch = images.paths.slice(start, start + STAT_BATCH);
    const got = await Promise.all(batch.map((p) => stamp(path.join(images.root, p))));
    got.forEach((s, k) => (stamps[start + k] = s));
  }
  return stamps;
}

function stampsDigest(stamps: readonly string[], from = 0, to = stamps.length): string {
  const hash = createHash('sha256');
  for (let i = from; i < to; i++) hash.update(`${stamps[i]}\n`);
  return hash.digest('hex');
}

/** The key of a complete cache: layout plus the stamp of every source file. */
function splitDigest(layout: string, stamps: readonly string[]): string {
  return createHash('sha256')
    .update(`${layout}\0${stampsDigest(stamps)}`)
    .digest('hex');
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function readCacheMeta(folder: string): CacheMeta | undefined {
  return readJson<CacheMeta>(path.join(folder, 'meta.json'));
}

type Decoder = (position: number) => Promise<Buffer>;

function makeDecoder(split: IndexSplit, settings: CacheSettings): Decoder {
  const images = split.images;
  if (images.kind === 'files') {
    return (i) => renderImage({ file: path.join(images.root, images.paths[i]) }, settings, images.boxes?.[i]);
  }
  let idx: IdxArray | undefined;
  return async (i) => {
    idx ??= readIdx(images.file);
    const [, rows, columns] = idx.dims;
    const item = images.items[i];
    const pixels = idx.data.subarray(item * rows * columns, (item + 1) * rows * columns);
    return renderImage({ raw: pixels, width: columns, height: rows, channels: 1 }, settings);
  };
}

export interface BuildCacheOptions {
  datasetId: string;
  progress?: ProgressFactory;
  /** Images decoded at once; sharp runs each on libuv's thread pool. */
  concurrency?: number;
  /** Shard size in bytes (tests use a small one to exercise several shards and resumption). */
  shardBytes?: number;
  /** Decode every image again, reusing nothing of an earlier build. */
  force?: boolean;
  /** Where a wait for another process, or the takeover of a stale lock, is told; default stderr (a wait is never silent). */
  onWait?: (message: string) => void;
}

/** Builds (or resumes, or reuses) the cache of one split; returns its metadata. */
export async function ensureSplitCache(
  folder: string,
  splitName: Split,
  split: IndexSplit,
  settings: CacheSettings,
  options: BuildCacheOptions,
): Promise<CacheMeta> {
  const layout = layoutDigest(split, settings);
  const stamps = await sourceStamps(split);
  const digest = splitDigest(layout, stamps);
  const fresh = () => {
    if (options.force) return undefined;
    const existing = readCacheMeta(folder);
    return existing?.version === CACHE_VERSION && existing.digest === digest ? existing : undefined;
  };
  const existing = fresh();
  if (existing) return existing;
  const say = options.onWait ?? ((message: string) => process.stderr.write(`${message}\n`));
  const purpose = `building the ${settings.size}px cache of ${options.datasetId} ${splitName}`;
  // Another process may be building this very cache: wait for it, then use its result.
  try {
    return await withLock(
      `${folder}.lock`,
      async () => fresh() ?? buildSplitCache(folder, splitName, split, settings, { layout, stamps, digest }, options),
      {
        purpose,
        onWait: (owner) => say(`waiting for ${describeOwner(owner)}, which is ${owner.purpose || purpose}`),
        onNotice: say,
      },
    );
  } catch (err) {
    throw homeWriteError(err, folder);
  }
}

interface CacheKey {
  layout: string;
  stamps: string[];
  digest: string;
}

async function buildSplitCache(
  folder: string,
  splitName: Split,
  split: IndexSplit,
  settings: CacheSettings,
  key: CacheKey,
  options: BuildCacheOptions,
): Promise<CacheMeta> {
  const started = Date.now();
  const { layout, stamps, digest } = key;
  await fs.promises.mkdir(folder, { recursive: true });
  // Shards of another index or other settings are useless (and all of them under --force): clear
  // them before writing new ones.
  const names = await fs.promises.readdir(folder);
  for (const name of names) {
    const file = path.join(folder, name);
    if (name === 'meta.json' || name.endsWith('.tmp')) await fs.promises.rm(file, { force: true });
    else if (name.endsWith('.json') && (options.force || readJson<ShardRecord>(file)?.digest !== layout)) {
      await fs.promises.rm(file, { force: true });
      await fs.promises.rm(file.replace(/\.json$/, '.u8'), { force: true });
    } else if (name.endsWith('.u8') && !names.includes(name.replace(/\.u8$/, '.json'))) await fs.promises.rm(file, { force: true });
  }

  const bytesPerImage = settings.size * settings.size * settings.channels;
  const perShard = Math.max(1, Math.floor((options.shardBytes ?? SHARD_BYTES) / bytesPerImage));
  const total = split.ids.length;
  const shardCount = Math.ceil(total / perShard);
  const decode = makeDecoder(split, settings);
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const bar = (options.progress ?? silentProgress)(`${options.datasetId} ${splitName} ${settings.size}px`, total, 'images');
  const shards: CacheMeta['shards'] = [];
  const skipped: SkippedImage[] = [];
  let done = 0;
  try {
    for (let s = 0; s < shardCount; s++) {
      const name = `shard-${String(s).padStart(5, '0')}`;
      const first = s * perShard;
      const end = Math.min(total, first + perShard);
      const sources = stampsDigest(stamps, first, end);
      const recordFile = path.join(folder, `${name}.json`);
      const dataFile = path.join(folder, `${name}.u8`);
      let record = readJson<ShardRecord>(recordFile);
      // A shard with an image that did not decode is decoded again: the failure may be gone.
      const reusable =
        record?.digest === layout &&
        record.sources === sources &&
        record.skipped.length === 0 &&
        record.first === first &&
        record.total === end - first &&
        fs.existsSync(dataFile) &&
        fs.statSync(dataFile).size === record.decoded * bytesPerImage;
      if (!reusable) {
        const decoded = new Array<Buffer | undefined>(end - first);
        const shardSkipped: SkippedImage[] = [];
        let next = first;
        const worker = async () => {
          while (next < end) {
            const i = next++;
            try {
              decoded[i - first] = await decode(i);
            } catch (err) {
              shardSkipped.push({ index: i, id: split.ids[i], reason: errorMessage(err).split('\n')[0] });
            }
            bar.update(++done);
          }
        };
        await Promise.all(Array.from({ length: Math.min(concurrency, end - first) }, worker));
        shardSkipped.sort((a, b) => a.index - b.index);
        const present = decoded.filter((b): b is Buffer => b !== undefined);
        await writeFileAtomic(dataFile, Buffer.concat(present, present.length * bytesPerImage));
        record = { digest: layout, sources, first, total: end - first, decoded: present.length, skipped: shardSkipped };
        await writeFileAtomic(recordFile, JSON.stringify(record));
      } else {
        done += end - first;
        bar.update(done);
      }
      shards.push({ file: path.basename(dataFile), count: record!.decoded });
      skipped.push(...record!.skipped);
    }
  } finally {
    bar.stop();
  }

  const allowed = Math.floor(settings.maxBadFraction * total);
  if (skipped.length > allowed) {
    const first = skipped[0];
    throw new UserError(
      `${options.datasetId} ${splitName}: ${skipped.length} of ${total} images do not decode ` +
        `(more than the ${(settings.maxBadFraction * 100).toFixed(1)}% allowed by image.max_bad_fraction); ` +
        `first: ${first.id}: ${first.reason}`,
    );
  }
  const meta: CacheMeta = {
    version: CACHE_VERSION,
    digest,
    split: splitName,
    size: settings.size,
    channels: settings.channels,
    total,
    decoded: total - skipped.length,
    shards,
    skipped,
    builtAt: new Date().toISOString(),
    buildSeconds: (Date.now() - started) / 1000,
  };
  await writeFileAtomic(path.join(folder, 'meta.json'), JSON.stringify(meta));
  return meta;
}

/**
 * Images of one split read from its shards. Small caches are held in memory; larger ones are read
 * by offset per request, so memory use does not grow with the dataset.
 */
export class ShardImageSource implements ImageSource {
  readonly size: number;
  readonly channels: number;
  readonly count: number;
  private readonly bytesPerImage: number;
  private readonly starts: number[] = [];
  private readonly files: string[] = [];
  private readonly memory: (Buffer | undefined)[] = [];
  private readonly fds: (number | undefined)[] = [];

  constructor(folder: string, meta: CacheMeta, options: { memoryLimitBytes?: number } = {}) {
    this.size = meta.size;
    this.channels = meta.channels;
    this.count = meta.decoded;
    this.bytesPerImage = meta.size * meta.size * meta.channels;
    let start = 0;
    for (const shard of meta.shards) {
      this.starts.push(start);
      this.files.push(path.join(folder, shard.file));
      start += shard.count;
    }
    const inMemory = this.count * this.bytesPerImage <= (options.memoryLimitBytes ?? 256 * 1024 * 1024);
    for (const [i, file] of this.files.entries()) {
      const expected = meta.shards[i].count * this.bytesPerImage;
      const size = fs.statSync(file).size;
      if (size !== expected)
        throw new UserError(`${file}: image cache shard has ${size} bytes, expected ${expected}; delete ${folder} and load again`);
      this.memory.push(inMemory ? fs.readFileSync(file) : undefined);
      this.fds.push(undefined);
    }
  }

  get inMemory(): boolean {
    return this.memory.every((m) => m !== undefined);
  }

  private shardOf(index: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  read(indices: ArrayLike<number>): Uint8Array {
    const n = this.bytesPerImage;
    const out = new Uint8Array(indices.length * n);
    for (let k = 0; k < indices.length; k++) {
      const index = indices[k];
      if (!Number.isInteger(index) || index < 0 || index >= this.count)
        throw new RangeError(`image index ${index} outside 0..${this.count - 1}`);
      const shard = this.shardOf(index);
      const offset = (index - this.starts[shard]) * n;
      const held = this.memory[shard];
      if (held) out.set(held.subarray(offset, offset + n), k * n);
      else {
        this.fds[shard] ??= fs.openSync(this.files[shard], 'r');
        const got = fs.readSync(this.fds[shard]!, out, k * n, n, offset);
        if (got !== n) throw new Error(`${this.files[shard]}: short read at image ${index}`);
      }
    }
    return out;
  }

  /** Releases open shard files (only used when the cache is read from disk). */
  close(): void {
    this.fds.forEach((fd, i) => {
      if (fd !== undefined) fs.closeSync(fd);
      this.fds[i] = undefined;
    });
  }
}
