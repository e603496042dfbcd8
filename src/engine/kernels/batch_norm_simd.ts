import * as tf from '@tensorflow/tfjs';
import type { GradFunc, KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs';
import type { Backend } from './backend_calls.js';
import { allocateFloat32, float32View } from './raw_memory.js';
import { runOnHeap } from '../heap_workers.js';
import { type SimdFunctionName, type SimdKernels, simdKernels } from '../simd_kernels.js';

/**
 * Kernels of mtl-bench's own (no tfjs kernel has these names) for the training batch norm of
 * src/model/training_batch_norm.ts and ReLU's gradient, on the wasm backend only, computed by the
 * SIMD module (simd/kernels.c) on the backend's heap and split with the helper threads. They
 * replace a dozen full-size passes of separate tfjs kernels by five fused ones per layer.
 *
 * Their callers check simdElementwiseReady() first; without the module the kernels are never
 * called and the callers' previous formulation (tfjs ops) runs.
 */

export const BATCH_NORM_STATISTICS = 'MtlBatchNormStatistics';
export const BATCH_NORM_APPLY = 'MtlBatchNormApply';
export const BATCH_NORM_GRAD_SUMS = 'MtlBatchNormGradSums';
export const BATCH_NORM_GRAD_INPUT = 'MtlBatchNormGradInput';
export const RELU_GRAD = 'MtlReluGrad';

/** Positions (or elements) worth waking a helper for. */
const MIN_POSITIONS_PER_PART = 4096;
const MIN_ELEMENTS_PER_PART = 65536;

/** The module, when it runs on this backend and `x` (float32, channels last) has a multiple of 4 channels. */
function simdFor(backend: Backend, x: TensorInfo): SimdKernels | undefined {
  const channels = x.shape[x.shape.length - 1] ?? 0;
  if (x.dtype !== 'float32' || x.shape.length < 2 || channels % 4 !== 0) return undefined;
  return simdKernels(backend);
}

/**
 * Whether `kernels` can run for `x` now: the active backend is wasm, they are registered (switched
 * on), the SIMD module runs there, and x is float32 with a multiple of 4 channels.
 */
function fusedKernelsReady(kernels: readonly string[], x: { dtype: string; shape: number[] }): boolean {
  if (tf.getBackend() !== 'wasm' || kernels.some((name) => !tf.getKernel(name, 'wasm'))) return false;
  const channels = x.shape[x.shape.length - 1] ?? 0;
  return x.dtype === 'float32' && x.shape.length >= 2 && channels % 4 === 0 && simdKernels(tf.backend()) !== undefined;
}

/** The training batch norm's forward pass can use BATCH_NORM_STATISTICS and BATCH_NORM_APPLY. */
export function fusedBatchNormForwardReady(x: { dtype: string; shape: number[] }): boolean {
  return fusedKernelsReady([BATCH_NORM_STATISTICS, BATCH_NORM_APPLY], x);
}

/** Its backward pass can use BATCH_NORM_GRAD_SUMS and BATCH_NORM_GRAD_INPUT. */
export function fusedBatchNormBackwardReady(x: { dtype: string; shape: number[] }): boolean {
  return fusedKernelsReady([BATCH_NORM_GRAD_SUMS, BATCH_NORM_GRAD_INPUT], x);
}

/** ReLU's gradient as one pass (RELU_GRAD) where the SIMD module runs; tfjs's (dy·step(x)) elsewhere. */
export function makeReluGradient(original: GradFunc, active: () => boolean): GradFunc {
  return (dy, saved, attrs) => {
    const [x] = saved as [Tensor];
    const single = Array.isArray(dy) ? undefined : dy;
    const ready = active() && single && single.dtype === 'float32' && x.dtype === 'float32' && tf.getKernel(RELU_GRAD, 'wasm');
    if (!ready || !simdKernels(tf.backend())) return original(dy, saved, attrs);
    return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: single, x }) as Tensor };
  };
}

function required(backend: Backend, x: TensorInfo, kernel: string): SimdKernels {
  const simd = simdFor(backend, x);
  if (!simd) throw new Error(`${kernel} needs mtl-bench's SIMD module and float32 data with a multiple of 4 channels`);
  return simd;
}

function offsetOf(backend: Backend, info: TensorInfo): number {
  return float32View('wasm', backend, info).byteOffset;
}

function split(simd: SimdKernels, fn: SimdFunctionName, args: number[], total: number, minPerPart: number): void {
  runOnHeap(simd.memory.buffer, { kind: 'simd', fn, args }, total, minPerPart, (begin, end) => simd.call(fn, ...args, begin, end), {
    module: simd.module,
    memory: simd.memory,
  });
}

