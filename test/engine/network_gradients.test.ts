import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTestWasmBackend } from '../wasm_backend.js';
import { customKernelNamesFor, customKernelsInUse, setCustomKernels } from '../../src/engine/kernels/index.js';
import { buildBackbone } from '../../src/model/backbones.js';
import { BATCH_NORM_APPLY, BATCH_NORM_STATISTICS } from '../../src/engine/kernels/batch_norm_simd.js';
import { countCalls, relativeError } from './helpers.js';

const TOLERANCE = 1e-4;

interface StepResult {
  loss: number;
  gradients: Float32Array[];
  names: string[];
}

/** Loss and every trainable variable's gradient of one training-mode step of backbone + head. */
function gradientsOf(backboneName: string, inputSize: number, batch = 4): StepResult {
  const classes = 3;
  const backbone = buildBackbone({ name: backboneName, inputSize, seed: 5 });
  const head = tf.layers.dense({ units: classes, kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) });
  const images = tf.randomUniform([batch, inputSize, inputSize, 3], 0, 1, 'float32', 7);
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: batch }, (_, i) => i % classes),
      'int32',
    ),
    classes,
  );
  try {
    const lossOf = () =>
      tf.losses.softmaxCrossEntropy(labels, head.apply(backbone.apply(images, { training: true }) as tf.Tensor) as tf.Tensor) as tf.Scalar;
    tf.tidy(() => lossOf()); // builds the head's weights
    const variables = [...backbone.trainableWeights, ...head.trainableWeights].map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(lossOf, variables);
    const result = {
      loss: value.dataSync()[0]!,
      gradients: variables.map((v) => Float32Array.from(grads[v.name]!.dataSync())),
      names: [...backbone.trainableWeights, ...head.trainableWeights].map((w) => w.originalName),
    };
    tf.dispose([value, ...Object.values(grads)]);
    return result;
  } finally {
    tf.dispose([images, labels]);
    backbone.dispose();
    head.dispose();
  }
}

before(async () => {
  await initTestWasmBackend();
});

after(() => {
  setCustomKernels('cpu', 'all');
});

// Our kernels change the forward pass within float32 rounding (other summation orders), so a
// pre-activation within rounding distance of 0 can land on the other side of a ReLU and move a
// gradient by one term. With these fixed inputs no ReLU flips and every gradient agrees to 1e-4;
// the per-kernel tests (same inputs to both kernels) are the exact check. The deeper backbones are
// left out: the cpu backend's stock kernels take minutes on them.
for (const [backboneName, inputSize] of [
  ['convnet-s', 16],
  ['convnet-4', 16],
] as const) {
  test(`${backboneName}: every gradient on wasm (all our kernels) matches the cpu backend's stock kernels`, async () => {
    await tf.setBackend('cpu');
    setCustomKernels('cpu', 'none');
    assert.deepEqual(customKernelsInUse('cpu'), []);
    const reference = gradientsOf(backboneName, inputSize);
    setCustomKernels('cpu', 'all');
    await tf.setBackend('wasm');
    const ours = gradientsOf(backboneName, inputSize);
    assert.ok(Math.abs(ours.loss - reference.loss) <= TOLERANCE * Math.abs(reference.loss), `loss ${ours.loss} vs ${reference.loss}`);
    assert.equal(ours.gradients.length, reference.gradients.length);
    for (let i = 0; i < reference.gradients.length; i++) {
      const error = relativeError(ours.gradients[i]!, reference.gradients[i]!);
      assert.ok(error <= TOLERANCE, `${reference.names[i]}: relative error ${error.toExponential(2)} > ${TOLERANCE}`);
    }
  });
}

