import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { IndexBuilder } from '../index_file.js';
import { splitFromBucket } from '../splits.js';
import { MASKED, NO_CLASS, type TaskSpec } from '../types.js';
import { matVariable } from './mat5.js';
import { findFirst } from './text.js';
import type { Adapter } from './types.js';

/**
 * The Clothing Attributes Dataset: images/*.jpg (sorted order = label row order) and one
 * labels/<name>_GT.mat column per attribute. Categorical tasks read labels/<task>_GT.mat with
 * classes coded 1..K; each label of a multi-label task reads labels/<label>_GT.mat coded 1/2
 * (→ 0/1). NaN means no label. No official split: 70/10/20 by hashing the image name.
 */
export const cadAdapter: Adapter = async ({ entry, root }) => {
  const base = path.dirname(
    findFirst([path.join(root, 'ClothingAttributeDataset', 'labels'), path.join(root, 'labels')], 'CAD labels/ folder'),
  );
  const imageRoot = path.join(base, 'images');
  if (!fs.existsSync(imageRoot)) throw new UserError(`missing CAD image folder: ${imageRoot}`);
  const images = fs
    .readdirSync(imageRoot)
    .filter((n) => /\.jpe?g$/i.test(n))
    .sort();
  if (images.length === 0) throw new UserError(`${imageRoot}: no .jpg images`);

  const column = (name: string) => {
    const file = path.join(base, 'labels', `${name}_GT.mat`);
    if (!fs.existsSync(file)) throw new UserError(`missing CAD label file: ${file}`);
    const variable = matVariable(file, 'GT');
    if (variable.data.length !== images.length)
      throw new UserError(`${file}: ${variable.data.length} labels for ${images.length} images in ${imageRoot}`);
    return { file, values: variable.data };
  };
  const tasks: TaskSpec[] = [];
  const columns = new Map<string, Int32Array | Uint8Array>();
  for (const [name, spec] of Object.entries(entry.tasks)) {
    if (!spec.labels)
      throw new UserError(`${entry.source}: entry "${entry.id}": tasks.${name}.labels: CAD needs the class or attribute names`);
    if (spec.kind === 'categorical') {
      const { file, values } = column(name);
      columns.set(
        name,
        Int32Array.from(values, (v, row) => {
          if (Number.isNaN(v)) return NO_CLASS;
          if (!Number.isInteger(v) || v < 1 || v > spec.labels!.length)
            throw new UserError(`${file}: row ${row + 1}: value ${v} is not a class 1–${spec.labels!.length}`);
          return v - 1;
        }),
      );
    } else {
      const width = spec.labels.length;
      const matrix = new Uint8Array(images.length * width);
      spec.labels.forEach((label, c) => {
        const { file, values } = column(label);
        values.forEach((v, row) => {
          if (Number.isNaN(v)) matrix[row * width + c] = MASKED;
          else if (v === 1 || v === 2) matrix[row * width + c] = v - 1;
          else throw new UserError(`${file}: row ${row + 1}: value ${v}; binary attributes are coded 1/2 (NaN = no label)`);
        });
      });
      columns.set(name, matrix);
    }
    tasks.push({ name, kind: spec.kind, labels: spec.labels });
  }
  const builder = new IndexBuilder(tasks, 'files', imageRoot);
  images.forEach((image, row) => {
    const labels: Record<string, number | Uint8Array> = {};
    for (const task of tasks) {
      const values = columns.get(task.name)!;
      labels[task.name] =
        task.kind === 'categorical'
          ? values[row]
          : (values as Uint8Array).subarray(row * task.labels.length, (row + 1) * task.labels.length);
    }
    builder.add(splitFromBucket(image), image, image, labels);
  });
  return { base, tasks, splits: builder.build() };
};
