import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
// Only constants and types come from the helper's module; its serving loop starts only inside a worker.
import { FAILED, POSTED, type HeapJob, type HeapJobPart, type SimdAttachment } from './heap_worker.js';

/**
 * Helper threads for the memory-bound kernels we write in JavaScript (transposes, max-pool
 * gradients). XNNPACK spreads convolutions over the threaded wasm build's pool, but everything
 * written in JavaScript runs on the main thread while the pool idles; with one helper per extra
 * wasm thread, such a kernel splits its loop and runs on every core.
 *
 * The threaded build keeps tensors in a SharedArrayBuffer, so helpers read and write them in place:
 * a call posts each helper its part (the heap travels with it whenever wasm has grown it), wakes
 * it through an Atomics word, does its own part, then waits for the helpers. Kernels stay
 * synchronous, as tfjs requires, and the result is the same values in the same places as a
 * single-threaded run: the parts are disjoint.
 */

/** How long the main thread waits for a helper's part before it gives up on the helpers. */
const PART_TIMEOUT_MS = 60_000;

interface Helper {
  worker: Worker;
  port: MessagePort;
  control: Int32Array;
  sentHeap?: SharedArrayBuffer;
  sentSimd?: SimdAttachment;
}

let helpers: Helper[] = [];
let disabledReason: string | undefined;

/** Helpers running (0 when none were started or they were stopped after a failure). */
export function heapHelperCount(): number {
  return helpers.length;
}

/** Why helpers stopped, if one failed. */
export function heapHelpersDisabledReason(): string | undefined {
  return disabledReason;
}

/**
 * Starts `count` helper threads and resolves once each is ready. Without them (count 0, or if
 * they cannot start) every kernel simply runs on the main thread.
 */
export async function startHeapHelpers(count: number): Promise<void> {
  if (helpers.length > 0 || count < 1) return;
  const script = fileURLToPath(new URL('./heap_worker.js', import.meta.url));
  const started = await Promise.all(Array.from({ length: count }, () => startHelper(script)));
  helpers = started;
}

function startHelper(script: string): Promise<Helper> {
  const control = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  // Like the wasm pool's workers, helpers must not inherit flags such as --input-type or --eval.
  const worker = new Worker(script, { workerData: { control, port: port2 }, transferList: [port2], execArgv: [] });
  return new Promise<Helper>((resolve, reject) => {
    worker.once('message', () => {
      worker.removeAllListeners('error');
      // A helper that dies later (it should not: its loops only read and write given ranges)
      // takes the others with it; kernels then run on the main thread, and doctor says why.
      worker.once('error', (err: Error) => stopHeapHelpers(`a helper thread stopped: ${err.message}`));
      // A helper parks in Atomics.wait between calls; it must not keep a finished process alive.
      worker.unref();
      port1.unref();
      resolve({ worker, port: port1, control });
    });
    worker.once('error', reject);
  });
}

function stopHeapHelpers(reason?: string): void {
  for (const helper of helpers) void helper.worker.terminate();
  helpers = [];
  if (reason) disabledReason = reason;
}

/** How a helper's part ended, as its control word tells. */
export type PartOutcome = 'done' | 'failed' | 'timed-out';

/**
 * Waits until a helper's control word leaves POSTED (the helper stores IDLE or FAILED, then
 * notifies). Atomics.wait answering 'ok' only means that someone notified the word, not that this
 * part is finished: a helper notifies after its store, and that notify can arrive after the main
 * thread has already read IDLE, posted the next part and gone to sleep on it. Trusting it let a
 * kernel return while the helper was still writing its part, into memory the engine then reused
 * (heap corruption: NaN losses, then a hang in the allocator, one two-thread run in a few). So
 * the word is read again after every wake-up.
 */
export function waitWhilePosted(control: Int32Array, timeoutMs: number): PartOutcome {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = Atomics.load(control, 0);
    if (state !== POSTED) return state === FAILED ? 'failed' : 'done';
    const left = deadline - Date.now();
    if (left <= 0) return 'timed-out';
    Atomics.wait(control, 0, POSTED, left);
  }
}

/**
 * Runs `job` over items [0, total): helper i takes the i-th of (helpers + 1) near-equal parts and
 * the main thread the last one. Falls back to one part on the main thread when no helper runs,
 * the heap is not shared, or the work is too small to be worth waking anyone. A 'simd' job needs
 * `simd`, the module and memory its function runs on.
 */
export function runOnHeap(
  heap: ArrayBufferLike,
  job: HeapJob,
  total: number,
  minItemsPerPart: number,
  runPart: (begin: number, end: number) => void,
  simd?: SimdAttachment,
): void {
  const parts = Math.min(helpers.length + 1, Math.floor(total / Math.max(1, minItemsPerPart)));
  if (parts < 2 || !(heap instanceof SharedArrayBuffer)) {
    runPart(0, total);
    return;
  }
  const bounds = Array.from({ length: parts + 1 }, (_, i) => Math.round((i * total) / parts));
  const posted = helpers.slice(0, parts - 1);
  posted.forEach((helper, i) => {
    const part: HeapJobPart = { job, begin: bounds[i]!, end: bounds[i + 1]! };
    if (helper.sentHeap !== heap) {
      part.heap = heap;
      helper.sentHeap = heap;
    }
    if (simd && (helper.sentSimd?.module !== simd.module || helper.sentSimd.memory !== simd.memory)) {
      part.simd = simd;
      helper.sentSimd = simd;
    }
    helper.port.postMessage(part);
    Atomics.store(helper.control, 0, POSTED);
    Atomics.notify(helper.control, 0);
  });
  // Boxed, so that whatever the main thread's part threw (even undefined) is rethrown below.
  let mainFailure: { error: unknown } | undefined;
  try {
    runPart(bounds[parts - 1]!, total);
  } catch (error) {
    mainFailure = { error };
  }
  const failures: string[] = [];
  posted.forEach((helper, i) => {
    let failure: string | undefined;
    const outcome = waitWhilePosted(helper.control, PART_TIMEOUT_MS);
    if (outcome === 'timed-out') {
      failure = `a helper thread did not finish its part within ${PART_TIMEOUT_MS / 1000} s`;
    } else if (outcome === 'failed') {
      const report = receiveMessageOnPort(helper.port)?.message as { error?: string } | undefined;
      failure = report?.error ?? 'a helper thread failed';
    }
    if (failure === undefined) return;
    failures.push(failure);
    // Parts only write their own range from unchanged inputs: redoing one here is exact.
    if (mainFailure === undefined) runPart(bounds[i]!, bounds[i + 1]!);
  });
  // Later calls run on the main thread; `mtl-bench doctor` can tell why.
  if (failures.length > 0) stopHeapHelpers(failures[0]);
  if (mainFailure) throw mainFailure.error;
}
