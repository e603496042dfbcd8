import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTestWasmBackend } from '../wasm_backend.js';
import { setCustomKernels } from '../../src/engine/kernels/index.js';
import {
  BATCH_NORM_APPLY,
  BATCH_NORM_GRAD_INPUT,
  BATCH_NORM_GRAD_SUMS,
  BATCH_NORM_STATISTICS,
  RELU_GRAD,
} from '../../src/engine/kernels/batch_norm_simd.js';
import { setSimdKernels } from '../../src/engine/simd_kernels.js';
import { TrainingBatchNormalization } from '../../src/model/training_batch_norm.js';
import { countCalls, randomValues, relativeError } from './helpers.js';

const TOLERANCE = 1e-4;
const FUSED_KERNELS = [BATCH_NORM_STATISTICS, BATCH_NORM_APPLY, BATCH_NORM_GRAD_SUMS, BATCH_NORM_GRAD_INPUT];

interface BatchNormResult {
  output: Float32Array;
  dx: Float32Array;
  dGamma: Float32Array;
  dBeta: Float32Array;
  movingMean: Float32Array;
  movingVariance: Float32Array;
}

const ARGS = { momentum: 0.9, epsilon: 1e-5 };

/**
 * One training-mode forward and backward pass of a batch norm with fixed γ, β and inputs (an
 * offset mean and uneven scale per channel, as after a convolution) on the active backend.
 */
function batchNormStep(layer: tf.layers.Layer, shape: number[], seed: number): BatchNormResult {
  const channels = shape.at(-1)!;
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tidy(() => {
    const raw = tf.tensor(randomValues(size, seed), shape);
    const x = tf.add(tf.mul(raw, tf.linspace(0.5, 3, channels)), tf.linspace(-2, 4, channels));
    const weighting = tf.tensor(randomValues(size, seed + 1), shape);
    layer.build(shape);
    layer.setWeights([
      tf.tensor(randomValues(channels, seed + 2)).add(1.5),
      tf.tensor(randomValues(channels, seed + 3)),
      tf.zeros([channels]),
      tf.ones([channels]),
    ]);
    const [gamma, beta] = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const loss = (input: tf.Tensor) => tf.sum(tf.mul(weighting, layer.apply(input, { training: true }) as tf.Tensor)) as tf.Scalar;
    const output = layer.apply(x, { training: true }) as tf.Tensor;
    const dx = tf.grad(loss)(x);
    const { value, grads } = tf.variableGrads(() => loss(x), [gamma!, beta!]);
    value.dispose();
    const [, , movingMean, movingVariance] = layer.getWeights();
    const values = (t: tf.Tensor) => Float32Array.from(t.dataSync());
    return {
      output: values(output),
      dx: values(dx),
      dGamma: values(grads[gamma!.name]!),
      dBeta: values(grads[beta!.name]!),
      movingMean: values(movingMean!),
      movingVariance: values(movingVariance!),
    };
  });
}

/** tfjs-layers' own BatchNormalization with the cpu backend's stock kernels: the reference. */
async function reference(shape: number[], seed: number): Promise<BatchNormResult> {
  await tf.setBackend('cpu');
  setCustomKernels('cpu', 'none');
  try {
    const layer = tf.layers.batchNormalization(ARGS);
    const result = batchNormStep(layer, shape, seed);
    return result;
  } finally {
    setCustomKernels('cpu', 'all');
    await tf.setBackend('wasm');
  }
}

function assertClose(ours: BatchNormResult, expected: BatchNormResult): void {
  for (const key of Object.keys(expected) as (keyof BatchNormResult)[]) {
    const error = relativeError(ours[key], expected[key]);
    assert.ok(error <= TOLERANCE, `${key}: relative error ${error.toExponential(2)} > ${TOLERANCE}`);
  }
}

/** Runs `body` and returns how often each of `kernels` ran on wasm. */
async function callsOf(kernels: string[], body: () => void): Promise<number[]> {
  const counts: number[] = [];
  const wrap = async (index: number): Promise<void> => {
    if (index === kernels.length) {
      body();
      return;
    }
    counts[index] = await countCalls(kernels[index]!, 'wasm', () => wrap(index + 1));
  };
  await wrap(0);
  return counts;
}

before(async () => {
  await initTestWasmBackend();
});

after(() => {
  setSimdKernels(true);
});

describe('the fused SIMD training batch norm equals tfjs-layers’ on the cpu backend', () => {
  // Every channel-block width (4, 8, 12, 16 channels and more), odd position counts, and the
  // first layers of convnet-4 and convnet-s at a smaller batch (large enough to be split).
  const SHAPES = [
    [3, 5, 7, 4],
    [2, 3, 5, 8],
    [2, 7, 3, 12],
    [2, 5, 5, 20],
    [2, 4, 4, 64],
    [4, 64, 64, 32],
    [8, 32, 32, 32],
    [16, 8, 8, 128],
  ];
  for (const [index, shape] of SHAPES.entries()) {
    test(`[${shape.join(', ')}]`, async () => {
      const expected = await reference(shape, 20 + index);
      const layer = new TrainingBatchNormalization(ARGS);
      let ours: BatchNormResult | undefined;
      const calls = await callsOf(FUSED_KERNELS, () => {
        ours = batchNormStep(layer, shape, 20 + index);
      });
      // Three forward passes (one for the output, two inside the gradients) and two backward.
      assert.deepEqual(calls, [3, 3, 2, 2], `calls of ${FUSED_KERNELS.join(', ')}`);
      assertClose(ours!, expected);
    });
  }

  test('channels that are not a multiple of 4, or the module switched off: the tfjs ops run, still exact', async () => {
    for (const [shape, off] of [
      [[2, 5, 5, 6], false],
      [[2, 5, 5, 8], true],
    ] as const) {
      const expected = await reference([...shape], 90);
      setSimdKernels(!off);
      const layer = new TrainingBatchNormalization(ARGS);
      let ours: BatchNormResult | undefined;
      const calls = await callsOf(FUSED_KERNELS, () => {
        ours = batchNormStep(layer, [...shape], 90);
      });
      setSimdKernels(true);
      assert.deepEqual(calls, [0, 0, 0, 0]);
      assertClose(ours!, expected);
    }
  });
});

describe('ReLU’s gradient in one SIMD pass', () => {
  for (const size of [7, 1000, 4 * 64 * 64 * 32]) {
    test(`${size} elements, zeros and negatives included`, async () => {
      const values = randomValues(size, size);
      // Exact zeros, where ReLU's gradient is 0 as in tfjs.
      for (let i = 0; i < size; i += 5) values[i] = 0;
      const dyValues = randomValues(size, size + 1);
      const gradient = () =>
        tf.tidy(() =>
          Float32Array.from(
            tf
              .grad((x: tf.Tensor) => tf.sum(tf.mul(tf.tensor(dyValues), tf.relu(x))))(tf.tensor(values))
              .dataSync(),
          ),
        );
      await tf.setBackend('cpu');
      const expected = gradient();
      await tf.setBackend('wasm');
      let ours: Float32Array | undefined;
      const [calls] = await callsOf([RELU_GRAD], () => {
        ours = gradient();
      });
      assert.equal(calls, 1);
      // Equal values (tfjs's dy·0 keeps the sign of a negative dy's zero; ours gives +0).
      assert.equal(relativeError(ours!, expected), 0);
    });
  }
});
