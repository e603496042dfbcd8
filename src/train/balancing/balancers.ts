import * as tf from '@tensorflow/tfjs';
import type { MethodOptions } from '../../config/options.js';
import type { BalancingMethod } from '../../config/settings.js';
import { stopGradient } from '../../method/losses.js';
import type { MultiTaskNetwork } from '../../model/network.js';
import { Rng } from '../random.js';
import type { BatchPasses, LossParts } from './passes.js';
import type { AdamState, Gram } from './solvers.js';
import {
  adamStep,
  cagradCoefficients,
  dwaWeights,
  famoLogitGradient,
  gradnormWeightGradient,
  minNormCoefficients,
  pcgradCoefficients,
  presentSoftmax,
  renormalisedWeights,
} from './solvers.js';

/**
 * A balancing method for one multi-task network. Coupling terms (SCA, DM) are not balanced: each
 * method replaces Σ_t w_t L_t of the objective and λ_SCA·L_SCA + λ_DM·L_DM is added to the result
 * unchanged (README "Balancing methods" says why).
 */
export interface Balancer {
  readonly method: BalancingMethod;
  /** Parameters the trainer's optimiser updates beside the network's (UW's log-variances, GradNorm's weights). */
  readonly variables: tf.Variable[];
  /**
   * The step's gradient for every network variable, then every balancer variable, and the factor
   * the step gave each task's loss gradient (a gradient method's coefficient; 0 where the batch
   * has no label of the task). Call inside a tf.tidy.
   */
  gradients(batch: BatchPasses): { gradients: tf.Tensor[]; factors: tf.Tensor1D };
  /** After the optimiser applied the step; `taskLosses` are w_t·L_t before the update. */
  afterUpdate(batch: BatchPasses, taskLosses: readonly number[]): void;
  /** At the end of every epoch (loss-history methods). */
  endEpoch(): void;
  /** What a checkpoint must hold to resume the method exactly (plain numbers). */
  state(): BalancerState;
  restore(state: BalancerState | undefined, origin: string): void;
  dispose(): void;
}

export type BalancerState = Record<string, unknown>;

function sum(values: tf.Scalar[]): tf.Scalar {
  return (values.length === 1 ? values[0]! : tf.addN(values)) as tf.Scalar;
}

/** Σ_t factor_t·L_t plus the unbalanced coupling terms. */
function withCoupling(balanced: tf.Scalar, parts: LossParts): tf.Scalar {
  return parts.coupling ? (tf.add(balanced, parts.coupling) as tf.Scalar) : balanced;
}

function presentMask(batch: BatchPasses): tf.Tensor1D {
  return tf.tensor1d(batch.present.map((p) => (p ? 1 : 0)));
}

function restoredNumbers(state: BalancerState | undefined, key: string, length: number, origin: string): number[] | undefined {
  const value = state?.[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length !== length || value.some((v) => v !== null && typeof v !== 'number')) {
    throw new Error(`${origin}: balancing state "${key}" should hold ${length} numbers`);
  }
  return value as number[];
}

// ---- loss-weighting methods -----------------------------------------------------------------

/**
 * Uncertainty weighting in the classification form of Kendall, Gal & Cipolla ("Multi-Task Learning
 * Using Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018, eq. 10):
 * Σ_t (1/σ_t²) L_t + log σ_t, learned through s_t = log σ_t²: Σ_t exp(−s_t) L_t + s_t / 2.
 * s starts at 0 (every weight 1). A task absent from the batch leaves out its regulariser too, so
 * its s is not pushed down by a loss that was never measured.
 */
export function uncertaintyWeightedLoss(logVariances: tf.Tensor1D, losses: tf.Tensor1D, present: tf.Tensor1D): tf.Scalar {
  return tf.sum(tf.mul(present, tf.add(tf.mul(tf.exp(tf.neg(logVariances)), losses), tf.mul(logVariances, 0.5)))) as tf.Scalar;
}

class UncertaintyWeighting implements Balancer {
  readonly method = 'uw' as const;
  readonly variables: tf.Variable[];
  private readonly logVariances: tf.Variable;

