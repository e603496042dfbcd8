import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { METHOD_OPTIONS, defaultsOf, type MethodOptions } from '../../src/config/options.js';
import { BALANCING_METHODS, type Setting } from '../../src/config/settings.js';
import { initBackend } from '../../src/engine/backend.js';
import { couplingTensors, disposeCoupling, objective } from '../../src/method/losses.js';
import type { MultiTaskNetwork } from '../../src/model/network.js';
import { buildNetwork } from '../../src/model/network.js';
import { createBalancer, famoCoefficients, uncertaintyWeightedLoss } from '../../src/train/balancing/balancers.js';
import type { BatchPasses, LossParts } from '../../src/train/balancing/passes.js';
import {
  adamStep,
  cagradCoefficients,
  dwaWeights,
  famoLogitGradient,
  gradnormWeightGradient,
  minNormCoefficients,
  pcgradCoefficients,
  renormalisedWeights,
} from '../../src/train/balancing/solvers.js';
import { encodeLabels, labelTensors, readImageBatch } from '../../src/train/batches.js';
import type { EncodedTaskLabels } from '../../src/train/batches.js';
import { Optimizer } from '../../src/train/optimizer.js';
import { createTrainStep, trainCell } from '../../src/train/trainer.js';
import { cellConfig, syntheticDataset } from './fixtures.js';

const DEFAULTS = defaultsOf(METHOD_OPTIONS) as MethodOptions;

function gramOf(vectors: number[][]): number[][] {
  return vectors.map((a) => vectors.map((b) => a.reduce((s, x, i) => s + x * b[i]!, 0)));
}

function combine(vectors: number[][], coefficients: number[]): number[] {
  return vectors[0]!.map((_, k) => vectors.reduce((s, v, i) => s + coefficients[i]! * v[k]!, 0));
}

function assertClose(actual: readonly number[], expected: readonly number[], tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]!) <= tolerance, `${what}: [${actual.join(', ')}] vs [${expected.join(', ')}]`),
  );
}

before(async () => {
  await initBackend({ requested: 'wasm' });
});

// Two tasks in two dimensions: conflicting (⟨g1, g2⟩ < 0) and aligned.
const CONFLICTING = [
  [1, 0],
  [-1, 1],
];
const ALIGNED = [
  [1, 0],
  [2, 0],
];

