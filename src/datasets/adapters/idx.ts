import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { UserError } from '../../util/errors.js';
import { IndexBuilder } from '../index_file.js';
import { adapterOptions } from '../manifest.js';
import { trainOrVal } from '../splits.js';
import type { Split } from '../types.js';
import { declaredLabels, type Adapter } from './types.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** The file itself, or its .gz / un-.gz twin (Debian and some mirrors ship one, upstream the other). */
function locateIdx(root: string, name: string): string {
  const candidates = [name, name.endsWith('.gz') ? name.slice(0, -3) : `${name}.gz`].map((n) => path.join(root, n));
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new UserError(`missing IDX file: ${candidates.join(' or ')}`);
  return found;
}

/** Reads an unsigned-byte IDX file (MNIST layout), gzip-compressed or not. */
export function readIdx(file: string): IdxArray {
  let bytes: Buffer = fs.readFileSync(file);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (err) {
      throw new UserError(`${file}: corrupt gzip data (${(err as Error).message})`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new UserError(`${file}: not an IDX file (bad magic number)`);
  if (bytes[2] !== 0x08) throw new UserError(`${file}: IDX element type 0x${bytes[2].toString(16)} is not unsigned byte (0x08)`);
  const ndims = bytes[3];
  if (ndims < 1 || bytes.length < 4 + 4 * ndims) throw new UserError(`${file}: truncated IDX header`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(bytes.readUInt32BE(4 + 4 * i));
  const offset = 4 + 4 * ndims;
  const expected = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - offset !== expected)
    throw new UserError(`${file}: IDX dimensions ${dims.join('×')} need ${expected} bytes of data, the file has ${bytes.length - offset}`);
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + offset, expected) };
}

/** Fashion-MNIST and any MNIST-style dataset: train/t10k image and label IDX files, one categorical task. */
export const idxAdapter: Adapter = async ({ entry, root }) => {
  const options = adapterOptions(entry, 'idx');
  const labels = declaredLabels(entry, options.task);
  const task = { name: options.task, kind: 'categorical' as const, labels };
  const parts: { images: string; labels: string; split: 'train' | 'test' }[] = [
    { images: options.train_images, labels: options.train_labels, split: 'train' },
    { images: options.test_images, labels: options.test_labels, split: 'test' },
  ];
  // Train and test images live in different IDX files, and an index split refers to one file: one builder each.
  const splits = {} as Awaited<ReturnType<Adapter>>['splits'];
  const builders: IndexBuilder[] = [];
  for (const part of parts) {
    const imageFile = locateIdx(root, part.images);
    const labelFile = locateIdx(root, part.labels);
    const images = readIdx(imageFile);
    const classes = readIdx(labelFile);
    if (images.dims.length !== 3)
      throw new UserError(`${imageFile}: expected 3 dimensions (count × rows × columns), found ${images.dims.length}`);
    if (classes.dims.length !== 1) throw new UserError(`${labelFile}: expected 1 dimension, found ${classes.dims.length}`);
    if (classes.dims[0] !== images.dims[0])
      throw new UserError(`${labelFile}: ${classes.dims[0]} labels for ${images.dims[0]} images in ${imageFile}`);
    const builder = new IndexBuilder([task], 'idx', imageFile);
    for (let i = 0; i < classes.dims[0]; i++) {
      const cls = classes.data[i];
      if (cls >= labels.length)
        throw new UserError(`${labelFile}: item ${i} has class ${cls}, but the manifest names ${labels.length} classes`);
      const id = `${part.split}/${i}`;
      const split: Split = part.split === 'test' ? 'test' : trainOrVal(id, entry.val_fraction);
      builder.add(split, id, i, { [task.name]: cls });
    }
    builders.push(builder);
  }
  const [train, test] = builders.map((b) => b.build());
  splits.train = train.train;
  splits.val = train.val;
  splits.test = test.test;
  return { tasks: [task], splits };
};
