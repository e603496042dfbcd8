import { backend_util, util } from '@tensorflow/tfjs';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { type Backend, callKernel, withScratch } from './backend_calls.js';
import { runOnHeap } from '../heap_workers.js';
import { maxPoolGradTwoByTwoRange } from './heap_loops.js';
import { simdKernels } from '../simd_kernels.js';
import { type CustomBackendName, allocate, allocateFloat32, float32View, heapSpan, isNumericDType, typedView } from './raw_memory.js';

/** Below this many input elements per part, waking a helper thread costs more than it saves. */
const MIN_ELEMENTS_PER_PART = 1 << 16;

/**
 * Memory-bound kernels that the stock wasm backend runs slowly in a training step:
 *
 * - Tile: batch-norm's input gradient tiles a [1,1,1,C] vector to the full activation shape; the
 *   stock kernel computes a multi-index per element. Here every output element is written once by
 *   block copies (copyWithin doubling).
 * - Sum / Mean over the leading axes (batch-norm statistics and gradients reduce [N,H,W] of NHWC):
 *   the stock kernel first transposes the whole tensor so the reduced axes come last. Here one pass
 *   accumulates rows into a per-channel float64 accumulator.
 * - MaxPoolGrad: one pass over the input finds each window's first maximum (the cpu backend's tie
 *   rule, so both agree exactly) and adds dy there.
 * - Identity / Cast to the same dtype: share memory instead of copying (see makeSharingKernel).
 *
 * Each falls back to the backend's own kernel for inputs outside its fast path.
 */

export function makeTileKernel(backendName: CustomBackendName, original: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x!;
    const reps = args.attrs!.reps as number[];
    if (!isNumericDType(x.dtype) || reps.length !== x.shape.length || x.shape.length === 0) return original(args);
    return tile(backendName, args.backend as Backend, x, reps);
  };
}

function tile(backendName: CustomBackendName, backend: Backend, x: TensorInfo, reps: number[]): TensorInfo {
  const rank = x.shape.length;
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  const out = allocate(backendName, backend, outShape, x.dtype as 'float32');
  if (util.sizeFromShape(outShape) === 0) return out;
  const src = typedView(backendName, backend, x);
  const dst = typedView(backendName, backend, out);
  const xStrides = [...util.computeStrides(x.shape), 1];
  const outStrides = [...util.computeStrides(outShape), 1];
  // Repeats the block [start, start + length) `times` times in place, doubling the copied span.
  const replicate = (start: number, length: number, times: number) => {
    const total = length * times;
    for (let filled = length; filled < total; filled += Math.min(filled, total - filled)) {
      dst.copyWithin(start + filled, start, start + Math.min(filled, total - filled));
    }
  };
  const fill = (dim: number, xOffset: number, outOffset: number): void => {
    const extent = x.shape[dim]!;
    if (dim === rank - 1) {
      if (extent === 1) {
        dst.fill(src[xOffset]!, outOffset, outOffset + reps[dim]!);
        return;
      }
      dst.set(src.subarray(xOffset, xOffset + extent), outOffset);
    } else {
      for (let i = 0; i < extent; i++) fill(dim + 1, xOffset + i * xStrides[dim]!, outOffset + i * outStrides[dim]!);
    }
    replicate(outOffset, extent * outStrides[dim]!, reps[dim]!);
  };
  fill(0, 0, 0);
  return out;
}

/** How many leading axes `axis` names, if it names exactly the first k (0 < k < rank) axes. */
function leadingAxesCount(axis: number | number[], shape: number[]): number | undefined {
  const axes = [...util.parseAxisParam(axis, shape)].sort((a, b) => a - b);
  if (axes.length === 0 || axes.length >= shape.length) return undefined;
  return axes.every((a, i) => a === i) ? axes.length : undefined;
}

/** Below this many elements a plain loop beats setting up a pooling operator. */
const POOLED_REDUCTION_MIN_SIZE = 1 << 16;