test('our gradients stand aside on a backend we do not serve', async () => {
  // A copy of the cpu backend under another name plays the part of tfjs-node here.
  tf.registerBackend('stand-in', () => new tf.MathBackendCPU());
  tf.copyRegisteredKernels('cpu', 'stand-in');
  const batchNormGradient = async (backendName: string) => {
    await tf.setBackend(backendName);
    const x = tf.variable(tf.randomUniform([2, 3, 3, 4], 0, 1, 'float32', 8));
    const mean = tf.variable(tf.zeros([4]));
    const variance = tf.variable(tf.ones([4]));
    const offset = tf.variable(tf.zeros([4]));
    const scale = tf.variable(tf.ones([4]));
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.batchNorm(x, mean, variance, offset, scale, 1e-3)) as tf.Scalar,
      [x, mean, variance, offset, scale],
    );
    tf.dispose([x, mean, variance, offset, scale, ...Object.values(grads)]);
  };
  try {
    // tfjs's own FusedBatchNorm gradient for x tiles 1/√variance to x's shape; ours never tiles.
    assert.ok((await countCalls('Tile', 'stand-in', () => batchNormGradient('stand-in'))) > 0, 'tfjs gradient on the stand-in backend');
    assert.equal(await countCalls('Tile', 'cpu', () => batchNormGradient('cpu')), 0, 'our gradient on cpu');
    assert.deepEqual(customKernelsInUse('stand-in'), []);
    assert.deepEqual(customKernelsInUse('tensorflow'), []);
  } finally {
    await tf.setBackend('wasm');
    tf.removeBackend('stand-in');
  }
});

test('convnet-4 at 64×64: with the forward pass unchanged, our backward kernels on wasm match the stock ones at full size', async () => {
  // Full-size activations take the paths small tests never reach (reductions through XNNPACK
  // pooling above 65536 elements). The forward kernels we replace (Mean, FusedBatchNorm, the fused
  // batch-norm statistics and output) stay stock here so that both runs see bit-identical
  // activations and no ReLU can flip; the
  // reference is tfjs's own wasm kernels plus our filter gradient (which wasm lacks, and which
  // the per-kernel tests check against the cpu backend).
  await tf.setBackend('wasm');
  try {
    setCustomKernels('wasm', ['Conv2DBackpropFilter']);
    const reference = gradientsOf('convnet-4', 64, 8);
    setCustomKernels(
      'wasm',
      customKernelNamesFor('wasm').filter((id) => !['Mean', 'FusedBatchNorm', BATCH_NORM_STATISTICS, BATCH_NORM_APPLY].includes(id)),
    );
    const ours = gradientsOf('convnet-4', 64, 8);
    assert.equal(ours.loss, reference.loss, 'identical forward pass');
    for (let i = 0; i < reference.gradients.length; i++) {
      const error = relativeError(ours.gradients[i]!, reference.gradients[i]!);
      assert.ok(error <= TOLERANCE, `${reference.names[i]}: relative error ${error.toExponential(2)} > ${TOLERANCE}`);
    }
  } finally {
    setCustomKernels('wasm', 'all');
  }
});

test('mobilenetv2 (depthwise convolutions) and resnet18 (strided convolutions) train on wasm', async () => {
  await tf.setBackend('wasm');
  for (const name of ['mobilenetv2', 'resnet18']) {
    const backbone = buildBackbone({ name, inputSize: 16, seed: 9 });
    const head = tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 10 }) });
    const images = tf.randomUniform([4, 16, 16, 3], 0, 1, 'float32', 11);
    const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
    const optimizer = tf.train.adam(1e-3);
    const losses: number[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const cost = optimizer.minimize(
          () =>
            tf.losses.softmaxCrossEntropy(
              labels,
              head.apply(backbone.apply(images, { training: true }) as tf.Tensor) as tf.Tensor,
            ) as tf.Scalar,
          true,
        )!;
        losses.push(cost.dataSync()[0]!);
        cost.dispose();
      }
      assert.ok(losses.every(Number.isFinite), `${name}: finite losses ${losses.join(', ')}`);
      // Four fixed images: a working backward pass fits them within a few steps.
      assert.ok(losses.at(-1)! < 0.5 * losses[0]!, `${name}: loss fell ${losses.map((l) => l.toFixed(3)).join(' → ')}`);
    } finally {
      tf.dispose([images, labels]);
      optimizer.dispose();
      backbone.dispose();
      head.dispose();
    }
  }
});
