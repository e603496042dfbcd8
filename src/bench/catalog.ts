import type { DatasetView, TaskKind } from '../datasets/types.js';
import type { ImageCounts } from './estimate.js';

/**
 * What the runner must know about the datasets before any training: which ids exist, their tasks
 * and kinds, the relatedness tables they ship, and whether they are ready on this machine. It is
 * an interface so the runner can be tested without the dataset layer, and so the real one can be
 * built from the manifest without the benchmark code knowing its format.
 */
export interface CatalogEntry {
  id: string;
  tasks: { name: string; kind: TaskKind }[];
  /** Class-level tables shipped with the dataset (`prior` from the manifest, `file` in the data). */
  tables: { from: string; to: string; source: 'prior' | 'file' }[];
  /** Fetched and indexed here, so `loadDataset` can read it. */
  ready: boolean;
  /** Built on demand from an installed package (openmoji): never needs a fetch command. */
  buildsOffline: boolean;
  /** What makes it ready when it is not, e.g. "mtl-bench datasets fetch cub" (plus --from PATH for licensed data). */
  fetchHint?: string;
}

export interface DatasetCatalog {
  ids(): string[];
  get(id: string): CatalogEntry | undefined;
  /** Names of the relatedness priors of the manifest (e.g. du2014). */
  priorIds(): string[];
  /** Lays a named prior out for the given class names (rows) and label or class names (columns). */
  priorMatrix(prior: string, rows: string[], columns: string[]): number[][];
  /** Builds a dataset that needs no download (openmoji) so that it becomes ready. */
  prepare(id: string): Promise<void>;
  /** Split sizes, from the index when the data is here, else as the manifest publishes them (for time estimates). */
  imageCounts?(id: string): ImageCounts | undefined;
}

export type LoadDatasetFn = (id: string, options: { inputSize: number }) => Promise<DatasetView>;
