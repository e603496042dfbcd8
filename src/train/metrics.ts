import type { LabelColumn, TaskSpec } from '../datasets/types.js';
import { MASKED, NO_CLASS } from '../datasets/types.js';

/**
 * Classification metrics, accumulated batch by batch from hard predictions.
 *
 * Conventions (written into every result's selection rule by the trainer):
 * - categorical accuracy: correct / samples with a label.
 * - categorical macro-F1: the mean of F1_k = 2TP/(2TP+FP+FN) over the classes that occur in the
 *   evaluated split's ground truth; a predicted class with no true sample is not averaged in, but
 *   its wrong predictions still count as misses of the true classes.
 * - multi-label: a prediction is positive when σ(z) > 0.5; masked entries are skipped.
 *   label_accuracy is the mean over labels (with at least one annotated entry) of each label's
 *   accuracy; macro_f1 the mean of F1 over the labels with at least one positive entry. A label
 *   with no positive in the split has no defined F1 (its recall is 0/0) and is left out rather
 *   than counted as 0 or 1.
 * A metric with nothing to average (no labelled sample, no positive label) is NaN.
 */
export const METRIC_CONVENTIONS =
  'macro-F1 averages over the classes/labels with at least one positive in the evaluated split ' +
  '(others have no defined F1 and are skipped); multi-label predictions are σ(z) > 0.5 and masked entries are skipped';

export class TaskMetrics {
  readonly task: TaskSpec;
  private readonly tp: Float64Array;
  private readonly fp: Float64Array;
  private readonly fn: Float64Array;
  private readonly tn: Float64Array;
  private correct = 0;
  private labelled = 0;

  constructor(task: TaskSpec) {
    this.task = task;
    const width = task.labels.length;
    this.tp = new Float64Array(width);
    this.fp = new Float64Array(width);
    this.fn = new Float64Array(width);
    this.tn = new Float64Array(width);
  }

  /** Columns this task occupies in a prediction row: 1 (the argmax) or M (0/1 per label). */
  get predictionWidth(): number {
    return this.task.kind === 'categorical' ? 1 : this.task.labels.length;
  }

  /**
   * Adds a batch: `predictions` is row-major [batch × rowWidth], this task's columns starting at
   * `offset`; `samples[n]` is the row of sample n in `column`.
   */
  add(predictions: ArrayLike<number>, rowWidth: number, offset: number, column: LabelColumn, samples: ArrayLike<number>): void {
    for (let n = 0; n < samples.length; n++) {
      const sample = samples[n]!;
      const row = n * rowWidth + offset;
      if (column.kind === 'categorical') {
        const truth = column.values[sample]!;
        if (truth === NO_CLASS) continue;
        const predicted = predictions[row]!;
        this.labelled++;
        if (predicted === truth) {
          this.correct++;
          this.tp[truth]! += 1;
        } else {
          this.fn[truth]! += 1;
          if (predicted >= 0 && predicted < this.fp.length) this.fp[predicted]! += 1;
        }
      } else {
        const width = column.width;
        for (let i = 0; i < width; i++) {
          const truth = column.values[sample * width + i]!;
          if (truth === MASKED) continue;
          const positive = predictions[row + i]! > 0.5;
          if (truth === 1) {
            if (positive) this.tp[i]! += 1;
            else this.fn[i]! += 1;
          } else if (positive) this.fp[i]! += 1;
          else this.tn[i]! += 1;
        }
      }
    }
  }

  private macroF1(): number {
    let sum = 0;
    let counted = 0;
    for (let k = 0; k < this.tp.length; k++) {
      const support = this.tp[k]! + this.fn[k]!;
      if (support === 0) continue;
      sum += (2 * this.tp[k]!) / (2 * this.tp[k]! + this.fp[k]! + this.fn[k]!);
      counted++;
    }
    return counted === 0 ? Number.NaN : sum / counted;
  }

  /**
   * Multi-label only: the share of annotated entries predicted present, and the share truly
   * present. A head that predicts nearly everything present has the first far above the second.
   */
  positiveRates(): { predicted: number; truth: number } | undefined {
    if (this.task.kind === 'categorical') return undefined;
    let predicted = 0;
    let truth = 0;
    let annotated = 0;
    for (let i = 0; i < this.tp.length; i++) {
      predicted += this.tp[i]! + this.fp[i]!;
      truth += this.tp[i]! + this.fn[i]!;
      annotated += this.tp[i]! + this.fp[i]! + this.fn[i]! + this.tn[i]!;
    }
    return annotated === 0 ? undefined : { predicted: predicted / annotated, truth: truth / annotated };
  }

  /**
   * Categorical only: what always predicting the split's most frequent class would score
   * (accuracy: its share; macro-F1: its own F1, 2p/(1+p), over the classes present, the others
   * scoring 0). A head below both has learnt less than that constant.
   */
  majorityBaseline(): { accuracy: number; macro_f1: number } | undefined {
    if (this.task.kind !== 'categorical' || this.labelled === 0) return undefined;
    let largest = 0;
    let present = 0;
    for (let k = 0; k < this.tp.length; k++) {
      const support = this.tp[k]! + this.fn[k]!;
      if (support > 0) present++;
      largest = Math.max(largest, support);
    }
    const share = largest / this.labelled;
    return { accuracy: share, macro_f1: (2 * share) / (1 + share) / present };
  }

  result(): Record<string, number> {
    if (this.task.kind === 'categorical') {
      return { accuracy: this.labelled === 0 ? Number.NaN : this.correct / this.labelled, macro_f1: this.macroF1() };
    }
    let accuracySum = 0;
    let annotatedLabels = 0;
    for (let i = 0; i < this.tp.length; i++) {
      const annotated = this.tp[i]! + this.fp[i]! + this.fn[i]! + this.tn[i]!;
      if (annotated === 0) continue;
      accuracySum += (this.tp[i]! + this.tn[i]!) / annotated;
      annotatedLabels++;
    }
    return { label_accuracy: annotatedLabels === 0 ? Number.NaN : accuracySum / annotatedLabels, macro_f1: this.macroF1() };
  }
}

/** Mean of the finite values (NaN when there is none): the model-selection score. */
export function meanOfFinite(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v));
  return finite.length === 0 ? Number.NaN : finite.reduce((a, b) => a + b, 0) / finite.length;
}