describe('gradient methods on explicit gradient vectors', () => {
  it("PCGrad projects each conflicting gradient onto the other's normal plane and sums them", () => {
    // g1' = g1 − (−1/2)·g2 = (0.5, 0.5); g2' = g2 − (−1/1)·g1 = (0, 1); sum (0.5, 1.5).
    const c = pcgradCoefficients(gramOf(CONFLICTING), [[1], [0]]);
    assertClose(c, [2, 1.5], 1e-12, 'coefficients');
    assertClose(combine(CONFLICTING, c), [0.5, 1.5], 1e-12, 'update');
    assertClose(pcgradCoefficients(gramOf(ALIGNED), [[1], [0]]), [1, 1], 0, 'aligned gradients are left alone');
    assertClose(pcgradCoefficients(gramOf([[3, 4]]), [[]]), [1], 0, 'one task present: its gradient');
  });

  it('MGDA takes the min-norm point of the convex hull', () => {
    // α1 = ⟨g2 − g1, g2⟩ / ‖g1 − g2‖² = 3/5: d = (0.2, 0.4), orthogonal to g1 − g2.
    const c = minNormCoefficients(gramOf(CONFLICTING));
    assertClose(c, [0.6, 0.4], 1e-9, 'conflicting');
    assertClose(combine(CONFLICTING, c), [0.2, 0.4], 1e-9, 'update');
    assertClose(minNormCoefficients(gramOf(ALIGNED)), [1, 0], 1e-9, 'aligned: the shorter gradient');
    assertClose(
      minNormCoefficients(
        gramOf([
          [1, 0],
          [0, 1],
        ]),
      ),
      [0.5, 0.5],
      1e-9,
      'orthogonal, equal length',
    );
    assertClose(minNormCoefficients(gramOf([[3, 4]])), [1], 0, 'one task present');
    // Three tasks: the min-norm point of the triangle e1, e2, e3 is its centre.
    assertClose(
      minNormCoefficients(
        gramOf([
          [1, 0, 0],
          [0, 1, 0],
          [0, 0, 1],
        ]),
      ),
      [1 / 3, 1 / 3, 1 / 3],
      1e-6,
      'three orthogonal',
    );
  });

  it('CAGrad maximises the worst improvement near the mean gradient (c = 0.5), rescaled by 1/(1 + c²)', () => {
    // g0 = (0, 0.5), ‖g0‖ = 0.5, √φ = 0.25. F(p) = 0.5(1 − p) + 0.25·√(5p² − 6p + 2) is smallest
    // on [0, 1] at p = 1: w = (1, 0), g_w = g1, d = g0 + 0.25·g1 = (0.25, 0.5), / 1.25 = (0.2, 0.4).
    const c = cagradCoefficients(gramOf(CONFLICTING), 0.5);
    assertClose(c, [0.6, 0.4], 1e-6, 'conflicting');
    const d = combine(CONFLICTING, c);
    assertClose(d, [0.2, 0.4], 1e-6, 'update');
    assert.ok(Math.abs(d[0]! * 1 - (d[0]! * -1 + d[1]!)) < 1e-6, 'both tasks improve equally');
    // Orthogonal unit gradients: w = (½, ½) by symmetry, d = 1.5·g0 / 1.25.
    assertClose(
      cagradCoefficients(
        gramOf([
          [1, 0],
          [0, 1],
        ]),
        0.5,
      ),
      [0.6, 0.6],
      1e-6,
      'orthogonal',
    );
    assertClose(cagradCoefficients(gramOf(CONFLICTING), 0), [0.5, 0.5], 1e-9, 'c = 0 is the mean gradient');
    assertClose(cagradCoefficients(gramOf([[3, 4]]), 0.5), [1.5 / 1.25], 1e-9, 'one task present');
  });
});

