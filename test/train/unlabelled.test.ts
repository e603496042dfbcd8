import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { DatasetView } from '../../src/datasets/types.js';
import { MASKED, NO_CLASS } from '../../src/datasets/types.js';
import { trainCell } from '../../src/train/trainer.js';
import { SETTINGS, type Setting, usesCoupling } from '../../src/config/settings.js';
import { initTestWasmBackend } from '../wasm_backend.js';
import { cellConfig, recordingReads, syntheticDataset } from './fixtures.js';

/**
 * README: "unlabelled samples: only settings with distribution matching train on them", whatever
 * their balancing method: a rule of the settings grammar, not a table per setting name.
 */
function trainsOnUnlabelled(setting: Setting): boolean {
  return usesCoupling(setting, 'dm');
}

/** Training data with every fourth sample stripped of all its labels; the images are read through a recorder. */
function dataWithUnlabelledSamples() {
  const base = syntheticDataset({ counts: [96, 32, 32], maskRate: 0 });
  const train = base.splits.train;
  const quadrant = Int32Array.from((train.labels.quadrant as { values: Int32Array }).values);
  const attrsColumn = train.labels.attrs as { width: number; values: Uint8Array };
  const attrs = Uint8Array.from(attrsColumn.values);
  const unlabelled: number[] = [];
  for (let s = 0; s < train.count; s += 4) {
    unlabelled.push(s);
    quadrant[s] = NO_CLASS;
    attrs.fill(MASKED, s * attrsColumn.width, (s + 1) * attrsColumn.width);
  }
  const images = recordingReads(train.images);
  const data: DatasetView = {
    ...base,
    splits: {
      ...base.splits,
      train: {
        ...train,
        images,
        labels: {
          quadrant: { kind: 'categorical', values: quadrant },
          attrs: { kind: 'multilabel', width: attrsColumn.width, values: attrs },
        },
      },
    },
  };
  return { data, images, unlabelled };
}

describe('samples without any label', () => {
  before(async () => {
    await initTestWasmBackend();
  });

  for (const setting of SETTINGS) {
    const expected = trainsOnUnlabelled(setting);
    it(`${setting} ${expected ? 'trains on every one of them' : 'never trains on them'}`, async () => {
      const { data, images, unlabelled } = dataWithUnlabelledSamples();
      // 96 samples in batches of 16: with them, an epoch reads every sample once.
      await trainCell(cellConfig({ setting }, { flip: false, epochs: 1, batchSize: 16 }), data, { progress: 'quiet' });
      // The validation and test splits have images of their own: every read here is a training batch.
      const trained = new Set(images.calls.flat());
      assert.ok(trained.size > 0);
      const seen = unlabelled.filter((s) => trained.has(s));
      assert.deepEqual(seen, expected ? unlabelled : []);
    });
  }
});
