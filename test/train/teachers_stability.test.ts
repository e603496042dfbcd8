import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.js';
import { couplingTensors, disposeCoupling, type TaskBatch } from '../../src/method/losses.js';
import { teacherDirections, teacherPrediction } from '../../src/method/teachers.js';
import { assessStability, flaggedNetworks, type UnitTrace } from '../../src/train/stability.js';
import { trainCell } from '../../src/train/trainer.js';
import type { EpochRecord } from '../../src/train/types.js';
import { cellConfig, syntheticDataset } from './fixtures.js';

const R_CM = [
  [0.9, 0.2],
  [0.1, 0.8],
];

function record(epoch: number, loss: number, val: Record<string, Record<string, number>>, terms: Record<string, number> = {}): EpochRecord {
  return { epoch, loss, terms: { 'sup:a': loss, ...terms }, val, valPrimaryMean: 0, seconds: 1, imagesPerSecond: 1 };
}

describe('teachers', () => {
  before(async () => {
    await initBackend({ requested: 'wasm' });
  });

  it('names the directions the objective trains: both ways for categorical→multi-label, one way for categorical→categorical', () => {
    const directions = teacherDirections(
      [
        { from: 'c', to: 'm', kind: 'categorical->multilabel' },
        { from: 'sub', to: 'group', kind: 'categorical->categorical' },
      ],
      { sca: true, dm: true },
    );
    assert.deepEqual(
      directions.map((d) => `${d.name}:${d.source}=>${d.student}`),
      ['sca:c->m:c=>m', 'sca:m->c:m=>c', 'sca:sub->group:sub=>group', 'dm:c->m:c=>m', 'dm:m->c:m=>c', 'dm:sub->group:sub=>group'],
    );
    assert.deepEqual(teacherDirections([{ from: 'c', to: 'm', kind: 'categorical->multilabel' }], { sca: false, dm: true }).length, 2);
  });

  it('reads each target as a hard prediction, by hand', () => {
    const coupling = couplingTensors({ from: 'c', to: 'm', kind: 'categorical->multilabel', source: 'file', matrix: R_CM });
    const [scaCM, scaMC, dmCM, dmMC] = teacherDirections([coupling], { sca: true, dm: true });
    const out = tf.tidy(() => {
      const batches: Record<string, TaskBatch> = {
        // Sample 0 is confidently class 0, sample 1 class 1; the labels say class 1 and class 0.
        c: {
          kind: 'categorical',
          logits: tf.tensor2d([
            [9, -9],
            [-9, 9],
          ]),
          oneHot: tf.tensor2d([
            [0, 1],
            [1, 0],
          ]),
          has: tf.tensor1d([1, 1]),
        },
        // Head: sample 0 says label 0 present, label 1 absent; labels: sample 0 has only label 1, sample 1 only label 0.
        m: {
          kind: 'multilabel',
          logits: tf.tensor2d([
            [9, -9],
            [-9, 9],
          ]),
          target: tf.tensor2d([
            [0, 1],
            [1, 0],
          ]),
          mask: tf.tensor2d([
            [1, 1],
            [1, 1],
          ]),
          has: tf.tensor1d([1, 1]),
        },
      };
      return [scaCM, scaMC, dmCM, dmMC].map((d) => Array.from(teacherPrediction(d!, batches, [coupling], 'likelihood').dataSync()));
    });
    // SCA c→m: rows R[1] = (0.1, 0.8) → (0, 1); R[0] = (0.9, 0.2) → (1, 0).
    assert.deepEqual(out[0], [0, 1, 1, 0]);
    // SCA m→c: labels (0, 1) are likelier under class 1, (1, 0) under class 0.
    assert.deepEqual(out[1], [1, 0]);
    // DM c→m: p_C ≈ one-hot(0) → q_A ≈ R[0] → (1, 0); p_C ≈ one-hot(1) → (0, 1).
    assert.deepEqual(out[2], [1, 0, 0, 1]);
    // DM m→c: head says (present, absent) → class 0; (absent, present) → class 1.
    assert.deepEqual(out[3], [0, 1]);
    disposeCoupling(coupling);
  });

  it('the trainer scores every direction on validation each epoch; SCA teachers do not move; uncoupled settings have none', async () => {
    const data = syntheticDataset({ counts: [64, 32, 32] });
    const result = await trainCell(cellConfig({}, { epochs: 2, flip: false }), data, { progress: 'quiet' });
    const [first, second] = result.history;
    assert.deepEqual(Object.keys(first!.teachers!), [
      'sca:quadrant->attrs',
      'sca:attrs->quadrant',
      'dm:quadrant->attrs',
      'dm:attrs->quadrant',
    ]);
    for (const scores of Object.values(first!.teachers!))
      for (const v of Object.values(scores)) assert.ok(Number.isNaN(v) || (v >= 0 && v <= 1), `score ${v}`);
    assert.deepEqual(
      first!.teachers!['sca:quadrant->attrs'],
      second!.teachers!['sca:quadrant->attrs'],
      'an SCA target depends on R and the labels only',
    );
    assert.deepEqual(Object.keys(first!.teachers!['dm:attrs->quadrant']!).sort(), ['accuracy', 'macro_f1']);
    const diagnostic = result.relatednessDiagnostics!['quadrant->attrs']!;
    assert.equal(diagnostic.source, 'data');
    assert.ok(diagnostic.coannotated! > 0);
    assert.ok(diagnostic.sharpness > 0 && diagnostic.sharpness <= 1);
    assert.equal(typeof result.stability!.unstable, 'boolean');
    const plain = await trainCell(cellConfig({ setting: 'mtl', relatedness: [] }, { epochs: 1, flip: false }), data, { progress: 'quiet' });
    assert.equal('teachers' in plain.history[0]!, false);
    assert.deepEqual(plain.relatednessDiagnostics, {});
  });
});

