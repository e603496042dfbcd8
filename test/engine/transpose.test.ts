import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTestWasmBackend } from '../wasm_backend.js';
import { planTranspose } from '../../src/engine/kernels/heap_loops.js';
import { transposeFlipped, transposeTensor } from '../../src/engine/kernels/transpose.js';
import type { Backend } from '../../src/engine/kernels/backend_calls.js';
import { randomValues } from './helpers.js';

before(async () => {
  await initTestWasmBackend();
});

/** Every permutation of [0, …, n−1]. */
function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

function ours(x: tf.Tensor, perm: number[], flipped?: number[]): tf.Tensor {
  const backendName = tf.getBackend() as 'wasm' | 'cpu';
  const backend = tf.backend() as Backend;
  const info = flipped ? transposeFlipped(backendName, backend, x, perm, flipped) : transposeTensor(backendName, backend, x, perm);
  return tf.engine().makeTensorFromTensorInfo(info);
}

describe('transpose kernels match tf.transpose (and tf.reverse) exactly', () => {
  // Shapes with size-1 axes, axes that merge, and one large enough for several tiles per row.
  const SHAPES = [
    [2, 3, 4, 5],
    [1, 3, 1, 4],
    [3, 1, 40, 2],
    [5, 70, 1, 33],
    [2, 3, 5],
  ];
  for (const backendName of ['wasm', 'cpu'] as const) {
    test(`${backendName}: every permutation of rank-3 and rank-4 shapes`, async () => {
      await tf.setBackend(backendName);
      for (const shape of SHAPES) {
        const size = shape.reduce((a, b) => a * b, 1);
        const x = tf.tensor(randomValues(size, size), shape);
        for (const perm of permutations(shape.length)) {
          const expected = tf.transpose(x, perm);
          const actual = ours(x, perm);
          assert.deepEqual(actual.shape, expected.shape);
          assert.deepEqual(actual.dataSync(), expected.dataSync(), `shape [${shape}] perm [${perm}]`);
          tf.dispose([expected, actual]);
        }
        x.dispose();
      }
    });

    test(`${backendName}: transposing with flipped axes equals reverse then transpose; int32 keeps its dtype`, async () => {
      await tf.setBackend(backendName);
      const x = tf.tensor(randomValues(3 * 4 * 5 * 2, 9), [3, 4, 5, 2]);
      for (const [perm, flipped] of [
        [
          [1, 2, 3, 0],
          [1, 2],
        ],
        [
          [0, 1, 3, 2],
          [0, 1],
        ],
        [
          [3, 2, 1, 0],
          [0, 3],
        ],
        [[0, 1, 2, 3], []],
      ] as const) {
        const expected = tf.tidy(() => (flipped.length ? tf.reverse(x, [...flipped]) : x.clone()).transpose([...perm]));
        const actual = ours(x, [...perm], [...flipped]);
        assert.deepEqual(actual.dataSync(), expected.dataSync(), `perm [${perm.join(',')}] flipped [${flipped.join(',')}]`);
        tf.dispose([expected, actual]);
      }
      const ints = tf.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'int32');
      const t = ours(ints, [1, 0]);
      assert.equal(t.dtype, 'int32');
      assert.deepEqual(Array.from(t.dataSync()), [1, 4, 2, 5, 3, 6]);
      tf.dispose([x, ints, t]);
    });
  }

  test('axes that stay neighbours merge, size-1 axes drop out', () => {
    const merged = (shape: number[], perm: number[]) => {
      const plan = planTranspose(shape, perm);
      return { shape: plan.shape, inputStrides: plan.inputStrides };
    };
    assert.deepEqual(merged([32, 64, 64, 3], [3, 1, 2, 0]), { shape: [3, 4096, 32], inputStrides: [1, 3, 12288] });
    assert.deepEqual(merged([32, 64, 64, 3], [1, 2, 0, 3]), { shape: [4096, 32, 3], inputStrides: [3, 12288, 1] });
    assert.deepEqual(merged([1, 5, 1, 7], [3, 2, 1, 0]), { shape: [7, 5], inputStrides: [1, 7] });
    assert.throws(() => planTranspose([2, 3], [0, 0]), /perm \[0, 0\] does not fit shape \[2, 3\]/);
  });
});
