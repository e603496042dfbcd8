import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as WorkerThreads from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import * as wasmBackend from '@tensorflow/tfjs-backend-wasm';
import { UserError } from '../util/errors.js';
import { heapHelperCount, heapHelpersDisabledReason, startHeapHelpers } from './heap_workers.js';

/**
 * Multi-threaded wasm backend under Node.
 *
 * tfjs-backend-wasm ships a threaded+SIMD build whose XNNPACK kernels (convolutions, matrix
 * products) split their work over a pthread pool, but it only enables it in browsers: under Node
 * its feature check answers "no threads", and its worker bootstrap is a Blob URL that Node's
 * worker_threads cannot load. The build itself supports Node (Emscripten runs pthreads on
 * worker_threads), so we register a 'wasm' backend factory that instantiates the threaded build
 * with an on-disk worker script (wasm_pthread_worker.ts) and the stock BackendWasm class; every
 * wasm kernel, ours included, runs unchanged on it.
 *
 * The backend sizes its pool as min(requested, logical cores / 2), assuming two hyper-threads per
 * core; on a 2-vCPU machine that is one thread. We answer the build's core-count query with twice
 * the thread count we want, so the pool has exactly that many threads.
 *
 * MTL_BENCH_WASM_THREADS=N picks N threads (1 = tfjs's own single-threaded build); the default is
 * the number of idle cores (see chooseWasmThreads), at most 8 (the build's worker pool). If the
 * threaded build cannot start, the stock build takes over and the reason is kept for `doctor`.
 */

/** Emscripten module surface we touch. */
interface EmscriptenThreadedModule {
  cwrap(name: string, returnType: string | null, argTypes: string[]): (...args: number[]) => number;
  PThread: { unusedWorkers: { unref(): void }[]; runningWorkers: { unref(): void }[] };
}

type ThreadedFactory = (config: Record<string, unknown>) => Promise<EmscriptenThreadedModule>;

/** The slice of the WebAssembly API we need (the project's TypeScript lib has no DOM/wasm types). */
interface WasmApi {
  instantiate(binary: Uint8Array, imports: object): Promise<{ instance: object; module: object }>;
}
const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export const MAX_WASM_THREADS = 8;

export interface WasmThreadsStatus {
  /** Threads the wasm backend's kernels use (1 when single-threaded). */
  threads: number;
  /** Why that many: MTL_BENCH_WASM_THREADS, or the cores and load seen at start. */
  chosenBy: string;
  /** Which wasm build runs: the threaded one we start, or tfjs's own. */
  build: 'threaded-simd' | 'stock';
  /** Why the stock build runs, when it does. */
  reason?: string;
  /** Helper threads for our JavaScript kernels (threaded build only; see heap_workers.ts). */
  helpers?: number;
  /** Why there are none, when the threaded build runs without them. */
  helpersReason?: string;
}

let status: WasmThreadsStatus | undefined;
let installed = false;

/** What the wasm backend runs on, once it has started (undefined before). */
export function wasmThreadsStatus(): WasmThreadsStatus | undefined {
  if (status?.helpers === undefined) return status;
  // Helpers stop for good if one fails mid-kernel; report what runs now.
  const stoppedBecause = heapHelpersDisabledReason();
  return { ...status, helpers: heapHelperCount(), ...(stoppedBecause ? { helpersReason: stoppedBecause } : {}) };
}

export interface MachineLoad {
  /** Cores this process may use. */
  cores: number;
  /** One-minute load average (0 where the platform has none, e.g. Windows). */
  load: number;
}

export function currentMachineLoad(): MachineLoad {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return { cores, load: os.loadavg()[0] ?? 0 };
}

export interface ThreadChoice {
  threads: number;
  /** What decided it, for `doctor` and the benchmark report. */
  chosenBy: string;
}

/**
 * How many threads the wasm backend gets: MTL_BENCH_WASM_THREADS when set (1–8), otherwise the
 * cores that are idle right now. Convolutions split into equal chunks per thread and wait for the
 * slowest, so a thread on a core that other processes keep busy slows a step down instead of
 * speeding it up (measured here: on 2 cores at load 5, 2 threads trained convnet-4 about 25%
 * slower than 1). Hence threads = cores − load average, rounded, between 1 and min(cores, 8).
 */
