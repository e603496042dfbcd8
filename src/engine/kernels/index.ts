import * as tf from '@tensorflow/tfjs';
// Imported for its side effect: the wasm package registers its kernels when loaded. Loading it here
// guarantees those registrations happen before ours, so ours win and we can keep the originals.
import '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs';
import { installThreadedWasm } from '../wasm_threads.js';
import { makeConvFilterGradKernel, makeConvInputGradKernel } from './conv2d_grads.js';
import { makeLeadingReductionKernel, makeMaxPoolGradKernel, makeSharingKernel, makeTileKernel } from './layout_kernels.js';
import type { CustomBackendName } from './raw_memory.js';

/**
 * Kernels mtl-bench registers over tfjs's stock ones. Only 'wasm' and 'cpu': the native
 * 'tensorflow' backend has its own fast kernels and must never see these.
 */
export const CUSTOM_KERNEL_BACKENDS: readonly CustomBackendName[] = ['wasm', 'cpu'];

interface Replacement {
  kernelName: string;
  /** Where it is registered (default: every custom backend). */
  backends?: readonly CustomBackendName[];
  /** Builds our kernelFunc; `original` is what the backend registered before (undefined: nothing). */
  make(backendName: CustomBackendName, original: KernelFunc | undefined): KernelFunc;
}

function requireOriginal(
  kernelName: string,
  make: (backendName: CustomBackendName, original: KernelFunc) => KernelFunc,
  backends?: readonly CustomBackendName[],
): Replacement {
  return {
    kernelName,
    backends,
    make(backendName, original) {
      if (!original) throw new Error(`backend "${backendName}" has no ${kernelName} kernel to fall back on`);
      return make(backendName, original);
    },
  };
}

const REPLACEMENTS: Replacement[] = [
  { kernelName: 'Conv2DBackpropFilter', make: makeConvFilterGradKernel },
  { kernelName: 'Conv2DBackpropInput', make: makeConvInputGradKernel },
  requireOriginal('Tile', makeTileKernel),
  requireOriginal('Sum', (b, o) => makeLeadingReductionKernel('sum', b, o)),
  requireOriginal('Mean', (b, o) => makeLeadingReductionKernel('mean', b, o)),
  requireOriginal('MaxPoolGrad', makeMaxPoolGradKernel),
  // The cpu backend already shares memory for these.
  requireOriginal('Identity', (_, o) => makeSharingKernel('identity', o), ['wasm']),
  requireOriginal('Cast', (_, o) => makeSharingKernel('cast', o), ['wasm']),
];

export const CUSTOM_KERNEL_NAMES: readonly string[] = REPLACEMENTS.map((r) => r.kernelName);
export type CustomKernelName = 'Conv2DBackpropFilter' | 'Conv2DBackpropInput' | 'Tile' | 'Sum' | 'Mean' | 'MaxPoolGrad' | 'Identity' | 'Cast';

/** The configs that were registered before ours (undefined: the backend had none), keyed backend_kernel. */
const originals = new Map<string, KernelConfig | undefined>();
const ours = new WeakSet<KernelFunc>();

function key(kernelName: string, backendName: string): string {
  return `${backendName}_${kernelName}`;
}

function registerOver(replacement: Replacement, backendName: CustomBackendName): void {
  const { kernelName } = replacement;
  const current = tf.getKernel(kernelName, backendName);
  if (current && ours.has(current.kernelFunc)) return;
  if (!originals.has(key(kernelName, backendName))) originals.set(key(kernelName, backendName), current);
  const kernelFunc = replacement.make(backendName, originals.get(key(kernelName, backendName))?.kernelFunc);
  if (current) tf.unregisterKernel(kernelName, backendName);
  ours.add(kernelFunc);
  // The original's setup/dispose hooks stay attached: the wasm backend binds its C entry points in
  // setupFunc, and our fallback paths still call the original kernelFunc.
  tf.registerKernel({ ...current, kernelName, backendName, kernelFunc });
}

/**
 * Makes the CPU backends fast before the first op: registers our kernels for wasm and cpu, and
 * (see ../wasm_threads.ts) has the wasm backend start tfjs's multi-threaded build when it first
 * initialises. Safe to call any number of times: a kernel that is already ours is left alone, and
 * the originals are captured once.
 */
export function registerCustomKernels(): void {
  installThreadedWasm();
  for (const backendName of CUSTOM_KERNEL_BACKENDS) {
    for (const replacement of REPLACEMENTS) {
      if (!replacement.backends || replacement.backends.includes(backendName)) registerOver(replacement, backendName);
    }
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

/** The cpu backend's own kernel: the reference our kernels are tested against. */
export function originalCpuKernel(kernelName: CustomKernelName): KernelFunc {
  const func = originalKernelFunc(kernelName, 'cpu');
  if (!func) throw new Error(`the cpu backend registered no ${kernelName}`);
  return func;
}

/** The cpu backend's own Conv2DBackpropFilter. */
export function originalCpuConv2DBackpropFilter(): KernelFunc {
  return originalCpuKernel('Conv2DBackpropFilter');
}

/** The cpu backend's own Conv2DBackpropInput. */
export function originalCpuConv2DBackpropInput(): KernelFunc {
  return originalCpuKernel('Conv2DBackpropInput');
}

/** The kernels registerCustomKernels() replaces on `backendName`. */
export function customKernelNamesFor(backendName: CustomBackendName): string[] {
  return REPLACEMENTS.filter((r) => !r.backends || r.backends.includes(backendName)).map((r) => r.kernelName);
}

/** Which kernels are ours on which backend, for reports (`doctor`, the training benchmark). */
export function customKernelsInUse(backendName: string): string[] {
  return CUSTOM_KERNEL_NAMES.filter((name) => {
    const config = tf.getKernel(name, backendName);
    return config !== undefined && ours.has(config.kernelFunc);
  });
}