export function makeLeadingReductionKernel(kind: 'sum' | 'mean', backendName: CustomBackendName, original: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x!;
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    const leading = x.dtype === 'float32' ? leadingAxesCount(axis, x.shape) : undefined;
    if (leading === undefined) return original(args);
    const backend = args.backend as Backend;
    const rows = util.sizeFromShape(x.shape.slice(0, leading));
    const inner = util.sizeFromShape(x.shape.slice(leading));
    const outShape = keepDims ? [...x.shape.map((d, i) => (i < leading ? 1 : d))] : x.shape.slice(leading);
    const batch = x.shape[0]!;
    const perBatch = rows / batch;
    if (backendName === 'wasm' && perBatch >= 2 && rows * inner >= POOLED_REDUCTION_MIN_SIZE) {
      return reduceByAveragePooling(kind, backend, x, batch, perBatch, inner, outShape);
    }
    const out = allocateFloat32(backendName, backend, outShape);
    const src = float32View(backendName, backend, x);
    const dst = float32View(backendName, backend, out);
    const acc = new Float64Array(inner);
    for (let r = 0, base = 0; r < rows; r++, base += inner) {
      for (let j = 0; j < inner; j++) acc[j]! += src[base + j]!;
    }
    const scale = kind === 'mean' ? 1 / rows : 1;
    for (let j = 0; j < inner; j++) dst[j] = acc[j]! * scale;
    return out;
  };
}

/**
 * On wasm, XNNPACK's SIMD average pooling does the heavy part: viewing x as `batch` images of
 * perBatch×1 pixels with `inner` channels, one window per image averages its rows; the few
 * per-image averages are then combined here.
 */
function reduceByAveragePooling(
  kind: 'sum' | 'mean',
  backend: Backend,
  x: TensorInfo,
  batch: number,
  perBatch: number,
  inner: number,
  outShape: number[],
): TensorInfo {
  return withScratch(backend, (scratch) => {
    const images = scratch(callKernel('Reshape', 'wasm', backend, { x }, { shape: [batch, perBatch, 1, inner] }));
    const averages = scratch(
      callKernel('AvgPool', 'wasm', backend, { x: images }, { filterSize: [perBatch, 1], strides: [perBatch, 1], pad: 'valid' }),
    );
    const out = allocateFloat32('wasm', backend, outShape);
    const perImage = float32View('wasm', backend, averages);
    const dst = float32View('wasm', backend, out);
    const scale = kind === 'mean' ? 1 / batch : perBatch;
    for (let j = 0; j < inner; j++) {
      let total = 0;
      for (let b = 0; b < batch; b++) total += perImage[b * inner + j]!;
      dst[j] = total * scale;
    }
    return out;
  });
}

let simdMaxPoolGradCalls = 0;

/** How many max-pool gradients the SIMD module computed (tests check that it is the path taken). */
export function simdMaxPoolGradCallCount(): number {
  return simdMaxPoolGradCalls;
}

