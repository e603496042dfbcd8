import * as tf from '@tensorflow/tfjs';
import type { GradFunc, KernelFunc, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs';
import { type Backend, callKernel, withScratch } from './backend_calls.js';
import { type CustomBackendName, allocateFloat32, float32View } from './raw_memory.js';

/**
 * Batch normalisation in training, which the backbones run after every convolution.
 *
 * Forward (wasm): the stock kernel normalises element by element in scalar C++. With per-channel
 * k = scale/√(var+ε) and b = offset − mean·k it is y = x·k + b: two SIMD broadcasting passes.
 *
 * Backward: tfjs's gradient of FusedBatchNorm builds each of its five outputs separately (about a
 * dozen full-size passes, one of them a Tile of 1/√var to the activation's shape), and the
 * gradient of Mean (the batch statistics) multiplies dy by a full-size tensor of ones. Ours:
 *   dx = dy·k;  doffset = Σdy;  dscale = Σ dy·(x−mean)/√(var+ε);  dmean = −k·Σdy;
 *   dvariance = −½·scale·(var+ε)^(−3/2)·Σ dy·(x−mean),
 * sharing the two sums between the outputs that need them, and Mean's gradient as one tile of
 * dy/n. Gradients are registered globally in tfjs, so ours only act while a backend we serve is
 * active and delegate to tfjs's own otherwise.
 */

interface BatchNormInputs {
  x: TensorInfo;
  mean: TensorInfo;
  variance: TensorInfo;
  offset?: TensorInfo;
  scale?: TensorInfo;
}

/** True when the per-channel parameters are vectors over the last axis of a float32 x. */
function isPerChannel(x: { shape: number[]; dtype: string }, params: ({ shape: number[] } | undefined | null)[]): boolean {
  if (x.dtype !== 'float32' || x.shape.length < 2) return false;
  const channels = x.shape[x.shape.length - 1]!;
  return params.every((p) => p == null || (p.shape.length === 1 && p.shape[0] === channels));
}

export function makeBatchNormForwardKernel(backendName: CustomBackendName, original: KernelFunc): KernelFunc {
  return (args) => {
    const inputs = args.inputs as unknown as BatchNormInputs;
    const { x, mean, variance, offset, scale } = inputs;
    if (!isPerChannel(x, [mean, variance, offset, scale]) || [mean, variance, offset, scale].some((p) => p && p.dtype !== 'float32')) {
      return original(args);
    }
    const epsilon = (args.attrs as { varianceEpsilon: number }).varianceEpsilon;
    const backend = args.backend as Backend;
    const channels = mean.shape[0]!;
    return withScratch(backend, (scratch) => {
      const factor = scratch(allocateFloat32(backendName, backend, [channels]));
      const shift = scratch(allocateFloat32(backendName, backend, [channels]));
      const m = float32View(backendName, backend, mean);
      const v = float32View(backendName, backend, variance);
      const s = scale ? float32View(backendName, backend, scale) : undefined;
      const o = offset ? float32View(backendName, backend, offset) : undefined;
      const k = float32View(backendName, backend, factor);
      const b = float32View(backendName, backend, shift);
      for (let c = 0; c < channels; c++) {
        k[c] = (s ? s[c]! : 1) / Math.sqrt(v[c]! + epsilon);
        b[c] = (o ? o[c]! : 0) - m[c]! * k[c]!;
      }
      const scaled = scratch(callKernel('Multiply', backendName, backend, { a: x, b: factor }));
      return callKernel('Add', backendName, backend, { a: scaled, b: shift });
    });
  };
}

/** Axes 0..rank−2: the axes a per-channel statistic reduces over. */
function leadingAxes(rank: number): number[] {
  return Array.from({ length: rank - 1 }, (_, i) => i);
}

export function makeBatchNormGradient(original: GradFunc, active: () => boolean): GradFunc {
  return (dy, saved, attrs: NamedAttrMap) => {
    const [x, mean, variance, scale] = saved as [Tensor, Tensor, Tensor, Tensor | undefined];
    const single = Array.isArray(dy) ? undefined : dy;
    if (!active() || !single || !isPerChannel(x, [mean, variance, scale]) || single.dtype !== 'float32') return original(dy, saved, attrs);
    const epsilon = attrs.varianceEpsilon as number;
    const axes = leadingAxes(x.rank);
    const invStd = tf.rsqrt(tf.add(variance, epsilon));
    const factor = scale ? tf.mul(scale, invStd) : invStd;
    // Shared by several outputs. Computed here rather than inside the closures: tfjs runs each
    // closure in its own tidy scope, which would dispose a value one closure shares with another.
    const sumDy = tf.sum(single, axes);
    const sumDyCentered = tf.sum(tf.mul(single, tf.sub(x, mean)), axes);
    return {
      x: () => tf.mul(single, factor),
      mean: () => tf.neg(tf.mul(factor, sumDy)),
      variance: () => {
        const cube = tf.mul(tf.mul(invStd, invStd), invStd);
        const scaled = scale ? tf.mul(scale, cube) : cube;
        return tf.mul(tf.mul(scaled, -0.5), sumDyCentered);
      },
      scale: () => tf.mul(invStd, sumDyCentered),
      offset: () => tf.clone(sumDy),
    };
  };
}

/** Mean's gradient: dy/n broadcast back over the reduced axes, as one tile instead of dy·ones/n. */
export function makeMeanGradient(original: GradFunc, active: () => boolean): GradFunc {
  return (dy, saved, attrs: NamedAttrMap) => {
    const [x] = saved as [Tensor];
    const single = Array.isArray(dy) ? undefined : dy;
    if (!active() || !single || x.dtype !== 'float32' || single.dtype !== 'float32') return original(dy, saved, attrs);
    const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
    const count = axes.reduce((n, a) => n * x.shape[a]!, 1);
    const expanded = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const reps = x.shape.map((d, i) => (axes.includes(i) ? d : 1));
    return { x: () => tf.tile(tf.div(tf.reshape(single, expanded), count), reps) };
  };
}