  constructor(
    private readonly networkVariables: tf.Variable[],
    taskCount: number,
  ) {
    this.logVariances = tf.tidy(() => tf.variable(tf.zeros([taskCount]), true, undefined, 'float32'));
    this.variables = [this.logVariances];
  }

  gradients(batch: BatchPasses) {
    const present = presentMask(batch);
    const gradients = batch.gradients(
      (parts) =>
        withCoupling(uncertaintyWeightedLoss(this.logVariances as tf.Tensor1D, tf.stack(parts.supervised) as tf.Tensor1D, present), parts),
      [...this.networkVariables, this.logVariances],
    );
    return { gradients, factors: tf.mul(present, tf.exp(tf.neg(this.logVariances))) as tf.Tensor1D };
  }

  afterUpdate(): void {}
  endEpoch(): void {}

  state(): BalancerState {
    return { logVariances: Array.from(this.logVariances.dataSync()) };
  }

  restore(state: BalancerState | undefined, origin: string): void {
    const values = restoredNumbers(state, 'logVariances', this.logVariances.size, origin);
    if (values) tf.tidy(() => this.logVariances.assign(tf.tensor1d(values)));
  }

  dispose(): void {
    this.logVariances.dispose();
  }
}

/**
 * Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019): fixed weights within an epoch, from
 * the ratio of each task's mean loss over the two epochs before. A task's epoch mean is over the
 * samples (entries, for multi-label tasks) that carry its label, whichever batches they fell in.
 */
class DynamicWeightAverage implements Balancer {
  readonly method = 'dwa' as const;
  readonly variables: tf.Variable[] = [];
  /** Mean loss per task of the last two epochs, the earlier first; null: no labelled sample in that epoch. */
  private history: (number | null)[][] = [];
  private readonly sums: number[];
  private readonly counts: number[];

  constructor(
    private readonly networkVariables: tf.Variable[],
    private readonly taskCount: number,
    private readonly temperature: number,
  ) {
    this.sums = new Array<number>(taskCount).fill(0);
    this.counts = new Array<number>(taskCount).fill(0);
  }

  weights(): number[] {
    const none = new Array<number | null>(this.taskCount).fill(null);
    return this.history.length < 2
      ? new Array<number>(this.taskCount).fill(1)
      : dwaWeights(this.history[1] ?? none, this.history[0] ?? none, this.temperature);
  }

  gradients(batch: BatchPasses) {
    const weights = this.weights();
    const gradients = batch.gradients(
      (parts) => withCoupling(sum(parts.supervised.map((loss, t) => tf.mul(loss, weights[t]!) as tf.Scalar)), parts),
      this.networkVariables,
    );
    return { gradients, factors: tf.tensor1d(weights.map((w, t) => (batch.present[t] ? w : 0))) };
  }

  afterUpdate(batch: BatchPasses, taskLosses: readonly number[]): void {
    batch.present.forEach((present, t) => {
      if (!present) return;
      this.sums[t]! += taskLosses[t]! * batch.labelled[t]!;
      this.counts[t]! += batch.labelled[t]!;
    });
  }

  endEpoch(): void {
    this.history = [...this.history, this.sums.map((s, t) => (this.counts[t]! > 0 ? s / this.counts[t]! : null))].slice(-2);
    this.sums.fill(0);
    this.counts.fill(0);
  }

  state(): BalancerState {
    // The epoch's running sums too: a checkpoint may be written in the middle of an epoch.
    return { history: this.history, epochSums: [...this.sums], epochCounts: [...this.counts] };
  }

  restore(state: BalancerState | undefined, origin: string): void {
    const history = state?.history;
    if (history === undefined) return;
    if (!Array.isArray(history) || history.length > 2)
      throw new Error(`${origin}: balancing state "history" should hold at most two epochs`);
    this.history = history.map((_, i) => restoredNumbers({ epoch: history[i] }, 'epoch', this.taskCount, origin)!);
    const sums = restoredNumbers(state, 'epochSums', this.taskCount, origin);
    const counts = restoredNumbers(state, 'epochCounts', this.taskCount, origin);
    if (sums && counts) {
      sums.forEach((v, t) => (this.sums[t] = v));
      counts.forEach((v, t) => (this.counts[t] = v));
    }
  }