export function chooseWasmThreads(env: NodeJS.ProcessEnv = process.env, machine: MachineLoad = currentMachineLoad()): ThreadChoice {
  const raw = env.MTL_BENCH_WASM_THREADS?.trim();
  if (raw) {
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_WASM_THREADS) {
      throw new UserError(
        `MTL_BENCH_WASM_THREADS: expected a whole number from 1 to ${MAX_WASM_THREADS}, got "${env.MTL_BENCH_WASM_THREADS}"`,
      );
    }
    return { threads: Number(raw), chosenBy: 'MTL_BENCH_WASM_THREADS' };
  }
  const usable = Math.max(1, Math.min(MAX_WASM_THREADS, machine.cores));
  const idle = Math.floor(machine.cores - machine.load + 0.5);
  return {
    threads: Math.max(1, Math.min(usable, idle)),
    chosenBy: `${machine.cores} core${machine.cores === 1 ? '' : 's'}, load average ${machine.load.toFixed(2)}`,
  };
}

/** The thread count chooseWasmThreads() picks. */
export function requestedWasmThreads(env: NodeJS.ProcessEnv = process.env, machine?: MachineLoad): number {
  return chooseWasmThreads(env, machine).threads;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

/** How long the threaded build may take to start its worker pool before we give up on it. */
const START_TIMEOUT_MS = 60_000;

async function startThreaded(threads: number): Promise<tf.KernelBackend> {
  const require = createRequire(import.meta.url);
  const factoryPath = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const binaryPath = path.join(path.dirname(factoryPath), 'tfjs-backend-wasm-threaded-simd.wasm');
  const workerPath = fileURLToPath(new URL('./wasm_pthread_worker.js', import.meta.url));
  const factory = require(factoryPath) as ThreadedFactory;
  let failInstantiation: (err: unknown) => void = () => {};
  const instantiationFailed = new Promise<never>((_, reject) => {
    failInstantiation = reject;
  });
  // Emscripten uses this object as the module itself, so after a failure it still holds the
  // worker pool we must shut down.
  const config: Record<string, unknown> = {
    locateFile: (file: string, prefix: string) =>
      file.endsWith('.worker.js') ? workerPath : file.endsWith('.wasm') ? binaryPath : prefix + file,
    // Each pthread re-evaluates the build's JavaScript from this path.
    mainScriptUrlOrBlob: factoryPath,
    instantiateWasm(imports: { env: Record<string, unknown> }, receiveInstance: (instance: object, module: object) => void) {
      const env = { ...imports.env, emscripten_num_logical_cores: () => 2 * threads };
      WebAssemblyApi.instantiate(readFileSync(binaryPath), { ...imports, env }).then(
        ({ instance, module: compiled }) => receiveInstance(instance, compiled),
        (err: unknown) => failInstantiation(err),
      );
      return {};
    },
  };
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`its worker pool did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    timer.unref();
  });
  // Emscripten creates its pthread workers with `new (require('worker_threads').Worker)(script)`,
  // so they would inherit this process's Node flags; some (--input-type, --eval) make a worker
  // fail to start. The workers only run wasm, so they start without flags.
  const workerThreads = require('node:worker_threads') as typeof WorkerThreads;
  const NodeWorker = workerThreads.Worker;
  class PthreadWorker extends NodeWorker {
    constructor(filename: string | URL, options: WorkerThreads.WorkerOptions = {}) {
      super(filename, { ...options, execArgv: [] });
    }
  }
  workerThreads.Worker = PthreadWorker;
  let module: EmscriptenThreadedModule;
  try {
    module = await Promise.race([factory(config), instantiationFailed, timedOut]);
  } catch (err) {
    (config.PThread as { terminateAllThreads?: () => void } | undefined)?.terminateAllThreads?.();
    throw err;
  } finally {
    clearTimeout(timer);
    workerThreads.Worker = NodeWorker;
  }
  // The same entry points tfjs's own initialiser binds; BackendWasm calls them by these names.
  (module as unknown as { tfjs: Record<string, unknown> }).tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  wasmBackend.setThreadsCount(threads);
  const backend = new wasmBackend.BackendWasm(module as never);
  // Pool threads park between kernels; they must not keep a finished CLI process alive.
  for (const worker of [...module.PThread.unusedWorkers, ...module.PThread.runningWorkers]) worker.unref();
  return backend;
}

/**
 * Runs `start` and removes the process-wide 'uncaughtException' / 'unhandledRejection' listeners
 * it added. Emscripten's Node glue installs listeners that rethrow; Node then reports the rethrow
 * site, a single minified line of several hundred kilobytes, instead of the real error. Without
 * them Node's default handling (print the error, exit non-zero) applies as before.
 */
async function withoutEmscriptenProcessHandlers<T>(start: () => Promise<T>): Promise<T> {
  type Listener = (...args: unknown[]) => void;
  const events = ['uncaughtException', 'unhandledRejection'];
  const listeners = (event: string) => process.listeners(event as 'uncaughtException') as unknown as Listener[];
  const before = new Map(events.map((event) => [event, new Set(listeners(event))]));
  try {
    return await start();
  } finally {
    for (const event of events) {
      for (const listener of listeners(event)) {
        if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
      }
    }
  }
}

/**
 * Replaces the registered 'wasm' backend factory by one that starts the threaded build. Call before
 * the wasm backend first initialises (tf.setBackend('wasm')); later calls do nothing.
 */
export function installThreadedWasm(env: NodeJS.ProcessEnv = process.env): void {
  if (installed) return;
  const { threads, chosenBy } = chooseWasmThreads(env);
  const registry = tf.engine().registryFactory as Record<
    string,
    { factory: () => tf.KernelBackend | Promise<tf.KernelBackend>; priority: number } | undefined
  >;
  const stock = registry.wasm;
  if (!stock) throw new Error('the wasm backend must be imported before installThreadedWasm()');
  installed = true;
  if (tf.engine().registry.wasm) {
    // Already running: too late to swap builds; report what runs.
    status = { threads: wasmBackend.getThreadsCount(), chosenBy, build: 'stock', reason: 'the wasm backend was already running' };
    return;
  }
  tf.removeBackend('wasm');
  const startStock = () => withoutEmscriptenProcessHandlers(async () => stock.factory());
  const start = async (): Promise<tf.KernelBackend> => {
    if (threads === 1) {
      status = { threads: 1, chosenBy, build: 'stock', reason: 'one thread needs no worker pool' };
      return startStock();
    }
    try {
      const backend = await withoutEmscriptenProcessHandlers(() => startThreaded(threads));
      status = { threads: wasmBackend.getThreadsCount(), chosenBy, build: 'threaded-simd' };
      try {
        await startHeapHelpers(status.threads - 1);
        status.helpers = heapHelperCount();
      } catch (err) {
        status.helpers = 0;
        status.helpersReason = `helper threads failed to start: ${firstLine(err)}`;
      }
      return backend;
    } catch (err) {
      status = { threads: 1, chosenBy, build: 'stock', reason: `threaded build failed: ${firstLine(err)}` };
      return startStock();
    }
  };
  // tfjs may call a factory again while the first call is still starting (tf.findBackend starts an
  // initialisation that tf.setBackend, called next, does not wait for). Every call gets the same
  // backend, so the process holds one wasm instance and one worker pool; disposing that backend
  // lets a later call start a fresh one.
  let starting: Promise<tf.KernelBackend> | undefined;
  tf.registerBackend(
    'wasm',
    () => {
      starting ??= start().then(
        (backend) => {
          const dispose = backend.dispose.bind(backend);
          backend.dispose = () => {
            starting = undefined;
            dispose();
          };
          return backend;
        },
        (err: unknown) => {
          starting = undefined;
          throw err;
        },
      );
      return starting;
    },
    stock.priority,
  );
}
