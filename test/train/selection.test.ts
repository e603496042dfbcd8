import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { DatasetView, SplitData } from '../../src/datasets/types.js';
import { MASKED } from '../../src/datasets/types.js';
import { trainCell } from '../../src/train/trainer.js';
import { initTestWasmBackend } from '../wasm_backend.js';
import { ATTRIBUTES, cellConfig, memoryImages, recordingReads, syntheticDataset } from './fixtures.js';

// The synthetic labels are not mirror-symmetric (left/right quadrants), so flips stay off.
const TRAIN = { flip: false, epochs: 3 };

/**
 * A validation split on which every epoch scores the same: four identical images, one of each
 * quadrant class, so any network gets exactly one right (accuracy 0.25), and no attribute entry
 * annotated (its metrics are NaN and leave the mean primary metric).
 */
function tiedValidation(size: number): SplitData {
  const count = 4;
  return {
    split: 'val',
    count,
    ids: Array.from({ length: count }, (_, i) => `val/${i}.png`),
    images: memoryImages(size, 3, new Uint8Array(count * size * size * 3).fill(128)),
    labels: {
      quadrant: { kind: 'categorical', values: Int32Array.from([0, 1, 2, 3]) },
      attrs: { kind: 'multilabel', width: ATTRIBUTES.length, values: new Uint8Array(count * ATTRIBUTES.length).fill(MASKED) },
    },
  };
}

describe('model selection', () => {
  before(async () => {
    await initTestWasmBackend();
  });

  for (const setting of ['mtl+sca+dm', 'stl'] as const) {
    it(`${setting}: on a tie the earlier epoch wins`, async () => {
      const base = syntheticDataset({ counts: [64, 0, 32] });
      const data: DatasetView = { ...base, splits: { ...base.splits, val: tiedValidation(8) } };
      const result = await trainCell(cellConfig({ setting }, TRAIN), data, { progress: 'quiet' });
      assert.deepEqual(
        result.history.map((r) => r.val.quadrant!.accuracy),
        [0.25, 0.25, 0.25],
        'the tie the test is built on',
      );
      assert.notEqual(result.history[0]!.loss, result.history[2]!.loss, 'the network changed between epochs');
      assert.equal(result.bestEpoch, 1);
      assert.deepEqual(result.bestEpochByTask, { quadrant: 1, attrs: 1 });
      assert.deepEqual(result.val, result.history[0]!.val);
    });
  }

  describe('without a validation split', () => {
    const TRAIN_COUNT = 100;
    // Divides the 90 samples left for training, so every training batch is full and only the
    // evaluation of the 10 held out reads another number of images.
    const BATCH = 15;

    /**
     * Trains a cell on data without a validation split and tells apart the two kinds of reads of
     * the training images: training batches (BATCH images each) and the evaluation of the held-out
     * slice, read in one call since the evaluation batch is larger than the whole split.
     */
    async function trainWithoutValidation(seed: number) {
      const base = syntheticDataset({ counts: [TRAIN_COUNT, 0, 32], maskRate: 0 });
      const images = recordingReads(base.splits.train.images);
      const data: DatasetView = { ...base, splits: { ...base.splits, train: { ...base.splits.train, images } } };
      const result = await trainCell(cellConfig({ seed }, { flip: false, epochs: 2, batchSize: BATCH }), data, {
        progress: 'quiet',
        evalBatchSize: 4 * TRAIN_COUNT,
      });
      const evaluations = images.calls.filter((c) => c.length !== BATCH);
      const trained = new Set(images.calls.filter((c) => c.length === BATCH).flat());
      assert.equal(evaluations.length, 2, 'one evaluation of the held-out slice per epoch');
      assert.deepEqual(evaluations[0], evaluations[1], 'the same slice in every epoch');
      return { result, slice: evaluations[0]!, trained };
    }

    it('holds out a seeded 10% of train, evaluates on it and never trains on it', async () => {
      const { result, slice, trained } = await trainWithoutValidation(1);
      assert.equal(slice.length, TRAIN_COUNT / 10);
      assert.equal(new Set(slice).size, slice.length, 'distinct samples');
      assert.ok(slice.every((s) => Number.isInteger(s) && s >= 0 && s < TRAIN_COUNT));
      assert.deepEqual(
        slice.filter((s) => trained.has(s)),
        [],
        'no held-out sample in a training batch',
      );
      assert.deepEqual(result.labelCounts, { quadrant: TRAIN_COUNT - slice.length, attrs: TRAIN_COUNT - slice.length });
      assert.match(result.selectionRule, /on a seeded 10% slice of train \(10 samples; the dataset has no validation split\)/);
    });

    it('the slice is the same for the same seed and another for another seed', async () => {
      const first = await trainWithoutValidation(1);
      const again = await trainWithoutValidation(1);
      const other = await trainWithoutValidation(2);
      assert.deepEqual(again.slice, first.slice);
      assert.notDeepEqual(other.slice, first.slice);
    });
  });
});
