import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.js';
import { createTrainingHarness, measureStepCosts, measureThroughput } from '../../src/train/throughput.js';

describe('throughput measurement', () => {
  before(async () => {
    // One thread: the same wasm build on every machine, whatever its load.
    process.env.MTL_BENCH_WASM_THREADS = '1';
    await initBackend({ requested: 'wasm' });
  });

  it("trains with the trainer's step: the loss on the fixed batch falls, and nothing leaks", async () => {
    const tensorsBefore = tf.memory().numTensors;
    const harness = await createTrainingHarness({ backbone: 'convnet-s', inputSize: 16, batch: 4 });
    const losses = Array.from({ length: 8 }, () => harness.step());
    harness.infer();
    harness.dispose();
    assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
    assert.ok(losses[7]! < losses[0]!, `the loss should fall when one batch is trained on repeatedly: ${losses}`);
    assert.equal(tf.memory().numTensors, tensorsBefore, 'every tensor of the harness is disposed');
  });

  it('reports one rate per round and their median', async () => {
    const result = await measureThroughput({ backbone: 'convnet-s', inputSize: 16, batch: 2, steps: 1, warmup: 0, repeats: 3 });
    assert.equal(result.trainRounds.length, 3);
    assert.equal(result.inferRounds.length, 3);
    assert.equal(result.trainImagesPerSecond, [...result.trainRounds].sort((a, b) => a - b)[1]);
    assert.ok(result.trainImagesPerSecond > 0 && result.inferImagesPerSecond > 0);
    assert.equal(result.backend, 'wasm');
  });

  it('times the step of any multi-task setting, balancing methods and couplings included, in interleaved rounds', async () => {
    const tensorsBefore = tf.memory().numTensors;
    const harness = await createTrainingHarness({ backbone: 'convnet-s', inputSize: 16, batch: 4, setting: 'mtl+sca+dm+pcgrad' });
    const losses = Array.from({ length: 6 }, () => harness.step());
    harness.dispose();
    assert.ok(losses[5]! < losses[0]!, `losses ${losses}`);
    assert.equal(tf.memory().numTensors, tensorsBefore, 'every tensor of the harness is disposed');
    const costs = await measureStepCosts({
      backbone: 'convnet-s',
      inputSize: 16,
      batch: 2,
      steps: 1,
      warmup: 0,
      repeats: 2,
      settings: ['mtl', 'mtl+famo'],
    });
    assert.deepEqual(
      costs.map((c) => [c.setting, c.rounds.length]),
      [
        ['mtl', 2],
        ['mtl+famo', 2],
      ],
    );
    assert.ok(costs.every((c) => c.stepMs > 0));
    await assert.rejects(createTrainingHarness({ backbone: 'convnet-s', inputSize: 16, batch: 2, setting: 'stl' }), /one network per task/);
  });
});
