import { util } from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';
import type { Backend } from './backend_calls.js';

/**
 * Direct float32 access to tensor memory for the two backends we register kernels on. Some steps
 * (zero-stuffing a gradient, fused element-wise passes) have no single stock kernel; a plain loop
 * over the backing array is one pass with no temporaries.
 */

export type CustomBackendName = 'wasm' | 'cpu';

interface WasmLike {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

interface CpuLike {
  makeTensorInfo(shape: number[], dtype: 'float32', values?: Float32Array): TensorInfo;
  data: { get(dataId: object): { values?: unknown } };
}

/**
 * A view of a float32 tensor's values. On wasm the view aliases the heap, so it becomes invalid
 * (detached) as soon as anything allocates: take views only after every allocation of the step.
 */
export function float32View(backendName: CustomBackendName, backend: Backend, info: TensorInfo): Float32Array {
  if (info.dtype !== 'float32') throw new Error(`expected a float32 tensor, got ${info.dtype}`);
  if (backendName === 'wasm') return (backend as unknown as WasmLike).typedArrayFromHeap(info);
  const values = (backend as unknown as CpuLike).data.get(info.dataId).values;
  if (!(values instanceof Float32Array)) throw new Error('cpu tensor has no float32 values');
  return values;
}

/** Allocates an uninitialised float32 tensor owned by the caller (hand it to the engine or release it). */
export function allocateFloat32(backendName: CustomBackendName, backend: Backend, shape: number[]): TensorInfo {
  if (backendName === 'wasm') return (backend as unknown as WasmLike).makeOutput(shape, 'float32');
  return (backend as unknown as CpuLike).makeTensorInfo(shape, 'float32', new Float32Array(util.sizeFromShape(shape)));
}
