import { createHash } from 'node:crypto';
import type { Split } from './types.js';

/** First byte of sha1(key) mod 10: a stable bucket that needs no seed and survives re-indexing. */
function hashBucket(key: string): number {
  return createHash('sha1').update(key, 'utf8').digest()[0] % 10;
}

/** Buckets 0–6 train, 7 val, 8–9 test: the split of datasets that have none of their own. */
export function splitFromBucket(key: string): Split {
  const bucket = hashBucket(key);
  return bucket <= 6 ? 'train' : bucket === 7 ? 'val' : 'test';
}

/** A number in [0, 1) from sha1(key), for holding a fixed fraction of a training split out as validation. */
function hashUnit(key: string): number {
  return createHash('sha1').update(key, 'utf8').digest().readUInt32BE(0) / 2 ** 32;
}

/** Train unless the key falls in the held-out validation fraction. */
export function trainOrVal(key: string, valFraction: number): Split {
  return hashUnit(`val:${key}`) < valFraction ? 'val' : 'train';
}
