import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { type BackendReport, gpuPackageInstalled, initBackend } from '../engine/backend.js';
import { type GpuStatus, nodeVersionWarning } from '../engine/gpu.js';
import { type WasmThreadsStatus, wasmThreadsStatus } from '../engine/wasm_threads.js';
import { type SimdKernelsStatus, simdKernelsStatus } from '../engine/simd_kernels.js';
import { DEFAULT_BACKBONE } from '../model/backbones.js';
import { mtlBenchHome } from '../util/paths.js';
import { type ThroughputResult, measureThroughput } from './throughput.js';

/** Where training would run here and with what: the part of `doctor` that needs no measurement. */
export interface EnvironmentReport {
  backend: BackendReport['choice'];
  tfBackend: string;
  chosenBy: BackendReport['source'];
  skipped: BackendReport['skipped'];
  /** The cache folder, and whether MTL_BENCH_HOME chose it. */
  home: string;
  homeChosenBy: 'MTL_BENCH_HOME' | 'default';
  node: string;
  tfjs: string;
  cpus: string;
  /** Only on the wasm backend. */
  wasmThreads?: WasmThreadsStatus;
  /** Only on the wasm backend, once a kernel asked for them: whether mtl-bench's SIMD kernels run, and if not, why. */
  simdKernels?: SimdKernelsStatus;
  /** Only on the tensorflow-gpu backend: whether TensorFlow really runs on a GPU, and if not, why. */
  gpu?: GpuStatus;
  /** Problems with this setup that do not stop training, one line each. */
  warnings: string[];
}

export interface DoctorReport extends EnvironmentReport {
  throughput: ThroughputResult;
}

export interface DoctorOptions {
  backend?: string;
  /** The throughput measurement: batch size, input size and timed steps of the default backbone. */
  batch: number;
  size: number;
  steps: number;
}

export function environmentReport(backend: BackendReport, env: NodeJS.ProcessEnv = process.env): EnvironmentReport {
  const wasmThreads = backend.tfName === 'wasm' ? wasmThreadsStatus() : undefined;
  const simdKernels = backend.tfName === 'wasm' ? simdKernelsStatus() : undefined;
  // A missing or broken SIMD module only slows training down (the built-in kernels run instead).
  const simdWarning =
    simdKernels && !simdKernels.loaded
      ? `mtl-bench's SIMD kernels are not in use, slower built-in kernels run instead: ${simdKernels.reason ?? 'no reason recorded'}`
      : undefined;
  return {
    backend: backend.choice,
    tfBackend: backend.tfName,
    chosenBy: backend.source,
    skipped: backend.skipped,
    home: mtlBenchHome(env),
    homeChosenBy: env.MTL_BENCH_HOME?.trim() ? 'MTL_BENCH_HOME' : 'default',
    node: process.version,
    tfjs: tf.version.tfjs,
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}`,
    ...(wasmThreads ? { wasmThreads } : {}),
    ...(simdKernels ? { simdKernels } : {}),
    ...(backend.gpu ? { gpu: backend.gpu } : {}),
    warnings: [nodeVersionWarning(process.version, backend.choice === 'tensorflow-gpu' || gpuPackageInstalled()), simdWarning].filter(
      (w): w is string => w !== undefined,
    ),
  };
}

/** Brings up the backend, describes the environment and times the trainer's step on the default backbone. */
export async function doctor(options: DoctorOptions): Promise<DoctorReport> {
  const backend = await initBackend({ requested: options.backend });
  const throughput = await measureThroughput({
    backbone: DEFAULT_BACKBONE,
    inputSize: options.size,
    batch: options.batch,
    steps: options.steps,
  });
  // Described after the measurement: wasm helper threads that failed during it are reported as stopped.
  return { ...environmentReport(backend), throughput };
}
