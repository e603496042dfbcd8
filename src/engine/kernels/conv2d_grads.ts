import { backend_util } from '@tensorflow/tfjs';
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { type Backend, callKernel, withScratch } from './backend_calls.js';
import { type CustomBackendName, allocateFloat32, float32View } from './raw_memory.js';
import { runOnHeap } from '../heap_workers.js';
import { simdKernels } from '../simd_kernels.js';
import { transposeFlipped, transposeTensor } from './transpose.js';

/**
 * Both gradients of a 2-D convolution written as forward convolutions, so that they run on the
 * backend's fast Conv2D (XNNPACK on wasm) instead of the generic loops the backends ship:
 *
 * - filter gradient: dW[fh,fw,ci,co] = Σ_{n,oh,ow} x[n, oh·sh+fh−pt, ow·sw+fw−pl, ci] · dy[n,oh,ow,co].
 *   Either read x as a batch of Cin images with N channels ([Cin,H,W,N]) and dy as an OH×OW
 *   filter mapping N to Cout channels ([OH,OW,N,Cout]): a stride-1 convolution whose dilation is
 *   the forward stride, producing [Cin,FH,FW,Cout] ("dy as filter");
 *   or, for stride 1, read dy as Cout images with N channels ([Cout,OH,OW,N]) and x as an H×W
 *   filter from N to Cin channels ([H,W,N,Cin]), padded by FH−1−pt on top: that produces dW
 *   spatially reversed as [Cout,FH,FW,Cin] ("x as filter"). The backend re-lays-out and packs the
 *   filter of every call on one thread, so the smaller of x and dy is the better filter: in the
 *   first layers dy (32 channels) is ten times the size of x (3 channels).
 * - input gradient: dx = dy (zero-stuffed by the stride) convolved with the spatially flipped filter
 *   whose in/out channels are swapped, padded by FH−1−pt on top.
 *
 * Shapes these formulations cannot express (NCHW data, negative padding after the rewrite) go to
 * the fallback kernel the caller provides, so behaviour never depends on the rewrite applying.
 *
 * On wasm, when mtl-bench's SIMD module loads (../simd_kernels.ts), the filter gradient is instead
 * computed directly from x and dy in their own layout by simd/kernels.c, split between the main
 * thread and the helper threads: no transposes and no per-call filter packing.
 */

type Conv2DAttrs = {
  strides: number | [number, number];
  pad: 'same' | 'valid' | number | backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

type Shape4 = [number, number, number, number];

function assertFourD(info: TensorInfo, what: string): Shape4 {
  if (info.shape.length !== 4) throw new Error(`${what} must be rank 4, got shape [${info.shape.join(', ')}]`);
  return info.shape as Shape4;
}

function explicitPadding(top: number, bottom: number, left: number, right: number): backend_util.ExplicitPadding {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

/** `fallback` is the backend's own kernel (undefined where it has none, as wasm for this one). */
export function makeConvFilterGradKernel(backendName: CustomBackendName, fallback: KernelFunc | undefined): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const dy = inputs.dy!;
    const a = attrs as unknown as Conv2DAttrs & { filterShape: Shape4 };
    if ((a.dataFormat ?? 'NHWC') !== 'NHWC' || x.dtype !== 'float32' || dy.dtype !== 'float32') {
      if (fallback) return fallback({ inputs, backend, attrs });
      throw new Error(`Conv2DBackpropFilter on ${backendName} supports only float32 NHWC tensors (got ${a.dataFormat}, ${x.dtype})`);
    }
    if (backendName === 'wasm') {
      const direct = conv2dBackpropFilterSimd(backend as Backend, x, dy, a);
      if (direct) return direct;
    }
    return conv2dBackpropFilterViaConv(backendName, backend as Backend, x, dy, a);
  };
}

let simdFilterGradCalls = 0;

