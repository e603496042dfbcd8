import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../../util/atomic.js';
import { cleanupOnExit } from '../../util/cleanup.js';
import { describeOwner, withLock } from '../../util/lock.js';
import { UserError } from '../../util/errors.js';
import { homeWriteError } from '../fs_errors.js';
import { type CacheMeta } from '../cache.js';
import { buildIndex, notFetched, installedPackageDir } from '../indexer.js';
import type { DatasetIndex } from '../index_file.js';
import { datasetLayout, readSourceRecord, type DatasetLayout, type SourceRecord } from '../layout.js';
import { ensureCache, ensureIndex } from '../load.js';
import { fileName, getEntry, type DatasetEntry, type Manifest, type ManifestFile } from '../manifest.js';
import { silentProgress, type ProgressFactory } from '../progress.js';
import type { Split } from '../types.js';
import { downloadFile, type DownloadOptions } from './download.js';
import { archiveKind, extractArchive } from './extract.js';
import { verifyFile } from './verify.js';

export interface FetchOptions {
  manifest: Manifest;
  home?: string;
  /** The user's archives, files, folder or URLs (required for `request` datasets). */
  from?: string[];
  /** Download, extract, index and decode again even when a good copy is here. */
  force?: boolean;
  /** Input sizes to prepare the image cache for (default: the entry's image.default_size). */
  sizes?: number[];
  progress?: ProgressFactory;
  /** Network settings (tests shorten retries and timeouts). */
  network?: Pick<DownloadOptions, 'retries' | 'retryDelayMs' | 'timeoutMs'>;
  log?: (line: string) => void;
}

export interface FetchResult {
  id: string;
  root: string;
  index: DatasetIndex;
  caches: { size: number; splits: Record<Split, CacheMeta> }[];
  downloaded: string[];
}

function isUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

/** The manifest file a local or downloaded file stands for (same name), if any, so its hashes apply. */
function manifestFileNamed(entry: DatasetEntry, name: string): ManifestFile | undefined {
  return entry.files.find((f) => !f.package && fileName(f) === name);
}

async function writeSource(layout: DatasetLayout, record: Omit<SourceRecord, 'recordedAt'>): Promise<void> {
  await writeFileAtomic(layout.sourceFile, JSON.stringify({ ...record, recordedAt: new Date().toISOString() }, null, 2));
}

