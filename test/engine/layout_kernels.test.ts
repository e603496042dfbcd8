import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTestWasmBackend } from '../wasm_backend.js';
import { type CustomKernelName, originalCpuKernel, originalKernelFunc } from '../../src/engine/kernels/index.js';
import { type KernelCall, backendBuffers, randomValues, relativeError, runKernelFuncWithShape, runRegisteredWithShape } from './helpers.js';

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const floats = (shape: number[], seed: number) => ({ values: randomValues(size(shape), seed), shape });

interface Case {
  name: string;
  call: KernelCall;
  /** Inputs our kernel does not handle and passes to the backend's own kernel. */
  delegated?: true;
}

/** Compares our registered kernel on `backendName` with the cpu backend's original on the same input. */
async function assertMatchesCpuOriginal(kernelName: CustomKernelName, backendName: 'wasm' | 'cpu', call: KernelCall, tolerance: number) {
  await tf.setBackend('cpu');
  const expected = runKernelFuncWithShape(originalCpuKernel(kernelName), call);
  await tf.setBackend(backendName);
  const registered = tf.getKernel(kernelName, backendName)?.kernelFunc;
  assert.ok(
    registered && registered !== originalKernelFunc(kernelName, backendName),
    `the ${backendName} ${kernelName} kernel in use is mtl-bench's, not the backend's own`,
  );
  const buffersBefore = backendBuffers();
  const actual = runRegisteredWithShape(kernelName, call);
  assert.equal(backendBuffers(), buffersBefore, 'the kernel freed all of its scratch tensors');
  assert.deepEqual(actual.shape, expected.shape, 'output shape');
  assert.equal(actual.dtype, expected.dtype, 'output dtype');
  const error = relativeError(actual.values, expected.values);
  assert.ok(error <= tolerance, `relative error ${error.toExponential(2)} > ${tolerance}`);
}

const TILE_CASES: Case[] = [
  {
    name: 'batch-norm scale vector to an NHWC activation',
    call: { inputs: { x: floats([1, 1, 1, 5], 1) }, attrs: { reps: [2, 3, 4, 1] } },
  },
  { name: 'matrix tiled on both axes', call: { inputs: { x: floats([2, 3], 2) }, attrs: { reps: [3, 2] } } },
  { name: 'innermost extent 1', call: { inputs: { x: floats([3, 1], 3) }, attrs: { reps: [2, 4] } } },
  { name: 'rank 1', call: { inputs: { x: floats([4], 4) }, attrs: { reps: [3] } } },
  { name: 'all reps 1 (a copy)', call: { inputs: { x: floats([2, 3, 2], 5) }, attrs: { reps: [1, 1, 1] } } },
  { name: 'rank 5 with a middle repeat', call: { inputs: { x: floats([2, 1, 3, 1, 2], 6) }, attrs: { reps: [1, 3, 2, 2, 1] } } },
  {
    name: 'int32',
    call: { inputs: { x: { values: Int32Array.from([1, -2, 3, 4, 5, -6]), shape: [2, 3], dtype: 'int32' } }, attrs: { reps: [2, 2] } },
  },
  { name: 'bool', call: { inputs: { x: { values: Uint8Array.from([1, 0, 1]), shape: [3], dtype: 'bool' } }, attrs: { reps: [2] } } },
];

const REDUCTION_CASES: Case[] = [
  {
    name: 'axes 0,1,2 of NHWC keeping dims (batch-norm statistics)',
    call: { inputs: { x: floats([2, 3, 4, 5], 11) }, attrs: { axis: [0, 1, 2], keepDims: true } },
  },
  { name: 'axes 0,1,2 of NHWC', call: { inputs: { x: floats([3, 4, 2, 6], 12) }, attrs: { axis: [0, 1, 2], keepDims: false } } },
  {
    name: 'axes given out of order and negative',
    call: { inputs: { x: floats([3, 4, 5], 13) }, attrs: { axis: [-2, 0], keepDims: false } },
  },
  {
    name: 'axis 0 of a matrix (the dense bias gradient)',
    call: { inputs: { x: floats([7, 3], 14) }, attrs: { axis: 0, keepDims: false } },
  },
  // Large enough for the wasm path that reduces with XNNPACK average pooling.
  {
    name: 'axes 0,1,2 of a network-sized activation',
    call: { inputs: { x: floats([4, 32, 32, 16], 17) }, attrs: { axis: [0, 1, 2], keepDims: true } },
  },
  {
    name: 'axes 0,1 of a large rank-3 tensor',
    call: { inputs: { x: floats([8, 1024, 12], 18) }, attrs: { axis: [0, 1], keepDims: false } },
  },
  {
    name: 'trailing axes (stock kernel)',
    call: { inputs: { x: floats([3, 4, 5], 15) }, attrs: { axis: [1, 2], keepDims: true } },
    delegated: true,
  },
  {
    name: 'every axis (stock kernel)',
    call: { inputs: { x: floats([3, 4], 16) }, attrs: { axis: [0, 1], keepDims: false } },
    delegated: true,
  },
  {
    name: 'int32 (stock kernel)',
    call: {
      inputs: { x: { values: Int32Array.from([1, 2, 3, 4, 5, 6]), shape: [3, 2], dtype: 'int32' } },
      attrs: { axis: 0, keepDims: false },
    },
    delegated: true,
  },
];