export function makeMaxPoolGradKernel(backendName: CustomBackendName, original: KernelFunc): KernelFunc {
  return (args) => {
    const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
    const attrs = args.attrs as {
      filterSize: number | [number, number];
      strides: number | [number, number];
      pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
    };
    if (dy.dtype !== 'float32' || input.dtype !== 'float32' || input.shape.length !== 4) return original(args);
    const info = backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    if (info.dataFormat !== 'channelsLast') return original(args);
    const backend = args.backend as Backend;
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const out = allocateFloat32(backendName, backend, input.shape);
    const x = float32View(backendName, backend, input);
    const dyValues = float32View(backendName, backend, dy);
    const dx = float32View(backendName, backend, out);
    const twoByTwoInside =
      filterHeight === 2 &&
      filterWidth === 2 &&
      strideHeight === 2 &&
      strideWidth === 2 &&
      top === 0 &&
      left === 0 &&
      2 * outHeight <= inHeight &&
      2 * outWidth <= inWidth;
    if (twoByTwoInside) {
      // The backbones' pooling (every window inside the input): split over the batch between the
      // main and helper threads.
      const dims = { inHeight, inWidth, channels: inChannels, outHeight, outWidth };
      const job = { kind: 'maxPoolGrad2x2' as const, x: heapSpan(x), dy: heapSpan(dyValues), dx: heapSpan(dx), dims };
      const imagesPerPart = Math.ceil(MIN_ELEMENTS_PER_PART / (inHeight * inWidth * inChannels));
      const simd = backendName === 'wasm' && inChannels % 4 === 0 ? simdKernels(backend) : undefined;
      if (simd) {
        // The same rule in SIMD (simd/kernels.c), four channels at a time.
        const simdArgs = [x.byteOffset, dyValues.byteOffset, dx.byteOffset, inHeight, inWidth, inChannels, outHeight, outWidth];
        const simdJob = { kind: 'simd' as const, fn: 'max_pool_grad_2x2' as const, args: simdArgs };
        const attachment = { module: simd.module, memory: simd.memory };
        const runPart = (begin: number, end: number) => simd.call('max_pool_grad_2x2', ...simdArgs, begin, end);
        runOnHeap(dx.buffer, simdJob, batchSize, imagesPerPart, runPart, attachment);
        simdMaxPoolGradCalls++;
        return out;
      }
      runOnHeap(dx.buffer, job, batchSize, imagesPerPart, (begin, end) => maxPoolGradTwoByTwoRange(x, dyValues, dx, dims, begin, end));
      return out;
    }
    dx.fill(0);
    if (strideHeight === filterHeight && strideWidth === filterWidth && top === 0 && left === 0) {
      maxPoolGradDisjoint(x, dyValues, dx, batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth);
      return out;
    }
    const best = new Float32Array(inChannels);
    const bestAt = new Int32Array(inChannels);
    for (let b = 0; b < batchSize; b++) {
      for (let oh = 0; oh < outHeight; oh++) {
        const r0 = oh * strideHeight - top;
        const rStart = Math.max(0, r0);
        const rEnd = Math.min(inHeight, r0 + filterHeight);
        for (let ow = 0; ow < outWidth; ow++) {
          const c0 = ow * strideWidth - left;
          const cStart = Math.max(0, c0);
          const cEnd = Math.min(inWidth, c0 + filterWidth);
          best.fill(-Infinity);
          bestAt.fill(-1);
          for (let r = rStart; r < rEnd; r++) {
            for (let c = cStart; c < cEnd; c++) {
              const base = ((b * inHeight + r) * inWidth + c) * inChannels;
              for (let ch = 0; ch < inChannels; ch++) {
                const v = x[base + ch]!;
                // Strictly greater: the first maximum in scan order wins, as in the cpu backend.
                if (v > best[ch]!) {
                  best[ch] = v;
                  bestAt[ch] = base + ch;
                }
              }
            }
          }
          const dyBase = ((b * outHeight + oh) * outWidth + ow) * inChannels;
          for (let ch = 0; ch < inChannels; ch++) {
            const at = bestAt[ch]!;
            if (at >= 0) dx[at]! += dyValues[dyBase + ch]!;
          }
        }
      }
    }
    return out;
  };
}

/**
 * Windows that tile the input without overlap (the backbone's 2×2 stride-2 pooling): each input
 * position gets at most one dy, so dx is written, not accumulated, and no per-window state is kept.
 */
function maxPoolGradDisjoint(
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  batchSize: number,
  inHeight: number,
  inWidth: number,
  channels: number,
  outHeight: number,
  outWidth: number,
  filterHeight: number,
  filterWidth: number,
): void {
  const rowStride = inWidth * channels;
  let dyIndex = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const rowEnd = Math.min(inHeight, (oh + 1) * filterHeight);
      for (let ow = 0; ow < outWidth; ow++) {
        const colEnd = Math.min(inWidth, (ow + 1) * filterWidth);
        const corner = ((b * inHeight + oh * filterHeight) * inWidth + ow * filterWidth) * channels;
        const rows = rowEnd - oh * filterHeight;
        const cols = colEnd - ow * filterWidth;
        for (let ch = 0; ch < channels; ch++, dyIndex++) {
          let best = -Infinity;
          let at = -1;
          for (let r = 0; r < rows; r++) {
            for (let c = 0, i = corner + r * rowStride + ch; c < cols; c++, i += channels) {
              const v = x[i]!;
              if (v > best) {
                best = v;
                at = i;
              }
            }
          }
          if (at >= 0) dx[at] = dy[dyIndex]!;
        }
      }
    }
  }
}

/**
 * Identity and same-dtype Cast on wasm: share the input's memory (reference-counted, as Reshape
 * already does) instead of copying it. The engine clones every tensor a gradient saves through
 * Identity, so on wasm each saved activation was a full copy per step.
 */
export function makeSharingKernel(kind: 'identity' | 'cast', original: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x!;
    const sameType = kind === 'identity' || (args.attrs as { dtype: string }).dtype === x.dtype;
    if (x.dtype === 'string' || !sameType) return original(args);
    (args.backend as Backend).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}
