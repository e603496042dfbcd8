import { util } from '@tensorflow/tfjs';
import type { DataType, TensorInfo } from '@tensorflow/tfjs';
import type { Backend } from './backend_calls.js';
import type { HeapSpan } from '../heap_worker.js';

/**
 * Direct access to tensor memory for the two backends we register kernels on. Some steps
 * (zero-stuffing a gradient, tiling, reductions over the batch) have no fast stock kernel; a plain
 * loop over the backing array is one pass with no temporaries.
 */

export type CustomBackendName = 'wasm' | 'cpu';

/** The numeric dtypes our kernels handle; anything else goes to the stock kernel. */
export type NumericDType = 'float32' | 'int32' | 'bool';
export type NumericArray = Float32Array | Int32Array | Uint8Array;

interface WasmLike {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): NumericArray;
}

interface CpuLike {
  makeTensorInfo(shape: number[], dtype: DataType, values?: NumericArray): TensorInfo;
  data: { get(dataId: object): { values?: unknown } };
}

export function isNumericDType(dtype: DataType): dtype is NumericDType {
  return dtype === 'float32' || dtype === 'int32' || dtype === 'bool';
}

/**
 * A view of a tensor's values. On wasm the view aliases the heap, so it becomes invalid (detached)
 * as soon as anything allocates: take views only after every allocation of the step.
 */
export function typedView(backendName: CustomBackendName, backend: Backend, info: TensorInfo): NumericArray {
  if (!isNumericDType(info.dtype)) throw new Error(`expected a numeric tensor, got ${info.dtype}`);
  if (backendName === 'wasm') return (backend as unknown as WasmLike).typedArrayFromHeap(info);
  const values = (backend as unknown as CpuLike).data.get(info.dataId).values;
  if (!(values instanceof Float32Array || values instanceof Int32Array || values instanceof Uint8Array)) {
    throw new Error(`cpu tensor has no ${info.dtype} values`);
  }
  return values;
}

export function float32View(backendName: CustomBackendName, backend: Backend, info: TensorInfo): Float32Array {
  if (info.dtype !== 'float32') throw new Error(`expected a float32 tensor, got ${info.dtype}`);
  return typedView(backendName, backend, info) as Float32Array;
}

/** Allocates an uninitialised tensor owned by the caller (hand it to the engine or release it). */
export function allocate(backendName: CustomBackendName, backend: Backend, shape: number[], dtype: NumericDType): TensorInfo {
  if (backendName === 'wasm') return (backend as unknown as WasmLike).makeOutput(shape, dtype);
  return (backend as unknown as CpuLike).makeTensorInfo(
    shape,
    dtype,
    util.getTypedArrayFromDType(dtype, util.sizeFromShape(shape)) as NumericArray,
  );
}

export function allocateFloat32(backendName: CustomBackendName, backend: Backend, shape: number[]): TensorInfo {
  return allocate(backendName, backend, shape, 'float32');
}

/** Where a view lies in its buffer, in elements: what a helper thread needs to find it in the heap. */
export function heapSpan(view: Float32Array | Int32Array | Uint8Array): HeapSpan {
  const bytes = view.BYTES_PER_ELEMENT as 1 | 4;
  return { offset: view.byteOffset / bytes, length: view.length, bytes };
}
