import * as tf from '@tensorflow/tfjs';
// Imported for its side effect: the wasm package registers its kernels when loaded. Loading it here
// guarantees those registrations happen before ours, so ours win and we can keep the originals.
import '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs';
import { makeConvGradKernels } from './conv2d_grads.js';
import type { CustomBackendName } from './raw_memory.js';

/**
 * Kernels mtl-bench registers over tfjs's stock ones. Only 'wasm' and 'cpu': the native
 * 'tensorflow' backend has its own fast kernels and must never see these.
 */
export const CUSTOM_KERNEL_BACKENDS: readonly CustomBackendName[] = ['wasm', 'cpu'];

export const CUSTOM_KERNEL_NAMES = ['Conv2DBackpropFilter', 'Conv2DBackpropInput'] as const;
export type CustomKernelName = (typeof CUSTOM_KERNEL_NAMES)[number];

/** The configs that were registered before ours (undefined: the backend had none), keyed backend_kernel. */
const originals = new Map<string, KernelConfig | undefined>();
const ours = new WeakSet<KernelFunc>();

function key(kernelName: string, backendName: string): string {
  return `${backendName}_${kernelName}`;
}

function registerOver(kernelName: CustomKernelName, backendName: CustomBackendName, kernelFunc: KernelFunc): void {
  const current = tf.getKernel(kernelName, backendName);
  if (current && ours.has(current.kernelFunc)) return;
  if (!originals.has(key(kernelName, backendName))) originals.set(key(kernelName, backendName), current);
  if (current) tf.unregisterKernel(kernelName, backendName);
  ours.add(kernelFunc);
  // The original's setup/dispose hooks stay attached: the wasm backend binds its C entry points in
  // setupFunc, and our fallback path still calls the original kernelFunc.
  tf.registerKernel({ ...current, kernelName, backendName, kernelFunc });
}

/**
 * Registers our convolution-gradient kernels for wasm and cpu. Safe to call any number of times:
 * a backend whose kernel is already ours is left alone, and the originals are captured once.
 */
export function registerCustomKernels(): void {
  for (const backendName of CUSTOM_KERNEL_BACKENDS) {
    const originalFilter = originals.has(key('Conv2DBackpropFilter', backendName))
      ? originals.get(key('Conv2DBackpropFilter', backendName))
      : tf.getKernel('Conv2DBackpropFilter', backendName);
    const originalInput = originals.has(key('Conv2DBackpropInput', backendName))
      ? originals.get(key('Conv2DBackpropInput', backendName))
      : tf.getKernel('Conv2DBackpropInput', backendName);
    if (originalFilter && ours.has(originalFilter.kernelFunc)) continue;
    const kernels = makeConvGradKernels(backendName, { filter: originalFilter?.kernelFunc, input: originalInput?.kernelFunc });
    registerOver('Conv2DBackpropFilter', backendName, kernels.filter);
    registerOver('Conv2DBackpropInput', backendName, kernels.input);
  }
}

/**
 * The kernelFunc a backend shipped for `kernelName` before registerCustomKernels replaced it
 * (undefined when it had none, as wasm has no Conv2DBackpropFilter). Tests compare against these.
 */
export function originalKernelFunc(kernelName: CustomKernelName, backendName: CustomBackendName): KernelFunc | undefined {
  if (!originals.has(key(kernelName, backendName))) {
    throw new Error(`registerCustomKernels() has not run yet, so the original ${kernelName} for ${backendName} is unknown`);
  }
  return originals.get(key(kernelName, backendName))?.kernelFunc;
}

/** The cpu backend's own Conv2DBackpropFilter: the reference our kernels are tested against. */
export function originalCpuConv2DBackpropFilter(): KernelFunc {
  const func = originalKernelFunc('Conv2DBackpropFilter', 'cpu');
  if (!func) throw new Error('the cpu backend registered no Conv2DBackpropFilter');
  return func;
}

/** The cpu backend's own Conv2DBackpropInput. */
export function originalCpuConv2DBackpropInput(): KernelFunc {
  const func = originalKernelFunc('Conv2DBackpropInput', 'cpu');
  if (!func) throw new Error('the cpu backend registered no Conv2DBackpropInput');
  return func;
}

/** Which kernels are ours on which backend, for reports (`doctor`, the training benchmark). */
export function customKernelsInUse(backendName: string): string[] {
  return CUSTOM_KERNEL_NAMES.filter((name) => {
    const config = tf.getKernel(name, backendName);
    return config !== undefined && ours.has(config.kernelFunc);
  });
}
