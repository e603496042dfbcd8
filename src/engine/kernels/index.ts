import * as tf from '@tensorflow/tfjs';
// Imported for its side effect: the wasm package registers its kernels when loaded. Loading it here
// guarantees those registrations happen before ours, so ours win and we can keep the originals.
import '@tensorflow/tfjs-backend-wasm';
import type { GradFunc, KernelConfig, KernelFunc } from '@tensorflow/tfjs';
import { installThreadedWasm } from '../wasm_threads.js';
import { makeBatchNormForwardKernel, makeBatchNormGradient, makeMeanGradient } from './batch_norm.js';
import {
  BATCH_NORM_APPLY,
  BATCH_NORM_GRAD_INPUT,
  BATCH_NORM_GRAD_SUMS,
  BATCH_NORM_STATISTICS,
  RELU_GRAD,
  batchNormApplyKernel,
  batchNormGradInputKernel,
  batchNormGradSumsKernel,
  batchNormStatisticsKernel,
  makeReluGradient,
  reluGradKernel,
} from './batch_norm_simd.js';
import { makeConvFilterGradKernel, makeConvInputGradKernel } from './conv2d_grads.js';
import { makeDepthwiseFilterGradKernel, makeDepthwiseInputGradKernel } from './depthwise_grads.js';
import { makeLeadingReductionKernel, makeMaxPoolGradKernel, makeSharingKernel, makeTileKernel } from './layout_kernels.js';
import type { CustomBackendName } from './raw_memory.js';

/**
 * Kernels (and two gradients) mtl-bench registers over tfjs's stock ones, for 'wasm' and 'cpu'
 * only: the native 'tensorflow' backend has its own fast kernels and never sees these.
 *
 * Each replacement can be switched off per backend (setCustomKernels), which puts tfjs's original
 * back: tests compare against the originals that way, and the training benchmark measures the
 * speed-up of each piece.
 */
const CUSTOM_KERNEL_BACKENDS: readonly CustomBackendName[] = ['wasm', 'cpu'];

interface KernelReplacement {
  kind: 'kernel';
  name: string;
  /** Where it is registered (default: every custom backend). */
  backends?: readonly CustomBackendName[];
  /** Builds our kernelFunc; `original` is what the backend registered before (undefined: nothing). */
  make(backendName: CustomBackendName, original: KernelFunc | undefined): KernelFunc;
}

/**
 * A gradient replacement. tfjs keeps one gradient per kernel name for all backends, so ours is
 * registered once and consults `active()` (the current backend is one we serve and this
 * replacement is switched on for it) on every call, delegating to the original otherwise.
 */
interface GradientReplacement {
  kind: 'gradient';
  name: string;
  backends?: readonly CustomBackendName[];
  make(original: GradFunc, active: () => boolean): GradFunc;
}

type Replacement = KernelReplacement | GradientReplacement;

function withOriginal(
  name: string,
  make: (backendName: CustomBackendName, original: KernelFunc) => KernelFunc,
  backends?: readonly CustomBackendName[],
): KernelReplacement {
  return {
    kind: 'kernel',
    name,
    backends,
    make(backendName, original) {
      if (!original) throw new Error(`backend "${backendName}" has no ${name} kernel to fall back on`);
      return make(backendName, original);
    },
  };
}

