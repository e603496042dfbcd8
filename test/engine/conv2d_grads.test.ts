import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.js';
import { initTestWasmBackend } from '../wasm_backend.js';
import {
  CUSTOM_KERNEL_NAMES,
  customKernelNamesFor,
  customKernelsInUse,
  originalCpuConv2DBackpropFilter,
  originalCpuConv2DBackpropInput,
  originalKernelFunc,
  registerCustomKernels,
} from '../../src/engine/kernels/index.js';
import { FILTER_GRAD_FORMULATIONS, setFilterGradFormulation } from '../../src/engine/kernels/conv2d_grads.js';
import { backendBuffers, randomValues, relativeError, runKernelFunc, runRegistered, type KernelCall } from './helpers.js';

type Pad = 'same' | 'valid' | number;

interface ConvCase {
  name: string;
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  filter: [number, number];
  strides: [number, number];
  pad: Pad;
}

// Chosen to cover: both paddings, strides 1–3, odd sizes where 'valid' with a stride leaves bottom
// rows / right columns unread, non-square filters and strides, 1×1 filters, batch 1 and single
// channels, and one case at the scale of the real network's layers.
const CASES: ConvCase[] = [
  {
    name: '3x3 same stride 1, x smaller than dy (first layer)',
    batch: 3,
    height: 9,
    width: 8,
    inChannels: 2,
    outChannels: 6,
    filter: [3, 3],
    strides: [1, 1],
    pad: 'same',
  },
  {
    name: '5x5 same stride 1, padding uneven',
    batch: 2,
    height: 6,
    width: 7,
    inChannels: 2,
    outChannels: 3,
    filter: [5, 4],
    strides: [1, 1],
    pad: 'same',
  },
  {
    name: 'explicit pad larger than the filter, stride 1',
    batch: 2,
    height: 4,
    width: 4,
    inChannels: 2,
    outChannels: 3,
    filter: [2, 2],
    strides: [1, 1],
    pad: 3,
  },
  { name: '3x3 same stride 1', batch: 2, height: 5, width: 5, inChannels: 3, outChannels: 4, filter: [3, 3], strides: [1, 1], pad: 'same' },
  {
    name: '3x3 valid stride 1',
    batch: 3,
    height: 6,
    width: 7,
    inChannels: 2,
    outChannels: 5,
    filter: [3, 3],
    strides: [1, 1],
    pad: 'valid',
  },
  {
    name: '3x3 same stride 2 odd input',
    batch: 2,
    height: 7,
    width: 7,
    inChannels: 3,
    outChannels: 4,
    filter: [3, 3],
    strides: [2, 2],
    pad: 'same',
  },
  {
    name: '3x3 same stride 2 even input',
    batch: 2,
    height: 8,
    width: 6,
    inChannels: 4,
    outChannels: 3,
    filter: [3, 3],
    strides: [2, 2],
    pad: 'same',
  },
  {
    name: '3x3 valid stride 2 leaves a row unused',
    batch: 2,
    height: 8,
    width: 8,
    inChannels: 3,
    outChannels: 2,
    filter: [3, 3],
    strides: [2, 2],
    pad: 'valid',
  },
  {
    name: '2x3 filter, strides 2x1, same',
    batch: 2,
    height: 6,
    width: 9,
    inChannels: 3,
    outChannels: 4,
    filter: [2, 3],
    strides: [2, 1],
    pad: 'same',
  },
  {
    name: '4x4 valid stride 3 leaves rows and columns unused',
    batch: 2,
    height: 11,
    width: 12,
    inChannels: 2,
    outChannels: 3,
    filter: [4, 4],
    strides: [3, 3],
    pad: 'valid',
  },
  {
    name: '1x1 stride 1 (a bottleneck projection)',
    batch: 2,
    height: 5,
    width: 6,
    inChannels: 3,
    outChannels: 8,
    filter: [1, 1],
    strides: [1, 1],
    pad: 'same',
  },
  {
    name: '1x1 valid stride 2',
    batch: 2,
    height: 5,
    width: 5,
    inChannels: 3,
    outChannels: 4,
    filter: [1, 1],
    strides: [2, 2],
    pad: 'valid',
  },
  {
    name: 'explicit numeric pad 1, stride 2',
    batch: 2,
    height: 6,
    width: 6,
    inChannels: 2,
    outChannels: 3,
    filter: [3, 3],
    strides: [2, 2],
    pad: 1,
  },
  {
    name: 'batch 1, one channel in and out',
    batch: 1,
    height: 5,
    width: 4,
    inChannels: 1,
    outChannels: 1,
    filter: [3, 3],
    strides: [1, 1],
    pad: 'same',
  },
  {
    name: 'network-sized layer',
    batch: 4,
    height: 16,
    width: 16,
    inChannels: 16,
    outChannels: 32,
    filter: [3, 3],
    strides: [1, 1],
    pad: 'same',
  },
];