  dispose(): void {}
}

/**
 * GradNorm (Chen et al., ICML 2018): learned task weights w_t (starting at 1) move so that each
 * task's gradient norm on the last shared layer approaches the mean norm times its relative
 * inverse training rate to the power α; after each update they are renormalised to sum to the
 * number of tasks. L_t(0) is the task's loss in the first batch that carried its label.
 */
class GradNorm implements Balancer {
  readonly method = 'gradnorm' as const;
  readonly variables: tf.Variable[];
  private readonly weights: tf.Variable;
  private initialLosses: (number | null)[];

  constructor(
    private readonly networkVariables: tf.Variable[],
    private readonly lastShared: tf.Variable[],
    taskCount: number,
    private readonly alpha: number,
  ) {
    this.weights = tf.tidy(() => tf.variable(tf.ones([taskCount]), true, undefined, 'float32'));
    this.variables = [this.weights];
    this.initialLosses = new Array<number | null>(taskCount).fill(null);
  }

  gradients(batch: BatchPasses) {
    const weights = this.weights;
    const gradients = batch.gradients(
      (parts) => withCoupling(tf.sum(tf.mul(tf.stack(parts.supervised), weights)) as tf.Scalar, parts),
      this.networkVariables,
    );
    // ‖∇_W L_t‖ for each present task, one more (cheaper: it stops at W) pass each.
    const norms = batch.tasks.map((_, t) => {
      if (!batch.present[t]) return tf.scalar(0);
      const grads = batch.gradients((parts) => parts.supervised[t]!, this.lastShared);
      return tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
    });
    const host = tf.concat([tf.stack(norms), weights, batch.supervised]).dataSync();
    const n = batch.tasks.length;
    const norm = Array.from(host.subarray(0, n));
    const weightValues = Array.from(host.subarray(n, 2 * n));
    const losses = Array.from(host.subarray(2 * n, 3 * n));
    batch.present.forEach((present, t) => {
      if (present && this.initialLosses[t] === null) this.initialLosses[t] = losses[t]!;
    });
    const lossRatios = losses.map((loss, t) => (this.initialLosses[t] ? loss / this.initialLosses[t]! : 1));
    const weightGradient = gradnormWeightGradient({
      weights: weightValues,
      norms: norm,
      lossRatios,
      alpha: this.alpha,
      present: batch.present,
    });
    return { gradients: [...gradients, tf.tensor1d(weightGradient)], factors: tf.mul(presentMask(batch), weights) as tf.Tensor1D };
  }

  afterUpdate(): void {
    const renormalised = renormalisedWeights(Array.from(this.weights.dataSync()));
    tf.tidy(() => this.weights.assign(tf.tensor1d(renormalised)));
  }

  endEpoch(): void {}

  state(): BalancerState {
    return { weights: Array.from(this.weights.dataSync()), initialLosses: this.initialLosses };
  }

  restore(state: BalancerState | undefined, origin: string): void {
    const weights = restoredNumbers(state, 'weights', this.weights.size, origin);
    if (weights) tf.tidy(() => this.weights.assign(tf.tensor1d(weights)));
    this.initialLosses = restoredNumbers(state, 'initialLosses', this.initialLosses.length, origin) ?? this.initialLosses;
  }

  dispose(): void {
    this.weights.dispose();
  }
}

const FAMO_EPSILON = 1e-8;

/**
 * FAMO's weights for one step: z_t / L_t normalised over the present tasks, so the update is
 * Σ_t c·(z_t / L_t)·∇L_t with c = (Σ_t z_t / L_t)⁻¹ (the paper's eq. for the direction d_t).
 */
export function famoCoefficients(z: tf.Tensor1D, losses: tf.Tensor1D): tf.Tensor1D {
  const inverse = tf.div(z, tf.add(losses, FAMO_EPSILON));
  return tf.div(inverse, tf.maximum(tf.sum(inverse), FAMO_EPSILON)) as tf.Tensor1D;
}