describe('loss-weighting methods on explicit losses', () => {
  it('DWA: K·softmax of the loss-descent rates over T = 2; 1 until two epochs exist or where a task has no mean', () => {
    // r = (0.5/1.0, 0.8/0.8) = (0.5, 1); w = 2·e^{r/2} / Σ e^{r/2}.
    const e1 = Math.exp(0.25);
    const e2 = Math.exp(0.5);
    assertClose(dwaWeights([0.5, 0.8], [1.0, 0.8], 2), [(2 * e1) / (e1 + e2), (2 * e2) / (e1 + e2)], 1e-12, 'weights');
    assertClose(
      dwaWeights([0.5, null], [1.0, 0.8], 2),
      [(2 * e1) / (e1 + e2), (2 * e2) / (e1 + e2)],
      1e-12,
      'a task without a mean counts as r = 1',
    );
  });

  it('DWA keeps per-task epoch means over the labelled samples of each batch, skipping batches without the label', () => {
    const net = fakeNetwork();
    const balancer = createBalancer('dwa', DEFAULTS, net, 1);
    const step = (losses: number[], labelled: number[]) => {
      const batch = fakeBatch(net, { present: labelled.map((n) => n > 0), labelled });
      tf.tidy(() => balancer.gradients(batch));
      balancer.afterUpdate(batch, losses);
    };
    const factors = (present = [true, true]) =>
      tf.tidy(() => Array.from(balancer.gradients(fakeBatch(net, { present, labelled: [1, 1] })).factors.dataSync()));
    // Epoch 1: task a means (1·10 + 3·30)/40 = 2.5; task b 0.8 (its second batch has no label).
    step([1, 0.8], [10, 5]);
    step([3, 0], [30, 0]);
    assertClose(factors(), [1, 1], 0, 'first epoch');
    balancer.endEpoch();
    // Epoch 2: a 1.25 (rate 0.5), b 0.8 (rate 1).
    step([1.25, 0.8], [4, 4]);
    assertClose(factors(), [1, 1], 0, 'second epoch');
    balancer.endEpoch();
    const e1 = Math.exp(0.25);
    const e2 = Math.exp(0.5);
    assertClose(factors(), [(2 * e1) / (e1 + e2), (2 * e2) / (e1 + e2)], 1e-6, 'third epoch');
    assertClose(factors([true, false]), [(2 * e1) / (e1 + e2), 0], 1e-6, 'an absent task gets factor 0 in that step');
    const saved = JSON.parse(JSON.stringify(balancer.state()));
    const restored = createBalancer('dwa', DEFAULTS, net, 1);
    restored.restore(saved, 'test');
    assert.deepEqual(restored.state(), balancer.state());
    // Saved in the middle of an epoch, the epoch's running means come back too.
    step([2, 0.5], [8, 8]);
    const midEpoch = createBalancer('dwa', DEFAULTS, net, 1);
    midEpoch.restore(JSON.parse(JSON.stringify(balancer.state())), 'test');
    balancer.endEpoch();
    midEpoch.endEpoch();
    assert.deepEqual(midEpoch.state(), balancer.state());
  });

  it('uncertainty weighting: Σ exp(−s)·L + s/2 over the tasks present; d/ds = −exp(−s)·L + 1/2', () => {
    const { value, grad } = tf.tidy(() => {
      const losses = tf.tensor1d([2, 3]);
      const f = (s: tf.Tensor) => uncertaintyWeightedLoss(s as tf.Tensor1D, losses, tf.tensor1d([1, 1]));
      const s = tf.tensor1d([0, Math.log(2)]);
      return { value: f(s).dataSync()[0]!, grad: Array.from(tf.grad(f)(s).dataSync()) };
    });
    assert.ok(Math.abs(value - (2 + 1.5 + Math.log(2) / 2)) < 1e-5, `value ${value}`);
    assertClose(grad, [-1.5, -1], 1e-5, 'gradient');
    const absent = tf.tidy(() =>
      Array.from(
        tf
          .grad((s: tf.Tensor) => uncertaintyWeightedLoss(s as tf.Tensor1D, tf.tensor1d([2, 0]), tf.tensor1d([1, 0])))(tf.tensor1d([0, 0]))
          .dataSync(),
      ),
    );
    assertClose(absent, [-1.5, 0], 1e-6, "an absent task's s is not pushed down");
  });

  it('GradNorm: sign(G_i − Ḡ·r_i^α)·‖∇_W L_i‖, and renormalised weights summing to T', () => {
    // G = (1, 2), Ḡ = 1.5; r = (0.5, 1)/0.75; targets 1.5·r^1.5 = (0.816, 2.309): w1 too large, w2 too small.
    assertClose(
      gradnormWeightGradient({ weights: [1, 1], norms: [1, 2], lossRatios: [0.5, 1], alpha: 1.5, present: [true, true] }),
      [1, -2],
      0,
      'gradient',
    );
    // Equal rates and equal G: at the target.
    assertClose(
      gradnormWeightGradient({ weights: [2, 1], norms: [1, 2], lossRatios: [0.7, 0.7], alpha: 1.5, present: [true, true] }),
      [0, 0],
      0,
      'balanced',
    );
    assertClose(
      gradnormWeightGradient({ weights: [1, 1], norms: [1, 2], lossRatios: [0.5, 1], alpha: 1.5, present: [false, true] }),
      [0, 0],
      0,
      'one task present: nothing to balance',
    );
    assertClose(renormalisedWeights([0.5, 2.5]), [1 / 3, 5 / 3], 1e-12, 'renormalised');
  });

  it('FAMO: the step weighs ∇L_t by z_t/L_t (normalised); the logits move against the tasks whose log-loss fell more', () => {
    const coefficients = tf.tidy(() => Array.from(famoCoefficients(tf.tensor1d([0.5, 0.5]), tf.tensor1d([1, 4])).dataSync()));
    assertClose(coefficients, [0.8, 0.2], 1e-6, 'z/L normalised');
    const absent = tf.tidy(() => Array.from(famoCoefficients(tf.tensor1d([1, 0]), tf.tensor1d([1, 0])).dataSync()));
    assertClose(absent, [1, 0], 1e-6, 'an absent task has z = 0');
    // z = (½, ½), δ = (0.2, 0): gradient z ⊙ (δ − z·δ) = (0.05, −0.05); Adam's first step moves each logit by β.
    const gradient = famoLogitGradient([0, 0], [0.2, 0], [true, true]);
    assertClose(gradient, [0.05, -0.05], 1e-12, 'logit gradient');
    const state = { step: 0, m: [0, 0], v: [0, 0] };
    assertClose(adamStep([0, 0], gradient, state, 0.025, 0.01), [-0.025, 0.025], 1e-7, 'logits after one step (up to Adam epsilon)');
    assertClose(famoLogitGradient([0, 0, 0], [0.2, 0, 5], [true, true, false]), [0.05, -0.05, 0], 1e-12, 'an absent task takes no part');
  });
});

