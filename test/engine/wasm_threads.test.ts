import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { packageRoot } from '../../src/util/paths.js';
import { chooseWasmThreads, requestedWasmThreads } from '../../src/engine/wasm_threads.js';

const engineUrl = (file: string) => pathToFileURL(path.join(packageRoot, 'dist', 'src', 'engine', file)).href;

/** Runs an ES module snippet in a fresh Node process (the wasm backend starts once per process). */
function runSnippet(code: string, env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const TRAIN_AND_REPORT = `
  import * as tf from '@tensorflow/tfjs';
  const { initBackend } = await import(${JSON.stringify(engineUrl('backend.js'))});
  const { wasmThreadsStatus } = await import(${JSON.stringify(engineUrl('wasm_threads.js'))});
  await initBackend({ requested: 'wasm' });
  const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 1);
  const w = tf.variable(tf.randomUniform([3, 3, 3, 4], -1, 1, 'float32', 2));
  const { grads } = tf.variableGrads(() => tf.sum(tf.square(tf.conv2d(x, w, 1, 'same'))), [w]);
  const g = grads[w.name].dataSync();
  process.stdout.write(JSON.stringify({ status: wasmThreadsStatus(), finite: g.every(Number.isFinite), backend: tf.getBackend() }));
`;

test('the wasm backend runs the threaded build with the requested threads, and the process exits', () => {
  const { code, stdout, stderr } = runSnippet(TRAIN_AND_REPORT, { MTL_BENCH_WASM_THREADS: '2' });
  assert.equal(code, 0, stderr);
  const report = JSON.parse(stdout.trim().split('\n').at(-1)!);
  assert.equal(report.backend, 'wasm');
  assert.equal(report.finite, true);
  assert.deepEqual(report.status, { threads: 2, chosenBy: 'MTL_BENCH_WASM_THREADS', build: 'threaded-simd', helpers: 1 });
});

test("MTL_BENCH_WASM_THREADS=1 keeps tfjs's own single-threaded build", () => {
  const { code, stdout, stderr } = runSnippet(TRAIN_AND_REPORT, { MTL_BENCH_WASM_THREADS: '1' });
  assert.equal(code, 0, stderr);
  const report = JSON.parse(stdout.trim().split('\n').at(-1)!);
  assert.equal(report.finite, true);
  assert.equal(report.status.build, 'stock');
  assert.equal(report.status.threads, 1);
});

for (const threads of ['1', '2']) {
  const started = `an uncaught error after the wasm backend started (${threads} thread${threads === '1' ? '' : 's'})`;
  test(`${started} is reported as itself, not as the wasm glue source`, () => {
    const { code, stderr } = runSnippet(
      `
      const { initBackend } = await import(${JSON.stringify(engineUrl('backend.js'))});
      await initBackend({ requested: 'wasm' });
      setTimeout(() => { throw new Error('deliberate failure'); }, 0);
    `,
      { MTL_BENCH_WASM_THREADS: threads },
    );
    assert.notEqual(code, 0);
    assert.match(stderr, /deliberate failure/);
    assert.ok(stderr.length < 5000, `stderr is ${stderr.length} characters`);
  });
}

test('MTL_BENCH_WASM_THREADS is validated', () => {
  assert.equal(requestedWasmThreads({ MTL_BENCH_WASM_THREADS: '3' }), 3);
  assert.ok(requestedWasmThreads({}) >= 1);
  for (const bad of ['0', '9', 'two', '1.5', '-1']) {
    assert.throws(
      () => requestedWasmThreads({ MTL_BENCH_WASM_THREADS: bad }),
      /MTL_BENCH_WASM_THREADS: expected a whole number from 1 to 8/,
    );
  }
});

test('without MTL_BENCH_WASM_THREADS the wasm backend takes the idle cores, at least 1 and at most 8', () => {
  const threads = (cores: number, load: number) => requestedWasmThreads({}, { cores, load });
  assert.equal(threads(2, 0.1), 2);
  assert.equal(threads(2, 0.6), 1, 'the second core is mostly busy');
  assert.equal(threads(2, 5.3), 1);
  assert.equal(threads(8, 2.2), 6);
  assert.equal(threads(16, 0), 8, 'the build has 8 pool threads');
  assert.equal(threads(1, 0), 1);
  assert.equal(threads(4, 0), 4, 'platforms without a load average report 0');
  assert.equal(chooseWasmThreads({}, { cores: 2, load: 0.25 }).chosenBy, '2 cores, load average 0.25');
  assert.equal(chooseWasmThreads({ MTL_BENCH_WASM_THREADS: '1' }, { cores: 2, load: 0 }).threads, 1, 'the variable wins');
});
