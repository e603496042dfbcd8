import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initTestWasmBackend } from '../wasm_backend.js';
import { originalCpuConv2DBackpropFilter, originalCpuKernel } from '../../src/engine/kernels/index.js';
import { simdMaxPoolGradCallCount } from '../../src/engine/kernels/layout_kernels.js';
import { simdFilterGradCallCount } from '../../src/engine/kernels/conv2d_grads.js';
import { setSimdKernels, setSimdModuleFolderForTests, simdKernelsStatus } from '../../src/engine/simd_kernels.js';
import { packageRoot } from '../../src/util/paths.js';
import { backendBuffers, randomValues, relativeError, runKernelFunc, runRegistered, type KernelCall } from './helpers.js';

const TOLERANCE = 1e-4;

interface FilterCase {
  name: string;
  x: [number, number, number, number];
  outChannels: number;
  filter: [number, number];
  strides: [number, number];
  pad: 'same' | 'valid' | number;
}

// Every tile shape of the kernel (1–4 input channels, 4 or 8 output channels in the last tile),
// paddings that leave taps without any valid column, strides, 'valid' leaving rows unread, and
// the shapes of convnet-4's and convnet-s's layers at a smaller batch (large enough to be split
// between the main thread and the helper thread).
const CASES: FilterCase[] = [
  { name: '3x3 same, 1 in, 4 out', x: [2, 5, 6, 1], outChannels: 4, filter: [3, 3], strides: [1, 1], pad: 'same' },
  { name: '3x3 same, 2 in, 12 out', x: [2, 6, 5, 2], outChannels: 12, filter: [3, 3], strides: [1, 1], pad: 'same' },
  { name: '3x3 same, 3 in, 8 out (first layer)', x: [3, 9, 8, 3], outChannels: 8, filter: [3, 3], strides: [1, 1], pad: 'same' },
  { name: '3x3 valid, 5 in, 20 out', x: [2, 7, 6, 5], outChannels: 20, filter: [3, 3], strides: [1, 1], pad: 'valid' },
  { name: '5x4 same, 6 in, 4 out (uneven padding)', x: [2, 6, 7, 6], outChannels: 4, filter: [5, 4], strides: [1, 1], pad: 'same' },
  { name: 'pad 3 larger than the 2x2 filter', x: [2, 4, 4, 2], outChannels: 8, filter: [2, 2], strides: [1, 1], pad: 3 },
  { name: '3x3 same stride 2, odd input', x: [2, 7, 7, 3], outChannels: 4, filter: [3, 3], strides: [2, 2], pad: 'same' },
  { name: '3x3 valid stride 2 leaves a row unused', x: [2, 8, 8, 4], outChannels: 8, filter: [3, 3], strides: [2, 2], pad: 'valid' },
  {
    name: '4x4 valid stride 3 leaves rows and columns unused',
    x: [2, 11, 12, 2],
    outChannels: 4,
    filter: [4, 4],
    strides: [3, 3],
    pad: 'valid',
  },
  { name: '2x3 filter, strides 2x1', x: [2, 6, 9, 3], outChannels: 8, filter: [2, 3], strides: [2, 1], pad: 'same' },
  { name: '1x1, 16 in, 24 out', x: [2, 5, 6, 16], outChannels: 24, filter: [1, 1], strides: [1, 1], pad: 'same' },
  { name: 'convnet-4 layer 1 (64x64, 3 → 32)', x: [2, 64, 64, 3], outChannels: 32, filter: [3, 3], strides: [1, 1], pad: 'same' },
  { name: 'convnet-4 layer 2 (32x32, 32 → 64)', x: [2, 32, 32, 32], outChannels: 64, filter: [3, 3], strides: [1, 1], pad: 'same' },
  { name: 'convnet-4 layer 4 (8x8, 128 → 128)', x: [4, 8, 8, 128], outChannels: 128, filter: [3, 3], strides: [1, 1], pad: 'same' },
  { name: 'convnet-s layer 2 (16x16, 32 → 64)', x: [4, 16, 16, 32], outChannels: 64, filter: [3, 3], strides: [1, 1], pad: 'same' },
];

function filterGradCall(c: FilterCase, seed: number): KernelCall {
  const filterShape = [c.filter[0], c.filter[1], c.x[3], c.outChannels];
  const info = tf.backend_util.computeConv2DInfo(c.x, filterShape as typeof c.x, c.strides, 1, c.pad, undefined, false, 'channelsLast');
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  return {
    inputs: {
      x: { values: randomValues(size(c.x), seed), shape: c.x },
      dy: { values: randomValues(size(info.outShape), seed + 1), shape: info.outShape },
    },
    attrs: { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape },
  };
}

