import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Entry point of one pthread of the multi-threaded wasm backend under Node (see wasm_threads.ts).
 *
 * Emscripten starts every pthread by running its worker script in a worker_thread. tfjs ships that
 * script only as a string (meant for a browser Blob URL, which Node's Worker cannot load), so this
 * module is the on-disk script Node needs: it evaluates tfjs's worker source with the CommonJS
 * `require` and `__filename` that source expects. The source carries escaped newlines inside string
 * literals that the Blob path unescapes; re-escape them the same way so it parses. Messages the
 * main thread posts before this module has loaded wait in the port until the source listens.
 */
const require = createRequire(import.meta.url);
const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as {
  wasmWorkerContents: string;
};

// eslint-disable-next-line @typescript-eslint/no-implied-eval -- tfjs's worker exists only as source text (above).
const runWorker = new Function('require', '__filename', wasmWorkerContents.replace(/\n/g, '\\n')) as (
  req: NodeJS.Require,
  filename: string,
) => void;
runWorker(require, fileURLToPath(import.meta.url));
