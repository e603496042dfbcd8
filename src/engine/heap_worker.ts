import { type MessagePort, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { type CopyArray, type PoolDims, type TransposePlan, maxPoolGradTwoByTwoRange, transposeRange } from './kernels/heap_loops.js';
import type { SimdFunctionName, WasmMemory, WasmModule } from './simd_kernels.js';

/**
 * A helper thread of heap_workers.ts: waits on its control word, takes its part of a kernel's loop
 * from its port, runs it on the shared wasm heap, and signals back. Tensors are given as element
 * offsets into the heap.
 */

/** A tensor's place in the heap: `offset` and `length` in elements of 4 bytes (1 byte for bool). */
export interface HeapSpan {
  offset: number;
  length: number;
  bytes: 1 | 4;
}

export type HeapJob =
  | { kind: 'transpose'; source: HeapSpan; target: HeapSpan; plan: TransposePlan }
  | { kind: 'maxPoolGrad2x2'; x: HeapSpan; dy: HeapSpan; dx: HeapSpan; dims: PoolDims }
  /** A function of mtl-bench's SIMD module (simd_kernels.ts), called with `args` then the part's begin and end. */
  | { kind: 'simd'; fn: SimdFunctionName; args: number[] };

/** The SIMD module and the memory it works on, sent to a helper once. */
export interface SimdAttachment {
  module: WasmModule;
  memory: WasmMemory;
}

export interface HeapJobPart {
  job: HeapJob;
  begin: number;
  end: number;
  /** Sent with the first part and whenever wasm memory has grown since the last one. */
  heap?: SharedArrayBuffer;
  /** Sent with the first SIMD job and whenever the module or memory changed since. */
  simd?: SimdAttachment;
}

/** States of a helper's control word, shared with heap_workers.ts. */
export const IDLE = 0;
export const POSTED = 1;
export const FAILED = 2;

interface WasmInstanceApi {
  Instance: new (module: WasmModule, imports: object) => { exports: Record<string, unknown> };
}

/** This helper's instance of the SIMD module, on the backend's (shared) memory. */
let simdExports: Record<string, unknown> | undefined;

function attachSimd(simd: SimdAttachment): void {
  const api = (globalThis as unknown as { WebAssembly: WasmInstanceApi }).WebAssembly;
  simdExports = new api.Instance(simd.module, { env: { memory: simd.memory } }).exports;
}

function copyView(heap: SharedArrayBuffer, span: HeapSpan): CopyArray {
  return span.bytes === 1 ? new Uint8Array(heap, span.offset, span.length) : new Int32Array(heap, span.offset * 4, span.length);
}

function floatView(heap: SharedArrayBuffer, span: HeapSpan): Float32Array {
  return new Float32Array(heap, span.offset * 4, span.length);
}

export function runHeapJob(heap: SharedArrayBuffer, job: HeapJob, begin: number, end: number): void {
  switch (job.kind) {
    case 'transpose':
      transposeRange(copyView(heap, job.source), copyView(heap, job.target), job.plan, begin, end);
      return;
    case 'maxPoolGrad2x2':
      maxPoolGradTwoByTwoRange(floatView(heap, job.x), floatView(heap, job.dy), floatView(heap, job.dx), job.dims, begin, end);
      return;
    case 'simd': {
      const fn = simdExports?.[job.fn];
      if (typeof fn !== 'function') throw new Error(`the SIMD module has no function ${job.fn} in this helper`);
      (fn as (...args: number[]) => unknown)(...job.args, begin, end);
      return;
    }
    default:
      throw new Error(`unknown heap job "${(job as { kind: string }).kind}"`);
  }
}

function serve(control: Int32Array, port: MessagePort): void {
  let heap: SharedArrayBuffer | undefined;
  parentPort!.postMessage('ready');
  for (;;) {
    Atomics.wait(control, 0, IDLE);
    if (Atomics.load(control, 0) !== POSTED) continue;
    try {
      const part = receiveMessageOnPort(port)?.message as HeapJobPart | undefined;
      if (!part) throw new Error('woken without a job');
      if (part.heap) heap = part.heap;
      if (part.simd) attachSimd(part.simd);
      if (!heap) throw new Error('no heap received');
      runHeapJob(heap, part.job, part.begin, part.end);
      Atomics.store(control, 0, IDLE);
    } catch (err) {
      port.postMessage({ error: err instanceof Error ? err.message : String(err) });
      Atomics.store(control, 0, FAILED);
    }
    Atomics.notify(control, 0);
  }
}

const helperData = workerData as { control: Int32Array; port: MessagePort } | null | undefined;
if (parentPort && helperData?.control) serve(helperData.control, helperData.port);
