import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { packageRoot } from '../../src/util/paths.js';

const engineUrl = (file: string) => JSON.stringify(pathToFileURL(path.join(packageRoot, 'dist', 'src', 'engine', file)).href);

/** Runs an ES module snippet in a fresh Node process with two wasm threads (so one helper thread). */
function runWithTwoThreads(code: string) {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: { ...process.env, MTL_BENCH_WASM_THREADS: '2' },
    timeout: 180_000,
  });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!);
}

test('with a helper thread, split kernels give exactly the single-threaded results', () => {
  const report = runWithTwoThreads(`
    import * as tf from '@tensorflow/tfjs';
    const { initBackend } = await import(${engineUrl('backend.js')});
    const { heapHelperCount } = await import(${engineUrl('heap_workers.js')});
    const { transposeTensor } = await import(${engineUrl('kernels/transpose.js')});
    const { originalCpuKernel } = await import(${engineUrl('kernels/index.js')});
    await initBackend({ requested: 'wasm' });
    const helpers = heapHelperCount();
    // Large enough to be split; a ReLU makes ties, as in the backbones.
    const x = tf.relu(tf.randomNormal([8, 64, 64, 16], 0, 1, 'float32', 1));
    const y = tf.maxPool(x, 2, 2, 'valid');
    const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 2);
    const attrs = { filterSize: 2, strides: 2, pad: 'valid' };
    const ours = tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, attrs).dataSync();
    const transposed = tf.engine().makeTensorFromTensorInfo(transposeTensor('wasm', tf.backend(), x, [3, 1, 2, 0])).dataSync();
    const values = { x: x.dataSync(), y: y.dataSync(), dy: dy.dataSync() };
    await tf.setBackend('cpu');
    const [cx, cy, cdy] = [tf.tensor(values.x, x.shape), tf.tensor(values.y, y.shape), tf.tensor(values.dy, dy.shape)];
    const info = originalCpuKernel('MaxPoolGrad')({ inputs: { dy: cdy, input: cx, output: cy }, backend: tf.backend(), attrs });
    const expected = tf.engine().makeTensorFromTensorInfo(info).dataSync();
    const expectedTransposed = tf.transpose(cx, [3, 1, 2, 0]).dataSync();
    const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
    process.stdout.write(JSON.stringify({ helpers, maxPoolGrad: same(ours, expected), transpose: same(transposed, expectedTransposed) }));
  `);
  assert.deepEqual(report, { helpers: 1, maxPoolGrad: true, transpose: true });
});

test('a helper that fails has its part redone on the main thread, and later calls stay there', () => {
  const report = runWithTwoThreads(`
    import * as tf from '@tensorflow/tfjs';
    const { initBackend } = await import(${engineUrl('backend.js')});
    const { heapHelperCount, heapHelpersDisabledReason, runOnHeap } = await import(${engineUrl('heap_workers.js')});
    await initBackend({ requested: 'wasm' });
    const before = heapHelperCount();
    const done = new Uint8Array(100);
    runOnHeap(new SharedArrayBuffer(8), { kind: 'no-such-job' }, 100, 1, (begin, end) => done.fill(1, begin, end));
    const report = { before, after: heapHelperCount(), reason: heapHelpersDisabledReason(), allDone: done.every((d) => d === 1) };
    process.stdout.write(JSON.stringify(report));
  `);
  assert.equal(report.before, 1);
  assert.equal(report.after, 0);
  assert.equal(report.allDone, true);
  assert.match(report.reason, /unknown heap job "no-such-job"/);
});

test('a late wake-up does not end the wait: the main thread waits until the helper has stored its outcome', async () => {
  const { waitWhilePosted } = await import('../../src/engine/heap_workers.js');
  const { IDLE, POSTED } = await import('../../src/engine/heap_worker.js');
  const control = new Int32Array(new SharedArrayBuffer(8));
  Atomics.store(control, 0, POSTED);
  // The stand-in helper first wakes the waiting main thread without changing the word (the
  // notify of an earlier part arriving late), and only then stores IDLE.
  const helper = new Worker(
    `const { workerData } = require('node:worker_threads');
     const control = workerData;
     while (Atomics.notify(control, 0) === 0) {}
     Atomics.wait(control, 1, 0, 50);
     Atomics.store(control, 0, ${IDLE});
     Atomics.notify(control, 0);`,
    { eval: true, workerData: control },
  );
  await once(helper, 'online');
  const outcome = waitWhilePosted(control, 60_000);
  const stateSeen = Atomics.load(control, 0);
  await once(helper, 'exit');
  assert.equal(outcome, 'done');
  assert.equal(stateSeen, IDLE, 'the wait ended while the helper had not finished');
});
