import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTestWasmBackend } from '../wasm_backend.js';
import { buildBackbone } from '../../src/model/backbones.js';
import { TrainingBatchNormalization } from '../../src/model/training_batch_norm.js';

function maxRelativeError(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / Math.max(1e-6, tf.max(tf.abs(b)).dataSync()[0]!));
}

/** Runs one training-mode forward and backward pass of `layer`; gradients for x, gamma and beta. */
function trainStep(layer: tf.layers.Layer, x: tf.Tensor, weighting: tf.Tensor) {
  const [gamma, beta] = layer.trainableWeights.map((w) => w.read() as tf.Variable);
  const f = (input: tf.Tensor) => tf.sum(tf.mul(weighting, layer.apply(input, { training: true }) as tf.Tensor)) as tf.Scalar;
  const output = layer.apply(x, { training: true }) as tf.Tensor;
  const dx = tf.grad(f)(x);
  const { value, grads } = tf.variableGrads(() => f(x), [gamma!, beta!]);
  value.dispose();
  return { output, dx, dGamma: grads[gamma!.name]!, dBeta: grads[beta!.name]! };
}

for (const backendName of ['cpu', 'wasm'] as const) {
  test(`${backendName}: one-op training batch norm equals tfjs-layers' (outputs, gradients, moving statistics)`, async () => {
    if (backendName === 'wasm') await initTestWasmBackend();
    await tf.setBackend(backendName);
    const args = {
      momentum: 0.9,
      epsilon: 1e-5,
      gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 1 }),
      betaInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 2 }),
    };
    const ours = new TrainingBatchNormalization(args);
    const standard = tf.layers.batchNormalization(args);
    // An offset mean and uneven scale per channel, as after a convolution.
    const x = tf.tidy(() =>
      tf.add(tf.mul(tf.randomNormal([4, 5, 6, 7], 0, 1, 'float32', 3), tf.linspace(0.5, 3, 7)), tf.linspace(-2, 4, 7)),
    );
    const weighting = tf.randomNormal([4, 5, 6, 7], 0, 1, 'float32', 4);
    ours.build(x.shape);
    standard.build(x.shape);
    standard.setWeights(ours.getWeights());
    const numTensors = tf.memory().numTensors;
    const a = trainStep(ours, x, weighting);
    const b = trainStep(standard, x, weighting);
    for (const key of ['output', 'dx', 'dGamma', 'dBeta'] as const) {
      const error = maxRelativeError(a[key], b[key]);
      assert.ok(error < 1e-4, `${key}: relative error ${error}`);
    }
    ours
      .getWeights()
      .forEach((w, i) =>
        assert.ok(maxRelativeError(w, standard.getWeights()[i]!) < 1e-5, `weight ${i} (moving statistics after 3 updates)`),
      );
    // Inference uses the moving statistics in both.
    assert.ok(maxRelativeError(ours.apply(x) as tf.Tensor, standard.apply(x) as tf.Tensor) < 1e-5);
    tf.dispose([...Object.values(a), ...Object.values(b)]);
    assert.equal(tf.memory().numTensors, numTensors + 2, 'only the two inference outputs are left');
    tf.dispose([x, weighting]);
  });
}

test('backbones use it for every batch norm and save it as a standard BatchNormalization', async () => {
  await tf.setBackend('cpu');
  for (const name of ['convnet-s', 'resnet18', 'mobilenetv2']) {
    const model = buildBackbone({ name, inputSize: 32 });
    const norms = model.layers.filter((l) => l.getClassName() === 'BatchNormalization');
    assert.ok(norms.length > 0 && norms.every((l) => l instanceof TrainingBatchNormalization), name);
    const restored = await tf.models.modelFromJSON({ modelTopology: model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'] });
    assert.equal(restored.layers.filter((l) => l instanceof TrainingBatchNormalization).length, 0);
    model.dispose();
    restored.dispose();
  }
});