const REPLACEMENTS: Replacement[] = [
  { kind: 'kernel', name: 'Conv2DBackpropFilter', make: makeConvFilterGradKernel },
  { kind: 'kernel', name: 'Conv2DBackpropInput', make: makeConvInputGradKernel },
  withOriginal('Tile', makeTileKernel),
  withOriginal('Sum', (b, o) => makeLeadingReductionKernel('sum', b, o)),
  withOriginal('Mean', (b, o) => makeLeadingReductionKernel('mean', b, o)),
  withOriginal('MaxPoolGrad', makeMaxPoolGradKernel),
  // The cpu backend already shares memory for these and normalises in plain JavaScript.
  withOriginal('Identity', (_, o) => makeSharingKernel('identity', o), ['wasm']),
  withOriginal('Cast', (_, o) => makeSharingKernel('cast', o), ['wasm']),
  withOriginal('FusedBatchNorm', makeBatchNormForwardKernel, ['wasm']),
  // The wasm backend ships no depthwise gradients (the cpu backend's are already plain loops).
  { kind: 'kernel', name: 'DepthwiseConv2dNativeBackpropFilter', backends: ['wasm'], make: makeDepthwiseFilterGradKernel },
  { kind: 'kernel', name: 'DepthwiseConv2dNativeBackpropInput', backends: ['wasm'], make: makeDepthwiseInputGradKernel },
  { kind: 'gradient', name: 'FusedBatchNorm', make: makeBatchNormGradient },
  { kind: 'gradient', name: 'Mean', make: makeMeanGradient },
  // Kernels of our own for the SIMD module (no tfjs kernel has these names; see batch_norm_simd.ts).
  ...(
    [
      [BATCH_NORM_STATISTICS, batchNormStatisticsKernel],
      [BATCH_NORM_APPLY, batchNormApplyKernel],
      [BATCH_NORM_GRAD_SUMS, batchNormGradSumsKernel],
      [BATCH_NORM_GRAD_INPUT, batchNormGradInputKernel],
      [RELU_GRAD, reluGradKernel],
    ] as const
  ).map(([name, kernelFunc]): KernelReplacement => ({ kind: 'kernel', name, backends: ['wasm'], make: () => kernelFunc })),
  { kind: 'gradient', name: 'Relu', backends: ['wasm'], make: makeReluGradient },
];

/** A replacement's id: the kernel name, with ":grad" for gradients. */
function idOf(r: Replacement): string {
  return r.kind === 'gradient' ? `${r.name}:grad` : r.name;
}

export const CUSTOM_KERNEL_NAMES: readonly string[] = REPLACEMENTS.map(idOf);
export type CustomKernelName =
  | 'Conv2DBackpropFilter'
  | 'Conv2DBackpropInput'
  | 'Tile'
  | 'Sum'
  | 'Mean'
  | 'MaxPoolGrad'
  | 'Identity'
  | 'Cast'
  | 'FusedBatchNorm'
  | 'DepthwiseConv2dNativeBackpropFilter'
  | 'DepthwiseConv2dNativeBackpropInput';

function servesBackend(r: Replacement, backendName: CustomBackendName): boolean {
  return !r.backends || r.backends.includes(backendName);
}

/** The kernel configs registered before ours (undefined: the backend had none), keyed backend_kernel. */
const originalKernels = new Map<string, KernelConfig | undefined>();
/** Our kernel configs, built once per backend and kernel, so switching back and forth is cheap. */
const ourKernels = new Map<string, KernelConfig>();
const ourKernelFuncs = new WeakSet<KernelFunc>();
const ourGradFuncs = new WeakSet<GradFunc>();
/** Replacement ids switched on, per backend. */
const enabled = new Map<CustomBackendName, Set<string>>(CUSTOM_KERNEL_BACKENDS.map((b) => [b, new Set<string>()]));
let registered = false;

function key(kernelName: string, backendName: string): string {
  return `${backendName}_${kernelName}`;
}

function installKernel(r: KernelReplacement, backendName: CustomBackendName, on: boolean): void {
  const k = key(r.name, backendName);
  const current = tf.getKernel(r.name, backendName);
  if (!originalKernels.has(k)) originalKernels.set(k, current && ourKernelFuncs.has(current.kernelFunc) ? undefined : current);
  const original = originalKernels.get(k);
  let ours = ourKernels.get(k);
  if (!ours) {
    const kernelFunc = r.make(backendName, original?.kernelFunc);
    ourKernelFuncs.add(kernelFunc);
    // The original's setup/dispose hooks stay attached: the wasm backend binds its C entry points
    // in setupFunc, and our fallback paths still call the original kernelFunc.
    ours = { ...original, kernelName: r.name, backendName, kernelFunc };
    ourKernels.set(k, ours);
  }
  const wanted = on ? ours : original;
  if (current === wanted) return;
  if (current) tf.unregisterKernel(r.name, backendName);
  if (wanted) tf.registerKernel(wanted);
}

