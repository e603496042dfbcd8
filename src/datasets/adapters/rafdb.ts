import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { IndexBuilder } from '../index_file.js';
import { trainOrVal } from '../splits.js';
import type { TaskSpec } from '../types.js';
import { findFirst, lineError, parseInteger, readLines, tokens } from './text.js';
import { declaredLabels, type Adapter } from './types.js';

/**
 * RAF-DB basic: EmoLabel/list_patition_label.txt (sic) with "train_00001.jpg 5" lines (labels
 * 1–7, split from the prefix), aligned images Image/aligned/<stem>_aligned.jpg.
 */
export const rafdbAdapter: Adapter = async ({ entry, root, warn }) => {
  const labels = declaredLabels(entry, 'expression');
  const bases = [root, path.join(root, 'basic'), path.join(root, 'RAF-DB', 'basic')];
  const labelFile = findFirst(
    bases.flatMap((b) => [path.join(b, 'EmoLabel', 'list_patition_label.txt'), path.join(b, 'EmoLabel', 'list_partition_label.txt')]),
    'RAF-DB label list EmoLabel/list_patition_label.txt',
  );
  const base = path.dirname(path.dirname(labelFile));
  let imageRoot = path.join(base, 'Image', 'aligned');
  let aligned = true;
  if (!fs.existsSync(imageRoot)) {
    if (!fs.existsSync(path.join(base, 'Image', 'original'))) throw new UserError(`missing RAF-DB image folder: ${imageRoot}`);
    imageRoot = path.join(base, 'Image', 'original');
    aligned = false;
    warn(`no Image/aligned/ folder: using the unaligned Image/original/ images`);
  }
  const tasks: TaskSpec[] = [{ name: 'expression', kind: 'categorical', labels }];
  const builder = new IndexBuilder(tasks, 'files', imageRoot);
  for (const line of readLines(labelFile)) {
    const [name, value] = tokens(line);
    const label = parseInteger(value, labelFile, line.number, 'label');
    if (label < 1 || label > labels.length) throw lineError(labelFile, line.number, `label ${label} outside 1–${labels.length}`);
    const prefix = /^(train|test)_/.exec(name)?.[1];
    if (!prefix) throw lineError(labelFile, line.number, `"${name}" starts with neither train_ nor test_`);
    const stem = name.replace(/\.[^.]+$/, '');
    const file = aligned ? `${stem}_aligned.jpg` : name;
    builder.add(prefix === 'test' ? 'test' : trainOrVal(name, entry.val_fraction), name, file, { expression: label - 1 });
  }
  return { base, tasks, splits: builder.build() };
};
