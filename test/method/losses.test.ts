import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initTestWasmBackend } from '../wasm_backend.js';
import type { CategoricalBatch, CouplingTensors, MultilabelBatch } from '../../src/method/losses.js';
import {
  categoricalLoss,
  couplingTensors,
  disposeCoupling,
  dmCategoricalToCategorical,
  dmMultilabelToCategorical,
  multilabelLoss,
  objective,
  scaCategoricalToCategorical,
  scaMultilabelToCategorical,
} from '../../src/method/losses.js';
import { clipRelatedness } from '../../src/method/relatedness.js';
import type { CellMethodOptions } from '../../src/config/options.js';
import { Rng } from '../../src/train/random.js';
import type { RefBatch, RefOptions } from './reference.js';
import * as ref from './reference.js';

const METHOD: CellMethodOptions = {
  tau: 1,
  detachTarget: false,
  dmVariant: 'likelihood',
  dmScope: 'all',
  lambdaSca: 1,
  lambdaDm: 1,
  taskWeights: {},
};

function categorical(zC: number[][], c: number[]): CategoricalBatch {
  const K = zC[0]!.length;
  return {
    kind: 'categorical',
    logits: tf.tensor2d(zC),
    oneHot: tf.tensor2d(c.map((k) => Array.from({ length: K }, (_, j) => (j === k ? 1 : 0)))),
    has: tf.tensor1d(c.map((k) => (k >= 0 ? 1 : 0))),
  };
}

function multilabel(zA: number[][], a: (number | null)[][]): MultilabelBatch {
  return {
    kind: 'multilabel',
    logits: tf.tensor2d(zA),
    target: tf.tensor2d(a.map((row) => row.map((v) => (v === 1 ? 1 : 0)))),
    mask: tf.tensor2d(a.map((row) => row.map((v) => (v === null ? 0 : 1)))),
    has: tf.tensor1d(a.map((row) => (row.some((v) => v !== null) ? 1 : 0))),
  };
}

function value(t: tf.Scalar): number {
  return t.dataSync()[0]!;
}

function close(actual: number, expected: number, tolerance = 1e-5, what = ''): void {
  assert.ok(Number.isFinite(actual), `${what}: ${actual} is not finite`);
  assert.ok(Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)), `${what}: got ${actual}, expected ${expected}`);
}

/** Sample 0: both labels; 1: multi-label only; 2: class only; 3: neither. R has a zero row (class 2) and a one. */
const BATCH: RefBatch = {
  zC: [
    [1.2, -0.4, 0.3],
    [-0.7, 0.9, 0.1],
    [0.2, 0.5, -1.3],
    [2.0, -1.0, 0.0],
  ],
  c: [0, -1, 2, -1],
  zA: [
    [0.5, -1.5, 2.0, 0.1],
    [-0.3, 0.8, -2.2, 1.4],
    [1.1, 0.0, -0.6, -0.9],
    [-1.7, 2.3, 0.4, 0.6],
  ],
  a: [
    [1, 0, null, 1],
    [0, 1, 1, null],
    [null, null, null, null],
    [null, null, null, null],
  ],
};
const RAW_R = [
  [0.9, 0.2, 1.0, 0.6],
  [0.1, 0.7, 0.4, 0.3],
  [0, 0, 0, 0],
];
const R = clipRelatedness(RAW_R);

function coupling(matrix = R): CouplingTensors {
  return couplingTensors({ from: 'C', to: 'A', kind: 'categorical->multilabel', source: 'prior', matrix });
}