/** How many filter gradients the SIMD module computed (tests check that it is the path taken). */
export function simdFilterGradCallCount(): number {
  return simdFilterGradCalls;
}

/** Floating-point operations worth handing a thread (about 0.1 ms of work). */
const MIN_FLOPS_PER_PART = 1_000_000;

/** The filter gradient by the SIMD module; undefined when it is not loaded or Cout is not a multiple of 4. */
function conv2dBackpropFilterSimd(backend: Backend, x: TensorInfo, dy: TensorInfo, attrs: Conv2DAttrs & { filterShape: Shape4 }) {
  const simd = simdKernels(backend);
  if (!simd || attrs.filterShape[3] % 4 !== 0) return undefined;
  const info = filterGradInfo(x, dy, attrs);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  const dw = allocateFloat32('wasm', backend, [filterHeight, filterWidth, inChannels, outChannels]);
  // Views only after the allocation: it may grow the heap.
  const offsets = [x, dy, dw].map((t) => float32View('wasm', backend, t).byteOffset);
  const args = [
    ...offsets,
    batchSize,
    inHeight,
    inWidth,
    inChannels,
    outHeight,
    outWidth,
    outChannels,
    filterHeight,
    filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
  ];
  const tiles = simd.call('filter_grad_tiles', inChannels, outChannels, filterHeight, filterWidth);
  const flopsPerTile = batchSize * outHeight * outWidth * 64;
  runOnHeap(
    simd.memory.buffer,
    { kind: 'simd', fn: 'filter_grad', args },
    tiles,
    Math.ceil(MIN_FLOPS_PER_PART / flopsPerTile),
    (begin, end) => simd.call('filter_grad', ...args, begin, end),
    { module: simd.module, memory: simd.memory },
  );
  simdFilterGradCalls++;
  return dw;
}

export function makeConvInputGradKernel(backendName: CustomBackendName, fallback: KernelFunc | undefined): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const dy = inputs.dy!;
    const weights = inputs.filter!;
    const a = attrs as unknown as Conv2DAttrs & { inputShape: Shape4 };
    const supported = (a.dataFormat ?? 'NHWC') === 'NHWC' && dy.dtype === 'float32' && weights.dtype === 'float32';
    const result = supported ? conv2dBackpropInputViaConv(backendName, backend as Backend, dy, weights, a) : undefined;
    if (result) return result;
    if (fallback) return fallback({ inputs, backend, attrs });
    throw new Error(`Conv2DBackpropInput on ${backendName}: unsupported configuration and no fallback kernel`);
  };
}

