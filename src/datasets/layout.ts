import fs from 'node:fs';
import path from 'node:path';
import { mtlBenchHome } from '../util/paths.js';

/**
 * Where one dataset's files live under MTL_BENCH_HOME:
 *   datasets/<id>/downloads/   verified downloads (a `.part` file while one is under way)
 *   datasets/<id>/data/        extracted files, the adapter's root (unless source.json points elsewhere)
 *   datasets/<id>/source.json  the user's own folder (`--from DIR`), used in place without copying
 *   datasets/<id>/index.json   the normalized index
 *   datasets/<id>/cache/       decoded, resized uint8 image shards per input size and split
 */
export interface DatasetLayout {
  home: string;
  dir: string;
  downloads: string;
  data: string;
  sourceFile: string;
  indexFile: string;
  cacheDir: string;
}

export function datasetLayout(id: string, home: string = mtlBenchHome()): DatasetLayout {
  const dir = path.join(home, 'datasets', id);
  return {
    home,
    dir,
    downloads: path.join(dir, 'downloads'),
    data: path.join(dir, 'data'),
    sourceFile: path.join(dir, 'source.json'),
    indexFile: path.join(dir, 'index.json'),
    cacheDir: path.join(dir, 'cache'),
  };
}

export interface SourceRecord {
  /** Absolute path of the folder the adapter reads. */
  root: string;
  /** How it got there: extracted downloads, the user's folder, or an npm package. */
  kind: 'downloaded' | 'folder' | 'package';
  recordedAt: string;
}

export function readSourceRecord(layout: DatasetLayout): SourceRecord | undefined {
  try {
    const record = JSON.parse(fs.readFileSync(layout.sourceFile, 'utf8')) as SourceRecord;
    if (typeof record.root === 'string') return record;
  } catch {
    // No record (or a damaged one): fall back to the extracted data folder below.
  }
  if (fs.existsSync(layout.data)) return { root: layout.data, kind: 'downloaded', recordedAt: '' };
  return undefined;
}