/**
 * FAMO (Liu et al., NeurIPS 2023): the update follows Σ_t z_t ∇log L_t (normalised), z =
 * softmax(ξ); after the update the losses are measured again on the same batch and ξ moves so
 * that tasks whose log-loss fell less get more weight. ξ is updated by Adam with learning rate β
 * and decay γ, as in the authors' code (the paper's Algorithm 1 writes a plain gradient step).
 */
class Famo implements Balancer {
  readonly method = 'famo' as const;
  readonly variables: tf.Variable[] = [];
  private logits: number[];
  private adam: AdamState;

  constructor(
    private readonly networkVariables: tf.Variable[],
    taskCount: number,
    private readonly learningRate: number,
    private readonly decay: number,
  ) {
    this.logits = new Array<number>(taskCount).fill(0);
    this.adam = { step: 0, m: new Array<number>(taskCount).fill(0), v: new Array<number>(taskCount).fill(0) };
  }

  gradients(batch: BatchPasses) {
    const z = tf.tensor1d(presentSoftmax(this.logits, batch.present));
    const gradients = batch.gradients((parts) => {
      const losses = tf.stack(parts.supervised) as tf.Tensor1D;
      return withCoupling(tf.sum(tf.mul(stopGradient(famoCoefficients(z, losses)), losses)) as tf.Scalar, parts);
    }, this.networkVariables);
    return { gradients, factors: famoCoefficients(z, batch.supervised) };
  }

  afterUpdate(batch: BatchPasses, taskLosses: readonly number[]): void {
    if (!batch.present.some((p) => p)) return;
    const after = tf.tidy(() => batch.evaluate()).dataSync();
    const decrease = taskLosses.map((before, t) =>
      batch.present[t] ? Math.log(before + FAMO_EPSILON) - Math.log(after[t]! + FAMO_EPSILON) : 0,
    );
    this.logits = adamStep(this.logits, famoLogitGradient(this.logits, decrease, batch.present), this.adam, this.learningRate, this.decay);
  }

  endEpoch(): void {}

  state(): BalancerState {
    return { logits: this.logits, adamStep: this.adam.step, adamM: this.adam.m, adamV: this.adam.v };
  }

  restore(state: BalancerState | undefined, origin: string): void {
    const n = this.logits.length;
    const logits = restoredNumbers(state, 'logits', n, origin);
    if (!logits) return;
    const step = state!.adamStep;
    if (typeof step !== 'number' || !Number.isInteger(step) || step < 0)
      throw new Error(`${origin}: balancing state "adamStep" should be a whole number`);
    this.logits = logits;
    this.adam = {
      step,
      m: restoredNumbers(state, 'adamM', n, origin) ?? this.adam.m,
      v: restoredNumbers(state, 'adamV', n, origin) ?? this.adam.v,
    };
  }

  dispose(): void {}
}

// ---- gradient methods -----------------------------------------------------------------------

/** A gradient method's coefficients from the Gram matrix of the present tasks' gradients; `rng` for methods that draw. */
type GradientRule = (gram: Gram, rng: Rng) => number[];

/**
 * PCGrad, MGDA and CAGrad: one pass per task present in the batch gives its gradient on the shared
 * parameters; the rule turns their Gram matrix into coefficients and the shared update is
 * Σ c_t g_t. Each head takes the gradient of its own task's loss; the coupling terms' gradient
 * (one more pass) is added to every variable unchanged.
 */
class GradientCombination implements Balancer {
  readonly variables: tf.Variable[] = [];
  private readonly shared: number[];
  private readonly headOf: (string | undefined)[];

  constructor(
    readonly method: 'pcgrad' | 'mgda' | 'cagrad',
    private readonly networkVariables: tf.Variable[],
    variableTasks: (string | undefined)[],
    private readonly rule: GradientRule,
    private rng: Rng,
  ) {
    this.headOf = variableTasks;
    this.shared = variableTasks.flatMap((task, i) => (task === undefined ? [i] : []));
  }

