import { backend_util } from '@tensorflow/tfjs';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { Backend } from './backend_calls.js';
import { type CustomBackendName, allocateFloat32, float32View } from './raw_memory.js';

/**
 * Gradients of the depthwise convolution, which the wasm backend does not ship (so MobileNetV2
 * could not train on it). Each is one pass over dy in plain loops: the filter gradient accumulates
 * x·dy per (tap, channel, multiplier) in float64, the input gradient scatters filter·dy into dx.
 * Both follow tfjs's conventions: filter [FH, FW, C, M], dy channel c·M + m, NHWC tensors.
 */

type DepthwiseAttrs = {
  strides: number | [number, number];
  dilations?: number | [number, number];
  pad: 'same' | 'valid' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

type Shape4 = [number, number, number, number];

interface Geometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  channels: number;
  multiplier: number;
  outHeight: number;
  outWidth: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  top: number;
  left: number;
}

function geometry(inputShape: Shape4, filterShape: Shape4, attrs: DepthwiseAttrs): Geometry {
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
  // tfjs's gradient of a depthwise convolution rejects dilations too; nothing asks for them.
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    throw new Error(`depthwise convolution gradients support dilation 1 only, got [${info.dilationHeight}, ${info.dilationWidth}]`);
  }
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    channels: info.inChannels,
    multiplier: info.outChannels / info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

function supported(infos: TensorInfo[]): boolean {
  return infos.every((t) => t.dtype === 'float32' && t.shape.length === 4);
}

/** Runs `body` on float32 rank-4 inputs; anything else goes to the backend's kernel, or fails clearly. */
function forFloat32Nhwc(
  kernelName: string,
  backendName: CustomBackendName,
  fallback: KernelFunc | undefined,
  body: KernelFunc,
): KernelFunc {
  return (args) => {
    if (supported(Object.values(args.inputs) as TensorInfo[])) return body(args);
    if (fallback) return fallback(args);
    throw new Error(`${kernelName} on ${backendName} supports only float32 NHWC tensors`);
  };
}

/**
 * Visits every (output position, filter tap) pair whose input position lies inside the image,
 * with the flat offsets of the input pixel, the dy pixel and the tap.
 */
function forEachTap(g: Geometry, visit: (xPixel: number, dyPixel: number, tap: number) => void): void {
  for (let n = 0; n < g.batch; n++) {
    for (let oh = 0; oh < g.outHeight; oh++) {
      for (let ow = 0; ow < g.outWidth; ow++) {
        const dyPixel = (n * g.outHeight + oh) * g.outWidth + ow;
        for (let fh = 0; fh < g.filterHeight; fh++) {
          const ih = oh * g.strideHeight + fh - g.top;
          if (ih < 0 || ih >= g.inHeight) continue;
          for (let fw = 0; fw < g.filterWidth; fw++) {
            const iw = ow * g.strideWidth + fw - g.left;
            if (iw < 0 || iw >= g.inWidth) continue;
            visit((n * g.inHeight + ih) * g.inWidth + iw, dyPixel, fh * g.filterWidth + fw);
          }
        }
      }
    }
  }
}

export function makeDepthwiseFilterGradKernel(backendName: CustomBackendName, fallback: KernelFunc | undefined): KernelFunc {
  return forFloat32Nhwc('DepthwiseConv2dNativeBackpropFilter', backendName, fallback, (args) => {
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const attrs = args.attrs as unknown as DepthwiseAttrs & { filterShape: Shape4 };
    const backend = args.backend as Backend;
    const g = geometry(x.shape as Shape4, attrs.filterShape, attrs);
    const { channels: c, multiplier: m } = g;
    const out = allocateFloat32(backendName, backend, attrs.filterShape);
    const xs = float32View(backendName, backend, x);
    const dys = float32View(backendName, backend, dy);
    const dw = float32View(backendName, backend, out);
    const acc = new Float64Array(dw.length);
    const outChannels = c * m;
    forEachTap(g, (xPixel, dyPixel, tap) => {
      const xBase = xPixel * c;
      const dyBase = dyPixel * outChannels;
      const wBase = tap * outChannels;
      for (let ch = 0; ch < c; ch++) {
        const xv = xs[xBase + ch]!;
        for (let k = 0; k < m; k++) acc[wBase + ch * m + k]! += xv * dys[dyBase + ch * m + k]!;
      }
    });
    dw.set(acc);
    return out;
  });
}

export function makeDepthwiseInputGradKernel(backendName: CustomBackendName, fallback: KernelFunc | undefined): KernelFunc {
  return forFloat32Nhwc('DepthwiseConv2dNativeBackpropInput', backendName, fallback, (args) => {
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as unknown as DepthwiseAttrs & { inputShape: Shape4 };
    const backend = args.backend as Backend;
    const g = geometry(attrs.inputShape, filter.shape as Shape4, attrs);
    const { channels: c, multiplier: m } = g;
    const out = allocateFloat32(backendName, backend, attrs.inputShape);
    const dys = float32View(backendName, backend, dy);
    const ws = float32View(backendName, backend, filter);
    const dx = float32View(backendName, backend, out);
    dx.fill(0);
    const outChannels = c * m;
    forEachTap(g, (xPixel, dyPixel, tap) => {
      const xBase = xPixel * c;
      const dyBase = dyPixel * outChannels;
      const wBase = tap * outChannels;
      for (let ch = 0; ch < c; ch++) {
        let sum = 0;
        for (let k = 0; k < m; k++) sum += ws[wBase + ch * m + k]! * dys[dyBase + ch * m + k]!;
        dx[xBase + ch]! += sum;
      }
    });
    return out;
  });
}
