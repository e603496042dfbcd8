import {
  MASKED,
  NO_CLASS,
  SPLITS,
  type DatasetView,
  type ImageSource,
  type LabelColumn,
  type RelatednessTable,
  type Split,
  type SplitData,
  type TaskSpec,
} from '../datasets/types.js';
import { UserError } from '../util/errors.js';

export interface SourceBinding {
  /** The benchmark's name for the task. */
  task: string;
  dataset: string;
  /** The task's name inside that dataset. */
  sourceTask: string;
}

/** Concatenated images of several sources; reads are grouped per source to keep copies large. */
function concatImages(parts: ImageSource[]): ImageSource {
  const size = parts[0]!.size;
  const channels = parts[0]!.channels;
  const offsets: number[] = [];
  let count = 0;
  for (const part of parts) {
    offsets.push(count);
    count += part.count;
  }
  const bytesPerImage = size * size * channels;
  return {
    size,
    channels,
    count,
    read(indices: ArrayLike<number>): Uint8Array {
      const out = new Uint8Array(indices.length * bytesPerImage);
      const wanted: { at: number[]; local: number[] }[] = parts.map(() => ({ at: [], local: [] }));
      for (let i = 0; i < indices.length; i++) {
        const index = indices[i]!;
        if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`image index ${index} outside 0..${count - 1}`);
        let p = parts.length - 1;
        while (offsets[p]! > index) p--;
        wanted[p]!.at.push(i);
        wanted[p]!.local.push(index - offsets[p]!);
      }
      wanted.forEach((w, p) => {
        if (w.local.length === 0) return;
        const block = parts[p]!.read(w.local);
        w.at.forEach((position, j) => out.set(block.subarray(j * bytesPerImage, (j + 1) * bytesPerImage), position * bytesPerImage));
      });
      return out;
    },
  };
}

function emptyColumn(spec: TaskSpec, count: number): LabelColumn {
  if (spec.kind === 'categorical') return { kind: 'categorical', values: new Int32Array(count).fill(NO_CLASS) };
  return { kind: 'multilabel', width: spec.labels.length, values: new Uint8Array(count * spec.labels.length).fill(MASKED) };
}

/**
 * Builds one view out of several datasets for a multi-source study: the samples of every source
 * one after another, each carrying only the tasks its own dataset labels, renamed to the
 * benchmark's task names. Each task is thus evaluated on its own source's test split.
 */
export function combineSources(views: Map<string, DatasetView>, bindings: SourceBinding[]): DatasetView {
  const datasetIds = [...new Set(bindings.map((b) => b.dataset))];
  const specs: TaskSpec[] = bindings.map((b) => {
    const view = views.get(b.dataset)!;
    const spec = view.tasks.find((t) => t.name === b.sourceTask);
    if (!spec) throw new UserError(`dataset "${b.dataset}" has no task "${b.sourceTask}"`);
    return { name: b.task, kind: spec.kind, labels: [...spec.labels] };
  });
  const first = views.get(datasetIds[0]!)!;
  for (const id of datasetIds) {
    const view = views.get(id)!;
    for (const split of SPLITS) {
      const a = view.splits[split].images;
      const b = first.splits[split].images;
      if (a.size !== b.size || a.channels !== b.channels) {
        throw new UserError(
          `sources: "${id}" gives ${a.size}×${a.size}×${a.channels} images but "${first.id}" gives ${b.size}×${b.size}×${b.channels}`,
        );
      }
    }
  }
  const splits = {} as Record<Split, SplitData>;
  for (const split of SPLITS) {
    const parts = datasetIds.map((id) => views.get(id)!.splits[split]);
    const count = parts.reduce((n, p) => n + p.count, 0);
    const labels: Record<string, LabelColumn> = {};
    bindings.forEach((binding, t) => {
      const spec = specs[t]!;
      const column = emptyColumn(spec, count);
      let offset = 0;
      datasetIds.forEach((id, p) => {
        const part = parts[p]!;
        if (id === binding.dataset) {
          const source = part.labels[binding.sourceTask];
          if (!source) throw new UserError(`dataset "${id}" has no labels for task "${binding.sourceTask}" in its ${split} split`);
          if (source.kind === 'categorical' && column.kind === 'categorical') column.values.set(source.values, offset);
          else if (source.kind === 'multilabel' && column.kind === 'multilabel') column.values.set(source.values, offset * column.width);
          else throw new UserError(`dataset "${id}": task "${binding.sourceTask}" changed kind between its spec and its ${split} labels`);
        }
        offset += part.count;
      });
      labels[binding.task] = column;
    });
    splits[split] = {
      split,
      count,
      ids: parts.flatMap((part, p) => part.ids.map((id) => `${datasetIds[p]}:${id}`)),
      images: concatImages(parts.map((p) => p.images)),
      labels,
    };
  }
  // A table links two source tasks; it applies when the benchmark binds both of them.
  const relatedness: RelatednessTable[] = [];
  for (const id of datasetIds) {
    for (const table of views.get(id)!.relatedness) {
      // Prefer the binding in the table's own dataset when two sources use the same task name.
      const bound = (name: string) =>
        bindings.find((b) => b.sourceTask === name && b.dataset === id) ?? bindings.find((b) => b.sourceTask === name);
      const from = bound(table.from);
      const to = bound(table.to);
      if (from && to && from.task !== to.task) relatedness.push({ ...table, from: from.task, to: to.task });
    }
  }
  return {
    id: datasetIds.join('+'),
    name: datasetIds.map((id) => views.get(id)!.name).join(' + '),
    tasks: specs,
    splits,
    relatedness,
  };
}
