import * as tf from '@tensorflow/tfjs';
import type { TrainOptions } from '../config/options.js';

/**
 * Adam and SGD with momentum, written here rather than taken from tf.train because the trainer
 * needs three things tf.train's optimizers do not offer publicly: a learning rate that changes
 * every step, weight decay on chosen variables only, and a state it can save and restore exactly.
 * The updates follow PyTorch's torch.optim.Adam / SGD (weight decay added to the gradient;
 * momentum buffer b ← μb + g, no dampening, no Nesterov).
 */
export interface OptimizerSettings {
  kind: TrainOptions['optimizer'];
  momentum: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

export interface OptimizerState {
  step: number;
  /** Slot values in variable order: Adam [m₀, v₀, m₁, v₁, …], SGD with momentum [b₀, b₁, …]. */
  slots: Float32Array[];
}

export class Optimizer {
  private readonly settings: Required<OptimizerSettings>;
  private readonly variables: tf.Variable[];
  private readonly decay: boolean[];
  private readonly slots: tf.Variable[];
  private step = 0;

  constructor(settings: OptimizerSettings, variables: tf.Variable[], decayMask: boolean[]) {
    this.settings = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, ...settings };
    this.variables = variables;
    this.decay = decayMask;
    const perVariable = settings.kind === 'adam' ? 2 : settings.momentum > 0 ? 1 : 0;
    this.slots = [];
    // In a tidy: a variable holds its own reference to the zeros, and the temporary tensor must not keep them alive after dispose().
    for (const v of variables) for (let s = 0; s < perVariable; s++) this.slots.push(tf.tidy(() => tf.variable(tf.zerosLike(v), false)));
  }

  get steps(): number {
    return this.step;
  }

  /** One update with gradients in variable order; call inside a tf.tidy. */
  apply(gradients: tf.Tensor[], learningRate: number): void {
    const { kind, momentum, weightDecay, beta1, beta2, epsilon } = this.settings;
    this.step++;
    const t = this.step;
    this.variables.forEach((variable, i) => {
      let g = gradients[i]!;
      if (weightDecay > 0 && this.decay[i]) g = tf.add(g, tf.mul(variable, weightDecay));
      if (kind === 'adam') {
        const m = this.slots[2 * i]!;
        const v = this.slots[2 * i + 1]!;
        const mNext = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const vNext = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(mNext);
        v.assign(vNext);
        // lr·m̂/(√v̂ + ε) with both bias corrections folded into scalars: one kernel fewer per variable.
        const correction = Math.sqrt(1 - beta2 ** t);
        const stepSize = (learningRate * correction) / (1 - beta1 ** t);
        const denominator = tf.add(tf.sqrt(vNext), epsilon * correction);
        variable.assign(tf.sub(variable, tf.mul(tf.div(mNext, denominator), stepSize)));
      } else if (momentum > 0) {
        const buffer = this.slots[i]!;
        const next = tf.add(tf.mul(buffer, momentum), g);
        buffer.assign(next);
        variable.assign(tf.sub(variable, tf.mul(next, learningRate)));
      } else {
        variable.assign(tf.sub(variable, tf.mul(g, learningRate)));
      }
    });
  }

  state(): OptimizerState {
    return { step: this.step, slots: this.slots.map((s) => Float32Array.from(s.dataSync() as Float32Array)) };
  }

  restore(state: OptimizerState, origin: string): void {
    if (state.slots.length !== this.slots.length)
      throw new Error(`${origin}: optimizer state has ${state.slots.length} slots, expected ${this.slots.length}`);
    state.slots.forEach((data, i) => {
      if (data.length !== this.slots[i]!.size)
        throw new Error(`${origin}: optimizer slot ${i} has ${data.length} values, expected ${this.slots[i]!.size}`);
    });
    tf.tidy(() => state.slots.forEach((data, i) => this.slots[i]!.assign(tf.tensor(data, this.slots[i]!.shape, 'float32'))));
    this.step = state.step;
  }

  dispose(): void {
    for (const s of this.slots) s.dispose();
  }
}

/** The learning rate of a step: cosine decays to 0 over all steps; step multiplies by gamma every `stepEvery` epochs. */
export function learningRateAt(
  options: Pick<TrainOptions, 'learningRate' | 'schedule' | 'epochs' | 'stepEvery' | 'stepGamma'>,
  epoch: number,
  stepInEpoch: number,
  stepsPerEpoch: number,
): number {
  switch (options.schedule) {
    case 'constant':
      return options.learningRate;
    case 'step':
      return options.learningRate * options.stepGamma ** Math.floor(epoch / Math.max(1, options.stepEvery));
    case 'cosine': {
      const progress = (epoch * stepsPerEpoch + stepInEpoch) / Math.max(1, options.epochs * stepsPerEpoch);
      return options.learningRate * 0.5 * (1 + Math.cos(Math.PI * progress));
    }
    default:
      throw new Error(`unknown learning-rate schedule ${String(options.schedule)}`);
  }
}
