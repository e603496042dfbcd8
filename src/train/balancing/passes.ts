import * as tf from '@tensorflow/tfjs';
import type { CouplingTensors, ObjectiveOptions } from '../../method/losses.js';
import { objective } from '../../method/losses.js';
import type { MultiTaskNetwork } from '../../model/network.js';
import type { EncodedTaskLabels } from '../batches.js';
import { labelTensors } from '../batches.js';

/** One forward pass's losses, split the way the balancing methods need them. */
export interface LossParts {
  /** w_t times each task's supervised loss (mean over the samples or entries that carry its label), in task order. */
  supervised: tf.Scalar[];
  /** λ_SCA·L_SCA + λ_DM·L_DM; undefined when the setting has no coupling term. */
  coupling: tf.Scalar | undefined;
}

/**
 * The forward and backward passes of one training batch. tfjs differentiates one scalar per
 * forward pass, so each per-task gradient costs a forward and a backward pass; the passes see the
 * same images and weights, so they compute the same activations. A training-mode forward pass
 * also moves batch norm's moving statistics: the first pass of a step moves them, the later
 * passes put them back, so a step updates them once however many passes its method needs.
 */
export class BatchPasses {
  /** The network's tasks, in head order. */
  readonly tasks: string[];
  /** Per task: whether the batch carries at least one of its labels. */
  readonly present: boolean[];
  /** Per task: the labelled samples (categorical) or annotated entries (multi-label) its loss averages over. */
  readonly labelled: number[];
  /** Whether the objective has coupling terms for this network. */
  readonly coupled: boolean;
  private readonly images: tf.Tensor4D;
  private passes = 0;
  private statistics: tf.Tensor[] | undefined;
  private first: { logged: tf.Tensor1D; supervised: tf.Tensor1D } | undefined;

  constructor(
    private readonly net: MultiTaskNetwork,
    private readonly couplings: readonly CouplingTensors[],
    private readonly options: ObjectiveOptions,
    images: Float32Array,
    imageShape: [number, number, number],
    private readonly labels: Record<string, EncodedTaskLabels>,
  ) {
    this.tasks = net.heads.map((h) => h.task);
    this.present = this.tasks.map((t) => labels[t]!.has.some((h) => h > 0));
    this.labelled = this.tasks.map((t) => {
      const encoded = labels[t]!;
      return (encoded.kind === 'categorical' ? encoded.has : encoded.mask).reduce((a, b) => a + b, 0);
    });
    this.coupled = couplings.length > 0 && (options.sca || options.dm);
    const pixels = imageShape[0] * imageShape[1] * imageShape[2];
    this.images = tf.keep(tf.tensor4d(images, [images.length / pixels, ...imageShape]));
  }

  /** 'total' then every objective term of the step's first pass (the unbalanced objective, as plain settings report it). */
  get logged(): tf.Tensor1D {
    if (!this.first) throw new Error('no pass has run on this batch yet');
    return this.first.logged;
  }

  /** w_t·L_t per task at the weights before the update, from the step's first pass. */
  get supervised(): tf.Tensor1D {
    if (!this.first) throw new Error('no pass has run on this batch yet');
    return this.first.supervised;
  }

  /**
   * One forward and backward pass: the gradient of `loss(parts)` for each of `variables` (zeros
   * for a variable the loss does not reach). Call inside a tf.tidy.
   */
  gradients(loss: (parts: LossParts) => tf.Scalar, variables: readonly tf.Variable[]): tf.Tensor[] {
    const restore = this.beginForward();
    const { grads } = tf.variableGrads(() => {
      const parts = this.forward(true);
      return loss(parts);
    }, variables as tf.Variable[]);
    restore();
    return variables.map((v) => grads[v.name] ?? tf.zerosLike(v));
  }

  /** w_t·L_t per task at the current weights, forward only (batch statistics, as in training). */
  evaluate(): tf.Tensor1D {
    const restore = this.beginForward();
    const losses = tf.tidy(() => tf.stack(this.forward(false).supervised) as tf.Tensor1D);
    restore();
    return losses;
  }

  dispose(): void {
    tf.dispose([this.images, ...(this.statistics ?? []), ...(this.first ? [this.first.logged, this.first.supervised] : [])]);
  }

  private forward(record: boolean): LossParts {
    const logits = this.net.forward(this.images, true);
    const value = objective(labelTensors(this.labels, logits), this.couplings, this.options);
    const couplings = value.weighted.couplings;
    if (record && !this.first) {
      // Read after the pass: kept out of variableGrads' own tidy, disposed with the batch.
      this.first = {
        logged: tf.keep(tf.stack([value.total, ...value.terms.map((t) => t.value)]) as tf.Tensor1D),
        supervised: tf.keep(tf.stack(value.weighted.supervised) as tf.Tensor1D),
      };
    }
    return {
      supervised: value.weighted.supervised,
      coupling: couplings.length === 0 ? undefined : couplings.length === 1 ? couplings[0]! : (tf.addN(couplings) as tf.Scalar),
    };
  }

  /** Before a forward pass: from the second pass on, remember the moving statistics the first pass left, to put them back after. */
  private beginForward(): () => void {
    this.passes++;
    if (this.passes === 1) return () => {};
    const weights = this.net.statefulWeights();
    this.statistics ??= weights.map((w) => tf.keep(w.read().clone()));
    const saved = this.statistics;
    return () => weights.forEach((w, i) => w.write(saved[i]!));
  }
}
