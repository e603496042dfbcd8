import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initTestWasmBackend } from '../wasm_backend.js';
import { couplingTensors, disposeCoupling } from '../../src/method/losses.js';
import { buildNetwork } from '../../src/model/network.js';
import { encodeLabels, readImageBatch } from '../../src/train/batches.js';
import { completeMethodOptions } from '../../src/config/options.js';
import { BALANCING_METHODS } from '../../src/config/settings.js';
import { createBalancer } from '../../src/train/balancing/balancers.js';
import { Optimizer } from '../../src/train/optimizer.js';
import { Rng } from '../../src/train/random.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { NonFiniteLossError, TrainingAborted, batchesPerEpoch, createTrainStep, trainCell } from '../../src/train/trainer.js';
import type { CellResult } from '../../src/train/types.js';
import { UserError } from '../../src/util/errors.js';
import { cellConfig, syntheticDataset } from './fixtures.js';

// The synthetic labels are not mirror-symmetric (left/right quadrants), so flips stay off.
const TRAIN = { flip: false, epochs: 2 };

function assertSameMetrics(a: CellResult, b: CellResult, what: string): void {
  for (const part of ['test', 'val'] as const) {
    for (const [task, metrics] of Object.entries(a[part])) {
      for (const [name, v] of Object.entries(metrics)) {
        const w = b[part][task]![name]!;
        assert.ok(Math.abs(v - w) <= 1e-6 || (Number.isNaN(v) && Number.isNaN(w)), `${what}: ${part} ${task} ${name} ${v} vs ${w}`);
      }
    }
  }
  assert.equal(a.history.length, b.history.length);
  a.history.forEach((r, i) =>
    assert.ok(Math.abs(r.loss - b.history[i]!.loss) <= 1e-6, `${what}: epoch ${i + 1} loss ${r.loss} vs ${b.history[i]!.loss}`),
  );
  assert.equal(a.bestEpoch, b.bestEpoch);
}