function maxPoolGradCall(
  shape: [number, number, number, number],
  filterSize: number,
  strides: number,
  pad: 'same' | 'valid',
  seed: number,
  zeros = false,
): KernelCall {
  const input = randomValues(size(shape), seed);
  // After a ReLU many inputs are exactly 0, so windows tie; the first maximum must win everywhere.
  if (zeros) for (let i = 0; i < input.length; i++) input[i] = Math.max(0, input[i]!);
  const info = tf.backend_util.computePool2DInfo(shape, filterSize, strides, 1, pad);
  const outShape = info.outShape;
  return {
    inputs: {
      dy: { values: randomValues(size(outShape), seed + 1), shape: outShape },
      input: { values: input, shape },
      // The kernels read only dy and input; output is part of the kernel's signature.
      output: { values: new Float32Array(size(outShape)), shape: outShape },
    },
    attrs: { filterSize, strides, pad },
  };
}

/** Puts NaN first in one window and -Infinity everywhere in another: the tie rules must still agree. */
function withSpecialValues(call: KernelCall): KernelCall {
  const input = call.inputs.input!.values as Float32Array;
  input[0] = NaN; // window (0,0), channel 0: NaN in scan position 0
  for (const i of [1, 3, 9, 11]) input[i] = -Infinity; // window (0,0), channel 1: all -Infinity
  return call;
}

const MAX_POOL_GRAD_CASES: Case[] = [
  { name: '2x2 stride 2 valid (the backbone pooling)', call: maxPoolGradCall([2, 6, 6, 3], 2, 2, 'valid', 21) },
  { name: '2x2 stride 2 valid on odd sizes', call: maxPoolGradCall([2, 7, 5, 2], 2, 2, 'valid', 22) },
  // 'same' on odd sizes: the last windows hang over the input by a row and a column.
  { name: '2x2 stride 2 same on odd sizes', call: maxPoolGradCall([2, 7, 5, 2], 2, 2, 'same', 28) },
  // Overlapping windows add several dy values into one dx: summation order may differ in the last bit.
  { name: '3x3 stride 2 same (overlapping windows)', call: maxPoolGradCall([2, 7, 7, 2], 3, 2, 'same', 23) },
  { name: '3x3 stride 1 same', call: maxPoolGradCall([1, 5, 6, 4], 3, 1, 'same', 24) },
  { name: 'ties after a ReLU', call: maxPoolGradCall([2, 6, 6, 8], 2, 2, 'valid', 25, true) },
  { name: '3x3 stride 3 valid (disjoint, not 2x2)', call: maxPoolGradCall([2, 9, 7, 3], 3, 3, 'valid', 26) },
  { name: 'NaN and -Infinity inputs', call: withSpecialValues(maxPoolGradCall([1, 4, 4, 2], 2, 2, 'valid', 27)) },
];

before(async () => {
  await initTestWasmBackend();
});

for (const backendName of ['wasm', 'cpu'] as const) {
  describe(`${backendName}: our kernels match the cpu backend's originals`, () => {
    for (const c of TILE_CASES) test(`Tile: ${c.name}`, () => assertMatchesCpuOriginal('Tile', backendName, c.call, 0));
    for (const c of REDUCTION_CASES) {
      // On cpu our Sum and Mean pass these inputs to the cpu backend's own kernel, which is the
      // reference: the comparison would be of that kernel with itself. On wasm the fallback
      // reaches wasm's own kernel, so there it is a real comparison (and checks which inputs fall back).
      if (c.delegated && backendName === 'cpu') continue;
      // Float32 sums of tens of thousands of terms in another order: a few ulps apart.
      test(`Sum: ${c.name}`, () => assertMatchesCpuOriginal('Sum', backendName, c.call, 1e-5));
      test(`Mean: ${c.name}`, () => assertMatchesCpuOriginal('Mean', backendName, c.call, 1e-5));
    }
    for (const c of MAX_POOL_GRAD_CASES)
      test(`MaxPoolGrad: ${c.name}`, () => assertMatchesCpuOriginal('MaxPoolGrad', backendName, c.call, 1e-6));
  });
}

