import * as tf from '@tensorflow/tfjs';
import type { CouplingTensors, DmOptions, TaskBatch } from './losses.js';
import { dmTargetFromCategorical, labelLogLikelihood, multilabelClassScores } from './losses.js';
import { pairKey } from './relatedness.js';

/**
 * Each SCA and DM direction pulls a head (its student) toward a target (its teacher). Scoring the
 * teacher as if it were a prediction shows whether that pull is toward something better or worse
 * than the head already is.
 *
 * The teacher's hard prediction is read the way a head's is: the argmax class of q_C (τ does
 * not move an argmax), or q_A > 0.5 per label.
 * - DM: the target built from the other head's prediction (p_C · R, or the class scores of the
 *   multi-label head), on every sample.
 * - SCA: the target built from the other task's true label (R[k*,·], or the likelihood of the
 *   observed labels under each class), only on samples that carry that label; it depends on R
 *   and the labels alone, so it is the same at every epoch.
 */
export interface TeacherDirection {
  /** The objective's term name: `sca:<from>-><to>` or `dm:<from>-><to>`. */
  name: string;
  coupling: 'sca' | 'dm';
  /** The task whose prediction or label builds the target. */
  source: string;
  /** The task whose head is taught (the student). */
  student: string;
}

/** The directions the objective trains, in its term order (objectiveTermNames). */
export function teacherDirections(
  couplings: readonly Pick<CouplingTensors, 'from' | 'to' | 'kind'>[],
  options: { sca: boolean; dm: boolean },
): TeacherDirection[] {
  const pairs = couplings.flatMap((c) =>
    c.kind === 'categorical->multilabel' ? [[c.from, c.to] as const, [c.to, c.from] as const] : [[c.from, c.to] as const],
  );
  const directions: TeacherDirection[] = [];
  for (const coupling of ['sca', 'dm'] as const) {
    if (!options[coupling]) continue;
    for (const [source, student] of pairs) directions.push({ name: `${coupling}:${pairKey(source, student)}`, coupling, source, student });
  }
  return directions;
}

function argmaxColumn(scores: tf.Tensor2D): tf.Tensor2D {
  return tf.expandDims(tf.cast(tf.argMax(scores, 1), 'float32'), 1) as tf.Tensor2D;
}

function aboveHalf(probabilities: tf.Tensor2D): tf.Tensor2D {
  return tf.cast(tf.greater(probabilities, 0.5), 'float32') as tf.Tensor2D;
}

/**
 * The teacher's hard predictions for one batch, in the student head's prediction format: [N, 1]
 * class indices or [N, M] 0/1 labels. Call inside a tf.tidy. `batches` hold each task's logits and,
 * for SCA, its true labels.
 */
export function teacherPrediction(
  direction: TeacherDirection,
  batches: Record<string, TaskBatch>,
  couplings: readonly CouplingTensors[],
  variant: DmOptions['variant'],
): tf.Tensor2D {
  const source = batches[direction.source]!;
  const coupling = couplings.find(
    (c) =>
      (c.from === direction.source && c.to === direction.student) ||
      (c.kind === 'categorical->multilabel' && c.from === direction.student && c.to === direction.source),
  );
  if (!coupling) throw new Error(`${direction.name}: no coupling between ${direction.source} and ${direction.student}`);
  if (source.kind === 'categorical') {
    const target: tf.Tensor2D =
      direction.coupling === 'dm' ? dmTargetFromCategorical(source, coupling.R) : tf.matMul(source.oneHot, coupling.R);
    return coupling.kind === 'categorical->multilabel' ? aboveHalf(target) : argmaxColumn(target);
  }
  const scores =
    direction.coupling === 'dm'
      ? multilabelClassScores(source, coupling, variant)
      : labelLogLikelihood(source, coupling.logR!, coupling.log1mR!);
  return argmaxColumn(scores);
}
