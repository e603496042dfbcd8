import assert from 'node:assert/strict';
import { initBackend } from '../src/engine/backend.js';
import { wasmThreadsStatus } from '../src/engine/wasm_threads.js';

/**
 * Threads of the wasm backend in tests. Left to itself the count follows the machine's load when
 * the backend starts (see chooseWasmThreads), so a busy machine would test tfjs's single-threaded
 * build and an idle one the threaded build. Two threads: the threaded build with one helper thread
 * for our JavaScript kernels, what an idle machine with two or more cores runs.
 */
const TEST_WASM_THREADS = 2;

/**
 * Brings up the wasm backend on the pinned build (once per process; later calls return at once),
 * and fails if that build did not start rather than testing another one.
 */
export async function initTestWasmBackend(): Promise<void> {
  process.env.MTL_BENCH_WASM_THREADS = String(TEST_WASM_THREADS);
  await initBackend({ requested: 'wasm' });
  const status = wasmThreadsStatus();
  assert.deepEqual(
    status && { threads: status.threads, build: status.build },
    { threads: TEST_WASM_THREADS, build: 'threaded-simd' },
    `the wasm backend runs the build the tests pin${status?.reason ? ` (stock build: ${status.reason})` : ''}`,
  );
}
