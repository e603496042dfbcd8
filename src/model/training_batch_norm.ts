import * as tf from '@tensorflow/tfjs';
import {
  BATCH_NORM_APPLY,
  BATCH_NORM_GRAD_INPUT,
  BATCH_NORM_GRAD_SUMS,
  BATCH_NORM_STATISTICS,
  fusedBatchNormBackwardReady,
  fusedBatchNormForwardReady,
} from '../engine/kernels/batch_norm_simd.js';

/**
 * Batch normalisation whose training step is one differentiable op with the closed-form gradient.
 *
 * tfjs-layers normalises a training batch with tf.moments followed by tf.batchNormalization, so
 * the backward pass runs through each of them: the normalisation's gradient for x, mean and
 * variance, then Mean's, Square's and Sub's gradients back into x, and the Adds that sum the three
 * paths — about fifteen full-size passes per layer. With x̂ = (x − μ)/σ and k = γ/σ the same
 * gradient is
 *   dβ = Σ dy,   dγ = Σ dy·x̂,   dx = k·dy − (k/M)·Σ dy − x̂·(k/M)·Σ dy·x̂
 * (sums over the M = N·H·W positions of each channel): two sums and four elementwise passes.
 *
 * On wasm with mtl-bench's SIMD module (engine/kernels/batch_norm_simd.ts) the same formulas run
 * as fused passes: the statistics as two reading passes, the output as one, and the backward pass
 * as one pass for both sums and one for dx; elsewhere as the tfjs ops below.
 *
 * Used on the wasm and cpu backends, whose kernels run one pass at a time; on TensorFlow's native
 * backends (not measurable here) the standard layer stays, as issue 6 asks of every speed-up.
 * Inference, other axes and layers without γ or β use the standard layer. Moving statistics are
 * updated exactly as tfjs-layers does (biased batch variance, its momentum rule), and the layer
 * serialises as a standard "BatchNormalization", so saved models load anywhere.
 */

type BatchNormArgs = NonNullable<Parameters<typeof tf.layers.batchNormalization>[0]>;

