import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

/**
 * Helpers for composing kernels inside a kernelFunc. There the engine is in the middle of running a
 * kernel, so calling tf.* ops would record nested tensors on the tape; instead we call the
 * backend's own registered kernelFuncs directly and free every intermediate ourselves.
 */

/** The subset of backend methods our kernels rely on; both the wasm and cpu backends provide them. */
export type Backend = KernelBackend;

/** Runs the kernel registered as `kernelName` for `backendName` on backend-level tensors. */
export function callKernel(
  kernelName: string,
  backendName: string,
  backend: Backend,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const kernel = tf.getKernel(kernelName, backendName);
  if (!kernel) throw new Error(`kernel ${kernelName} is not registered for backend "${backendName}"`);
  const result = kernel.kernelFunc({ inputs, backend, attrs });
  if (Array.isArray(result)) throw new Error(`kernel ${kernelName} returned ${result.length} outputs where one was expected`);
  return result;
}

/** Releases a tensor that a kernel created for its own use and never handed to the engine. */
function release(backend: Backend, info: TensorInfo): void {
  backend.disposeData(info.dataId);
}

/** Calls `body` and releases every intermediate it registered with `keep`, whether it throws or not. */
export function withScratch<T>(backend: Backend, body: (scratch: (info: TensorInfo) => TensorInfo) => T): T {
  const owned: TensorInfo[] = [];
  try {
    return body((info) => {
      owned.push(info);
      return info;
    });
  } finally {
    for (const info of owned) release(backend, info);
  }
}
