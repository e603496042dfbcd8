import type { DatasetView, ImageSource, LabelColumn, SplitData, TaskSpec } from '../../src/datasets/types.js';
import { MASKED, NO_CLASS } from '../../src/datasets/types.js';
import type { CellConfig } from '../../src/config/cell.js';
import { TRAINING_REVISION } from '../../src/config/defaults.js';
import { Rng } from '../../src/train/random.js';

/** An in-memory uint8 image store with the ImageSource contract. */
export function memoryImages(size: number, channels: number, pixels: Uint8Array): ImageSource & { reads: number } {
  const per = size * size * channels;
  const source = {
    size,
    channels,
    count: pixels.length / per,
    reads: 0,
    read(indices: ArrayLike<number>): Uint8Array {
      source.reads++;
      const out = new Uint8Array(indices.length * per);
      for (let n = 0; n < indices.length; n++) out.set(pixels.subarray(indices[n]! * per, (indices[n]! + 1) * per), n * per);
      return out;
    },
  };
  return source;
}

/** Wraps an image source to keep the indices of every read, one array per call, in order. */
export function recordingReads(source: ImageSource): ImageSource & { calls: number[][] } {
  const calls: number[][] = [];
  return {
    size: source.size,
    channels: source.channels,
    count: source.count,
    calls,
    read(indices: ArrayLike<number>): Uint8Array {
      calls.push(Array.from(indices));
      return source.read(indices);
    },
  };
}

const SHAPE_CLASSES = ['top-left', 'top-right', 'bottom-left', 'bottom-right'];
export const ATTRIBUTES = ['top', 'left', 'red', 'coin', 'never'];

/**
 * Images whose class (`quadrant`: which quadrant is bright) and attributes (`attrs`: top, left,
 * red tint, an unpredictable coin, and a label that is never positive) are visible in the pixels,
 * so a small network learns them in a few epochs. Some attribute entries are masked and some
 * samples lack the class, as real partial annotations do.
 */
export function syntheticDataset(
  options: { size?: number; counts?: [number, number, number]; seed?: number; maskRate?: number } = {},
): DatasetView {
  const size = options.size ?? 8;
  const [nTrain, nVal, nTest] = options.counts ?? [96, 32, 32];
  const rng = Rng.fromSeed(options.seed ?? 1, 'synthetic');
  const maskRate = options.maskRate ?? 0.1;
  const tasks: TaskSpec[] = [
    { name: 'quadrant', kind: 'categorical', labels: SHAPE_CLASSES },
    { name: 'attrs', kind: 'multilabel', labels: ATTRIBUTES },
  ];
  const makeSplit = (split: 'train' | 'val' | 'test', count: number): SplitData => {
    const pixels = new Uint8Array(count * size * size * 3);
    const classes = new Int32Array(count);
    const attrs = new Uint8Array(count * ATTRIBUTES.length);
    const half = size / 2;
    for (let n = 0; n < count; n++) {
      const k = rng.int(4);
      const red = rng.bool();
      const coin = rng.bool();
      const top = k < 2;
      const left = k % 2 === 0;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const inQuadrant = y < half === top && x < half === left;
          const base = (((n * size + y) * size + x) * 3) >>> 0;
          const value = (inQuadrant ? 180 : 40) + rng.int(40);
          pixels[base] = Math.min(255, value + (red ? 60 : 0));
          pixels[base + 1] = value;
          pixels[base + 2] = value;
        }
      }
      classes[n] = split === 'train' && rng.float() < maskRate ? NO_CLASS : k;
      const row = [top, left, red, coin, false].map((v) => (v ? 1 : 0));
      row.forEach((v, i) => {
        attrs[n * ATTRIBUTES.length + i] = rng.float() < maskRate ? MASKED : v;
      });
    }
    const labels: Record<string, LabelColumn> = {
      quadrant: { kind: 'categorical', values: classes },
      attrs: { kind: 'multilabel', width: ATTRIBUTES.length, values: attrs },
    };
    return {
      split,
      count,
      ids: Array.from({ length: count }, (_, i) => `${split}/${i}.png`),
      images: memoryImages(size, 3, pixels),
      labels,
    };
  };
  return {
    id: 'synthetic',
    name: 'Synthetic quadrants',
    tasks,
    splits: { train: makeSplit('train', nTrain), val: makeSplit('val', nVal), test: makeSplit('test', nTest) },
    relatedness: [
      {
        from: 'quadrant',
        to: 'attrs',
        source: 'prior',
        matrix: SHAPE_CLASSES.map((_, k) => [k < 2 ? 1 : 0, k % 2 === 0 ? 1 : 0, 0.5, 0.5, 0]),
      },
    ],
  };
}

export function cellConfig(
  overrides: Partial<CellConfig> = {},
  train: Partial<CellConfig['train']> = {},
  method: Partial<CellConfig['method']> = {},
): CellConfig {
  return {
    benchmark: 'test',
    dataset: 'synthetic',
    tasks: [
      { name: 'quadrant', primary: 'accuracy' },
      { name: 'attrs', primary: 'macro_f1' },
    ],
    inputSize: 8,
    backbone: 'convnet-s',
    relatedness: [{ from: 'quadrant', to: 'attrs', source: 'data', alpha: 1, minCoannotated: 10 }],
    regime: { name: 'full', spec: { kind: 'full' } },
    setting: 'mtl+sca+dm',
    seed: 3,
    trainingRevision: TRAINING_REVISION,
    ...overrides,
    train: {
      epochs: 2,
      batchSize: 16,
      learningRate: 0.01,
      optimizer: 'adam',
      momentum: 0.9,
      schedule: 'cosine',
      stepEvery: 1,
      stepGamma: 0.1,
      weightDecay: 1e-4,
      cropPadding: 1,
      flip: true,
      classBalanced: false,
      ...train,
    },
    method: {
      tau: 1,
      detachTarget: false,
      dmVariant: 'likelihood',
      dmScope: 'all',
      lambdaSca: 1,
      lambdaDm: 1,
      taskWeights: {},
      ...method,
    },
  };
}
