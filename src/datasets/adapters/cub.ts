import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { IndexBuilder } from '../index_file.js';
import { trainOrVal } from '../splits.js';
import { MASKED, type Split, type TaskSpec } from '../types.js';
import { findFirst, forEachLine, lineError, parseInteger, readLines, tokens } from './text.js';
import type { Adapter } from './types.js';

/** Reads "<id> <name>" lines with ids 1..n in order: CUB's classes.txt and attributes.txt. */
function readNumberedNames(file: string): string[] {
  return readLines(file).map((line, i) => {
    const [id, ...rest] = tokens(line);
    if (parseInteger(id, file, line.number, 'id') !== i + 1) throw lineError(file, line.number, `expected id ${i + 1}, got ${id}`);
    if (rest.length === 0) throw lineError(file, line.number, 'missing name');
    return rest.join(' ');
  });
}

/** "<image id> <value>" lines for every image id 1..n. */
function readPerImage(file: string, count: number, what: string, parse: (token: string, line: number) => number): Int32Array {
  const values = new Int32Array(count).fill(-1);
  for (const line of readLines(file)) {
    const [id, value] = tokens(line);
    const image = parseInteger(id, file, line.number, 'image id');
    if (image < 1 || image > count) throw lineError(file, line.number, `image id ${image} outside 1..${count}`);
    values[image - 1] = parse(value, line.number);
  }
  const missing = values.indexOf(-1);
  if (missing >= 0) throw new UserError(`${file}: no ${what} for image ${missing + 1}`);
  return values;
}

/**
 * CUB-200-2011: species (200 classes) and 312 binary attributes per image. An attribute rated
 * certainty 1 ("not visible") is masked rather than taken as absent.
 */
export const cubAdapter: Adapter = async ({ entry, root }) => {
  const imagesList = findFirst([path.join(root, 'CUB_200_2011', 'images.txt'), path.join(root, 'images.txt')], 'CUB images.txt');
  const base = path.dirname(imagesList);
  const at = (...parts: string[]) => path.join(base, ...parts);

  const imagePaths = readLines(imagesList).map((line, i) => {
    const [id, file] = tokens(line);
    if (parseInteger(id, imagesList, line.number, 'image id') !== i + 1)
      throw lineError(imagesList, line.number, `expected image id ${i + 1}, got ${id}`);
    if (!file) throw lineError(imagesList, line.number, 'missing image path');
    return file;
  });
  const count = imagePaths.length;
  const species = readNumberedNames(at('classes.txt'));
  const classOf = readPerImage(at('image_class_labels.txt'), count, 'class', (token, line) => {
    const cls = parseInteger(token, at('image_class_labels.txt'), line, 'class id');
    if (cls < 1 || cls > species.length) throw lineError(at('image_class_labels.txt'), line, `class ${cls} outside 1..${species.length}`);
    return cls - 1;
  });
  const isTrain = readPerImage(at('train_test_split.txt'), count, 'split', (token, line) => {
    const flag = parseInteger(token, at('train_test_split.txt'), line, 'is_training_image');
    if (flag !== 0 && flag !== 1) throw lineError(at('train_test_split.txt'), line, `is_training_image must be 0 or 1, got ${flag}`);
    return flag;
  });
  // The archive puts attributes.txt beside CUB_200_2011/, not in attributes/ as the README says.
  const attributeNames = readNumberedNames(
    findFirst(
      [path.join(path.dirname(base), 'attributes.txt'), at('attributes.txt'), at('attributes', 'attributes.txt')],
      'CUB attributes.txt (attribute names)',
    ),
  );
  const width = attributeNames.length;
  const attributes = new Uint8Array(count * width).fill(MASKED);
  const labelsFile = at('attributes', 'image_attribute_labels.txt');
  await forEachLine(labelsFile, (line) => {
    // A few lines carry extra tokens: the first four are image, attribute, is_present, certainty.
    const [img, attr, present, certainty] = tokens(line);
    const image = parseInteger(img, labelsFile, line.number, 'image id');
    const attribute = parseInteger(attr, labelsFile, line.number, 'attribute id');
    const isPresent = parseInteger(present, labelsFile, line.number, 'is_present');
    const sure = parseInteger(certainty, labelsFile, line.number, 'certainty id');
    if (image < 1 || image > count) throw lineError(labelsFile, line.number, `image id ${image} outside 1..${count}`);
    if (attribute < 1 || attribute > width) throw lineError(labelsFile, line.number, `attribute id ${attribute} outside 1..${width}`);
    if (isPresent !== 0 && isPresent !== 1) throw lineError(labelsFile, line.number, `is_present must be 0 or 1, got ${isPresent}`);
    if (sure < 1 || sure > 4) throw lineError(labelsFile, line.number, `certainty must be 1–4, got ${sure}`);
    attributes[(image - 1) * width + attribute - 1] = sure === 1 ? MASKED : isPresent;
  });

  const tasks: TaskSpec[] = [
    { name: 'species', kind: 'categorical', labels: species },
    { name: 'attributes', kind: 'multilabel', labels: attributeNames },
  ];
  const imageRoot = at('images');
  if (!fs.existsSync(imageRoot)) throw new UserError(`missing CUB image folder: ${imageRoot}`);
  const builder = new IndexBuilder(tasks, 'files', imageRoot);
  imagePaths.forEach((file, i) => {
    const split: Split = isTrain[i] === 1 ? trainOrVal(file, entry.val_fraction) : 'test';
    builder.add(split, file, file, { species: classOf[i], attributes: attributes.subarray(i * width, (i + 1) * width) });
  });
  return { base, tasks, splits: builder.build() };
};
