import { UserError } from '../../util/errors.js';
import type { DatasetEntry } from '../manifest.js';
import type { IndexSplit } from '../index_file.js';
import type { RelatednessTable, Split, TaskSpec } from '../types.js';

export interface AdapterContext {
  entry: DatasetEntry;
  /** The folder holding the dataset (extracted download, the user's folder, or a package). */
  root: string;
  /** Something the user should know that does not stop indexing (kept in the index's notes). */
  warn: (message: string) => void;
}

export interface AdapterOutput {
  /** Folder that relatedness files of the manifest are relative to (default: root). */
  base?: string;
  tasks: TaskSpec[];
  splits: Record<Split, IndexSplit>;
  relatedness?: RelatednessTable[];
}

export type Adapter = (ctx: AdapterContext) => Promise<AdapterOutput>;

/** The label names a manifest task declares, or an error naming the key when the format needs them. */
export function declaredLabels(entry: DatasetEntry, task: string): string[] {
  const labels = entry.tasks[task]?.labels;
  if (!labels)
    throw new UserError(
      `${entry.source}: entry "${entry.id}": tasks.${task}.labels: the ${entry.format} format needs the label names in the manifest`,
    );
  return labels;
}