/** A network of one shared variable [2] and one bias per head, enough for createBalancer. */
function fakeNetwork(): MultiTaskNetwork {
  const variables = tf.tidy(() => [tf.variable(tf.zeros([2])), tf.variable(tf.zeros([1])), tf.variable(tf.zeros([1]))]);
  return {
    heads: [
      { task: 'a', kind: 'categorical', units: 1 },
      { task: 'b', kind: 'categorical', units: 1 },
    ],
    trainableVariables: () => variables,
    variableTasks: () => [undefined, 'a', 'b'],
    lastSharedLayer: () => [0],
  } as unknown as MultiTaskNetwork;
}

/**
 * A batch whose passes return given gradients: the loss a method asks for is recognised by which
 * of the parts it returns (task a's, task b's or the coupling terms').
 */
function fakeBatch(
  net: MultiTaskNetwork,
  options: { present: boolean[]; labelled?: number[]; taskGradients?: number[][][]; couplingGradient?: number[][] },
): BatchPasses {
  const variables = net.trainableVariables();
  return {
    tasks: ['a', 'b'],
    present: options.present,
    labelled: options.labelled ?? options.present.map((p) => (p ? 1 : 0)),
    coupled: options.couplingGradient !== undefined,
    supervised: tf.tensor1d([1, 1]),
    gradients(loss: (parts: LossParts) => tf.Scalar, wanted: readonly tf.Variable[]) {
      const parts: LossParts = { supervised: [tf.scalar(0), tf.scalar(0)], coupling: options.couplingGradient ? tf.scalar(0) : undefined };
      const chosen = loss(parts);
      const source = chosen === parts.coupling ? options.couplingGradient : options.taskGradients?.[parts.supervised.indexOf(chosen)];
      return wanted.map((v) => (source ? tf.tensor(source[variables.indexOf(v)]!, v.shape) : tf.zerosLike(v)));
    },
  } as unknown as BatchPasses;
}