  gradients(batch: BatchPasses) {
    const present = batch.tasks.flatMap((_, t) => (batch.present[t] ? [t] : []));
    const perTask = new Map(present.map((t) => [t, batch.gradients((parts) => parts.supervised[t]!, this.networkVariables)] as const));
    const coupling = batch.coupled ? batch.gradients((parts) => parts.coupling!, this.networkVariables) : undefined;
    const coefficients = new Array<number>(batch.tasks.length).fill(0);
    let combinedShared: tf.Tensor[] | undefined;
    if (present.length > 0) {
      const sharedRows = tf.stack(
        present.map((t) => tf.concat(this.shared.map((i) => tf.reshape(perTask.get(t)![i]!, [-1])))),
      ) as tf.Tensor2D;
      const gram = tf.matMul(sharedRows, sharedRows, false, true).arraySync() as number[][];
      const taskCoefficients = this.rule(gram, this.rng);
      present.forEach((t, k) => (coefficients[t] = taskCoefficients[k]!));
      const flat = tf.matMul(tf.tensor2d([taskCoefficients]), sharedRows);
      const sizes = this.shared.map((i) => this.networkVariables[i]!.size);
      combinedShared = tf
        .split(tf.reshape(flat, [-1]), sizes)
        .map((part, k) => tf.reshape(part, this.networkVariables[this.shared[k]!]!.shape));
    }
    const sharedPosition = new Map(this.shared.map((i, k) => [i, k]));
    const gradients = this.networkVariables.map((variable, i) => {
      const task = this.headOf[i];
      const t = task === undefined ? -1 : batch.tasks.indexOf(task);
      const own = task === undefined ? combinedShared?.[sharedPosition.get(i)!] : perTask.get(t)?.[i];
      const parts = [own, coupling?.[i]].filter((g): g is tf.Tensor => g !== undefined);
      return parts.length === 0 ? tf.zerosLike(variable) : parts.length === 1 ? parts[0]! : tf.add(parts[0]!, parts[1]!);
    });
    return { gradients, factors: tf.tensor1d(coefficients) };
  }

  afterUpdate(): void {}
  endEpoch(): void {}

  state(): BalancerState {
    return { rng: this.rng.state() };
  }

  restore(state: BalancerState | undefined, origin: string): void {
    const saved = restoredNumbers(state, 'rng', 4, origin);
    if (saved) this.rng = Rng.fromState(saved);
  }

  dispose(): void {}
}

/** Every balancing method by name, built for one network. */
export function createBalancer(method: BalancingMethod, options: MethodOptions, net: MultiTaskNetwork, seed: number): Balancer {
  const variables = net.trainableVariables();
  const taskCount = net.heads.length;
  const rng = (label: string) => Rng.fromSeed(seed, 'balancing', label);
  switch (method) {
    case 'uw':
      return new UncertaintyWeighting(variables, taskCount);
    case 'dwa':
      return new DynamicWeightAverage(variables, taskCount, options.dwaTemperature);
    case 'gradnorm':
      return new GradNorm(
        variables,
        net.lastSharedLayer().map((i) => variables[i]!),
        taskCount,
        options.gradnormAlpha,
      );
    case 'famo':
      return new Famo(variables, taskCount, options.famoLr, options.famoDecay);
    case 'pcgrad':
      // Each task meets the others in a fresh random order every step.
      return new GradientCombination(
        'pcgrad',
        variables,
        net.variableTasks(),
        (gram, rng) =>
          pcgradCoefficients(
            gram,
            gram.map((_, i) => rng.shuffle(gram.map((_, j) => j).filter((j) => j !== i))),
          ),
        rng('pcgrad'),
      );
    case 'mgda':
      return new GradientCombination('mgda', variables, net.variableTasks(), minNormCoefficients, rng('mgda'));
    case 'cagrad':
      return new GradientCombination(
        'cagrad',
        variables,
        net.variableTasks(),
        (gram) => cagradCoefficients(gram, options.cagradC),
        rng('cagrad'),
      );
    default:
      throw new Error(`unknown balancing method ${String(method)}`);
  }
}