function installGradient(r: GradientReplacement): void {
  const current = tf.getGradient(r.name);
  if (!current) throw new Error(`tfjs registered no gradient for ${r.name}`);
  if (ourGradFuncs.has(current.gradFunc)) return;
  const id = idOf(r);
  const active = () => {
    const backendName = tf.getBackend() as CustomBackendName;
    return enabled.get(backendName)?.has(id) ?? false;
  };
  const gradFunc = r.make(current.gradFunc, active);
  ourGradFuncs.add(gradFunc);
  tf.registerGradient({ ...current, gradFunc });
}

/**
 * Switches our replacements on `backendName` to exactly `ids` ('all', 'none', or ids from
 * CUSTOM_KERNEL_NAMES, e.g. 'Sum' or 'FusedBatchNorm:grad'); the rest get tfjs's originals back.
 */
export function setCustomKernels(backendName: CustomBackendName, ids: 'all' | 'none' | readonly string[]): void {
  if (!registered) registerCustomKernels();
  const list = ids === 'all' ? customKernelNamesFor(backendName) : ids === 'none' ? [] : ids;
  for (const id of list) {
    if (!CUSTOM_KERNEL_NAMES.includes(id))
      throw new Error(`unknown custom kernel "${id}"; expected one of ${CUSTOM_KERNEL_NAMES.join(', ')}`);
  }
  const on = enabled.get(backendName)!;
  on.clear();
  for (const r of REPLACEMENTS) {
    if (!servesBackend(r, backendName)) continue;
    const wanted = list.includes(idOf(r));
    if (wanted) on.add(idOf(r));
    if (r.kind === 'kernel') installKernel(r, backendName, wanted);
  }
}

/**
 * Makes the CPU backends fast before the first op: registers our kernels and gradients for wasm
 * and cpu, and (see ../wasm_threads.ts) has the wasm backend start tfjs's multi-threaded build
 * when it first initialises. Only the first call does anything, so a later setCustomKernels()
 * choice survives another initBackend().
 */
export function registerCustomKernels(): void {
  if (registered) return;
  installThreadedWasm();
  for (const r of REPLACEMENTS) if (r.kind === 'gradient') installGradient(r);
  registered = true;
  for (const backendName of CUSTOM_KERNEL_BACKENDS) setCustomKernels(backendName, 'all');
}

/**
 * The kernelFunc a backend shipped for `kernelName` before registerCustomKernels replaced it
 * (undefined when it had none, as wasm has no Conv2DBackpropFilter). Tests compare against these.
 */
export function originalKernelFunc(kernelName: CustomKernelName, backendName: CustomBackendName): KernelFunc | undefined {
  if (!registered) throw new Error(`registerCustomKernels() has not run yet, so the original ${kernelName} for ${backendName} is unknown`);
  // A kernel we never replace on this backend is still the backend's own.
  if (!originalKernels.has(key(kernelName, backendName))) return tf.getKernel(kernelName, backendName)?.kernelFunc;
  return originalKernels.get(key(kernelName, backendName))?.kernelFunc;
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

/** The replacements registerCustomKernels() makes on `backendName` (ids as in CUSTOM_KERNEL_NAMES). */
export function customKernelNamesFor(backendName: CustomBackendName): string[] {
  return REPLACEMENTS.filter((r) => servesBackend(r, backendName)).map(idOf);
}

/** Which replacements are in effect on `backendName`, for reports (`doctor`, the training benchmark). */
export function customKernelsInUse(backendName: string): string[] {
  const on = enabled.get(backendName as CustomBackendName);
  if (!on) return [];
  return REPLACEMENTS.filter((r) => {
    if (!on.has(idOf(r))) return false;
    if (r.kind === 'gradient') return true;
    const config = tf.getKernel(r.name, backendName);
    return config !== undefined && ourKernelFuncs.has(config.kernelFunc);
  }).map(idOf);
}
