import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { IndexBuilder } from '../index_file.js';
import { adapterOptions } from '../manifest.js';
import { splitFromBucket } from '../splits.js';
import type { Split, TaskSpec } from '../types.js';
import { findFirst, lineError, parseInteger, readLines, tokens } from './text.js';
import type { Adapter } from './types.js';

const PARTITIONS: Split[] = ['train', 'val', 'test'];

/**
 * CelebA: list_attr_celeba.txt (a count line, a line of 40 names, then "<image> ±1 …" with runs
 * of spaces), list_eval_partition.txt (0 train, 1 val, 2 test) and identity_CelebA.txt. Files are
 * found in the flat layout of the Drive folder or in its Anno/ and Eval/ subfolders.
 */
export const celebaAdapter: Adapter = async ({ entry, root }) => {
  const options = adapterOptions(entry, 'celeba');
  const find = (name: string, sub: string) =>
    findFirst([path.join(root, name), path.join(root, sub, name), path.join(root, 'celeba', name)], `CelebA ${name}`);
  const attrFile = find('list_attr_celeba.txt', 'Anno');
  const imageRoot = findFirst(
    [
      path.join(root, 'img_align_celeba'),
      path.join(root, 'Img', 'img_align_celeba'),
      path.join(path.dirname(attrFile), 'img_align_celeba'),
    ],
    'CelebA image folder img_align_celeba/',
  );

  const lines = readLines(attrFile);
  if (lines.length < 2) throw new UserError(`${attrFile}: expected a count line and a line of attribute names`);
  const declared = parseInteger(tokens(lines[0])[0], attrFile, lines[0].number, 'image count');
  const names = tokens(lines[1]);
  if (lines.length - 2 !== declared)
    throw new UserError(`${attrFile}: the first line announces ${declared} images, the file lists ${lines.length - 2}`);
  const width = names.length;
  const images: string[] = [];
  const attributes = new Uint8Array(declared * width);
  lines.slice(2).forEach((line, i) => {
    const [image, ...values] = tokens(line);
    if (values.length !== width) throw lineError(attrFile, line.number, `${values.length} values, expected ${width}`);
    values.forEach((v, c) => {
      if (v === '1') attributes[i * width + c] = 1;
      else if (v !== '-1') throw lineError(attrFile, line.number, `attribute "${names[c]}" is "${v}", expected 1 or -1`);
    });
    images.push(image);
  });

  const partitionOf = new Map<string, Split>();
  const partitionFile = find('list_eval_partition.txt', 'Eval');
  for (const line of readLines(partitionFile)) {
    const [image, value] = tokens(line);
    const p = parseInteger(value, partitionFile, line.number, 'partition');
    if (p < 0 || p > 2) throw lineError(partitionFile, line.number, `partition ${p} is not 0, 1 or 2`);
    partitionOf.set(image, PARTITIONS[p]);
  }

  const tasks: TaskSpec[] = [{ name: 'attributes', kind: 'multilabel', labels: names }];
  let identityOf: Map<string, number> | undefined;
  if (entry.tasks.identity) {
    const identityFile = find('identity_CelebA.txt', 'Anno');
    const raw = new Map<string, number>();
    for (const line of readLines(identityFile)) {
      const [image, value] = tokens(line);
      raw.set(image, parseInteger(value, identityFile, line.number, 'identity'));
    }
    const ids = [...new Set(raw.values())].sort((a, b) => a - b);
    const classOf = new Map(ids.map((id, i) => [id, i]));
    identityOf = new Map([...raw].map(([image, id]) => [image, classOf.get(id)!]));
    tasks.push({ name: 'identity', kind: 'categorical', labels: ids.map(String) });
  }

  const builder = new IndexBuilder(tasks, 'files', imageRoot);
  images.forEach((image, i) => {
    let split: Split;
    if (options.partition === 'within-identity') split = splitFromBucket(image);
    else {
      const official = partitionOf.get(image);
      if (!official) throw new UserError(`${partitionFile}: no partition for ${image}`);
      split = official;
    }
    const labels: Record<string, number | Uint8Array | undefined> = { attributes: attributes.subarray(i * width, (i + 1) * width) };
    if (identityOf) labels.identity = identityOf.get(image);
    builder.add(split, image, image, labels);
  });
  if (!fs.existsSync(imageRoot)) throw new UserError(`missing CelebA image folder: ${imageRoot}`);
  return { tasks, splits: builder.build() };
};
