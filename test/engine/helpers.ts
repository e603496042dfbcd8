import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

/** A deterministic pseudo-random Float32Array in [-1, 1) (mulberry32), so failures reproduce. */
export function randomValues(size: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** Number of data buffers the active backend holds: catches kernel scratch that never became a tensor. */
export function backendBuffers(): number {
  return (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
}

export interface KernelCall {
  inputs: Record<string, { values: Float32Array | Int32Array | Uint8Array; shape: number[]; dtype?: 'float32' | 'int32' | 'bool' }>;
  attrs: NamedAttrMap;
}

function makeInputs(call: KernelCall): Record<string, tf.Tensor> {
  return Object.fromEntries(Object.entries(call.inputs).map(([name, t]) => [name, tf.tensor(t.values, t.shape, t.dtype ?? 'float32')]));
}

/** Runs the registered kernel `kernelName` on the active backend through the engine and returns its values. */
export function runRegistered(kernelName: string, call: KernelCall): Float32Array {
  return runRegisteredWithShape(kernelName, call).values;
}

/** Like runRegistered, also giving the output's shape and dtype. */
export function runRegisteredWithShape(kernelName: string, call: KernelCall): { values: Float32Array; shape: number[]; dtype: string } {
  const inputs = makeInputs(call);
  try {
    const out = tf.engine().runKernel(kernelName, inputs, call.attrs) as tf.Tensor;
    const result = { values: Float32Array.from(out.dataSync() as ArrayLike<number>), shape: out.shape, dtype: out.dtype };
    out.dispose();
    return result;
  } finally {
    for (const t of Object.values(inputs)) t.dispose();
  }
}

/** Runs a kernelFunc we hold a reference to (e.g. the cpu backend's original) on the active backend. */
export function runKernelFunc(kernelFunc: KernelFunc, call: KernelCall): Float32Array {
  return runKernelFuncWithShape(kernelFunc, call).values;
}

/** Like runKernelFunc, also giving the output's shape and dtype. */
export function runKernelFuncWithShape(kernelFunc: KernelFunc, call: KernelCall): { values: Float32Array; shape: number[]; dtype: string } {
  const backend = tf.backend();
  const inputs = makeInputs(call);
  try {
    const out = kernelFunc({ inputs, backend, attrs: call.attrs }) as TensorInfo;
    const tensor = tf.engine().makeTensorFromTensorInfo(out);
    const result = { values: Float32Array.from(tensor.dataSync() as ArrayLike<number>), shape: tensor.shape, dtype: tensor.dtype };
    tensor.dispose();
    return result;
  } finally {
    for (const t of Object.values(inputs)) t.dispose();
  }
}

/** max |a − b| / max |b|: the relative error measure the kernels are held to (1e-4). */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  if (!Number.isFinite(maxDiff)) return Infinity;
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

/** Counts calls of `kernelName` on `backendName` while `body` runs, then restores the kernel. */
export async function countCalls(kernelName: string, backendName: string, body: () => Promise<void> | void): Promise<number> {
  const config = tf.getKernel(kernelName, backendName)!;
  let calls = 0;
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({
    ...config,
    kernelFunc: (args) => {
      calls++;
      return config.kernelFunc(args);
    },
  });
  try {
    await body();
  } finally {
    tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel(config);
  }
  return calls;
}
