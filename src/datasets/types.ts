/**
 * The contract between the dataset layer (manifests, adapters, index, image cache) and everything
 * that trains. Adapters produce an index; `loadDataset` turns an index plus the image cache into a
 * DatasetView that the trainer reads without knowing which format the data came from.
 */

export type TaskKind = 'categorical' | 'multilabel';
export type Split = 'train' | 'val' | 'test';
export const SPLITS: readonly Split[] = ['train', 'val', 'test'];

export interface TaskSpec {
  name: string;
  kind: TaskKind;
  /** Class names (categorical) or label names (multi-label), in index order. */
  labels: string[];
}

/** Marks a multi-label entry with no annotation (CUB "not visible", CAD NaN, BP4D 9, or no label vector at all). */
export const MASKED = 255;
/** Marks a sample with no label for a categorical task. */
export const NO_CLASS = -1;

export interface CategoricalColumn {
  kind: 'categorical';
  /** One class index per sample; NO_CLASS where the sample carries no label for this task. */
  values: Int32Array;
}

export interface MultilabelColumn {
  kind: 'multilabel';
  width: number;
  /** count × width entries, row-major: 0, 1, or MASKED. A sample without the task has a fully masked row. */
  values: Uint8Array;
}

export type LabelColumn = CategoricalColumn | MultilabelColumn;

/** Decoded, resized images of one split, stored as uint8 HWC; never decoded twice. */
export interface ImageSource {
  size: number;
  channels: number;
  count: number;
  /** Copies the images at `indices` into one buffer of indices.length × size × size × channels bytes. */
  read(indices: ArrayLike<number>): Uint8Array;
}

export interface SplitData {
  split: Split;
  count: number;
  /** Stable sample ids (e.g. relative image paths), used for seeded regime draws and provenance. */
  ids: string[];
  images: ImageSource;
  labels: Record<string, LabelColumn>;
}

/** A class-level relatedness table shipped with the dataset (an expert prior or a file in the data). */
export interface RelatednessTable {
  from: string;
  to: string;
  source: 'prior' | 'file';
  /** rows = classes of `from`, columns = labels/classes of `to`, values in [0, 1]. */
  matrix: number[][];
  description?: string;
}

export interface DatasetView {
  id: string;
  name: string;
  tasks: TaskSpec[];
  splits: Record<Split, SplitData>;
  relatedness: RelatednessTable[];
}
