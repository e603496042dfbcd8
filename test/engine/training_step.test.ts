import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTestWasmBackend } from '../wasm_backend.js';
import { buildBackbone } from '../../src/model/backbones.js';
import { backendBuffers } from './helpers.js';

for (const backendName of ['wasm', 'cpu'] as const) {
  test(`${backendName}: a full training step (backbone, dense head, adam) leaks no tensors`, async () => {
    await initTestWasmBackend();
    await tf.setBackend(backendName);
    const classes = 3;
    const backbone = buildBackbone({ name: 'convnet-s', inputSize: 8, seed: 3 });
    const head = tf.layers.dense({ units: classes, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) });
    const images = tf.randomUniform([4, 8, 8, 3], 0, 1, 'float32', 5);
    const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), classes);
    const optimizer = tf.train.adam(1e-2);
    const losses: number[] = [];
    const step = () => {
      const cost = optimizer.minimize(() => {
        const logits = head.apply(backbone.apply(images, { training: true }) as tf.Tensor) as tf.Tensor;
        return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
      }, true)!;
      losses.push(cost.dataSync()[0]!);
      cost.dispose();
    };
    try {
      // Warm-up: the head builds its weights inside the first step, after minimize() has listed the
      // trainable variables, so its Adam slots only appear in the second step.
      step();
      step();
      const tensorsBefore = tf.memory().numTensors;
      const buffersBefore = backendBuffers();
      step();
      assert.equal(tf.memory().numTensors, tensorsBefore, 'tensor count after a step');
      assert.equal(backendBuffers(), buffersBefore, 'backend buffer count after a step');
      for (let i = 0; i < 6; i++) step();
      assert.ok(losses.every(Number.isFinite), `finite losses ${losses.join(', ')}`);
      // With a learning rate this high on four fixed images, the loss must go down if the gradients are right.
      assert.ok(losses.at(-1)! < losses[0]!, `loss decreased: ${losses.map((l) => l.toFixed(3)).join(' → ')}`);
    } finally {
      tf.dispose([images, labels]);
      optimizer.dispose();
      backbone.dispose();
      head.dispose();
    }
  });
}
