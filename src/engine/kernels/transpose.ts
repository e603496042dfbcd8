import { util } from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';
import type { Backend } from './backend_calls.js';
import { type CustomBackendName, type NumericArray, allocate, isNumericDType, typedView } from './raw_memory.js';

/**
 * A cache-friendly transpose for the layout changes the convolution gradients make (e.g. moving
 * the batch axis of a [32, 64, 64, 32] gradient last). The wasm backend's own Transpose visits the
 * output in order and gathers each element from wherever it lies, so when the output's innermost
 * axis has a large input stride every read touches a new cache line (≈95 ms for that tensor on
 * one core, against ≈5 ms here).
 *
 * After merging axes that stay neighbours, two cases remain:
 * - the input's innermost axis stays innermost: copy contiguous runs;
 * - otherwise: walk tiles spanning the input's innermost axis and the output's innermost axis,
 *   so both reads and writes stay within a few dozen cache lines at a time.
 */

/** Output elements along the output's innermost axis handled per tile. */
const TILE = 32;

interface Collapsed {
  /** Output shape after merging and dropping size-1 axes. */
  shape: number[];
  /** For each output axis, the stride of the same axis in the input. */
  inputStrides: number[];
}

/** Merges output axes that are also adjacent (and in the same order) in the input. */
export function collapseTranspose(inputShape: readonly number[], perm: readonly number[]): Collapsed {
  const inputStrides = util.computeStrides([...inputShape]);
  const strideOf = (axis: number) => (axis === inputShape.length - 1 ? 1 : inputStrides[axis]!);
  const shape: number[] = [];
  const strides: number[] = [];
  for (const axis of perm) {
    const extent = inputShape[axis]!;
    if (extent === 1) continue;
    const stride = strideOf(axis);
    const last = shape.length - 1;
    // The previous output axis runs over whole blocks of this one: one axis of the product's size.
    if (last >= 0 && strides[last] === stride * extent) {
      shape[last] = shape[last]! * extent;
      strides[last] = stride;
    } else {
      shape.push(extent);
      strides.push(stride);
    }
  }
  return { shape, inputStrides: strides };
}

/** Writes `source` (of shape `inputShape`) transposed by `perm` into `target`. */
export function transposeValues(source: NumericArray, target: NumericArray, inputShape: readonly number[], perm: readonly number[]): void {
  if (perm.length !== inputShape.length) throw new Error(`transpose: perm [${perm.join(', ')}] does not fit shape [${inputShape.join(', ')}]`);
  const { shape, inputStrides } = collapseTranspose(inputShape, perm);
  const size = shape.reduce((a, b) => a * b, 1);
  const rank = shape.length;
  if (rank <= 1) {
    target.set(source.subarray(0, size));
    return;
  }
  const outputStrides = util.computeStrides(shape);
  outputStrides.push(1);
  const innermost = rank - 1;
  // The output axis whose input stride is 1 (every axis of the input is somewhere in the output).
  const unitAxis = inputStrides.indexOf(1);
  const outer = [...Array(rank).keys()].filter((a) => a !== innermost && a !== unitAxis);
  const counter = new Array<number>(outer.length).fill(0);
  let inputBase = 0;
  let outputBase = 0;
  const outerCount = outer.reduce((n, a) => n * shape[a]!, 1);
  for (let visited = 0; visited < outerCount; visited++) {
    if (unitAxis === innermost) {
      const run = shape[innermost]!;
      if (run >= 16) target.set(source.subarray(inputBase, inputBase + run), outputBase);
      else for (let j = 0; j < run; j++) target[outputBase + j] = source[inputBase + j]!;
    } else {
      copyTile(source, target, inputBase, outputBase, shape[unitAxis]!, outputStrides[unitAxis]!, shape[innermost]!, inputStrides[innermost]!);
    }
    // Advance the odometer over the outer axes, last one fastest.
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
  source: NumericArray, target: NumericArray, inputBase: number, outputBase: number,
  rows: number, outStride: number, cols: number, inStride: number,
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

/**
 * The same bytes seen as one array type, so that the copy loops see a single element kind (V8
 * then compiles them monomorphic) and float bit patterns, NaN payloads included, move unchanged.
 */
function bitsView(values: NumericArray): Int32Array | Uint8Array {
  if (values instanceof Uint8Array) return values;
  return new Int32Array(values.buffer, values.byteOffset, values.length);
}

/** A new tensor holding `x` transposed by `perm` (numeric dtypes only). */
export function transposeTensor(backendName: CustomBackendName, backend: Backend, x: TensorInfo, perm: readonly number[]): TensorInfo {
  if (!isNumericDType(x.dtype)) throw new Error(`transpose: expected a numeric tensor, got ${x.dtype}`);
  const out = allocate(backendName, backend, perm.map((axis) => x.shape[axis]!), x.dtype);
  // Views only after the allocation: on wasm an allocation may grow (and detach) the heap.
  transposeValues(bitsView(typedView(backendName, backend, x)), bitsView(typedView(backendName, backend, out)), x.shape, perm);
  return out;
}

/**
 * Transpose with some input axes read backwards, for small tensors (filters and filter gradients,
 * which fit in cache): one pass in output order, replacing the backend's Reverse-then-Transpose
 * pair, each of which costs a kernel call and a full temporary.
 */
export function transposeFlipped(
  backendName: CustomBackendName, backend: Backend, x: TensorInfo, perm: readonly number[], flippedAxes: readonly number[],
): TensorInfo {
  if (!isNumericDType(x.dtype)) throw new Error(`transpose: expected a numeric tensor, got ${x.dtype}`);
  const rank = x.shape.length;
  if (perm.length !== rank) throw new Error(`transpose: perm [${perm.join(', ')}] does not fit shape [${x.shape.join(', ')}]`);
  const outShape = perm.map((axis) => x.shape[axis]!);
  const out = allocate(backendName, backend, outShape, x.dtype);
  const source = bitsView(typedView(backendName, backend, x));
  const target = bitsView(typedView(backendName, backend, out));
  if (target.length === 0) return out;
  const inputStrides = [...util.computeStrides([...x.shape]), 1];
  let start = 0;
  const strides = perm.map((axis) => {
    if (!flippedAxes.includes(axis)) return inputStrides[axis]!;
    start += (x.shape[axis]! - 1) * inputStrides[axis]!;
    return -inputStrides[axis]!;
  });
  const innerExtent = outShape[rank - 1]!;
  const innerStride = strides[rank - 1]!;
  const counter = new Array<number>(rank).fill(0);
  let from = start;
  for (let written = 0; written < target.length; written += innerExtent) {
    for (let j = 0, f = from; j < innerExtent; j++, f += innerStride) target[written + j] = source[f]!;
    for (let k = rank - 2; k >= 0; k--) {
      from += strides[k]!;
      if (++counter[k]! < outShape[k]!) break;
      counter[k] = 0;
      from -= strides[k]! * outShape[k]!;
    }
  }
  return out;
}