describe('trainCell', () => {
  const data = syntheticDataset({ counts: [96, 32, 32] });
  let tmp: string;
  // An uninterrupted mtl+sca+dm run, trained by whichever test needs it first, so each test also runs alone.
  const fullMethodConfig = cellConfig({ setting: 'mtl+sca+dm' }, TRAIN);
  let uninterrupted: Promise<CellResult> | undefined;
  const uninterruptedRun = () => (uninterrupted ??= trainCell(fullMethodConfig, data, { progress: 'quiet' }));

  before(async () => {
    await initTestWasmBackend();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mtl-train-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('trains mtl+sca+dm: the loss falls, accuracy beats chance, and the result says what was used', async () => {
    const result = await trainCell(cellConfig({}, { ...TRAIN, epochs: 3 }), data, { progress: 'quiet' });
    const losses = result.history.map((r) => r.loss);
    assert.ok(losses[2]! < losses[0]!, `loss ${losses}`);
    assert.ok(result.test.quadrant!.accuracy! > 0.6, `accuracy ${result.test.quadrant!.accuracy} (chance 0.25)`);
    assert.deepEqual(
      Object.keys(result.history[0]!.terms).sort(),
      [
        'dm',
        'dm:attrs->quadrant',
        'dm:quadrant->attrs',
        'sca',
        'sca:attrs->quadrant',
        'sca:quadrant->attrs',
        'sup:attrs',
        'sup:quadrant',
      ].sort(),
    );
    const matrix = result.relatedness['quadrant->attrs']!;
    assert.equal(matrix.source, 'data');
    assert.equal(matrix.matrix.length, 4);
    assert.ok(matrix.matrix[0]![0]! > 0.8 && matrix.matrix[2]![0]! < 0.2, 'top-left is "top", bottom-left is not');
    assert.deepEqual(result.labelCounts, {
      quadrant: Array.from((data.splits.train.labels.quadrant as { values: Int32Array }).values).filter((v) => v >= 0).length,
      attrs: 96,
    });
    assert.match(result.selectionRule, /highest mean primary metric \(quadrant accuracy, attrs macro_f1\) on the validation split/);
    assert.ok(result.bestEpoch >= 1 && result.bestEpoch <= 3);
    assert.deepEqual(result.val, result.history[result.bestEpoch - 1]!.val);
  });

  it('is deterministic: the same seed gives the same metrics, another seed does not', async () => {
    const reference = await uninterruptedRun();
    const again = await trainCell(fullMethodConfig, data, { progress: 'quiet' });
    assertSameMetrics(reference, again, 'same seed');
    const other = await trainCell({ ...fullMethodConfig, seed: 99 }, data, { progress: 'quiet' });
    assert.notEqual(other.history[0]!.loss, reference.history[0]!.loss);
  });

  it('a run killed after epoch 1 resumes from its checkpoint and ends exactly like an uninterrupted run', async () => {
    const outDir = path.join(tmp, 'resume');
    const controller = new AbortController();
    await assert.rejects(
      trainCell(fullMethodConfig, data, { outDir, progress: 'quiet', signal: controller.signal, onEpochEnd: () => controller.abort() }),
      (err: unknown) => (err as Error).name === 'AbortError',
    );
    assert.ok(fs.existsSync(path.join(outDir, 'checkpoint.bin')));
    assert.deepEqual(fs.readdirSync(outDir), ['checkpoint.bin'], 'no temporary files left behind');
    const stream = new PassThrough();
    let log = '';
    stream.on('data', (c: Buffer) => (log += c.toString()));
    const resumed = await trainCell(fullMethodConfig, data, { outDir, progress: 'jsonl', progressStream: stream });
    assert.match(log, /resuming from .*checkpoint\.bin after epoch 1/);
    assert.equal(log.split('\n').filter((l) => l.includes('"event":"epoch"')).length, 1, 'only epoch 2 ran again');
    assertSameMetrics(await uninterruptedRun(), resumed, 'resumed');
  });

  it('an interrupt inside an epoch checkpoints the partial epoch; the resumed run ends exactly like an uninterrupted one', async () => {
    const config = fullMethodConfig;
    const reference = await uninterruptedRun();
    // In the first epoch (no epoch has ended: no best weights yet) and in the second.
    for (const [epoch, step] of [
      [1, 2],
      [2, 3],
    ] as const) {
      const outDir = path.join(tmp, `partial-${epoch}-${step}`);
      const controller = new AbortController();
      const file = path.join(outDir, 'checkpoint.bin');
      await assert.rejects(
        trainCell(config, data, {
          outDir,
          progress: 'quiet',
          signal: controller.signal,
          onStep: (_unit, e, s) => e === epoch && s === step && controller.abort(),
        }),
        (err: unknown) =>
          err instanceof TrainingAborted &&
          err.name === 'AbortError' &&
          err.message ===
            `mtl: stopped in epoch ${epoch} after step ${step} of 6; ${file} holds this partial epoch, ` +
              `and the next run continues at step ${step + 1}`,
      );
      const stream = new PassThrough();
      let log = '';
      stream.on('data', (c: Buffer) => (log += c.toString()));
      const resumed = await trainCell(config, data, { outDir, progress: 'jsonl', progressStream: stream });
      assert.match(log, new RegExp(`resuming from .*checkpoint\\.bin in epoch ${epoch} at step ${step + 1}`));
      assertSameMetrics(reference, resumed, `interrupted in epoch ${epoch} after step ${step}`);
      // Not merely close: the same numbers, bit for bit.
      assert.deepEqual(resumed.test, reference.test);
      assert.deepEqual(
        resumed.history.map((r) => [r.loss, r.terms, r.val]),
        reference.history.map((r) => [r.loss, r.terms, r.val]),
      );
      assert.deepEqual(fs.readdirSync(outDir), ['checkpoint.bin'], 'no temporary files left behind');
    }
  });

  it('a checkpoint damaged on disk without changing its size is refused on resume with one line naming it', async () => {
    const config = cellConfig({ setting: 'mtl+sca+dm' }, TRAIN);
    const outDir = path.join(tmp, 'damaged');
    const controller = new AbortController();
    await assert.rejects(
      trainCell(config, data, { outDir, progress: 'quiet', signal: controller.signal, onEpochEnd: () => controller.abort() }),
    );
    const file = path.join(outDir, 'checkpoint.bin');
    const bytes = fs.readFileSync(file);
    const size = bytes.length;
    bytes[Math.floor(size / 2)]! ^= 0x01;
    fs.writeFileSync(file, bytes);
    assert.equal(fs.statSync(file).size, size);
    await assert.rejects(
      trainCell(config, data, { outDir, progress: 'quiet' }),
      (err: unknown) =>
        err instanceof UserError &&
        err.message ===
          `checkpoint ${file} is damaged (its checksum does not match its content); delete it to train this cell again from the start`,
    );
  });

  it('a non-finite loss stops the cell naming the step and the terms, and leaves the last checkpoint intact', async () => {
    // The step schedule multiplies the rate by 1e30 from epoch 2 on: weights overflow at once.
    const config = cellConfig(
      { setting: 'mtl+dm' },
      { ...TRAIN, epochs: 3, schedule: 'step', stepEvery: 1, stepGamma: 1e30, optimizer: 'sgd', learningRate: 0.05 },
    );
    const outDir = path.join(tmp, 'nonfinite');
    let saved: Buffer | undefined;
    await assert.rejects(
      trainCell(config, data, {
        outDir,
        progress: 'quiet',
        onEpochEnd: () => (saved = fs.readFileSync(path.join(outDir, 'checkpoint.bin'))),
      }),
      (err: unknown) =>
        err instanceof NonFiniteLossError &&
        err instanceof UserError &&
        /non-finite loss at epoch \d, step \d+\/\d+ \(global step \d+/.test(err.message) &&
        /total=(NaN|Infinity|-Infinity)/.test(err.message) &&
        /sup:quadrant=/.test(err.message) &&
        /dm:attrs->quadrant=/.test(err.message) &&
        /last checkpoint .* is left as it was/.test(err.message),
    );
    assert.ok(saved, 'epoch 1 finished and wrote a checkpoint');
    assert.deepEqual(fs.readFileSync(path.join(outDir, 'checkpoint.bin')), saved);
  });

  it('stl trains one network per task on the samples that carry its label', async () => {
    const outDir = path.join(tmp, 'stl');
    const result = await trainCell(
      cellConfig(
        { setting: 'stl', regime: { name: 'disjoint', spec: { kind: 'disjoint', overlap: 0 } } },
        { ...TRAIN, optimizer: 'sgd', schedule: 'step', classBalanced: true, learningRate: 0.05 },
      ),
      data,
      { outDir, progress: 'quiet' },
    );
    assert.deepEqual(Object.keys(result.test).sort(), ['attrs', 'quadrant']);
    assert.deepEqual(Object.keys(result.bestEpochByTask!).sort(), ['attrs', 'quadrant']);
    assert.deepEqual(Object.keys(result.history[0]!.terms).sort(), ['sup:attrs', 'sup:quadrant']);
    assert.deepEqual(result.relatedness, {});
    assert.ok(result.labelCounts.attrs! <= 48 && result.labelCounts.quadrant! <= 48);
    assert.deepEqual(fs.readdirSync(outDir).sort(), ['checkpoint-stl-attrs.bin', 'checkpoint-stl-quadrant.bin']);
    assert.match(result.selectionRule, /each single-task network keeps its own epoch/);
  });

  it("'lines' progress (what runs without a terminal use): a line per epoch of each network and per checkpoint written", async () => {
    const outDir = path.join(tmp, 'lines');
    const stream = new PassThrough();
    let log = '';
    stream.on('data', (chunk: Buffer) => (log += chunk.toString()));
    await trainCell(cellConfig({ setting: 'stl' }, TRAIN), data, {
      outDir,
      progress: 'lines',
      progressStream: stream,
      progressLabel: '[cell]',
    });
    const lines = log.trim().split('\n');
    for (const task of ['quadrant', 'attrs']) {
      const epochs = lines.filter((l) => l.startsWith(`[cell] ${task} epoch `));
      assert.equal(epochs.length, 2, `${task}: one line per epoch\n${log}`);
      assert.match(
        epochs[1]!,
        new RegExp(
          `^\\[cell\\] ${task} epoch 2/2: loss \\d+\\.\\d{4} \\(sup:${task} \\d+\\.\\d{4}\\) ` +
            `\\| val ${task} \\w+ \\d+\\.\\d\\d% .*\\| \\d+ img/s \\| epoch [\\d.]+s, elapsed [\\d.]+s$`,
        ),
      );
      const checkpoints = lines.filter((l) => l.startsWith(`[cell] ${task}: checkpoint after epoch `));
      assert.deepEqual(
        checkpoints.map((l) => l.replace(/ written to .*/, '')),
        [1, 2].map((e) => `[cell] ${task}: checkpoint after epoch ${e}`),
      );
    }
  });

  it('every epoch trains on the last partial batch too, except a final batch of one sample', async () => {
    assert.equal(batchesPerEpoch(100, 32), 4, '32 + 32 + 32 + 4');
    assert.equal(batchesPerEpoch(97, 32), 3, '32 + 32 + 32, and a lone sample is skipped');
    assert.equal(batchesPerEpoch(64, 32), 2);
    assert.equal(batchesPerEpoch(5, 5), 1);
    // The trainer itself: 96 training samples (every one, with distribution matching) in batches of 40
    // make 40 + 40 + 16, three steps an epoch; 81 samples make 40 + 40, the lone 81st skipped.
    for (const [count, steps] of [
      [96, 3],
      [81, 2],
    ] as const) {
      const outDir = path.join(tmp, `partial-${count}`);
      const result = await trainCell(
        cellConfig({}, { ...TRAIN, epochs: 2, batchSize: 40 }),
        syntheticDataset({ counts: [count, 32, 32] }),
        { outDir, progress: 'quiet' },
      );
      const saved = await readCheckpoint(path.join(outDir, 'checkpoint.bin'));
      assert.equal(saved!.globalStep, 2 * steps, `${count} samples: ${steps} steps an epoch`);
      assert.ok(result.history.every((r) => Number.isFinite(r.loss)));
    }
  });

  it('refuses a config its data cannot serve with one clear line (option values are checked by the benchmark schema)', async () => {
    const quiet = { progress: 'quiet' as const };
    await assert.rejects(
      trainCell(
        cellConfig({ setting: 'mtl+dm', regime: { name: 'disjoint', spec: { kind: 'disjoint', overlap: 0 } } }, TRAIN),
        data,
        quiet,
      ),
      /source "data" needs at least 10 training samples labelled for both tasks, but this regime leaves 0/,
    );
    await assert.rejects(
      trainCell(cellConfig({ inputSize: 16 }, TRAIN), data, quiet),
      /input size 16 but dataset synthetic train images are 8×8/,
    );
    await assert.rejects(trainCell(cellConfig({ setting: 'mtl+sca', relatedness: [] }, TRAIN), data, quiet), /names no relatedness pair/);
  });

  for (const method of [undefined, ...BALANCING_METHODS]) {
    const weighting = method ? `balancing method ${method}` : 'equal weights';
    it(`a training step leaks no tensors (${weighting}), and neither does the method`, async () => {
      const start = tf.memory().numTensors;
      const net = await buildNetwork({
        backbone: 'convnet-s',
        inputSize: 8,
        channels: 3,
        seed: 1,
        heads: data.tasks.map((t) => ({ task: t.name, kind: t.kind, units: t.labels.length })),
      });
      const balancer = method ? createBalancer(method, completeMethodOptions(cellConfig().method), net, 1) : undefined;
      const extra = balancer?.variables ?? [];
      const optimizer = new Optimizer(
        { kind: 'adam', momentum: 0, weightDecay: 1e-4 },
        [...net.trainableVariables(), ...extra],
        [...net.decayMask(), ...extra.map(() => false)],
      );
      const coupling = couplingTensors({
        from: 'quadrant',
        to: 'attrs',
        kind: 'categorical->multilabel',
        source: 'prior',
        matrix: data.relatedness[0]!.matrix.map((r) => r.map((v) => Math.min(0.9999, Math.max(1e-4, v)))),
      });
      const step = createTrainStep(net, optimizer, [coupling], { sca: true, dm: true, method: cellConfig().method }, [8, 8, 3], balancer);
      const rng = Rng.fromSeed(1);
      const batch = Int32Array.from({ length: 16 }, (_, i) => i);
      const run = () =>
        step.run(
          readImageBatch(data.splits.train.images, batch, { padding: 1, flip: false }, rng),
          encodeLabels(data.tasks, data.splits.train.labels, batch),
          1e-3,
        );
      run();
      step.endEpoch?.();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) assert.ok(run().finite);
      step.endEpoch?.();
      assert.equal(tf.memory().numTensors, before);
      disposeCoupling(coupling);
      optimizer.dispose();
      balancer?.dispose();
      net.dispose();
      assert.equal(tf.memory().numTensors, start, 'network, optimizer and method leave nothing behind');
    });
  }
});