describe('gradient methods assemble the update: shared combination, each head its own loss, coupling terms added', () => {
  // Per task: [shared (2), head a, head b]; a task's loss reaches only its own head.
  const taskGradients = [
    [[1, 0], [0.3], [0]],
    [[-1, 1], [0], [-0.7]],
  ];
  const coupling = [[0.1, 0.2], [0.01], [0.02]];

  function update(
    method: 'pcgrad' | 'mgda' | 'cagrad',
    present: boolean[],
    withCoupling: boolean,
  ): { gradients: number[][]; factors: number[] } {
    const net = fakeNetwork();
    const balancer = createBalancer(method, DEFAULTS, net, 1);
    const result = tf.tidy(() => {
      const { gradients, factors } = balancer.gradients(
        fakeBatch(net, { present, taskGradients, ...(withCoupling ? { couplingGradient: coupling } : {}) }),
      );
      return { gradients: gradients.map((g) => Array.from(g.dataSync())), factors: Array.from(factors.dataSync()) };
    });
    tf.dispose(net.trainableVariables());
    return result;
  }

  it('PCGrad, conflicting, both tasks present', () => {
    const { gradients, factors } = update('pcgrad', [true, true], false);
    assertClose(gradients[0]!, [0.5, 1.5], 1e-6, 'shared');
    assertClose(gradients[1]!, [0.3], 1e-6, 'head a: its own loss, unprojected');
    assertClose(gradients[2]!, [-0.7], 1e-6, 'head b');
    assertClose(factors, [2, 1.5], 1e-6, 'factors');
  });

  it('MGDA and CAGrad with the coupling terms added unchanged', () => {
    for (const method of ['mgda', 'cagrad'] as const) {
      const { gradients } = update(method, [true, true], true);
      assertClose(gradients[0]!, [0.2 + 0.1, 0.4 + 0.2], 1e-5, `${method} shared`);
      assertClose(gradients[1]!, [0.3 + 0.01], 1e-6, `${method} head a`);
      assertClose(gradients[2]!, [-0.7 + 0.02], 1e-6, `${method} head b`);
    }
  });

  it('a task absent from the batch is left out: no zero gradient stands in for it', () => {
    for (const method of ['pcgrad', 'mgda'] as const) {
      const { gradients, factors } = update(method, [true, false], true);
      assertClose(gradients[0]!, [1 + 0.1, 0 + 0.2], 1e-6, `${method}: shared is task a's gradient plus coupling`);
      assertClose(gradients[2]!, [0.02], 1e-6, `${method}: head b gets only the coupling terms`);
      assertClose(factors, [1, 0], 1e-6, `${method} factors`);
    }
    const cagrad = update('cagrad', [false, true], false);
    assertClose(cagrad.gradients[0]!, [-1.2, 1.2], 1e-6, 'cagrad with one task: (1 + c)/(1 + c²) times its gradient');
  });
});

