import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { downloadFile, type DownloadOptions } from '../datasets/fetch/download.js';
import { digestFile, type Expected } from '../datasets/fetch/verify.js';
import { describeOwner, withLock } from '../util/lock.js';
import { silentProgress, type ProgressFactory } from '../datasets/progress.js';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError, errorMessage } from '../util/errors.js';
import { mtlBenchHome } from '../util/paths.js';
import { getBackboneEntry, type BackboneEntry, type BackboneManifest } from './backbone_manifest.js';

/**
 * Where one pretrained backbone lives under MTL_BENCH_HOME, and how it gets there:
 *   backbones/<id>/downloads/  each file, renamed there only after it was verified (a `.part` while under way)
 *   backbones/<id>/model/      model.json and its weight shards, swapped in once all are verified
 *   backbones/<id>/pins.json   size and sha256 of files whose publisher gives none, recorded at
 *                              their first download so that every later download is checked
 * Downloads go through the datasets' downloader (resume, retries, timeouts, verification).
 */

export interface BackboneLayout {
  dir: string;
  downloads: string;
  model: string;
  pins: string;
}

export function backboneLayout(id: string, home: string = mtlBenchHome()): BackboneLayout {
  const dir = path.join(home, 'backbones', id);
  return { dir, downloads: path.join(dir, 'downloads'), model: path.join(dir, 'model'), pins: path.join(dir, 'pins.json') };
}

/** The folder holding the verified model.json and shards, or undefined when the backbone is not fetched here. */
export function fetchedBackboneFolder(id: string, home?: string): string | undefined {
  const layout = backboneLayout(id, home);
  return fs.existsSync(path.join(layout.model, 'model.json')) ? layout.model : undefined;
}

type Pins = Record<string, { size: number; sha256: string; pinnedAt: string }>;

function readPins(file: string): Pins {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Pins;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UserError(`${file}: cannot read the pinned checksums: ${errorMessage(err)}; delete it to pin afresh`);
  }
}

/** How a file was checked: against the manifest's published hash, against the hash pinned at its first download, or pinned just now. */
export type Verification = 'published' | 'pinned earlier' | 'pinned now';

export interface BackboneFileRecord {
  name: string;
  bytes: number;
  sha256: string;
  verification: Verification;
}

export interface BackboneFetchResult {
  id: string;
  folder: string;
  files: BackboneFileRecord[];
  /** False when a verified copy was already here and nothing was downloaded. */
  downloaded: boolean;
}

export interface BackboneFetchOptions {
  manifest: BackboneManifest;
  home?: string;
  /** Download again (still checked against published and pinned hashes); the copy in use stays until the new one is verified. */
  force?: boolean;
  progress?: ProgressFactory;
  /** Network settings (tests shorten retries and timeouts). */
  network?: Pick<DownloadOptions, 'retries' | 'retryDelayMs' | 'timeoutMs'>;
  log?: (line: string) => void;
}

/** The weight files a model.json names, checked to be plain file names beside it. */
function shardNames(modelJsonPath: string, label: string): string[] {
  let json: { modelTopology?: unknown; weightsManifest?: { paths?: unknown }[] };
  try {
    json = JSON.parse(fs.readFileSync(modelJsonPath, 'utf8')) as typeof json;
  } catch (err) {
    throw new UserError(`${label}: model.json is not valid JSON: ${errorMessage(err)}`);
  }
  if (!json || typeof json.modelTopology !== 'object' || !Array.isArray(json.weightsManifest)) {
    throw new UserError(`${label}: model.json is not a tfjs Layers model (needs "modelTopology" and "weightsManifest")`);
  }
  const names: string[] = [];
  for (const group of json.weightsManifest) {
    if (!Array.isArray(group.paths)) throw new UserError(`${label}: model.json: a weightsManifest group has no "paths" list`);
    for (const raw of group.paths) {
      const name = typeof raw === 'string' ? path.posix.normalize(raw) : '';
      if (!name || name.includes('/') || name === '..' || name === 'model.json')
        throw new UserError(`${label}: model.json names a weight file that is not a plain file beside it: ${String(raw)}`);
      if (!names.includes(name)) names.push(name);
    }
  }
  return names;
}