async function cpuFilterGrad(call: KernelCall): Promise<Float32Array> {
  await tf.setBackend('cpu');
  const expected = runKernelFunc(originalCpuConv2DBackpropFilter(), call);
  await tf.setBackend('wasm');
  return expected;
}

before(async () => {
  await initTestWasmBackend();
});

describe('the SIMD filter gradient', () => {
  test('the module loads on the wasm backend the tests pin', () => {
    const call = filterGradCall(CASES[0]!, 1);
    runRegistered('Conv2DBackpropFilter', call);
    assert.deepEqual(simdKernelsStatus()?.loaded, true, `SIMD kernels: ${simdKernelsStatus()?.reason}`);
    assert.match(simdKernelsStatus()!.file!, /mtl_simd_shared\.wasm$/);
  });

  for (const [index, c] of CASES.entries()) {
    test(`equals the cpu backend's Conv2DBackpropFilter: ${c.name}`, async () => {
      const call = filterGradCall(c, 300 + 11 * index);
      const expected = await cpuFilterGrad(call);
      const buffersBefore = backendBuffers();
      const callsBefore = simdFilterGradCallCount();
      const actual = runRegistered('Conv2DBackpropFilter', call);
      assert.equal(simdFilterGradCallCount(), callsBefore + 1, 'the registered kernel ran the SIMD module');
      assert.equal(backendBuffers(), buffersBefore, 'the kernel left no scratch tensors');
      const error = relativeError(actual, expected);
      assert.ok(error <= TOLERANCE, `relative error ${error.toExponential(2)} > ${TOLERANCE}`);
    });
  }

  test('output channels that are not a multiple of 4 go to the built-in path, still exact', async () => {
    const call = filterGradCall({ name: 'odd', x: [2, 6, 6, 3], outChannels: 6, filter: [3, 3], strides: [1, 1], pad: 'same' }, 7);
    const expected = await cpuFilterGrad(call);
    const callsBefore = simdFilterGradCallCount();
    const error = relativeError(runRegistered('Conv2DBackpropFilter', call), expected);
    assert.equal(simdFilterGradCallCount(), callsBefore);
    assert.ok(error <= TOLERANCE, `relative error ${error.toExponential(2)}`);
  });
});

describe('a missing or broken SIMD module falls back to the built-in kernels with a reason', () => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'mtl-simd-'));
  after(() => {
    setSimdModuleFolderForTests(undefined);
    setSimdKernels(true);
    rmSync(folder, { recursive: true, force: true });
  });

  const call = () => filterGradCall(CASES[2]!, 42);
  async function fallsBack(reason: RegExp) {
    const expected = await cpuFilterGrad(call());
    const callsBefore = simdFilterGradCallCount();
    const error = relativeError(runRegistered('Conv2DBackpropFilter', call()), expected);
    assert.equal(simdFilterGradCallCount(), callsBefore, 'the SIMD module did not run');
    assert.ok(error <= TOLERANCE, `relative error ${error.toExponential(2)}`);
    const status = simdKernelsStatus();
    assert.equal(status?.loaded, false);
    assert.match(status?.reason ?? '', reason);
  }

  test('missing file', async () => {
    setSimdModuleFolderForTests(path.join(folder, 'nowhere'));
    await fallsBack(/mtl_simd_shared\.wasm is missing \(rebuild it: scripts\/build-simd\.sh\)/);
  });

  test('not WebAssembly', async () => {
    writeFileSync(path.join(folder, 'mtl_simd_shared.wasm'), 'not a wasm module');
    setSimdModuleFolderForTests(folder);
    await fallsBack(/mtl_simd_shared\.wasm does not load: /);
  });

  test('a valid module without the kernels', async () => {
    // The smallest valid module: magic number and version, no sections.
    writeFileSync(path.join(folder, 'mtl_simd_shared.wasm'), Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    // What a folder gave is remembered per backend; another spelling of it forces a new load.
    setSimdModuleFolderForTests(`${folder}${path.sep}`);
    await fallsBack(/has no function filter_grad_tiles of 4 parameters/);
  });

  test('switched off', async () => {
    setSimdModuleFolderForTests(undefined);
    setSimdKernels(false);
    await fallsBack(/switched off/);
    setSimdKernels(true);
  });
});