/** The forward convolution's geometry, after checking that x and dy are 4-D and dy has its output shape. */
function filterGradInfo(x: TensorInfo, dy: TensorInfo, attrs: Conv2DAttrs & { filterShape: Shape4 }): backend_util.Conv2DInfo {
  const xShape = assertFourD(x, 'Conv2DBackpropFilter x');
  assertFourD(dy, 'Conv2DBackpropFilter dy');
  const info = backend_util.computeConv2DInfo(
    xShape,
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  if (dy.shape.some((d, i) => d !== info.outShape[i])) {
    throw new Error(
      `Conv2DBackpropFilter: dy shape [${dy.shape.join(', ')}] does not match the forward output [${info.outShape.join(', ')}]`,
    );
  }
  return info;
}

function conv2dBackpropFilterViaConv(
  backendName: CustomBackendName,
  backend: Backend,
  x: TensorInfo,
  dy: TensorInfo,
  attrs: Conv2DAttrs & { filterShape: Shape4 },
): TensorInfo {
  const info = filterGradInfo(x, dy, attrs);
  const {
    batchSize,
    inHeight,
    inWidth,
    inChannels,
    outHeight,
    outWidth,
    outChannels,
    filterHeight,
    filterWidth,
    strideHeight,
    strideWidth,
  } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Rows/columns the forward pass never reached (e.g. 'valid' with a stride that does not divide
  // the input) would make the rewritten bottom/right padding negative: drop them from x instead.
  const bottom = filterHeight + (outHeight - 1) * strideHeight - inHeight - top;
  const right = filterWidth + (outWidth - 1) * strideWidth - inWidth - left;
  const rowsUsed = inHeight + Math.min(0, bottom);
  const colsUsed = inWidth + Math.min(0, right);
  // Padding of the x-as-filter convolution; it only exists where all four are ≥ 0.
  const flipped = {
    top: filterHeight - 1 - top,
    bottom: rowsUsed - outHeight + top,
    left: filterWidth - 1 - left,
    right: colsUsed - outWidth + left,
  };
  const xAsFilterFits = strideHeight === 1 && strideWidth === 1 && Object.values(flipped).every((p) => p >= 0);
  const requested = chooseFilterGradFormulation(
    batchSize * rowsUsed * colsUsed * inChannels,
    dy.shape.reduce((a, b) => a * b, 1),
  );
  const formulation = xAsFilterFits ? requested : 'dy-as-filter';
  return withScratch(backend, (scratch) => {
    let usedX = x;
    if (bottom < 0 || right < 0) {
      usedX = scratch(
        callKernel(
          'Slice',
          backendName,
          backend,
          { x },
          {
            begin: [0, 0, 0, 0],
            size: [batchSize, rowsUsed, colsUsed, inChannels],
          },
        ),
      );
    }
    const expected =
      formulation === 'dy-as-filter'
        ? [inChannels, filterHeight, filterWidth, outChannels]
        : [outChannels, filterHeight, filterWidth, inChannels];
    let gradT: TensorInfo;
    if (formulation === 'dy-as-filter') {
      const xT = scratch(callKernel('Transpose', backendName, backend, { x: usedX }, { perm: [3, 1, 2, 0] }));
      const dyT = scratch(callKernel('Transpose', backendName, backend, { x: dy }, { perm: [1, 2, 0, 3] }));
      gradT = scratch(
        callKernel(
          'Conv2D',
          backendName,
          backend,
          { x: xT, filter: dyT },
          {
            strides: [1, 1],
            pad: explicitPadding(top, Math.max(0, bottom), left, Math.max(0, right)),
            dataFormat: 'NHWC',
            dilations: [strideHeight, strideWidth],
          },
        ),
      );
    } else {
      const dyT = scratch(transposeTensor(backendName, backend, dy, [3, 1, 2, 0]));
      const xT = scratch(callKernel('Transpose', backendName, backend, { x: usedX }, { perm: [1, 2, 0, 3] }));
      gradT = scratch(
        callKernel(
          'Conv2D',
          backendName,
          backend,
          { x: dyT, filter: xT },
          {
            strides: [1, 1],
            pad: explicitPadding(flipped.top, flipped.bottom, flipped.left, flipped.right),
            dataFormat: 'NHWC',
            dilations: [1, 1],
          },
        ),
      );
    }
    if (gradT.shape.some((d, i) => d !== expected[i])) {
      throw new Error(`Conv2DBackpropFilter rewrite produced [${gradT.shape.join(', ')}], expected [${expected.join(', ')}]`);
    }
    return formulation === 'dy-as-filter'
      ? transposeFlipped(backendName, backend, gradT, [1, 2, 0, 3], [])
      : transposeFlipped(backendName, backend, gradT, [1, 2, 3, 0], [1, 2]);
  });
}

/**
 * Which tensor becomes the filter of the rewritten convolution. The backend re-lays-out and packs
 * a filter on every call (single-threaded on wasm), so the smaller of x and dy should be it. x as
 * the filter needs stride 1 (otherwise dy would have to be zero-stuffed first); the caller falls
 * back to dy as the filter where it does not fit.
 */
export type FilterGradFormulation = 'dy-as-filter' | 'x-as-filter';
export const FILTER_GRAD_FORMULATIONS = ['auto', 'dy-as-filter', 'x-as-filter'] as const;

let forcedFormulation: FilterGradFormulation | undefined;

/** Pins one formulation wherever it applies ('auto': the smaller filter); for tests and benchmarks. */
export function setFilterGradFormulation(choice: (typeof FILTER_GRAD_FORMULATIONS)[number]): void {
  forcedFormulation = choice === 'auto' ? undefined : choice;
}

function chooseFilterGradFormulation(xSize: number, dySize: number): FilterGradFormulation {
  return forcedFormulation ?? (xSize < dySize ? 'x-as-filter' : 'dy-as-filter');
}

/** Returns undefined when the rewrite would need negative padding; the caller then falls back. */
function conv2dBackpropInputViaConv(
  backendName: CustomBackendName,
  backend: Backend,
  dy: TensorInfo,
  weights: TensorInfo,
  attrs: Conv2DAttrs & { inputShape: Shape4 },
): TensorInfo | undefined {
  const filterShape = assertFourD(weights, 'Conv2DBackpropInput filter');
  assertFourD(dy, 'Conv2DBackpropInput dy');
  const info = backend_util.computeConv2DInfo(
    attrs.inputShape,
    filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { batchSize, inHeight, inWidth, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  if (dy.shape[0] !== batchSize || dy.shape[1] !== outHeight || dy.shape[2] !== outWidth || dy.shape[3] !== outChannels) {
    throw new Error(
      `Conv2DBackpropInput: dy shape [${dy.shape.join(', ')}] does not match the forward output [${info.outShape.join(', ')}]`,
    );
  }
  const stuffedHeight = (outHeight - 1) * strideHeight + 1;
  const stuffedWidth = (outWidth - 1) * strideWidth + 1;
  const top = filterHeight - 1 - info.padInfo.top;
  const left = filterWidth - 1 - info.padInfo.left;
  const bottom = inHeight + filterHeight - 1 - stuffedHeight - top;
  const right = inWidth + filterWidth - 1 - stuffedWidth - left;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) return undefined;
  return withScratch(backend, (scratch) => {
    const swapped = scratch(transposeFlipped(backendName, backend, weights, [0, 1, 3, 2], [0, 1]));
    const spread = strideHeight === 1 && strideWidth === 1 ? dy : scratch(zeroStuff(backendName, backend, dy, strideHeight, strideWidth));
    const convAttrs: NamedAttrMap = {
      strides: [1, 1],
      pad: explicitPadding(top, bottom, left, right),
      dataFormat: 'NHWC',
      dilations: [1, 1],
    };
    return callKernel('Conv2D', backendName, backend, { x: spread, filter: swapped }, convAttrs);
  });
}

/** Spreads dy so that consecutive output positions sit `stride` apart with zeros between them. */
function zeroStuff(
  backendName: CustomBackendName,
  backend: Backend,
  dy: TensorInfo,
  strideHeight: number,
  strideWidth: number,
): TensorInfo {
  const [n, rows, cols, channels] = dy.shape as Shape4;
  const outRows = (rows - 1) * strideHeight + 1;
  const outCols = (cols - 1) * strideWidth + 1;
  const out = allocateFloat32(backendName, backend, [n, outRows, outCols, channels]);
  // Views only after the allocation: on wasm an allocation may grow (and detach) the heap.
  const source = float32View(backendName, backend, dy);
  const target = float32View(backendName, backend, out);
  target.fill(0);
  const rowStride = outCols * channels;
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < rows; r++) {
      const targetRow = (b * outRows + r * strideHeight) * rowStride;
      const sourceRow = (b * rows + r) * cols * channels;
      for (let c = 0; c < cols; c++) {
        const from = sourceRow + c * channels;
        target.set(source.subarray(from, from + channels), targetRow + c * strideWidth * channels);
      }
    }
  }
  return out;
}
