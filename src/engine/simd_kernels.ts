import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * mtl-bench's own WebAssembly SIMD kernels (source: simd/kernels.c, built by
 * scripts/build-simd.sh; the built modules are committed, so users need no compiler).
 *
 * The module imports the tfjs wasm backend's memory: its functions take the heap offsets of
 * tensors the backend holds and read and write them in place. A shared memory (the threaded
 * build) needs the module built for shared memory, a plain one (tfjs's single-threaded builds)
 * the other. Everything about it is optional: if a file is missing, does not compile, or lacks a
 * function, the kernels that would use it keep their previous implementation, and the reason is
 * kept for `doctor` (simdKernelsStatus).
 */

/** The slice of the WebAssembly API used here (the project's TypeScript lib has no wasm types). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
export type WasmModule = object;
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: Record<string, unknown> };
}
const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Exported functions every module must have, with their parameter counts. */
const REQUIRED_FUNCTIONS = {
  filter_grad_tiles: 4,
  filter_grad: 18,
  channel_blocks: 1,
  channel_sums: 7,
  batch_norm_grad_sums: 9,
  batch_norm_apply: 8,
  batch_norm_grad_input: 10,
  relu_grad: 5,
  max_pool_grad_2x2: 10,
} as const;
export type SimdFunctionName = keyof typeof REQUIRED_FUNCTIONS;

type SimdFunction = (...args: number[]) => number;

export interface SimdKernels {
  /** The backend memory the functions work on; `memory.buffer` is the heap. */
  memory: WasmMemory;
  /** The compiled module, for helper threads that instantiate it on the same memory. */
  module: WasmModule;
  call(name: SimdFunctionName, ...args: number[]): number;
}

export interface SimdKernelsStatus {
  /** True once the module runs on the active wasm backend's memory. */
  loaded: boolean;
  /** Why it does not, when it does not (the built-in kernels run instead). */
  reason?: string;
  /** The module file in use or tried. */
  file?: string;
}

const moduleFolder = fileURLToPath(new URL('../../../src/engine/simd/', import.meta.url));
const MODULE_FILES = { shared: 'mtl_simd_shared.wasm', plain: 'mtl_simd.wasm' } as const;

let enabled = true;
type LoadResult = (SimdKernels & { file: string }) | { failure: string; file?: string };
/** Per backend instance (a new backend has a new memory), with the folder it was loaded from. */
const loadedFor = new WeakMap<object, { folder: string; result: LoadResult }>();
let lastStatus: SimdKernelsStatus | undefined;
let folder = moduleFolder;

/** Switches the SIMD kernels off (or back on) for every backend; for tests and benchmarks. */
export function setSimdKernels(on: boolean): void {
  enabled = on;
}

/** Loads the modules from another folder from now on (tests of a missing or broken module). */
export function setSimdModuleFolderForTests(other: string | undefined): void {
  folder = other ?? moduleFolder;
}

/** What the last lookup found (undefined before the wasm backend first asked for the kernels). */
export function simdKernelsStatus(): SimdKernelsStatus | undefined {
  if (!enabled) return { loaded: false, reason: 'switched off' };
  return lastStatus;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

/** The WebAssembly.Memory of a tfjs wasm backend (threaded build: Module.wasmMemory; stock: its export). */
function backendMemory(backend: object): WasmMemory | undefined {
  const module = (backend as { wasm?: { wasmMemory?: WasmMemory; asm?: { memory?: WasmMemory } } }).wasm;
  const memory = module?.wasmMemory ?? module?.asm?.memory;
  return memory && typeof memory === 'object' && 'buffer' in memory ? memory : undefined;
}

function load(backend: object): LoadResult {
  const memory = backendMemory(backend);
  if (!memory) return { failure: 'the wasm backend exposes no memory object' };
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  const file = path.join(folder, shared ? MODULE_FILES.shared : MODULE_FILES.plain);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as { code?: string }).code;
    return { failure: code === 'ENOENT' ? `${file} is missing (rebuild it: scripts/build-simd.sh)` : firstLine(err), file };
  }
  try {
    const module = new WebAssemblyApi.Module(bytes);
    const { exports } = new WebAssemblyApi.Instance(module, { env: { memory } });
    for (const [name, parameters] of Object.entries(REQUIRED_FUNCTIONS)) {
      const fn = exports[name];
      if (typeof fn !== 'function' || (fn as SimdFunction).length !== parameters) {
        return { failure: `${file} has no function ${name} of ${parameters} parameters (rebuild it: scripts/build-simd.sh)`, file };
      }
    }
    const functions = exports as Record<SimdFunctionName, SimdFunction>;
    return { memory, module, file, call: (name, ...args) => functions[name](...args) };
  } catch (err) {
    return { failure: `${file} does not load: ${firstLine(err)}`, file };
  }
}

/**
 * The SIMD kernels on `backend`'s memory, or undefined (switched off, or the module does not
 * load: see simdKernelsStatus). Loaded once per backend instance.
 */
export function simdKernels(backend: object): SimdKernels | undefined {
  if (!enabled) return undefined;
  let cached = loadedFor.get(backend);
  if (cached?.folder !== folder) {
    cached = { folder, result: load(backend) };
    loadedFor.set(backend, cached);
  }
  const found = cached.result;
  lastStatus =
    'failure' in found
      ? { loaded: false, reason: found.failure, ...(found.file ? { file: found.file } : {}) }
      : { loaded: true, file: found.file };
  return 'failure' in found ? undefined : found;
}
