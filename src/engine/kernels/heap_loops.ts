/**
 * The plain loops behind our memory-bound kernels, written over index ranges so that the main
 * thread and helper threads (heap_workers.ts) can each take a part of one call. This module
 * imports nothing, so a helper thread loads it in milliseconds.
 *
 * Arrays are the same bytes seen as Int32Array where only copying happens (bit patterns, NaN
 * payloads included, move unchanged, and V8 compiles one element kind) and Float32Array where
 * values are compared.
 */

export type CopyArray = Int32Array | Uint8Array;

/** Row-major strides of `shape` (the last is 1). */
function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) strides[i] = strides[i + 1]! * shape[i + 1]!;
  return strides;
}

/**
 * A transpose reduced to its essentials: output axes that are also neighbours in the input are
 * merged and size-1 axes dropped. Then either the input's innermost axis stays innermost (copy
 * contiguous runs) or the copy walks tiles spanning the input's innermost axis and the output's,
 * so that reads and writes stay within a few dozen cache lines at a time.
 */
export interface TransposePlan {
  /** Output shape after merging. */
  shape: number[];
  /** For each output axis, its stride in the input. */
  inputStrides: number[];
  outputStrides: number[];
  /** The output axis whose input stride is 1. */
  unitAxis: number;
  /** The other output axes (not unitAxis, not the innermost), walked as an odometer. */
  outer: number[];
  /** Number of odometer positions: the unit of work that calls split into ranges. */
  outerCount: number;
}

export function planTranspose(inputShape: readonly number[], perm: readonly number[]): TransposePlan {
  if (perm.length !== inputShape.length || [...perm].sort((a, b) => a - b).some((axis, i) => axis !== i)) {
    throw new Error(`transpose: perm [${perm.join(', ')}] does not fit shape [${inputShape.join(', ')}]`);
  }
  const strides = stridesOf(inputShape);
  const shape: number[] = [];
  const inputStrides: number[] = [];
  for (const axis of perm) {
    const extent = inputShape[axis]!;
    if (extent === 1) continue;
    const stride = strides[axis]!;
    const last = shape.length - 1;
    // The previous output axis runs over whole blocks of this one: one axis of the product's size.
    if (last >= 0 && inputStrides[last] === stride * extent) {
      shape[last] = shape[last]! * extent;
      inputStrides[last] = stride;
    } else {
      shape.push(extent);
      inputStrides.push(stride);
    }
  }
  const rank = shape.length;
  const innermost = rank - 1;
  const unitAxis = rank === 0 ? -1 : inputStrides.indexOf(1);
  const outer = [...Array(rank).keys()].filter((a) => a !== innermost && a !== unitAxis);
  return {
    shape,
    inputStrides,
    outputStrides: stridesOf(shape),
    unitAxis,
    outer,
    outerCount: rank <= 1 ? 1 : outer.reduce((n, a) => n * shape[a]!, 1),
  };
}

/** Output elements along the output's innermost axis handled per tile. */
const TILE = 32;