function outputSize(c: ConvCase): [number, number] {
  const info = tf.backend_util.computeConv2DInfo(
    [c.batch, c.height, c.width, c.inChannels],
    [c.filter[0], c.filter[1], c.inChannels, c.outChannels],
    c.strides,
    1,
    c.pad,
    undefined,
    false,
    'channelsLast',
  );
  return [info.outHeight, info.outWidth];
}

function filterGradCall(c: ConvCase, seed: number): KernelCall {
  const [oh, ow] = outputSize(c);
  const xShape = [c.batch, c.height, c.width, c.inChannels];
  const dyShape = [c.batch, oh, ow, c.outChannels];
  return {
    inputs: {
      x: {
        values: randomValues(
          xShape.reduce((a, b) => a * b),
          seed,
        ),
        shape: xShape,
      },
      dy: {
        values: randomValues(
          dyShape.reduce((a, b) => a * b),
          seed + 1,
        ),
        shape: dyShape,
      },
    },
    attrs: { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: [c.filter[0], c.filter[1], c.inChannels, c.outChannels] },
  };
}

function inputGradCall(c: ConvCase, seed: number): KernelCall {
  const [oh, ow] = outputSize(c);
  const filterShape = [c.filter[0], c.filter[1], c.inChannels, c.outChannels];
  const dyShape = [c.batch, oh, ow, c.outChannels];
  return {
    inputs: {
      dy: {
        values: randomValues(
          dyShape.reduce((a, b) => a * b),
          seed,
        ),
        shape: dyShape,
      },
      filter: {
        values: randomValues(
          filterShape.reduce((a, b) => a * b),
          seed + 1,
        ),
        shape: filterShape,
      },
    },
    attrs: { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: [c.batch, c.height, c.width, c.inChannels] },
  };
}

const TOLERANCE = 1e-4;

before(async () => {
  await initTestWasmBackend();
});

describe('convolution gradient kernels match the cpu backend’s original kernels', () => {
  for (const backendName of ['wasm', 'cpu'] as const) {
    for (const [index, c] of CASES.entries()) {
      // Each formulation where it applies (x as the filter needs stride 1; elsewhere the kernel
      // must fall back to dy as the filter), and the automatic choice.
      for (const formulation of FILTER_GRAD_FORMULATIONS) {
        test(`${backendName}: Conv2DBackpropFilter (${formulation}), ${c.name}`, async () => {
          const call = filterGradCall(c, 100 + index * 7);
          await tf.setBackend('cpu');
          const expected = runKernelFunc(originalCpuConv2DBackpropFilter(), call);
          await tf.setBackend(backendName);
          const buffersBefore = backendBuffers();
          setFilterGradFormulation(formulation);
          try {
            const actual = runRegistered('Conv2DBackpropFilter', call);
            assert.equal(backendBuffers(), buffersBefore, 'the kernel freed all of its scratch tensors');
            const error = relativeError(actual, expected);
            assert.ok(error <= TOLERANCE, `relative error ${error.toExponential(2)} > ${TOLERANCE}`);
          } finally {
            setFilterGradFormulation('auto');
          }
        });
      }
      test(`${backendName}: Conv2DBackpropInput, ${c.name}`, async () => {
        const call = inputGradCall(c, 500 + index * 7);
        await tf.setBackend('cpu');
        const expected = runKernelFunc(originalCpuConv2DBackpropInput(), call);
        await tf.setBackend(backendName);
        const buffersBefore = backendBuffers();
        const actual = runRegistered('Conv2DBackpropInput', call);
        assert.equal(backendBuffers(), buffersBefore, 'the kernel freed all of its scratch tensors');
        const error = relativeError(actual, expected);
        assert.ok(error <= TOLERANCE, `relative error ${error.toExponential(2)} > ${TOLERANCE}`);
      });
    }
  }
});