describe('stability', () => {
  const healthy: UnitTrace = {
    unit: 'mtl',
    history: [record(1, 2, { a: { accuracy: 0.3 } }), record(2, 1.5, { a: { accuracy: 0.45 } }), record(3, 1.2, { a: { accuracy: 0.4 } })],
    primaries: { a: 'accuracy' },
    testPositiveRates: { tags: { predicted: 0.06, truth: 0.08 } },
  };

  it('a healthy cell is stable', () => {
    assert.deepEqual(assessStability([healthy]), { unstable: false, reasons: [] });
  });

  it('flags a rising loss, a swinging validation metric and a saturated multi-label head, each with its numbers', () => {
    const rising = {
      ...healthy,
      history: [
        record(1, 2, { a: { accuracy: 0.3 } }),
        record(2, 0.8, { a: { accuracy: 0.5 } }),
        record(3, 1.3, { a: { accuracy: 0.45 } }),
      ],
    };
    assert.deepEqual(assessStability([rising]).reasons, [
      'mtl: training loss total rose to 1.30 at epoch 3, 1.6× its lowest (0.800 at epoch 2)',
      'mtl: training loss sup:a rose to 1.30 at epoch 3, 1.6× its lowest (0.800 at epoch 2)',
    ]);
    const swinging = {
      ...healthy,
      history: [
        record(1, 2, { a: { accuracy: 0.56 } }),
        record(2, 1.9, { a: { accuracy: 0.07 } }),
        record(3, 1.8, { a: { accuracy: 0.5 } }),
        record(4, 1.7, { a: { accuracy: 0.25 } }),
      ],
    };
    assert.deepEqual(assessStability([swinging]).reasons, [
      'mtl: validation a accuracy fell more than 20 points between two epochs 2 times, ' +
        'at most 49.0 points from epoch 1 to 2 (56.0% → 7.0%)',
    ]);
    const saturated = { ...healthy, testPositiveRates: { tags: { predicted: 0.8, truth: 0.08 } } };
    assert.deepEqual(assessStability([saturated]).reasons, [
      'mtl: the tags head predicts 80.0% of annotated test entries present, where 8.0% are',
    ]);
  });

  it("names the flagged networks: of an stl cell's two networks only the one with a sign", () => {
    const saturated = { ...healthy, unit: 'tags', testPositiveRates: { tags: { predicted: 0.8, truth: 0.08 } } };
    const verdict = assessStability([{ ...healthy, unit: 'group' }, saturated]);
    assert.deepEqual(verdict.networks, ['tags']);
    assert.deepEqual(flaggedNetworks(verdict), ['tags']);
    // Results written before `networks` was recorded: read from the reasons, which start with the network.
    assert.deepEqual(flaggedNetworks({ unstable: true, reasons: verdict.reasons }), ['tags']);
    assert.deepEqual(flaggedNetworks(assessStability([healthy])), []);
  });

  it('flags a categorical head below the constant majority predictor in accuracy and macro-F1, not one that trades accuracy for macro-F1', () => {
    const majority = { accuracy: 0.65, macro_f1: 0.1 };
    const collapsed = { ...healthy, testCategorical: { group: { accuracy: 0.29, macro_f1: 0.08, majority } } };
    assert.deepEqual(assessStability([collapsed]).reasons, [
      'mtl: the group head scores below always predicting the most frequent class on test ' +
        '(accuracy 29.0% against 65.0%, macro-F1 8.0% against 10.0%)',
    ]);
    const balanced = { ...healthy, testCategorical: { group: { accuracy: 0.4, macro_f1: 0.35, majority } } };
    assert.equal(assessStability([balanced]).unstable, false);
    const nearConstant = { ...healthy, testCategorical: { group: { accuracy: 0.6, macro_f1: 0.09, majority } } };
    assert.equal(assessStability([nearConstant]).unstable, false, 'within 10 points of the constant');
  });

  it('does not flag 20-point drops, one dip that recovers, a loss 1.5× its lowest, a near-zero loss doubling, a head half present', () => {
    const edge = {
      ...healthy,
      history: [
        record(1, 1, { a: { accuracy: 0.6 } }),
        record(2, 1.5, { a: { accuracy: 0.4 } }),
        record(3, 1.4, { a: { accuracy: 0.6 } }),
        record(4, 1.5, { a: { accuracy: 0.4 } }),
      ],
      testPositiveRates: { tags: { predicted: 0.5, truth: 0.5 } },
    };
    assert.equal(assessStability([edge]).unstable, false);
    // Issue 14's healthy mtl control: one dip of 33 points, supervised loss 0.0054 → 0.0093 at the end.
    const dip = {
      ...healthy,
      history: [
        record(1, 0.5, { a: { accuracy: 0.78 } }),
        record(2, 0.3, { a: { accuracy: 0.45 } }),
        record(3, 0.0054, { a: { accuracy: 0.77 } }),
        record(4, 0.0093, { a: { accuracy: 0.78 } }),
      ],
    };
    assert.deepEqual(assessStability([dip]), { unstable: false, reasons: [] });
  });
});