/** The fields of tfjs-layers' BatchNormalization read here (protected in its typings). */
interface BatchNormInternals {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma: tf.LayerVariable | null;
  beta: tf.LayerVariable | null;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

export interface BatchStatistics {
  normed: tf.Tensor;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/**
 * Normalises `x` over all axes but the last with its own batch statistics; the gradient flows to
 * x, gamma and beta. `mean` and `variance` (biased) are returned for the moving averages and carry
 * no gradient; the caller disposes them.
 */
function normalizeTrainingBatch(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): BatchStatistics {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const count = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  let statistics: { mean: tf.Tensor1D; variance: tf.Tensor1D } | undefined;
  // customGrad's typing passes every argument as `Tensor | GradSaveFunc`; ours are x, γ, β, save.
  const op = tf.customGrad(((input: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor, save: tf.GradSaveFunc) => {
    let value: tf.Tensor;
    if (fusedBatchNormForwardReady(input)) {
      const [mean, variance] = tf.engine().runKernel(BATCH_NORM_STATISTICS, { x: input }) as [tf.Tensor1D, tf.Tensor1D];
      const invStd = tf.rsqrt(tf.add(variance, epsilon));
      const factor = tf.mul(scale, invStd);
      save([invStd, factor, input, mean]);
      statistics = { mean: tf.keep(mean), variance: tf.keep(variance) };
      value = tf.engine().runKernel(BATCH_NORM_APPLY, { x: input, mean, factor, offset }) as tf.Tensor;
    } else {
      const mean = tf.mean(input, axes) as tf.Tensor1D;
      const centered = tf.sub(input, mean);
      const variance = tf.mean(tf.square(centered), axes) as tf.Tensor1D;
      const invStd = tf.rsqrt(tf.add(variance, epsilon));
      const factor = tf.mul(scale, invStd);
      save([invStd, factor, centered]);
      // Kept past customGrad's own scope: the layer reads them for its moving averages.
      statistics = { mean: tf.keep(mean), variance: tf.keep(variance) };
      value = tf.add(tf.mul(centered, factor), offset);
    }
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [invStd, factor, xOrCentered, mean] = saved as [tf.Tensor1D, tf.Tensor1D, tf.Tensor, tf.Tensor1D | undefined];
        return batchNormBackward(Array.isArray(dy) ? dy[0]! : dy, xOrCentered, mean, invStd, factor, axes, count);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const normed = op(x, gamma, beta);
  return { normed, ...statistics! };
}

/**
 * [dx, dγ, dβ] from dy and x with its batch mean, or (mean undefined) x already centered.
 * Σ dy·(x − μ) times 1/σ is Σ dy·x̂.
 */
function batchNormBackward(
  dy: tf.Tensor,
  x: tf.Tensor,
  mean: tf.Tensor1D | undefined,
  invStd: tf.Tensor1D,
  factor: tf.Tensor1D,
  axes: number[],
  count: number,
): tf.Tensor[] {
  const perCount = tf.div(factor, count);
  const coefficients = (sumDy: tf.Tensor, sumDyCentered: tf.Tensor) => ({
    coef: tf.neg(tf.mul(tf.mul(perCount, tf.square(invStd)), sumDyCentered)),
    shift: tf.neg(tf.mul(perCount, sumDy)),
  });
  if (fusedBatchNormBackwardReady(x)) {
    const centeredAround = mean ?? tf.zeros([factor.shape[0]]);
    const sums = tf.engine().runKernel(BATCH_NORM_GRAD_SUMS, { dy, x, mean: centeredAround }) as [tf.Tensor1D, tf.Tensor1D];
    const [sumDy, sumDyCentered] = sums;
    const { coef, shift } = coefficients(sumDy, sumDyCentered);
    const dx = tf.engine().runKernel(BATCH_NORM_GRAD_INPUT, { dy, x, mean: centeredAround, factor, coef, shift }) as tf.Tensor;
    return [dx, tf.mul(sumDyCentered, invStd), sumDy];
  }
  const centered = mean ? tf.sub(x, mean) : x;
  const sumDy = tf.sum(dy, axes);
  const sumDyCentered = tf.sum(tf.mul(dy, centered), axes);
  const { coef, shift } = coefficients(sumDy, sumDyCentered);
  const dx = tf.add(tf.add(tf.mul(dy, factor), tf.mul(centered, coef)), shift);
  return [dx, tf.mul(sumDyCentered, invStd), sumDy];
}

/** Backends whose training uses the one-op form. */
const CPU_BACKENDS: readonly string[] = ['wasm', 'cpu'];

// tfjs-layers exports a factory but not the class; its constructor is the class.
const BatchNormalization = tf.layers.batchNormalization({}).constructor as unknown as new (args: BatchNormArgs) => tf.layers.Layer;

export class TrainingBatchNormalization extends BatchNormalization {
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    const self = this as unknown as BatchNormInternals;
    const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0]! : undefined) : inputs;
    const lastAxis = input !== undefined && (self.axis === -1 || self.axis === input.rank - 1);
    const ourBackend = CPU_BACKENDS.includes(tf.getBackend());
    if (kwargs.training !== true || !ourBackend || !input || !lastAxis || !self.gamma || !self.beta || input.dtype !== 'float32') {
      return super.call(inputs, kwargs);
    }
    return tf.tidy(() => {
      const { normed, mean, variance } = normalizeTrainingBatch(
        input,
        self.gamma!.read() as tf.Tensor1D,
        self.beta!.read() as tf.Tensor1D,
        self.epsilon,
      );
      // tfjs-layers' update: moving ← moving − (moving − batch)·(1 − momentum).
      for (const [moving, batch] of [
        [self.movingMean, mean],
        [self.movingVariance, variance],
      ] as const) {
        tf.tidy(() => {
          const current = moving.read();
          moving.write(tf.sub(current, tf.mul(tf.sub(current, batch), 1 - self.momentum)));
        });
      }
      tf.dispose([mean, variance]);
      return normed;
    });
  }
}

export function trainingBatchNormalization(args: BatchNormArgs): tf.layers.Layer {
  return new TrainingBatchNormalization(args);
}
