import { MAX_DEFAULT_JOBS, THREADS_PER_JOB } from '../config/defaults.js';
import { MAX_WASM_THREADS, type MachineLoad } from '../engine/wasm_threads.js';
import { UserError } from '../util/errors.js';

/** How many cells `run` trains at once, and what each worker process is given. */
export interface JobPlan {
  jobs: number;
  /** MTL_BENCH_WASM_THREADS for every process of the run, when `run` chose it (unset: the user's or the backend's own choice). */
  wasmThreads?: number;
  /** One CUDA device per job (CUDA_VISIBLE_DEVICES of each worker), when the devices are known. */
  devices?: string[];
  /** Why that many, in a few words, for the start of the run. */
  reason: string;
}

export interface JobRequest {
  /** --jobs, when given. */
  jobs?: number;
  /** The backend asked for (--backend or MTL_BENCH_BACKEND), if any. */
  backend?: string;
  /** Whether a native TensorFlow package (tfjs-node or tfjs-node-gpu) is installed, so automatic choice would take it. */
  nativeInstalled: boolean;
  machine: MachineLoad;
  env: NodeJS.ProcessEnv;
}

function isNative(backend: string | undefined, nativeInstalled: boolean): boolean {
  if (backend === undefined || backend.trim() === '') return nativeInstalled;
  return !['wasm', 'cpu'].includes(backend.trim().toLowerCase());
}

/** The CUDA devices named by CUDA_VISIBLE_DEVICES (undefined when unset: then the count is not known without starting CUDA). */
function visibleDevices(env: NodeJS.ProcessEnv): string[] | undefined {
  const raw = env.CUDA_VISIBLE_DEVICES?.trim();
  if (raw === undefined || raw === '') return undefined;
  const devices = raw
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '' && d !== '-1');
  return devices.length > 0 ? devices : undefined;
}

/**
 * The number of parallel jobs and the threads of each. TensorFlow's native backends spread one
 * training over all cores (or run it on a GPU) themselves: one job, or one per visible CUDA device.
 * The wasm and cpu backends gain little from a second thread per step, so the cores are shared
 * out as jobs of THREADS_PER_JOB threads each. Unlike the threads of one step, which wait for
 * each other so that one on a busy core slows them all (hence the backend's own rule of idle
 * cores), jobs never wait for each other: the load of other processes does not lower their
 * number (measured in the README, "Parallel jobs"). A --jobs N splits the cores N ways.
 */
export function planJobs(request: JobRequest): JobPlan {
  const { machine, env } = request;
  const native = isNative(request.backend, request.nativeInstalled);
  const devices = native ? visibleDevices(env) : undefined;
  const threadsFixed = Boolean(env.MTL_BENCH_WASM_THREADS?.trim());
  if (request.jobs !== undefined) {
    if (!Number.isInteger(request.jobs) || request.jobs < 1)
      throw new UserError(`--jobs: expected a whole number ≥ 1, got "${request.jobs}"`);
    const jobs = request.jobs;
    // One job keeps the backend's own choice of threads, as a run without --jobs always did.
    const wasmThreads =
      native || threadsFixed || jobs === 1 ? undefined : Math.max(1, Math.min(MAX_WASM_THREADS, Math.floor(machine.cores / jobs)));
    return {
      jobs,
      ...(wasmThreads !== undefined ? { wasmThreads } : {}),
      ...(devices && devices.length >= jobs ? { devices } : {}),
      reason: '--jobs',
    };
  }
  if (native) {
    if (devices && devices.length > 1) return { jobs: devices.length, devices, reason: `one per CUDA device (${devices.join(',')})` };
    return { jobs: 1, reason: 'a native TensorFlow backend uses every core (or the GPU) itself' };
  }
  const threads = threadsFixed ? Number(env.MTL_BENCH_WASM_THREADS) : THREADS_PER_JOB;
  const jobs = Math.max(1, Math.min(MAX_DEFAULT_JOBS, Math.floor(machine.cores / Math.max(1, threads))));
  return {
    jobs,
    ...(threadsFixed ? {} : { wasmThreads: THREADS_PER_JOB }),
    reason: `${machine.cores} core${machine.cores === 1 ? '' : 's'}, ${threads} thread${threads === 1 ? '' : 's'} per job`,
  };
}

/**
 * What every process of the run (the run itself and its workers) gets in its environment. With
 * one job per GPU, TensorFlow must take GPU memory as it needs it: by default the first process
 * on a device takes nearly all of it, and the run itself times a step there before the workers start.
 */
export function runEnvironment(plan: JobPlan, env: NodeJS.ProcessEnv): Record<string, string> {
  return {
    ...(plan.wasmThreads !== undefined ? { MTL_BENCH_WASM_THREADS: String(plan.wasmThreads) } : {}),
    ...(plan.devices && env.TF_FORCE_GPU_ALLOW_GROWTH === undefined ? { TF_FORCE_GPU_ALLOW_GROWTH: 'true' } : {}),
  };
}

/** The environment of the worker in `slot`: the run's, and with known devices its own GPU. */
export function workerEnvironment(plan: JobPlan, slot: number, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    ...env,
    ...runEnvironment(plan, env),
    ...(plan.devices ? { CUDA_VISIBLE_DEVICES: plan.devices[slot % plan.devices.length] } : {}),
  };
}