/** Copies the part of a transpose made of odometer positions [begin, end) of `plan`. */
export function transposeRange(source: CopyArray, target: CopyArray, plan: TransposePlan, begin: number, end: number): void {
  const { shape, inputStrides, outputStrides, unitAxis, outer } = plan;
  const rank = shape.length;
  if (rank <= 1) {
    if (begin === 0 && end > 0) {
      const size = rank === 0 ? 1 : shape[0]!;
      target.set(source.subarray(0, size));
    }
    return;
  }
  const innermost = rank - 1;
  // Start the odometer at `begin`: the last outer axis turns fastest.
  const counter = new Array<number>(outer.length).fill(0);
  let inputBase = 0;
  let outputBase = 0;
  for (let k = outer.length - 1, rest = begin; k >= 0; k--) {
    const axis = outer[k]!;
    counter[k] = rest % shape[axis]!;
    rest = Math.floor(rest / shape[axis]!);
    inputBase += counter[k]! * inputStrides[axis]!;
    outputBase += counter[k]! * outputStrides[axis]!;
  }
  const run = shape[innermost]!;
  for (let visited = begin; visited < end; visited++) {
    if (unitAxis === innermost) {
      if (run >= 16) target.set(source.subarray(inputBase, inputBase + run), outputBase);
      else for (let j = 0; j < run; j++) target[outputBase + j] = source[inputBase + j]!;
    } else {
      copyTile(source, target, inputBase, outputBase, shape[unitAxis]!, outputStrides[unitAxis]!, run, inputStrides[innermost]!);
    }
    for (let k = outer.length - 1; k >= 0; k--) {
      const axis = outer[k]!;
      inputBase += inputStrides[axis]!;
      outputBase += outputStrides[axis]!;
      if (++counter[k]! < shape[axis]!) break;
      counter[k] = 0;
      inputBase -= inputStrides[axis]! * shape[axis]!;
      outputBase -= outputStrides[axis]! * shape[axis]!;
    }
  }
}

/**
 * out[o + i·outStride + j] = in[s + i + j·inStride] for i < rows, j < cols, in column blocks of TILE
 * so that the TILE input lines being read stay cached while `i` walks along them.
 */
function copyTile(
  source: CopyArray,
  target: CopyArray,
  inputBase: number,
  outputBase: number,
  rows: number,
  outStride: number,
  cols: number,
  inStride: number,
): void {
  for (let j0 = 0; j0 < cols; j0 += TILE) {
    const j1 = Math.min(cols, j0 + TILE);
    for (let i = 0; i < rows; i++) {
      let from = inputBase + i + j0 * inStride;
      const rowStart = outputBase + i * outStride;
      for (let j = j0; j < j1; j++, from += inStride) target[rowStart + j] = source[from]!;
    }
  }
}

/** Shape of a 2×2, stride-2, unpadded max pooling over NHWC data. */
export interface PoolDims {
  inHeight: number;
  inWidth: number;
  channels: number;
  outHeight: number;
  outWidth: number;
}

/**
 * MaxPoolGrad for 2×2 windows with stride 2 and no padding, for images [begin, end) of the batch:
 * every input position gets the dy of its window if it holds the window's first maximum in scan
 * order (strictly greater wins, as in tfjs's cpu backend; NaN never wins), else 0.
 */
export function maxPoolGradTwoByTwoRange(
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  dims: PoolDims,
  begin: number,
  end: number,
): void {
  const { inHeight, inWidth, channels, outHeight, outWidth } = dims;
  const rowStride = inWidth * channels;
  const imageSize = inHeight * rowStride;
  dx.fill(0, begin * imageSize, end * imageSize);
  let dyIndex = begin * outHeight * outWidth * channels;
  for (let b = begin; b < end; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      let p00 = (b * inHeight + 2 * oh) * rowStride;
      for (let ow = 0; ow < outWidth; ow++, p00 += 2 * channels) {
        const p01 = p00 + channels;
        const p10 = p00 + rowStride;
        const p11 = p10 + channels;
        for (let ch = 0; ch < channels; ch++, dyIndex++) {
          // Scan order (0,0), (0,1), (1,0), (1,1); starting below every number gives NaN windows
          // the cpu backend's answer too.
          let at = -1;
          let best = -Infinity;
          let v = x[p00 + ch]!;
          if (v > best) {
            best = v;
            at = p00 + ch;
          }
          v = x[p01 + ch]!;
          if (v > best) {
            best = v;
            at = p01 + ch;
          }
          v = x[p10 + ch]!;
          if (v > best) {
            best = v;
            at = p10 + ch;
          }
          v = x[p11 + ch]!;
          if (v > best) at = p11 + ch;
          if (at >= 0) dx[at] = dy[dyIndex]!;
        }
      }
    }
  }
}