/** Swaps model/ for a folder holding exactly `names` from downloads/, so a half-assembled model is never visible. */
async function assembleModel(layout: BackboneLayout, names: string[]): Promise<void> {
  const tmp = path.join(layout.dir, `.model.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await fs.promises.mkdir(tmp, { recursive: true });
  try {
    for (const name of names) {
      const from = path.join(layout.downloads, name);
      const to = path.join(tmp, name);
      try {
        await fs.promises.link(from, to);
      } catch {
        await fs.promises.copyFile(from, to);
      }
    }
    await fs.promises.rm(layout.model, { recursive: true, force: true });
    await fs.promises.rename(tmp, layout.model);
  } catch (err) {
    await fs.promises.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Downloads a pretrained backbone's model.json and the weight shards it names, verifies each file
 * (published size and sha256 where backbones.yaml gives them, else the ones pinned at the first
 * download, else pins them now and logs the hash), and makes the model available to training.
 */
export async function fetchBackbone(id: string, options: BackboneFetchOptions): Promise<BackboneFetchResult> {
  const entry = getBackboneEntry(options.manifest, id);
  const layout = backboneLayout(entry.id, options.home);
  const log = options.log ?? (() => {});
  await fs.promises.mkdir(layout.dir, { recursive: true });
  // One fetch of a backbone at a time: two would download into the same folder.
  return withLock(
    path.join(layout.dir, 'fetch.lock'),
    async () => {
      if (options.force) {
        await fs.promises.rm(layout.downloads, { recursive: true, force: true });
      } else if (fetchedBackboneFolder(entry.id, options.home)) {
        const names = ['model.json', ...shardNames(path.join(layout.model, 'model.json'), entry.id)];
        const pins = readPins(layout.pins);
        const files = await Promise.all(
          names.map(async (name) => describeFile(entry, pins, name, path.join(layout.model, name), 'pinned earlier')),
        );
        return { id: entry.id, folder: layout.model, files, downloaded: false };
      }
      await fs.promises.mkdir(layout.downloads, { recursive: true });
      const pins = readPins(layout.pins);
      const files: BackboneFileRecord[] = [];
      const fetchOne = async (name: string, url: string): Promise<void> => {
        const dest = path.join(layout.downloads, name);
        const published = entry.files[name];
        const pinned = pins[name];
        const expected: Expected = published?.sha256
          ? published
          : pinned
            ? { size: pinned.size, sha256: pinned.sha256 }
            : { size: published?.size };
        const verification: Verification = published?.sha256 ? 'published' : pinned ? 'pinned earlier' : 'pinned now';
        // A file under downloads/ was renamed there only after it passed verification.
        if (!fs.existsSync(dest)) {
          log(`downloading ${name}`);
          try {
            await downloadFile({
              url,
              dest,
              expected,
              label: `${entry.id}/${name}`,
              progress: options.progress ?? silentProgress,
              ...options.network,
            });
          } catch (err) {
            if (err instanceof UserError && verification === 'pinned earlier') {
              throw new UserError(
                `${err.message}; the expected sha256 was pinned at the first download (${layout.pins}): ` +
                  'if the publisher replaced the file on purpose, delete that file and fetch again',
              );
            }
            throw err;
          }
        }
        const record = await describeFile(entry, pins, name, dest, verification);
        if (verification === 'pinned now') {
          pins[name] = { size: record.bytes, sha256: record.sha256, pinnedAt: new Date().toISOString() };
          await writeFileAtomic(layout.pins, JSON.stringify(pins, null, 2));
          log(`pinned ${name}: sha256 ${record.sha256}, ${record.bytes} bytes (no published checksum; later downloads must match it)`);
        }
        files.push(record);
      };
      await fetchOne('model.json', entry.model);
      const shards = shardNames(path.join(layout.downloads, 'model.json'), entry.id);
      for (const shard of shards) await fetchOne(shard, new URL(shard, entry.model).toString());
      await assembleModel(layout, ['model.json', ...shards]);
      return { id: entry.id, folder: layout.model, files, downloaded: true };
    },
    {
      purpose: `fetching backbone ${entry.id}`,
      onWait: (owner) => log(`waiting for ${describeOwner(owner)}, which is ${owner.purpose}`),
      onNotice: log,
    },
  );
}

async function describeFile(
  entry: BackboneEntry,
  pins: Pins,
  name: string,
  file: string,
  fallback: Verification,
): Promise<BackboneFileRecord> {
  const digests = await digestFile(file);
  const verification: Verification = entry.files[name]?.sha256 ? 'published' : pins[name] ? fallback : 'pinned now';
  return { name, bytes: digests.size, sha256: digests.sha256, verification };
}

export interface BackboneStatus {
  id: string;
  name: string;
  inputSize: number;
  license: string;
  fetched: boolean;
  /** Bytes of the fetched model (model.json and shards). */
  bytes?: number;
  /** Files whose checksum comes from backbones.yaml rather than a local pin. */
  published: number;
}

/** Every backbone of the manifest, and whether it is fetched here. */
export function backboneStatuses(manifest: BackboneManifest, home?: string): BackboneStatus[] {
  return [...manifest.backbones.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((entry) => {
      const folder = fetchedBackboneFolder(entry.id, home);
      const bytes = folder ? fs.readdirSync(folder).reduce((sum, name) => sum + fs.statSync(path.join(folder, name)).size, 0) : undefined;
      return {
        id: entry.id,
        name: entry.name,
        inputSize: entry.input.size,
        license: entry.license,
        fetched: folder !== undefined,
        ...(bytes !== undefined ? { bytes } : {}),
        published: Object.values(entry.files).filter((f) => f.sha256).length,
      };
    });
}