/** Removes a folder even while writes of a failed extraction are still landing in it (they make rmdir fail with ENOTEMPTY). */
async function removeTree(folder: string): Promise<void> {
  await fs.promises.rm(folder, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
}

const TEMPORARY_DATA = /^\.data\..*\.tmp$|^data\.old-[0-9a-f]+$/;

/**
 * Leftovers of a fetch of this dataset that was killed while extracting (or swapping data/ in).
 * Only the holder of the dataset's fetch lock extracts, so any that exist are stale.
 */
async function removeLeftovers(layout: DatasetLayout, log: (line: string) => void): Promise<void> {
  let names: string[];
  try {
    names = await fs.promises.readdir(layout.dir);
  } catch {
    return;
  }
  for (const name of names.filter((n) => TEMPORARY_DATA.test(n))) {
    log(`removing ${name}, left by an interrupted fetch`);
    await removeTree(path.join(layout.dir, name));
  }
}

/**
 * Builds data/ from archives and plain files in a temporary sibling folder and swaps it in, so
 * that a failure at any point leaves the previous data/ (or none) untouched. The temporary folder
 * is removed on every error, and on SIGINT or SIGTERM; kill -9 leaves it to the next fetch.
 */
async function assembleData(
  layout: DatasetLayout,
  files: { file: string; extract: boolean }[],
  log: (line: string) => void,
): Promise<void> {
  const tmp = path.join(layout.dir, `.data.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const unregister = cleanupOnExit(() => fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 3 }), { signals: true });
  try {
    await fs.promises.mkdir(tmp, { recursive: true });
    for (const { file, extract } of files) {
      if (extract) {
        log(`extracting ${path.basename(file)}`);
        await extractArchive(file, tmp);
      } else {
        const target = path.join(tmp, path.basename(file));
        try {
          await fs.promises.link(file, target);
        } catch {
          await fs.promises.copyFile(file, target);
        }
      }
    }
    const old = fs.existsSync(layout.data) ? `${layout.data}.old-${randomBytes(4).toString('hex')}` : undefined;
    if (old) await fs.promises.rename(layout.data, old);
    await fs.promises.rename(tmp, layout.data);
    if (old) await removeTree(old);
  } catch (err) {
    // The cause of the failure is what the user needs; a folder that resists removal is left to the next fetch.
    await removeTree(tmp).catch(() => {});
    throw homeWriteError(err, layout.dir);
  } finally {
    unregister();
  }
}

/**
 * Whether a file the user passed is an archive to unpack: the manifest says so for its own files;
 * otherwise tar and zip are, and gzip only as .tgz/.tar.gz (a lone .gz such as an IDX file is data).
 */
function shouldExtract(file: string, known: ManifestFile | undefined): boolean {
  if (known) return known.extract;
  const kind = archiveKind(file);
  if (kind === 'tar.gz') return /\.(tgz|tar\.gz)$/i.test(file);
  return kind !== undefined;
}

/** Downloads (or takes from --from), verifies, extracts and indexes a dataset, then prepares its image cache. */
export async function fetchDataset(id: string, options: FetchOptions): Promise<FetchResult> {
  const entry = getEntry(options.manifest, id);
  const layout = datasetLayout(entry.id, options.home);
  const log = options.log ?? (() => {});
  const from = options.from ?? [];
  if (entry.access === 'request' && from.length === 0) throw notFetched(entry);
  if (entry.access === 'package' && from.length > 0)
    throw new UserError(
      `dataset "${entry.id}" comes from the npm package ${entry.files.find((f) => f.package)?.package}; --from does not apply`,
    );
  try {
    await fs.promises.mkdir(layout.dir, { recursive: true });
  } catch (err) {
    throw homeWriteError(err, layout.dir);
  }
  // One fetch of a dataset at a time: two would download to the same .part files and extract side by side.
  return withLock(path.join(layout.dir, 'fetch.lock'), () => fetchLocked(entry, layout, options), {
    purpose: `fetching ${entry.id}`,
    onWait: (owner) => log(`waiting for ${describeOwner(owner)}, which is ${owner.purpose}`),
    onNotice: log,
  });
}

async function fetchLocked(entry: DatasetEntry, layout: DatasetLayout, options: FetchOptions): Promise<FetchResult> {
  const log = options.log ?? (() => {});
  const progress = options.progress ?? silentProgress;
  const from = options.from ?? [];
  const downloaded: string[] = [];
  // Whether the data folder is new: then the index is rebuilt even if it looks current.
  let changed = Boolean(options.force);
  await removeLeftovers(layout, log);

  if (entry.access === 'package') {
    const root = await installedPackageDir(entry);
    log(`using the installed package at ${root}`);
  } else if (from.length === 1 && !isUrl(from[0]) && fs.existsSync(from[0]) && fs.statSync(from[0]).isDirectory()) {
    // An already-extracted folder is used where it is: copying a dataset of images gains nothing.
    const root = path.resolve(from[0]);
    await writeSource(layout, { root, kind: 'folder' });
    changed = true;
    log(`using the folder ${root}`);
  } else {
    const files: { file: string; extract: boolean }[] = [];
    if (from.length > 0) {
      for (const item of from) {
        let file: string;
        if (isUrl(item)) {
          const name = path.posix.basename(new URL(item).pathname) || 'download';
          const known = manifestFileNamed(entry, name);
          file = path.join(layout.downloads, name);
          if (options.force) await fs.promises.rm(file, { force: true });
          if (!fs.existsSync(file)) {
            log(`downloading ${item}${known ? '' : ' (no checksum in the manifest for this file: it is not verified)'}`);
            await downloadFile({ url: item, dest: file, expected: known, progress, ...options.network });
            downloaded.push(file);
          }
        } else {
          file = path.resolve(item);
          if (!fs.existsSync(file)) throw new UserError(`--from ${item}: no such file or folder`);
          if (fs.statSync(file).isDirectory()) throw new UserError(`--from ${item}: give one folder on its own, or archives and files`);
          const known = manifestFileNamed(entry, path.basename(file));
          if (known && (known.sha256 || known.md5 || known.size)) {
            log(`verifying ${path.basename(file)}`);
            await verifyFile(file, known, path.basename(file));
          }
        }
        files.push({ file, extract: shouldExtract(file, manifestFileNamed(entry, path.basename(file))) });
      }
    } else {
      for (const manifestFile of entry.files) {
        if (!manifestFile.url) continue;
        const name = fileName(manifestFile);
        const file = path.join(layout.downloads, name);
        if (options.force) await fs.promises.rm(file, { force: true });
        // A file under downloads/ was renamed there only after it passed verification.
        if (!fs.existsSync(file)) {
          log(`downloading ${name}`);
          await downloadFile({ url: manifestFile.url, dest: file, expected: manifestFile, progress, label: name, ...options.network });
          downloaded.push(file);
        }
        files.push({ file, extract: manifestFile.extract });
      }
    }
    const record = readSourceRecord(layout);
    if (options.force || downloaded.length > 0 || from.length > 0 || !fs.existsSync(layout.data) || record?.kind === 'folder') {
      await assembleData(layout, files, log);
      changed = true;
    }
    await writeSource(layout, { root: layout.data, kind: 'downloaded' });
  }

  log('indexing');
  const onWarning = (m: string) => log(`warning: ${m}`);
  const index = changed
    ? await buildIndex(entry, { home: options.home, onWarning })
    : await ensureIndex(entry, { home: options.home, onWarning });
  const caches = await prepareCaches(entry, index, options.sizes, { home: options.home, progress, log, force: options.force });
  return { id: entry.id, root: index.root, index, caches, downloaded };
}

/** The image cache at each size (default: the entry's image.default_size), built where missing. */
async function prepareCaches(
  entry: DatasetEntry,
  index: DatasetIndex,
  sizes: number[] | undefined,
  options: { home?: string; progress: ProgressFactory; log?: (line: string) => void; force?: boolean },
): Promise<FetchResult['caches']> {
  const caches: FetchResult['caches'] = [];
  for (const size of sizes ?? [entry.image.default_size]) {
    options.log?.(`preparing the ${size}×${size} image cache`);
    const built = await ensureCache(entry, index, size, {
      home: options.home,
      progress: options.progress,
      force: options.force,
      onWait: options.log,
    });
    caches.push({ size, splits: Object.fromEntries(Object.entries(built).map(([s, v]) => [s, v.meta])) as Record<Split, CacheMeta> });
  }
  return caches;
}

export type ReindexOptions = Pick<FetchOptions, 'manifest' | 'home' | 'sizes' | 'progress'> & {
  /** Index warnings go here; cache building stays quiet apart from `progress` and lock waits. */
  onWarning?: (message: string) => void;
  /** Decode every image again instead of reusing the cached ones that are unchanged. */
  force?: boolean;
  /** Told whom a cache build waits for. */
  onWait?: (message: string) => void;
};

/** Rebuilds the index of a dataset that is already here, then prepares its image cache at each size. */
export async function reindexDataset(id: string, options: ReindexOptions): Promise<FetchResult> {
  const entry = getEntry(options.manifest, id);
  const index = await ensureIndex(entry, { home: options.home, force: true, onWarning: options.onWarning });
  const caches = await prepareCaches(entry, index, options.sizes, {
    home: options.home,
    progress: options.progress ?? silentProgress,
    force: options.force,
    log: options.onWait,
  });
  return { id: entry.id, root: index.root, index, caches, downloaded: [] };
}