describe('wasm: Identity and same-dtype Cast share memory safely', () => {
  test('a clone outlives its source and keeps its values', async () => {
    await tf.setBackend('wasm');
    const buffersBefore = backendBuffers();
    const source = tf.tensor([1.5, -2, 3], [3]);
    const copy = tf.clone(source);
    const same = tf.cast(source, 'float32');
    assert.equal(backendBuffers(), buffersBefore + 1, 'one buffer shared by three tensors');
    source.dispose();
    assert.deepEqual(Array.from(copy.dataSync()), [1.5, -2, 3]);
    copy.dispose();
    assert.deepEqual(Array.from(same.dataSync()), [1.5, -2, 3]);
    same.dispose();
    assert.equal(backendBuffers(), buffersBefore, 'freed with the last tensor');
  });
  test('a cast to another dtype still converts', async () => {
    await tf.setBackend('wasm');
    const source = tf.tensor([1.7, -2.2, 0], [3]);
    const ints = tf.cast(source, 'int32');
    const back = tf.cast(ints, 'float32');
    assert.equal(ints.dtype, 'int32');
    assert.deepEqual(Array.from(ints.dataSync()), [1, -2, 0]);
    assert.equal(back.dtype, 'float32');
    assert.deepEqual(Array.from(back.dataSync()), [1, -2, 0]);
    tf.dispose([source, ints, back]);
  });
  test('a variable assigned from a clone does not change the clone source', async () => {
    await tf.setBackend('wasm');
    const source = tf.tensor([1, 2], [2]);
    const v = tf.variable(tf.clone(source));
    v.assign(tf.tensor([5, 6], [2]));
    assert.deepEqual(Array.from(source.dataSync()), [1, 2]);
    assert.deepEqual(Array.from(v.dataSync()), [5, 6]);
    tf.dispose([source, v]);
  });
});

interface DepthwiseCase {
  name: string;
  shape: [number, number, number, number];
  filter: [number, number];
  multiplier: number;
  strides: number;
  pad: 'same' | 'valid';
  dilations?: number;
}

const DEPTHWISE_CASES: DepthwiseCase[] = [
  { name: '3x3 same stride 1 (MobileNetV2 block)', shape: [2, 6, 6, 4], filter: [3, 3], multiplier: 1, strides: 1, pad: 'same' },
  { name: '3x3 same stride 2', shape: [2, 7, 7, 3], filter: [3, 3], multiplier: 1, strides: 2, pad: 'same' },
  { name: 'channel multiplier 2, valid', shape: [2, 6, 5, 3], filter: [3, 3], multiplier: 2, strides: 1, pad: 'valid' },
  { name: '2x3 filter, stride 2 valid leaving rows unused', shape: [1, 8, 9, 2], filter: [2, 3], multiplier: 3, strides: 2, pad: 'valid' },
];

function depthwiseCalls(c: DepthwiseCase, seed: number): { filterGrad: KernelCall; inputGrad: KernelCall } {
  const filterShape: [number, number, number, number] = [c.filter[0], c.filter[1], c.shape[3], c.multiplier];
  const info = tf.backend_util.computeConv2DInfo(c.shape, filterShape, c.strides, c.dilations ?? 1, c.pad, undefined, true);
  const attrs = { strides: c.strides, pad: c.pad, dilations: c.dilations ?? 1 };
  const dy = floats(info.outShape, seed);
  return {
    filterGrad: { inputs: { x: floats(c.shape, seed + 1), dy }, attrs: { ...attrs, filterShape } },
    inputGrad: { inputs: { dy, filter: floats(filterShape, seed + 2) }, attrs: { ...attrs, inputShape: c.shape } },
  };
}

describe("wasm: depthwise convolution gradients match the cpu backend's", () => {
  for (const [i, c] of DEPTHWISE_CASES.entries()) {
    const calls = depthwiseCalls(c, 40 + 5 * i);
    test(`DepthwiseConv2dNativeBackpropFilter: ${c.name}`, () =>
      assertMatchesCpuOriginal('DepthwiseConv2dNativeBackpropFilter', 'wasm', calls.filterGrad, 1e-5));
    test(`DepthwiseConv2dNativeBackpropInput: ${c.name}`, () =>
      assertMatchesCpuOriginal('DepthwiseConv2dNativeBackpropInput', 'wasm', calls.inputGrad, 1e-5));
  }
  test('dilations other than 1 are refused with a clear error', async () => {
    await tf.setBackend('wasm');
    const calls = depthwiseCalls(
      { name: 'dilated', shape: [1, 7, 7, 2], filter: [3, 3], multiplier: 1, strides: 1, pad: 'same', dilations: 2 },
      60,
    );
    assert.throws(() => runRegisteredWithShape('DepthwiseConv2dNativeBackpropFilter', calls.filterGrad), /support dilation 1 only/);
    assert.throws(() => runRegisteredWithShape('DepthwiseConv2dNativeBackpropInput', calls.inputGrad), /support dilation 1 only/);
  });
});