function dims(x: TensorInfo): { channels: number; positions: number } {
  const channels = x.shape[x.shape.length - 1]!;
  return { channels, positions: x.shape.reduce((a, b) => a * b, 1) / channels };
}

/** x → [mean, biased variance] per channel (two passes: the variance is taken around the mean). */
export const batchNormStatisticsKernel: KernelFunc = ({ inputs, backend }) => {
  const be = backend as Backend;
  const x = inputs.x!;
  const simd = required(be, x, BATCH_NORM_STATISTICS);
  const { channels, positions } = dims(x);
  const mean = allocateFloat32('wasm', be, [channels]);
  const variance = allocateFloat32('wasm', be, [channels]);
  const blocks = simd.call('channel_blocks', channels);
  const minBlocks = Math.max(1, Math.ceil(MIN_POSITIONS_PER_PART / positions));
  const [xAt, meanAt, varianceAt] = [x, mean, variance].map((t) => offsetOf(be, t)) as [number, number, number];
  split(simd, 'channel_sums', [xAt, 0, meanAt, positions, channels], blocks, minBlocks);
  const meanValues = float32View('wasm', be, mean);
  for (let c = 0; c < channels; c++) meanValues[c] = meanValues[c]! / positions;
  split(simd, 'channel_sums', [xAt, meanAt, varianceAt, positions, channels], blocks, minBlocks);
  const varianceValues = float32View('wasm', be, variance);
  for (let c = 0; c < channels; c++) varianceValues[c] = varianceValues[c]! / positions;
  return [mean, variance];
};

/** y = (x − mean)·factor + offset. */
export const batchNormApplyKernel: KernelFunc = ({ inputs, backend }) => {
  const be = backend as Backend;
  const { x, mean, factor, offset } = inputs as Record<'x' | 'mean' | 'factor' | 'offset', TensorInfo>;
  const simd = required(be, x, BATCH_NORM_APPLY);
  const { channels, positions } = dims(x);
  const y = allocateFloat32('wasm', be, x.shape);
  const args = [x, mean, factor, offset, y].map((t) => offsetOf(be, t));
  split(simd, 'batch_norm_apply', [...args, channels], positions, Math.ceil(MIN_ELEMENTS_PER_PART / channels));
  return y;
};

/** [Σ dy, Σ dy·(x − mean)] per channel. */
export const batchNormGradSumsKernel: KernelFunc = ({ inputs, backend }) => {
  const be = backend as Backend;
  const { dy, x, mean } = inputs as Record<'dy' | 'x' | 'mean', TensorInfo>;
  const simd = required(be, x, BATCH_NORM_GRAD_SUMS);
  const { channels, positions } = dims(x);
  const sumDy = allocateFloat32('wasm', be, [channels]);
  const sumDyCentered = allocateFloat32('wasm', be, [channels]);
  const args = [dy, x, mean, sumDy, sumDyCentered].map((t) => offsetOf(be, t));
  const minBlocks = Math.max(1, Math.ceil(MIN_POSITIONS_PER_PART / positions));
  split(simd, 'batch_norm_grad_sums', [...args, positions, channels], simd.call('channel_blocks', channels), minBlocks);
  return [sumDy, sumDyCentered];
};

/** dx = dy·factor + (x − mean)·coef + shift. */
export const batchNormGradInputKernel: KernelFunc = ({ inputs, backend }) => {
  const be = backend as Backend;
  const { dy, x, mean, factor, coef, shift } = inputs as Record<'dy' | 'x' | 'mean' | 'factor' | 'coef' | 'shift', TensorInfo>;
  const simd = required(be, x, BATCH_NORM_GRAD_INPUT);
  const { channels, positions } = dims(x);
  const dx = allocateFloat32('wasm', be, x.shape);
  const args = [dy, x, mean, factor, coef, shift, dx].map((t) => offsetOf(be, t));
  split(simd, 'batch_norm_grad_input', [...args, channels], positions, Math.ceil(MIN_ELEMENTS_PER_PART / channels));
  return dx;
};

/** dx = dy where x > 0, else 0. */
export const reluGradKernel: KernelFunc = ({ inputs, backend }) => {
  const be = backend as Backend;
  const { dy, x } = inputs as Record<'dy' | 'x', TensorInfo>;
  const simd = simdKernels(be);
  if (!simd || x.dtype !== 'float32' || dy.dtype !== 'float32')
    throw new Error(`${RELU_GRAD} needs mtl-bench's SIMD module and float32 data`);
  const dx = allocateFloat32('wasm', be, x.shape);
  const size = x.shape.reduce((a, b) => a * b, 1);
  const args = [dy, x, dx].map((t) => offsetOf(be, t));
  split(simd, 'relu_grad', args, size, MIN_ELEMENTS_PER_PART);
  return dx;
};
