import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { LabelColumn, TaskSpec } from '../../src/datasets/types.js';
import { MASKED, NO_CLASS } from '../../src/datasets/types.js';
import { initTestWasmBackend } from '../wasm_backend.js';
import { encodeLabels, epochOrder, readImageBatch } from '../../src/train/batches.js';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/train/checkpoint.js';
import type { CheckpointState } from '../../src/train/checkpoint.js';
import { TaskMetrics } from '../../src/train/metrics.js';
import { Optimizer, learningRateAt } from '../../src/train/optimizer.js';
import { createProgress } from '../../src/train/progress.js';
import { Rng } from '../../src/train/random.js';
import { applyRegime, hasLabel } from '../../src/train/regimes.js';
import { UserError } from '../../src/util/errors.js';
import { memoryImages, syntheticDataset } from './fixtures.js';

describe('trainer components', () => {
  before(async () => {
    await initTestWasmBackend();
  });

  it('the generator is seeded, restorable and roughly uniform', () => {
    const a = Rng.fromSeed(1, 'x');
    const b = Rng.fromSeed(1, 'x');
    const c = Rng.fromSeed(1, 'y');
    const first = [a.nextUint32(), a.nextUint32()];
    assert.deepEqual(first, [b.nextUint32(), b.nextUint32()]);
    assert.notDeepEqual(first, [c.nextUint32(), c.nextUint32()]);
    const resumed = Rng.fromState(a.state());
    assert.equal(resumed.nextUint32(), a.nextUint32());
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40000; i++) counts[a.int(4)]!++;
    counts.forEach((n) => assert.ok(Math.abs(n - 10000) < 400, `bucket ${n}`));
  });

  describe('regimes', () => {
    const data = syntheticDataset({ counts: [200, 4, 4], maskRate: 0 });
    const train = data.splits.train;
    const tasks = data.tasks;

    it('full keeps every label and does not touch the dataset', () => {
      const r = applyRegime(train, tasks, { kind: 'full' }, 1);
      assert.deepEqual(r.labelCounts, { quadrant: 200, attrs: 200 });
      assert.notEqual(r.labels.quadrant, train.labels.quadrant, 'a copy');
    });

    it('disjoint splits the samples between the tasks, with the overlap keeping both, by seed', () => {
      const r = applyRegime(train, tasks, { kind: 'disjoint', overlap: 0.1 }, 7);
      let both = 0;
      let neither = 0;
      for (let s = 0; s < 200; s++) {
        const q = hasLabel(r.labels.quadrant!, s);
        const a = hasLabel(r.labels.attrs!, s);
        if (q && a) both++;
        if (!q && !a) neither++;
      }
      assert.equal(both, 20);
      assert.equal(neither, 0);
      assert.deepEqual(r.labelCounts, { quadrant: 110, attrs: 110 });
      assert.deepEqual(applyRegime(train, tasks, { kind: 'disjoint', overlap: 0.1 }, 7).labels, r.labels, 'same seed, same draw');
      assert.notDeepEqual(applyRegime(train, tasks, { kind: 'disjoint', overlap: 0.1 }, 8).labels, r.labels, 'another seed, another draw');
      // A larger overlap keeps a superset of the smaller one's shared samples.
      const wider = applyRegime(train, tasks, { kind: 'disjoint', overlap: 0.3 }, 7);
      for (let s = 0; s < 200; s++) {
        if (hasLabel(r.labels.quadrant!, s) && hasLabel(r.labels.attrs!, s))
          assert.ok(hasLabel(wider.labels.quadrant!, s) && hasLabel(wider.labels.attrs!, s));
      }
    });

    it('scarce keeps a fraction of one task, the others keep all', () => {
      const r = applyRegime(train, tasks, { kind: 'scarce', task: 'attrs', fraction: 0.05 }, 1);
      assert.deepEqual(r.labelCounts, { quadrant: 200, attrs: 10 });
      assert.throws(() => applyRegime(train, tasks, { kind: 'scarce', task: 'nope', fraction: 0.1 }, 1), UserError);
      assert.throws(() => applyRegime(train, tasks, { kind: 'disjoint', overlap: 1.5 }, 1), /overlap must lie in \[0, 1\]/);
    });

    it('multi-source refuses a view where a sample carries two tasks', () => {
      assert.throws(() => applyRegime(train, tasks, { kind: 'multi-source' }, 1), /carries labels for quadrant and attrs/);
      const split = applyRegime(train, tasks, { kind: 'disjoint', overlap: 0 }, 1);
      const r = applyRegime({ ...train, labels: split.labels }, tasks, { kind: 'multi-source' }, 1);
      assert.deepEqual(r.labelCounts, split.labelCounts);
    });
  });

  it('metrics: accuracy and macro-F1 by hand, masked entries and labels without positives skipped', () => {
    const cat: TaskSpec = { name: 'c', kind: 'categorical', labels: ['a', 'b', 'c'] };
    const m = new TaskMetrics(cat);
    // truth: a a b b c NONE; predicted: a b b b a c
    const column: LabelColumn = { kind: 'categorical', values: Int32Array.from([0, 0, 1, 1, 2, NO_CLASS]) };
    m.add([0, 1, 1, 1, 0, 2], 1, 0, column, [0, 1, 2, 3, 4, 5]);
    // F1: a = 2·1/(2+1+1) = 0.5; b = 2·2/(4+1+0) = 0.8; c = 0/(0+0+1) = 0.
    assert.deepEqual(m.result(), { accuracy: 3 / 5, macro_f1: (0.5 + 0.8 + 0) / 3 });
    // Always predicting the most frequent class (a or b, 2 of 5): accuracy 0.4; its F1 2·0.4/1.4, over 3 classes.
    assert.deepEqual(m.majorityBaseline(), { accuracy: 2 / 5, macro_f1: 0.8 / 1.4 / 3 });

    const ml: TaskSpec = { name: 'm', kind: 'multilabel', labels: ['x', 'y', 'z'] };
    const mm = new TaskMetrics(ml);
    const values = Uint8Array.from([1, 0, 0, 1, MASKED, 0, 0, 1, 0, MASKED, MASKED, MASKED]);
    // Predictions as 0/1 in columns 1..3 of a 4-wide row (column 0 belongs to another task).
    const preds = [9, 1, 0, 1, 9, 0, 1, 0, 9, 0, 1, 0, 9, 1, 1, 1];
    mm.add(preds, 4, 1, { kind: 'multilabel', width: 3, values }, [0, 1, 2, 3]);
    // x: truth 1,1,0 pred 1,0,0 → acc 2/3, F1 2/(2+0+1) = 2/3. y: truth 0,(masked),1 pred 0,·,1 → acc 1, F1 1.
    // z: truth 0,0,0 pred 1,0,0 → acc 2/3, no positive → no F1.
    const r = mm.result();
    assert.ok(Math.abs(r.label_accuracy! - (2 / 3 + 1 + 2 / 3) / 3) < 1e-12);
    assert.ok(Math.abs(r.macro_f1! - (2 / 3 + 1) / 2) < 1e-12);
    assert.ok(Number.isNaN(new TaskMetrics(ml).result().macro_f1!), 'nothing to average is NaN');
    assert.equal(mm.majorityBaseline(), undefined, 'categorical only');
  });

  it('crop and flip move pixels as edge-pad-then-crop and mirror, and read only the batch', () => {
    // One 3×3 single-channel image 1..9.
    const source = memoryImages(3, 1, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60, 70, 80, 90]));
    const plain = readImageBatch(source, [1]);
    assert.deepEqual(
      Array.from(plain).map((v) => Math.round(v * 255)),
      [10, 20, 30, 40, 50, 60, 70, 80, 90],
    );
    // Find a draw sequence by replaying the generator: dy, dx, flip.
    const rng = Rng.fromSeed(3);
    const replay = Rng.fromState(rng.state());
    const out = readImageBatch(source, [0], { padding: 1, flip: true }, rng);
    const dy = replay.int(3) - 1;
    const dx = replay.int(3) - 1;
    const flip = replay.bool();
    const expected: number[] = [];
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 3; x++) {
        const sy = Math.min(2, Math.max(0, y + dy));
        const sx = Math.min(2, Math.max(0, (flip ? 2 - x : x) + dx));
        expected.push(1 + sy * 3 + sx);
      }
    }
    assert.deepEqual(
      Array.from(out).map((v) => Math.round(v * 255)),
      expected,
    );
    // Over many draws every offset and both flips occur.
    const seen = new Set<string>();
    const many = Rng.fromSeed(4);
    for (let i = 0; i < 200; i++) seen.add(Array.from(readImageBatch(source, [0], { padding: 1, flip: true }, many)).join());
    assert.equal(seen.size, 18);
  });

  it('the crop padding repeats the edge: a white image stays white and its edge rows and columns repeat, never black', () => {
    const white = memoryImages(4, 3, new Uint8Array(2 * 4 * 4 * 3).fill(255));
    const rng = Rng.fromSeed(5);
    for (let i = 0; i < 50; i++)
      assert.ok(
        readImageBatch(white, [0, 1], { padding: 2, flip: false }, rng).every((v) => v === 1),
        `draw ${i}`,
      );
    // A 2×2 image 1 2 / 3 4 padded by 1: whatever offset is drawn (replayed from the generator),
    // each pixel of the crop is the image's nearest pixel.
    const small = memoryImages(2, 1, Uint8Array.from([1, 2, 3, 4]));
    const draws = Rng.fromSeed(6);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const replay = Rng.fromState(draws.state());
      const out = Array.from(readImageBatch(small, [0], { padding: 1, flip: false }, draws)).map((v) => Math.round(v * 255));
      const dy = replay.int(3) - 1;
      const dx = replay.int(3) - 1;
      const at = (y: number, x: number) => 1 + Math.min(1, Math.max(0, y + dy)) * 2 + Math.min(1, Math.max(0, x + dx));
      assert.deepEqual(out, [at(0, 0), at(0, 1), at(1, 0), at(1, 1)]);
      assert.ok(!out.includes(0));
      seen.add(`${dy},${dx}`);
    }
    assert.equal(seen.size, 9, 'every offset was drawn');
  });

  it('labels are encoded as one-hot / target / mask arrays', () => {
    const tasks: TaskSpec[] = [
      { name: 'c', kind: 'categorical', labels: ['a', 'b'] },
      { name: 'm', kind: 'multilabel', labels: ['x', 'y'] },
    ];
    const labels: Record<string, LabelColumn> = {
      c: { kind: 'categorical', values: Int32Array.from([1, NO_CLASS, 0]) },
      m: { kind: 'multilabel', width: 2, values: Uint8Array.from([1, MASKED, MASKED, MASKED, 0, 1]) },
    };
    const e = encodeLabels(tasks, labels, [2, 0, 1]);
    assert.deepEqual(e.c, {
      kind: 'categorical',
      classes: 2,
      oneHot: Float32Array.from([1, 0, 0, 1, 0, 0]),
      has: Float32Array.from([1, 1, 0]),
    });
    assert.deepEqual(e.m, {
      kind: 'multilabel',
      width: 2,
      target: Float32Array.from([0, 1, 1, 0, 0, 0]),
      mask: Float32Array.from([1, 1, 1, 0, 0, 0]),
      has: Float32Array.from([1, 1, 0]),
    });
  });

  it('class-balanced sampling gives each class about the same share', () => {
    // 90 samples of class 0, 10 of class 1.
    const column = { kind: 'categorical' as const, values: Int32Array.from({ length: 100 }, (_, i) => (i < 90 ? 0 : 1)) };
    const samples = Int32Array.from(column.values.keys());
    const rng = Rng.fromSeed(1);
    let minority = 0;
    for (let e = 0; e < 50; e++) for (const s of epochOrder(samples, rng, { column })) if (column.values[s] === 1) minority++;
    assert.ok(Math.abs(minority / 5000 - 0.5) < 0.03, `minority share ${minority / 5000}`);
    const shuffled = epochOrder(samples, Rng.fromSeed(2));
    assert.deepEqual(
      Array.from(shuffled).sort((a, b) => a - b),
      Array.from(samples),
      'a uniform epoch is a permutation',
    );
  });

  it('Adam and SGD with momentum take the textbook steps, weight decay on masked variables only', () => {
    const w = tf.variable(tf.tensor1d([1, -2]));
    const u = tf.variable(tf.tensor1d([0.5]));
    const adam = new Optimizer({ kind: 'adam', momentum: 0, weightDecay: 0.1 }, [w, u], [true, false]);
    tf.tidy(() => adam.apply([tf.tensor1d([0.2, 0.4]), tf.tensor1d([-1])], 0.01));
    // Step 1: g' = g + 0.1w = (0.3, 0.2); m̂ = g', v̂ = g'²; update = lr·g'/(|g'| + 1e-8) ≈ lr·sign(g').
    const wv = Array.from(w.dataSync());
    assert.ok(
      Math.abs(wv[0]! - (1 - 0.01 * (0.3 / (0.3 + 1e-8)))) < 1e-6 && Math.abs(wv[1]! - (-2 - 0.01 * (0.2 / (0.2 + 1e-8)))) < 1e-6,
      `adam w ${wv}`,
    );
    assert.ok(Math.abs(u.dataSync()[0]! - 0.51) < 1e-6);
    tf.tidy(() => adam.apply([tf.tensor1d([0.2, 0.4]), tf.tensor1d([1])], 0.01));
    // Step 2 for u: m = 0.9(−0.1)+0.1·1 = 0.01 → m̂ = 0.01/0.19; v = 0.999·0.001 + 0.001 = 0.001999 → v̂ = 0.001999/0.001999 = 1.
    const mHat = 0.01 / (1 - 0.81);
    const vHat = (0.999 * 0.001 + 0.001) / (1 - 0.999 ** 2);
    assert.ok(Math.abs(u.dataSync()[0]! - (0.51 - (0.01 * mHat) / (Math.sqrt(vHat) + 1e-8))) < 1e-6);
    const saved = adam.state();
    assert.equal(saved.step, 2);
    adam.dispose();

    const s = tf.variable(tf.tensor1d([1]));
    const sgd = new Optimizer({ kind: 'sgd', momentum: 0.9, weightDecay: 0 }, [s], [true]);
    tf.tidy(() => sgd.apply([tf.tensor1d([1])], 0.1)); // b = 1, s = 0.9
    tf.tidy(() => sgd.apply([tf.tensor1d([1])], 0.1)); // b = 1.9, s = 0.71
    assert.ok(Math.abs(s.dataSync()[0]! - 0.71) < 1e-6);
    const restored = new Optimizer({ kind: 'sgd', momentum: 0.9, weightDecay: 0 }, [s], [true]);
    restored.restore(sgd.state(), 'test');
    assert.deepEqual(restored.state(), sgd.state());
    for (const t of [w, u, s]) t.dispose();
    sgd.dispose();
    restored.dispose();
  });

  it('an optimizer frees every slot it made when disposed', () => {
    const w = tf.variable(tf.tensor1d([1, -2]));
    const before = tf.memory().numTensors;
    new Optimizer({ kind: 'adam', momentum: 0, weightDecay: 0 }, [w], [true]).dispose();
    new Optimizer({ kind: 'sgd', momentum: 0.9, weightDecay: 0 }, [w], [true]).dispose();
    assert.equal(tf.memory().numTensors, before);
    w.dispose();
  });

  it('learning-rate schedules', () => {
    const base = { learningRate: 0.1, epochs: 4, stepEvery: 2, stepGamma: 0.5 };
    assert.equal(learningRateAt({ ...base, schedule: 'constant' }, 3, 5, 10), 0.1);
    assert.equal(learningRateAt({ ...base, schedule: 'step' }, 1, 9, 10), 0.1);
    assert.equal(learningRateAt({ ...base, schedule: 'step' }, 2, 0, 10), 0.05);
    assert.equal(learningRateAt({ ...base, schedule: 'cosine' }, 0, 0, 10), 0.1);
    assert.ok(Math.abs(learningRateAt({ ...base, schedule: 'cosine' }, 2, 0, 10) - 0.05) < 1e-12);
  });

  it('checkpoints round-trip exactly, NaN metrics included, and reject foreign files', () => {
    const state: CheckpointState = {
      fingerprint: 'abc',
      unit: 'mtl',
      epochsDone: 3,
      globalStep: 30,
      rng: [1, 2, 3, 4294967295],
      history: [
        {
          epoch: 1,
          loss: 0.5,
          terms: { 'sup:a': 0.5 },
          val: { a: { accuracy: 0.5, macro_f1: Number.NaN } },
          valPrimaryMean: 0.5,
          seconds: 1,
          imagesPerSecond: 10,
        },
      ],
      best: { epoch: 1, value: 0.5, val: { a: { accuracy: 0.5, macro_f1: Number.NaN } } },
      weights: [{ name: 'w', shape: [2, 2], data: Float32Array.from([1, 2, 3, Math.PI]) }],
      optimizer: { step: 30, slots: [Float32Array.from([0.25, -0.5, 1e-30, 7])] },
      bestWeights: [{ name: 'w', shape: [2, 2], data: Float32Array.from([0, 0, 0, 1]) }],
    };
    const back = decodeCheckpoint(encodeCheckpoint(state), 'test');
    assert.deepEqual(back, state);
    // Written on an interrupt: the partial epoch's order and float64 sums come back exactly.
    const interrupted: CheckpointState = {
      ...state,
      partial: {
        epoch: 3,
        step: 2,
        order: Int32Array.from([5, 0, 7, 2147483647]),
        sums: Float64Array.from([0.1 + 0.2, 1e-300, -3]),
        trainMs: 1.25,
        seconds: 2.5,
      },
    };
    assert.deepEqual(decodeCheckpoint(encodeCheckpoint(interrupted), 'test'), interrupted);
    assert.throws(() => decodeCheckpoint(new TextEncoder().encode('hello world, not a checkpoint'), 'x.bin'), /x\.bin is unreadable/);

    // Damage that keeps the size (one byte, anywhere: magic excepted) is caught by the checksum.
    const bytes = encodeCheckpoint(state);
    for (const at of [12, 40, bytes.length - 40, bytes.length - 20, bytes.length - 1]) {
      const damaged = Uint8Array.from(bytes);
      damaged[at]! ^= 0x10;
      assert.throws(
        () => decodeCheckpoint(damaged, 'ck.bin'),
        new RegExp(
          '^UserError: checkpoint ck\\.bin is damaged \\(its checksum does not match its content\\); ' +
            'delete it to train this cell again from the start$',
        ),
        `byte ${at}`,
      );
    }
    // Format 1 (before checksums) still reads; one with stray bytes after its data does not.
    const v1 = Uint8Array.from(bytes.subarray(0, bytes.length - 32));
    v1.set(new TextEncoder().encode('MTLBCKP1'), 0);
    const text = Buffer.from(v1).toString('latin1').replace('"format":2', '"format":1');
    const v1Bytes = Uint8Array.from(Buffer.from(text, 'latin1'));
    assert.deepEqual(decodeCheckpoint(v1Bytes, 'old.bin'), state);
    const padded = new Uint8Array(v1Bytes.length + 32);
    padded.set(v1Bytes);
    assert.throws(() => decodeCheckpoint(padded, 'old.bin'), /old\.bin is unreadable \(unexpected bytes after the data\)/);
  });

  it('jsonl progress writes one JSON object per epoch', () => {
    const stream = new PassThrough();
    const chunks: string[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c.toString()));
    const progress = createProgress('jsonl', stream);
    progress.startEpoch({ unit: 'mtl', epoch: 1, epochs: 2, steps: 3 });
    progress.step(1, 0.5, 100);
    progress.endEpoch('mtl', {
      epoch: 1,
      loss: 0.5,
      terms: {},
      val: { a: { accuracy: 0.5 } },
      valPrimaryMean: 0.5,
      seconds: 1,
      imagesPerSecond: 100,
    });
    progress.finish('mtl', { a: { accuracy: 0.75 } }, 1);
    const lines = chunks
      .join('')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => l.event),
      ['epoch', 'test'],
    );
    assert.equal(lines[0]!.loss, 0.5);
  });
});
