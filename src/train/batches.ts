import * as tf from '@tensorflow/tfjs';
import type { ImageSource, LabelColumn, TaskSpec } from '../datasets/types.js';
import { MASKED, NO_CLASS } from '../datasets/types.js';
import type { TaskBatch } from '../method/losses.js';
import type { Rng } from './random.js';

const BYTE_TO_UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);

export interface Augmentation {
  /**
   * Pad by this many pixels on every side, repeating the edge pixels (black would frame images
   * that sit on white or natural backgrounds), then crop back to the input size at a random offset.
   */
  padding: number;
  flip: boolean;
}

/**
 * Reads the images of one batch from the uint8 cache and writes them as float32 in [0, 1],
 * cropped and flipped in the same pass when `augmentation` is given. Only this batch's bytes are
 * ever read; the random draws (dy, dx, flip per sample, in that order) come from `rng`.
 */
export function readImageBatch(source: ImageSource, samples: ArrayLike<number>, augmentation?: Augmentation, rng?: Rng): Float32Array {
  const size = source.size;
  const channels = source.channels;
  const pixels = size * size * channels;
  const bytes = source.read(samples);
  if (bytes.length !== samples.length * pixels) {
    throw new Error(`image source returned ${bytes.length} bytes for ${samples.length} images of ${size}×${size}×${channels}`);
  }
  const out = new Float32Array(bytes.length);
  const augment = augmentation && rng && (augmentation.padding > 0 || augmentation.flip);
  if (!augment) {
    for (let i = 0; i < bytes.length; i++) out[i] = BYTE_TO_UNIT[bytes[i]!]!;
    return out;
  }
  const pad = augmentation.padding;
  const edge = (v: number) => (v < 0 ? 0 : v >= size ? size - 1 : v);
  for (let n = 0; n < samples.length; n++) {
    const dy = pad > 0 ? rng.int(2 * pad + 1) - pad : 0;
    const dx = pad > 0 ? rng.int(2 * pad + 1) - pad : 0;
    const flip = augmentation.flip ? rng.bool() : false;
    const base = n * pixels;
    for (let y = 0; y < size; y++) {
      // A row or column of the padding repeats the nearest edge of the image.
      const sy = edge(y + dy);
      const rowOut = base + y * size * channels;
      const rowIn = base + sy * size * channels;
      for (let x = 0; x < size; x++) {
        const sx = edge((flip ? size - 1 - x : x) + dx);
        const o = rowOut + x * channels;
        const i = rowIn + sx * channels;
        for (let c = 0; c < channels; c++) out[o + c] = BYTE_TO_UNIT[bytes[i + c]!]!;
      }
    }
  }
  return out;
}

/** The labels of one batch as flat arrays, built in JavaScript so a step creates a handful of tensors, none per sample. */
export type EncodedTaskLabels =
  | { kind: 'categorical'; classes: number; oneHot: Float32Array; has: Float32Array }
  | { kind: 'multilabel'; width: number; target: Float32Array; mask: Float32Array; has: Float32Array };

export function encodeLabels(
  tasks: readonly TaskSpec[],
  labels: Record<string, LabelColumn>,
  samples: ArrayLike<number>,
): Record<string, EncodedTaskLabels> {
  const n = samples.length;
  const encoded: Record<string, EncodedTaskLabels> = {};
  for (const task of tasks) {
    const column = labels[task.name]!;
    const has = new Float32Array(n);
    if (column.kind === 'categorical') {
      const classes = task.labels.length;
      const oneHot = new Float32Array(n * classes);
      for (let r = 0; r < n; r++) {
        const k = column.values[samples[r]!]!;
        if (k === NO_CLASS) continue;
        if (k < 0 || k >= classes) throw new Error(`task ${task.name}: class index ${k} outside 0..${classes - 1}`);
        oneHot[r * classes + k] = 1;
        has[r] = 1;
      }
      encoded[task.name] = { kind: 'categorical', classes, oneHot, has };
    } else {
      const width = column.width;
      const target = new Float32Array(n * width);
      const mask = new Float32Array(n * width);
      for (let r = 0; r < n; r++) {
        const row = samples[r]! * width;
        for (let i = 0; i < width; i++) {
          const v = column.values[row + i]!;
          if (v === MASKED) continue;
          mask[r * width + i] = 1;
          target[r * width + i] = v === 1 ? 1 : 0;
          has[r] = 1;
        }
      }
      encoded[task.name] = { kind: 'multilabel', width, target, mask, has };
    }
  }
  return encoded;
}

/** Label tensors for the losses; call inside a tf.tidy. */
export function labelTensors(encoded: Record<string, EncodedTaskLabels>, logits: Record<string, tf.Tensor2D>): Record<string, TaskBatch> {
  const batches: Record<string, TaskBatch> = {};
  for (const [name, labels] of Object.entries(encoded)) {
    const n = labels.has.length;
    if (labels.kind === 'categorical') {
      batches[name] = {
        kind: 'categorical',
        logits: logits[name]!,
        oneHot: tf.tensor2d(labels.oneHot, [n, labels.classes]),
        has: tf.tensor1d(labels.has),
      };
    } else {
      batches[name] = {
        kind: 'multilabel',
        logits: logits[name]!,
        target: tf.tensor2d(labels.target, [n, labels.width]),
        mask: tf.tensor2d(labels.mask, [n, labels.width]),
        has: tf.tensor1d(labels.has),
      };
    }
  }
  return batches;
}

/**
 * The sample order of one epoch. Uniform: a seeded shuffle. Class-balanced (on `balanceTask`, a
 * categorical task): as many draws with replacement, where each class present gets the same total
 * probability among the labelled samples, and samples without that label keep their natural 1/N.
 */
export function epochOrder(samples: Int32Array, rng: Rng, balance?: { column: LabelColumn & { kind: 'categorical' } }): Int32Array {
  if (!balance) return rng.shuffle(Int32Array.from(samples));
  const values = balance.column.values;
  const classCounts = new Map<number, number>();
  let labelled = 0;
  for (const s of samples) {
    const k = values[s]!;
    if (k === NO_CLASS) continue;
    classCounts.set(k, (classCounts.get(k) ?? 0) + 1);
    labelled++;
  }
  const n = samples.length;
  const cumulative = new Float64Array(n);
  let total = 0;
  samples.forEach((s, i) => {
    const k = values[s]!;
    const weight = k === NO_CLASS ? 1 / n : labelled / n / classCounts.size / classCounts.get(k)!;
    total += weight;
    cumulative[i] = total;
  });
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.float() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    order[i] = samples[lo]!;
  }
  return order;
}