describe('balancing methods in training', () => {
  const data = syntheticDataset({ counts: [96, 32, 32] });
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mtl-balancing-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const disjoint = { name: 'disjoint', spec: { kind: 'disjoint' as const, overlap: 0.3 } };

  for (const method of BALANCING_METHODS) {
    it(`mtl+${method} lowers the training loss and reports the weight it gave each task`, async () => {
      const result = await trainCell(
        cellConfig({ setting: `mtl+${method}` as Setting, regime: disjoint }, { flip: false, epochs: 3 }),
        data,
        { progress: 'quiet' },
      );
      const losses = result.history.map((r) => r.loss);
      assert.ok(losses[2]! < losses[0]!, `loss ${losses}`);
      assert.deepEqual(Object.keys(result.history[0]!.terms).sort(), ['sup:attrs', 'sup:quadrant', 'weight:attrs', 'weight:quadrant']);
      for (const record of result.history) for (const v of Object.values(record.terms)) assert.ok(Number.isFinite(v));
    });
  }

  it('composed with SCA and DM, a balanced cell keeps every coupling term', async () => {
    const result = await trainCell(cellConfig({ setting: 'mtl+sca+dm+pcgrad', regime: disjoint }, { flip: false, epochs: 2 }), data, {
      progress: 'quiet',
    });
    assert.deepEqual(
      Object.keys(result.history[0]!.terms).sort(),
      [
        'dm',
        'dm:attrs->quadrant',
        'dm:quadrant->attrs',
        'sca',
        'sca:attrs->quadrant',
        'sca:quadrant->attrs',
        'sup:attrs',
        'sup:quadrant',
        'weight:attrs',
        'weight:quadrant',
      ].sort(),
    );
    assert.ok(result.history[1]!.loss < result.history[0]!.loss);
  });

  for (const setting of ['mtl+dm+dwa', 'mtl+famo', 'mtl+uw', 'mtl+pcgrad'] as const) {
    const title =
      `${setting}: a run stopped after epoch 2, or inside epoch 3, ` + "resumes the method's state and ends like an uninterrupted run";
    it(title, async () => {
      const config = cellConfig({ setting }, { flip: false, epochs: 3 });
      const whole = await trainCell(config, data, { progress: 'quiet' });
      const stops: [string, (controller: AbortController) => Parameters<typeof trainCell>[2]][] = [
        ['after epoch 2', (controller) => ({ onEpochEnd: (_unit, record) => record.epoch === 2 && controller.abort() })],
        ['in epoch 3 after step 2', (controller) => ({ onStep: (_unit, epoch, step) => epoch === 3 && step === 2 && controller.abort() })],
      ];
      for (const [when, hooks] of stops) {
        const outDir = path.join(tmp, `${setting}-${when.replace(/ /g, '-')}`);
        const controller = new AbortController();
        await assert.rejects(
          trainCell(config, data, { outDir, progress: 'quiet', signal: controller.signal, ...hooks(controller) }),
          (err: unknown) => (err as Error).name === 'AbortError',
        );
        const resumed = await trainCell(config, data, { outDir, progress: 'quiet' });
        assert.deepEqual(
          resumed.history.map((r) => [r.loss, r.terms]),
          whole.history.map((r) => [r.loss, r.terms]),
          when,
        );
        assert.deepEqual(resumed.test, whole.test, when);
      }
    });
  }

  describe('one step, checked against gradients taken by hand on the same network', () => {
    const tasks = data.tasks;
    const batchSamples = Int32Array.from({ length: 16 }, (_, i) => i);
    const matrix = data.relatedness[0]!.matrix.map((r) => r.map((v) => Math.min(0.9999, Math.max(1e-4, v))));

    async function setup(method: 'pcgrad' | 'dwa') {
      const net = await buildNetwork({
        backbone: 'convnet-s',
        inputSize: 8,
        channels: 3,
        seed: 5,
        heads: tasks.map((t) => ({ task: t.name, kind: t.kind, units: t.labels.length })),
      });
      const coupling = couplingTensors({ from: 'quadrant', to: 'attrs', kind: 'categorical->multilabel', source: 'prior', matrix });
      const options = { sca: true, dm: true, method: cellConfig().method };
      const balancer = createBalancer(method, DEFAULTS, net, 1);
      // Plain SGD with rate 1: the change of each weight is minus the gradient the step applied.
      const optimizer = new Optimizer({ kind: 'sgd', momentum: 0, weightDecay: 0 }, net.trainableVariables(), net.decayMask());
      const images = readImageBatch(data.splits.train.images, batchSamples);
      return { net, coupling, options, balancer, optimizer, images };
    }

    function applied(net: MultiTaskNetwork, run: () => void): number[][] {
      const before = net.trainableVariables().map((v) => Array.from(v.dataSync()));
      run();
      return net.trainableVariables().map((v, i) => Array.from(v.dataSync()).map((x, k) => before[i]![k]! - x));
    }

    function handGradients(
      net: MultiTaskNetwork,
      images: Float32Array,
      labels: Record<string, EncodedTaskLabels>,
      coupling: ReturnType<typeof couplingTensors>,
      options: Parameters<typeof objective>[2],
      pick: (value: ReturnType<typeof objective>) => tf.Scalar,
    ): tf.Tensor[] {
      const variables = net.trainableVariables();
      const { grads } = tf.variableGrads(
        () => pick(objective(labelTensors(labels, net.forward(tf.tensor4d(images, [16, 8, 8, 3]), true)), [coupling], options)),
        variables,
      );
      return variables.map((v) => grads[v.name] ?? tf.zerosLike(v));
    }

    const title = 'mtl+sca+dm+pcgrad: PCGrad of the supervised gradients on the shared layers, own-task heads, plus λ-weighted SCA and DM';
    it(title, async () => {
      const { net, coupling, options, balancer, optimizer, images } = await setup('pcgrad');
      for (const quadrantAbsent of [false, true]) {
        const labels = encodeLabels(tasks, data.splits.train.labels, batchSamples);
        if (quadrantAbsent) {
          const q = labels.quadrant as Extract<EncodedTaskLabels, { kind: 'categorical' }>;
          q.oneHot.fill(0);
          q.has.fill(0);
        }
        const owners = net.variableTasks();
        const expected = tf.tidy(() => {
          const quadrant = handGradients(net, images, labels, coupling, options, (v) => v.weighted.supervised[0]!);
          const attrs = handGradients(net, images, labels, coupling, options, (v) => v.weighted.supervised[1]!);
          const couplingGrads = handGradients(net, images, labels, coupling, options, (v) => tf.addN(v.weighted.couplings) as tf.Scalar);
          const flat = (grads: tf.Tensor[]) =>
            Array.from(tf.concat(grads.filter((_, i) => owners[i] === undefined).map((g) => tf.reshape(g, [-1]))).dataSync());
          const vectors = quadrantAbsent ? [flat(attrs)] : [flat(quadrant), flat(attrs)];
          const c = pcgradCoefficients(
            gramOf(vectors),
            vectors.map((_, i) => vectors.map((_, j) => j).filter((j) => j !== i)),
          );
          const shared = combine(vectors, c);
          let offset = 0;
          return net.trainableVariables().map((v, i) => {
            const own =
              owners[i] === undefined
                ? shared.slice(offset, (offset += v.size))
                : Array.from((owners[i] === 'quadrant' ? quadrant : attrs)[i]!.dataSync()).map((x) =>
                    owners[i] === 'quadrant' && quadrantAbsent ? 0 : x,
                  );
            return own.map((x, k) => x + couplingGrads[i]!.dataSync()[k]!);
          });
        });
        const step = createTrainStep(net, optimizer, [coupling], options, [8, 8, 3], balancer);
        const change = applied(net, () => assert.ok(step.run(images, labels, 1).finite));
        change.forEach((delta, i) => {
          const scale = Math.max(1e-3, ...expected[i]!.map(Math.abs));
          delta.forEach((d, k) =>
            assert.ok(
              Math.abs(d - expected[i]![k]!) <= 1e-4 * scale,
              `quadrant absent ${quadrantAbsent}: variable ${i} entry ${k}: ${d} vs ${expected[i]![k]}`,
            ),
          );
        });
      }
      disposeCoupling(coupling);
      optimizer.dispose();
      balancer.dispose();
      net.dispose();
    });

    it('mtl+sca+dm+dwa: in the first epochs (weights 1) a step is the plain mtl+sca+dm step', async () => {
      const a = await setup('dwa');
      const b = await setup('dwa');
      const labels = encodeLabels(tasks, data.splits.train.labels, batchSamples);
      const balanced = createTrainStep(a.net, a.optimizer, [a.coupling], a.options, [8, 8, 3], a.balancer);
      const plain = createTrainStep(b.net, b.optimizer, [b.coupling], b.options, [8, 8, 3]);
      const changeBalanced = applied(a.net, () => balanced.run(a.images, labels, 1));
      const changePlain = applied(b.net, () => plain.run(b.images, labels, 1));
      changeBalanced.forEach((delta, i) =>
        delta.forEach((d, k) =>
          assert.ok(Math.abs(d - changePlain[i]![k]!) <= 1e-5 * Math.max(1, Math.abs(d)), `variable ${i}: ${d} vs ${changePlain[i]![k]}`),
        ),
      );
      for (const s of [a, b]) {
        disposeCoupling(s.coupling);
        s.optimizer.dispose();
        s.balancer.dispose();
        s.net.dispose();
      }
    });
  });
});