test('on tfjs single-threaded build (plain memory) the other module loads and gives the same gradient', () => {
  const engineUrl = (file: string) => JSON.stringify(pathToFileURL(path.join(packageRoot, 'dist', 'src', 'engine', file)).href);
  const result = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
      import * as tf from '@tensorflow/tfjs';
      const { initBackend } = await import(${engineUrl('backend.js')});
      const { originalCpuConv2DBackpropFilter } = await import(${engineUrl('kernels/index.js')});
      const { simdKernelsStatus } = await import(${engineUrl('simd_kernels.js')});
      await initBackend({ requested: 'wasm' });
      const x = tf.randomNormal([2, 9, 8, 3], 0, 1, 'float32', 1);
      const dy = tf.randomNormal([2, 9, 8, 8], 0, 1, 'float32', 2);
      const attrs = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 3, 8] };
      const ours = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs).dataSync();
      const values = { x: x.dataSync(), dy: dy.dataSync() };
      await tf.setBackend('cpu');
      const inputs = { x: tf.tensor(values.x, x.shape), dy: tf.tensor(values.dy, dy.shape) };
      const info = originalCpuConv2DBackpropFilter()({ inputs, backend: tf.backend(), attrs });
      const expected = tf.engine().makeTensorFromTensorInfo(info).dataSync();
      let diff = 0, scale = 0;
      for (let i = 0; i < expected.length; i++) {
        diff = Math.max(diff, Math.abs(ours[i] - expected[i]));
        scale = Math.max(scale, Math.abs(expected[i]));
      }
      process.stdout.write(JSON.stringify({ status: simdKernelsStatus(), error: diff / scale }));
    `,
    ],
    { encoding: 'utf8', env: { ...process.env, MTL_BENCH_WASM_THREADS: '1' }, timeout: 180_000 },
  );
  assert.equal(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { status: { loaded: boolean; file: string }; error: number };
  assert.equal(report.status.loaded, true);
  assert.match(report.status.file, /mtl_simd\.wasm$/);
  assert.ok(report.error <= TOLERANCE, `relative error ${report.error}`);
});

describe('the SIMD max-pool gradient (2×2, stride 2) equals the cpu backend’s exactly', () => {
  function poolCall(shape: [number, number, number, number], seed: number, special: boolean): KernelCall {
    const count = shape.reduce((a, b) => a * b, 1);
    // After a ReLU many inputs are exactly 0, so windows tie: the first maximum must win.
    const input = randomValues(count, seed).map((v) => Math.max(0, v));
    if (special) {
      // Window (0,0): NaN in scan position 0 for channel 0, -Infinity everywhere for channel 1,
      // NaN in the last position for channel 2.
      const [, , w, c] = shape;
      input[0] = NaN;
      for (const p of [0, c, w * c, w * c + c]) input[p + 1] = -Infinity;
      input[w * c + c + 2] = NaN;
    }
    const info = tf.backend_util.computePool2DInfo(shape, 2, 2, 1, 'valid');
    const outCount = info.outShape.reduce((a, b) => a * b, 1);
    return {
      inputs: {
        dy: { values: randomValues(outCount, seed + 1), shape: info.outShape },
        input: { values: input, shape },
        output: { values: new Float32Array(outCount), shape: info.outShape },
      },
      attrs: { filterSize: 2, strides: 2, pad: 'valid' },
    };
  }
  const POOL_CASES: { name: string; shape: [number, number, number, number]; special: boolean }[] = [
    { name: 'ties after a ReLU, NaN and -Infinity', shape: [2, 6, 6, 4], special: true },
    { name: 'odd height and width (an uncovered row and column)', shape: [2, 7, 5, 8], special: false },
    { name: 'convnet-4 layer 1 (split between threads)', shape: [8, 64, 64, 32], special: false },
  ];
  for (const [index, c] of POOL_CASES.entries()) {
    test(c.name, async () => {
      const call = poolCall(c.shape, 60 + index, c.special);
      await tf.setBackend('cpu');
      const expected = runKernelFunc(originalCpuKernel('MaxPoolGrad'), call);
      await tf.setBackend('wasm');
      const callsBefore = simdMaxPoolGradCallCount();
      const actual = runRegistered('MaxPoolGrad', call);
      assert.equal(simdMaxPoolGradCallCount(), callsBefore + 1, 'the registered kernel ran the SIMD module');
      assert.equal(relativeError(actual, expected), 0);
    });
  }
});