describe('method losses', () => {
  before(async () => {
    await initTestWasmBackend();
  });

  it('categorical cross-entropy of one sample equals −log softmax by hand', () => {
    tf.tidy(() => {
      // logits [2, 0, 0], class 0: −log(e² / (e² + 2)) = log(1 + 2e⁻²)
      const loss = value(categoricalLoss(categorical([[2, 0, 0]], [0])));
      close(loss, Math.log(1 + 2 * Math.exp(-2)), 1e-6, 'CE');
    });
  });

  it('supervised losses average over labelled samples and annotated entries only', () => {
    tf.tidy(() => {
      const c = categorical(BATCH.zC, BATCH.c);
      const a = multilabel(BATCH.zA, BATCH.a);
      close(value(categoricalLoss(c)), ref.supC(BATCH), 1e-5, 'categorical');
      close(value(multilabelLoss(a)), ref.supA(BATCH), 1e-5, 'multilabel');
      // 5 annotated entries: the masked ones contribute nothing, whatever their logits.
      const entries = [ref.bce(0.5, 1), ref.bce(-1.5, 0), ref.bce(0.1, 1), ref.bce(-0.3, 0), ref.bce(0.8, 1), ref.bce(-2.2, 1)];
      close(value(multilabelLoss(a)), entries.reduce((x, y) => x + y) / 6, 1e-5, 'explicit entries');
    });
  });

  it('soft co-annotation matches the hand computation in every direction', () => {
    tf.tidy(() => {
      const c = categorical(BATCH.zC, BATCH.c);
      const a = multilabel(BATCH.zA, BATCH.a);
      const k = coupling();
      for (const tau of [1, 0.5, 2]) {
        const { terms } = objective({ C: c, A: a }, [k], { sca: true, dm: false, method: { ...METHOD, tau } });
        const byName = Object.fromEntries(terms.map((t) => [t.name, value(t.value)]));
        close(byName['sca:C->A']!, ref.scaCA(BATCH, R), 1e-5, `sca C->A tau ${tau}`);
        close(byName['sca:A->C']!, ref.scaAC(BATCH, R, tau), 1e-5, `sca A->C tau ${tau}`);
      }
      // Only sample 2 has a class and no multi-label annotation: its target is R[2,:] = ε everywhere (the zero row, clipped).
      const expected = ref.mean(BATCH.zA[2]!.map((z) => ref.bce(z, ref.EPS)));
      const { terms } = objective({ C: c, A: a }, [k], { sca: true, dm: false, method: METHOD });
      close(value(terms.find((t) => t.name === 'sca:C->A')!.value), expected, 1e-5, 'zero row target');
      disposeCoupling(k);
    });
  });

  it('distribution matching matches the hand computation for both variants, both scopes and several τ', () => {
    tf.tidy(() => {
      const c = categorical(BATCH.zC, BATCH.c);
      const a = multilabel(BATCH.zA, BATCH.a);
      const k = coupling();
      for (const variant of ['likelihood', 'prototypical'] as const) {
        for (const scope of ['all', 'missing'] as const) {
          for (const tau of [1, 0.25]) {
            const o: RefOptions = { tau, variant, scope };
            const { terms } = objective({ C: c, A: a }, [k], {
              sca: false,
              dm: true,
              method: { ...METHOD, tau, dmVariant: variant, dmScope: scope },
            });
            const byName = Object.fromEntries(terms.map((t) => [t.name, value(t.value)]));
            close(byName['dm:C->A']!, ref.dmCA(BATCH, R, o), 1e-5, `dm C->A ${variant} ${scope} ${tau}`);
            close(byName['dm:A->C']!, ref.dmAC(BATCH, R, o), 1e-5, `dm A->C ${variant} ${scope} ${tau}`);
          }
        }
      }
      disposeCoupling(k);
    });
  });

  it('a single-sample hand calculation of q_A and q_C', () => {
    tf.tidy(() => {
      // One sample, K = 2, M = 1, R = [[0.8], [0.3]], logits zC = [0, ln 3] (p = [1/4, 3/4]), zA = [0] (p_A = 1/2).
      const c = categorical([[0, Math.log(3)]], [-1]);
      const a = multilabel([[0]], [[null]]);
      const k = couplingTensors({ from: 'C', to: 'A', kind: 'categorical->multilabel', source: 'prior', matrix: [[0.8], [0.3]] });
      const { terms } = objective({ C: c, A: a }, [k], { sca: false, dm: true, method: METHOD });
      const byName = Object.fromEntries(terms.map((t) => [t.name, value(t.value)]));
      // q_A = 0.25·0.8 + 0.75·0.3 = 0.425; BCE(0.5, 0.425) = −[0.425 ln 0.5 + 0.575 ln 0.5] = ln 2.
      close(byName['dm:C->A']!, Math.log(2), 1e-6, 'q_A');
      // q_C ∝ (0.8·0.5 + 0.2·0.5, 0.3·0.5 + 0.7·0.5) = (0.5, 0.5) → uniform; CE against p = −½ln¼ − ½ln¾.
      close(byName['dm:A->C']!, -0.5 * Math.log(0.25) - 0.5 * Math.log(0.75), 1e-6, 'q_C');
      disposeCoupling(k);
    });
  });

  it('categorical → categorical co-annotation and matching', () => {
    tf.tidy(() => {
      const R2 = [
        [0.7, 0.2, 0.1],
        [0.1, 0.1, 0.8],
      ];
      const z1 = [
        [0.3, -0.2],
        [1.0, 0.5],
        [-0.4, 0.9],
      ];
      const c1 = [1, 0, -1];
      const z2 = [
        [0.1, 0.2, -0.3],
        [0.0, -1.0, 1.0],
        [0.6, 0.4, 0.2],
      ];
      const c2 = [-1, 2, 0];
      const source = categorical(z1, c1);
      const target = categorical(z2, c2);
      const Rt = tf.tensor2d(R2);
      // SCA applies to sample 0 only (class 1 known, second task missing): target R[1,:].
      close(value(scaCategoricalToCategorical(source, target, Rt)), ref.softCE(z2[0]!, R2[1]!), 1e-5, 'sca C1->C2');
      const q = (n: number) => {
        const p = ref.softmax(z1[n]!);
        return R2[0]!.map((_, j) => p[0]! * R2[0]![j]! + p[1]! * R2[1]![j]!);
      };
      const all = ref.mean([0, 1, 2].map((n) => ref.softCE(z2[n]!, q(n))));
      close(
        value(dmCategoricalToCategorical(source, target, Rt, { tau: 1, detachTarget: false, variant: 'likelihood', scope: 'all' })),
        all,
        1e-5,
        'dm all',
      );
      close(
        value(dmCategoricalToCategorical(source, target, Rt, { tau: 1, detachTarget: false, variant: 'likelihood', scope: 'missing' })),
        ref.softCE(z2[0]!, q(0)),
        1e-5,
        'dm missing',
      );
    });
  });

  it('an all-masked batch gives exactly 0 for every supervised and co-annotation term, never NaN', () => {
    tf.tidy(() => {
      const none: RefBatch = { ...BATCH, c: [-1, -1, -1, -1], a: BATCH.a.map((row) => row.map(() => null)) };
      const zC = tf.tensor2d(none.zC);
      const zA = tf.tensor2d(none.zA);
      const k = coupling();
      const run = (logitsC: tf.Tensor, logitsA: tf.Tensor) => {
        const c = { ...categorical(none.zC, none.c), logits: logitsC as tf.Tensor2D };
        const a = { ...multilabel(none.zA, none.a), logits: logitsA as tf.Tensor2D };
        return objective({ C: c, A: a }, [k], { sca: true, dm: true, method: METHOD });
      };
      const { total, terms } = run(zC, zA);
      const byName = Object.fromEntries(terms.map((t) => [t.name, value(t.value)]));
      for (const name of ['sup:C', 'sup:A', 'sca:C->A', 'sca:A->C']) assert.equal(byName[name], 0, name);
      // Distribution matching still applies to every sample: that is where unlabelled samples teach.
      close(byName['dm:C->A']!, ref.dmCA(none, R, { tau: 1, variant: 'likelihood', scope: 'all' }), 1e-5, 'dm on unlabelled');
      close(value(total), ref.total(none, R, { tau: 1, variant: 'likelihood', scope: 'all' }), 1e-5, 'total');
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) => run(a, b).total)([zC, zA]);
      for (const g of grads) assert.ok(Array.from(g.dataSync()).every(Number.isFinite), 'finite gradients');
      // With no coupling either, the batch contributes exactly 0 and zero gradients.
      const supOnly = tf.grads(
        (a: tf.Tensor) =>
          objective({ C: { ...categorical(none.zC, none.c), logits: a as tf.Tensor2D } }, [], { sca: false, dm: false, method: METHOD })
            .total,
      )([zC]);
      assert.deepEqual(
        Array.from(supOnly[0]!.dataSync()).map((v) => Math.abs(v)),
        new Array(12).fill(0),
      );
      disposeCoupling(k);
    });
  });

  it('the full objective applies task weights and λ exactly', () => {
    tf.tidy(() => {
      const k = coupling();
      const method = { ...METHOD, taskWeights: { C: 0.5, A: 2 }, lambdaSca: 0.3, lambdaDm: 1.7 };
      const { total } = objective({ C: categorical(BATCH.zC, BATCH.c), A: multilabel(BATCH.zA, BATCH.a) }, [k], {
        sca: true,
        dm: true,
        method,
      });
      close(
        value(total),
        ref.total(BATCH, R, { tau: 1, variant: 'likelihood', scope: 'all' }, { c: 0.5, a: 2, sca: 0.3, dm: 1.7 }),
        1e-5,
        'weighted total',
      );
      disposeCoupling(k);
    });
  });

  it('312 labels: the likelihood target does not underflow and matches a float64 log-space computation', () => {
    tf.tidy(() => {
      const rng = Rng.fromSeed(5, 'cub-like');
      const K = 6;
      const M = 312;
      const raw = Array.from({ length: K }, () =>
        Array.from({ length: M }, () => (rng.float() < 0.2 ? 0 : rng.float() < 0.2 ? 1 : rng.float())),
      );
      const Rc = clipRelatedness(raw);
      // Confident logits: each factor R p + (1−R)(1−p) is often ~1e-4, so the plain product is ~1e-400.
      const zA = [0, 1].map(() => Array.from({ length: M }, () => (rng.bool() ? 9 : -9) * (0.5 + rng.float())));
      const a = zA.map((row) => row.map((z) => (rng.float() < 0.3 ? null : z > 0 ? 1 : 0)));
      const zC = [0, 1].map(() => Array.from({ length: K }, () => rng.float() * 4 - 2));
      const batch: RefBatch = { zC, c: [-1, -1], zA, a };
      const plainProduct = Math.fround(
        Rc[0]!.reduce((p, r, i) => p * (r * (1 / (1 + Math.exp(-zA[0]![i]!))) + (1 - r) * (1 / (1 + Math.exp(zA[0]![i]!)))), 1),
      );
      assert.equal(plainProduct, 0, 'the naive product underflows float32, so the test is meaningful');
      const k = couplingTensors({ from: 'C', to: 'A', kind: 'categorical->multilabel', source: 'file', matrix: Rc });
      const c = categorical(zC, [-1, -1]);
      const ml = multilabel(zA, a);
      for (const variant of ['likelihood', 'prototypical'] as const) {
        const loss = value(dmMultilabelToCategorical(ml, c, k, { tau: 1, detachTarget: false, variant, scope: 'all' }));
        close(loss, ref.dmAC(batch, Rc, { tau: 1, variant, scope: 'all' }), 1e-4, `dm A->C ${variant}`);
      }
      close(value(scaMultilabelToCategorical(ml, c, k.logR!, k.log1mR!, 1)), ref.scaAC(batch, Rc, 1), 1e-4, 'sca A->C');
      const grads = tf.grads((z: tf.Tensor) =>
        dmMultilabelToCategorical({ ...ml, logits: z as tf.Tensor2D }, c, k, {
          tau: 1,
          detachTarget: false,
          variant: 'likelihood',
          scope: 'all',
        }),
      )([ml.logits]);
      assert.ok(Array.from(grads[0]!.dataSync()).every(Number.isFinite), 'finite gradients through 312 labels');
      disposeCoupling(k);
    });
  });

  for (const detachTarget of [false, true]) {
    for (const variant of ['likelihood', 'prototypical'] as const) {
      it(`gradients of the full objective match finite differences (${variant}, detach_target ${detachTarget})`, () => {
        const k = coupling();
        const method: CellMethodOptions = { ...METHOD, tau: 0.7, detachTarget, dmVariant: variant };
        const grads = tf.tidy(() => {
          const fn = (zC: tf.Tensor, zA: tf.Tensor) =>
            objective(
              {
                C: { ...categorical(BATCH.zC, BATCH.c), logits: zC as tf.Tensor2D },
                A: { ...multilabel(BATCH.zA, BATCH.a), logits: zA as tf.Tensor2D },
              },
              [k],
              { sca: true, dm: true, method },
            ).total;
          return tf
            .grads(fn)([tf.tensor2d(BATCH.zC), tf.tensor2d(BATCH.zA)])
            .map((g) => g.arraySync() as number[][]);
        });
        disposeCoupling(k);
        const o: RefOptions = { tau: 0.7, variant, scope: 'all' };
        // Central differences of the float64 reference; a detached target stays at the unperturbed logits.
        const f = (zC: number[][], zA: number[][]) =>
          ref.total({ ...BATCH, zC, zA }, R, detachTarget ? { ...o, targetZC: BATCH.zC, targetZA: BATCH.zA } : o);
        const h = 1e-5;
        const perturb = (m: number[][], n: number, j: number, d: number) =>
          m.map((row, r) => row.map((v, c) => (r === n && c === j ? v + d : v)));
        BATCH.zC.forEach((row, n) =>
          row.forEach((_, j) => {
            const fd = (f(perturb(BATCH.zC, n, j, h), BATCH.zA) - f(perturb(BATCH.zC, n, j, -h), BATCH.zA)) / (2 * h);
            assert.ok(Math.abs(grads[0]![n]![j]! - fd) < 2e-4, `d/dzC[${n},${j}]: autodiff ${grads[0]![n]![j]}, finite difference ${fd}`);
          }),
        );
        BATCH.zA.forEach((row, n) =>
          row.forEach((_, j) => {
            const fd = (f(BATCH.zC, perturb(BATCH.zA, n, j, h)) - f(BATCH.zC, perturb(BATCH.zA, n, j, -h))) / (2 * h);
            assert.ok(Math.abs(grads[1]![n]![j]! - fd) < 2e-4, `d/dzA[${n},${j}]: autodiff ${grads[1]![n]![j]}, finite difference ${fd}`);
          }),
        );
      });
    }
  }

  it('the likelihood score has the right gradient where p = ½ and R = ½', () => {
    const k = couplingTensors({
      from: 'C',
      to: 'A',
      kind: 'categorical->multilabel',
      source: 'prior',
      matrix: [
        [0.5, 0.9],
        [0.5, 0.2],
      ],
    });
    const g = tf.tidy(() => {
      const fn = (zA: tf.Tensor) =>
        dmMultilabelToCategorical(
          multilabel([[0, 0]], [[null, null]]) && { ...multilabel([[0, 0]], [[null, null]]), logits: zA as tf.Tensor2D },
          categorical([[0.3, -0.3]], [-1]),
          k,
          { tau: 1, detachTarget: false, variant: 'likelihood', scope: 'all' },
        );
      return tf
        .grads(fn)([tf.tensor2d([[0, 0]])])[0]!
        .arraySync() as number[][];
    });
    disposeCoupling(k);
    const Rm = [
      [0.5, 0.9],
      [0.5, 0.2],
    ];
    const f = (zA: number[]) =>
      ref.dmAC({ zC: [[0.3, -0.3]], c: [-1], zA: [zA], a: [[null, null]] }, Rm, { tau: 1, variant: 'likelihood', scope: 'all' });
    const h = 1e-5;
    for (let i = 0; i < 2; i++) {
      const up = [0, 0];
      const down = [0, 0];
      up[i] = h;
      down[i] = -h;
      const fd = (f(up) - f(down)) / (2 * h);
      assert.ok(Math.abs(g[0]![i]! - fd) < 1e-4, `label ${i}: autodiff ${g[0]![i]}, finite difference ${fd}`);
    }
  });

  it('leaves no tensors behind', () => {
    const k = coupling();
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const { total } = objective({ C: categorical(BATCH.zC, BATCH.c), A: multilabel(BATCH.zA, BATCH.a) }, [k], {
        sca: true,
        dm: true,
        method: METHOD,
      });
      tf.grads(
        (z: tf.Tensor) =>
          objective({ C: { ...categorical(BATCH.zC, BATCH.c), logits: z as tf.Tensor2D }, A: multilabel(BATCH.zA, BATCH.a) }, [k], {
            sca: true,
            dm: true,
            method: METHOD,
          }).total,
      )([tf.tensor2d(BATCH.zC)]);
      return total;
    }).dispose();
    assert.equal(tf.memory().numTensors, before);
    disposeCoupling(k);
  });
});