describe('convolution gradients agree with central finite differences', () => {
  // The loss ½·Σ r ⊙ conv(x, w)² is quadratic in each of x and w, so a central difference has no
  // truncation error and a large step keeps float32 rounding small relative to the difference.
  const FD_CASES = CASES.filter((c) =>
    ['3x3 same stride 1', '3x3 valid stride 2 leaves a row unused', '2x3 filter, strides 2x1, same'].includes(c.name),
  );
  const STEP = 0.05;
  const PROBES = 8;
  for (const backendName of ['wasm', 'cpu'] as const) {
    for (const c of FD_CASES) {
      test(`${backendName}: ${c.name}`, async () => {
        await tf.setBackend(backendName);
        const xShape: [number, number, number, number] = [c.batch, c.height, c.width, c.inChannels];
        const wShape: [number, number, number, number] = [c.filter[0], c.filter[1], c.inChannels, c.outChannels];
        const [oh, ow] = outputSize(c);
        const xValues = randomValues(
          xShape.reduce((a, b) => a * b),
          11,
        );
        const wValues = randomValues(
          wShape.reduce((a, b) => a * b),
          12,
        );
        const weighting = tf.tensor(randomValues(c.batch * oh * ow * c.outChannels, 13), [c.batch, oh, ow, c.outChannels]);
        const loss = (x: tf.Tensor4D, w: tf.Tensor4D) =>
          tf.tidy(() => tf.sum(tf.mul(weighting, tf.square(tf.conv2d(x, w, c.strides, c.pad)))).mul(0.5) as tf.Scalar);
        const lossAt = (xv: Float32Array, wv: Float32Array) =>
          tf.tidy(() => loss(tf.tensor4d(xv, xShape), tf.tensor4d(wv, wShape)).dataSync()[0]!);
        const x = tf.tensor4d(xValues, xShape);
        const w = tf.tensor4d(wValues, wShape);
        const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => loss(a as tf.Tensor4D, b as tf.Tensor4D))([x, w]);
        const analytic = { x: dx!.dataSync(), w: dw!.dataSync() };
        tf.dispose([x, w, dx!, dw!]);
        for (const which of ['x', 'w'] as const) {
          const values = which === 'x' ? xValues : wValues;
          for (let probe = 0; probe < PROBES; probe++) {
            // Spread the probes over the tensor, including its first and last element (the borders).
            const index = Math.round((probe / (PROBES - 1)) * (values.length - 1));
            const plus = Float32Array.from(values);
            const minus = Float32Array.from(values);
            plus[index]! += STEP;
            minus[index]! -= STEP;
            const numeric =
              which === 'x'
                ? (lossAt(plus, wValues) - lossAt(minus, wValues)) / (2 * STEP)
                : (lossAt(xValues, plus) - lossAt(xValues, minus)) / (2 * STEP);
            const got = analytic[which][index]!;
            assert.ok(
              Math.abs(got - numeric) <= 2e-3 * Math.max(1, Math.abs(numeric)),
              `d loss / d ${which}[${index}]: analytic ${got}, numeric ${numeric}`,
            );
          }
        }
        weighting.dispose();
      });
    }
  }
});

describe('registration', () => {
  test('our kernels are in use on wasm and cpu and never on tensorflow', () => {
    assert.deepEqual(customKernelsInUse('wasm'), customKernelNamesFor('wasm'));
    assert.deepEqual(customKernelsInUse('cpu'), customKernelNamesFor('cpu'));
    assert.deepEqual(customKernelNamesFor('wasm'), [...CUSTOM_KERNEL_NAMES]);
    assert.ok(CUSTOM_KERNEL_NAMES.includes('Conv2DBackpropFilter') && CUSTOM_KERNEL_NAMES.includes('Conv2DBackpropInput'));
    assert.deepEqual(customKernelsInUse('tensorflow'), []);
  });

  test('registering again (and initialising the backend again) keeps ours and the originals', async () => {
    const before = {
      filter: tf.getKernel('Conv2DBackpropFilter', 'wasm')!.kernelFunc,
      input: tf.getKernel('Conv2DBackpropInput', 'cpu')!.kernelFunc,
    };
    registerCustomKernels();
    await initBackend({ requested: 'wasm' });
    registerCustomKernels();
    assert.equal(tf.getKernel('Conv2DBackpropFilter', 'wasm')!.kernelFunc, before.filter);
    assert.equal(tf.getKernel('Conv2DBackpropInput', 'cpu')!.kernelFunc, before.input);
    // The wasm package ships no filter gradient; the cpu originals are tfjs's, not ours.
    assert.equal(originalKernelFunc('Conv2DBackpropFilter', 'wasm'), undefined);
    assert.ok(originalKernelFunc('Conv2DBackpropInput', 'wasm'));
    assert.notEqual(originalCpuConv2DBackpropFilter(), tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc);
    assert.notEqual(originalCpuConv2DBackpropInput(), tf.getKernel('Conv2DBackpropInput', 'cpu')!.kernelFunc);
    // The wasm kernel we replaced keeps its setup hook, which binds the C entry point our fallback uses.
    assert.equal(typeof tf.getKernel('Conv2DBackpropInput', 'wasm')!.setupFunc, 'function');
  });
});
