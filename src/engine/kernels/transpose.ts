import { util } from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';
import { runOnHeap } from '../heap_workers.js';
import type { Backend } from './backend_calls.js';
import { type CopyArray, planTranspose, transposeRange } from './heap_loops.js';
import { type CustomBackendName, type NumericArray, allocate, heapSpan, isNumericDType, typedView } from './raw_memory.js';

/**
 * Transposes for the convolution gradients' layout changes (e.g. moving the batch axis of a
 * [32, 64, 64, 32] gradient last). The wasm backend's own Transpose visits the output in order and
 * gathers each element from wherever it lies, so when the output's innermost axis has a large
 * input stride every read touches a new cache line (40–75 ms for that tensor here, against
 * ≈17 ms for the tiled loop of heap_loops.ts on one thread, which helper threads split further).
 */

/** Below this many elements per part, waking a helper thread costs more than it saves. */
const MIN_ELEMENTS_PER_PART = 1 << 16;

/**
 * The same bytes seen as one array type, so that the copy loops see a single element kind (V8
 * then compiles them monomorphic) and float bit patterns, NaN payloads included, move unchanged.
 */
function bitsView(values: NumericArray): CopyArray {
  if (values instanceof Uint8Array) return values;
  return new Int32Array(values.buffer, values.byteOffset, values.length);
}

/** A new tensor holding `x` transposed by `perm` (numeric dtypes only). */
export function transposeTensor(backendName: CustomBackendName, backend: Backend, x: TensorInfo, perm: readonly number[]): TensorInfo {
  if (!isNumericDType(x.dtype)) throw new Error(`transpose: expected a numeric tensor, got ${x.dtype}`);
  const plan = planTranspose(x.shape, perm);
  const out = allocate(
    backendName,
    backend,
    perm.map((axis) => x.shape[axis]!),
    x.dtype,
  );
  // Views only after the allocation: on wasm an allocation may grow (and detach) the heap.
  const source = bitsView(typedView(backendName, backend, x));
  const target = bitsView(typedView(backendName, backend, out));
  const perItem = Math.max(1, target.length / plan.outerCount);
  const job = { kind: 'transpose' as const, source: heapSpan(source), target: heapSpan(target), plan };
  runOnHeap(target.buffer, job, plan.outerCount, Math.ceil(MIN_ELEMENTS_PER_PART / perItem), (begin, end) =>
    transposeRange(source, target, plan, begin, end),
  );
  return out;
}

/**
 * Transpose with some input axes read backwards, for small tensors (filters and filter gradients,
 * which fit in cache): one pass in output order, replacing the backend's Reverse-then-Transpose
 * pair, each of which costs a kernel call and a full temporary.
 */
export function transposeFlipped(
  backendName: CustomBackendName,
  backend: Backend,
  x: TensorInfo,
  perm: readonly number[],
  flippedAxes: readonly number[],
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
