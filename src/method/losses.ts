import * as tf from '@tensorflow/tfjs';
import type { CellMethodOptions, MethodOptions } from '../config/options.js';
import type { PairKind, RelatednessMatrix } from './relatedness.js';
import { pairKey } from './relatedness.js';

/**
 * The method's losses (method.md), written for one batch of N samples. Every product of
 * probabilities is a sum of logarithms (log-softmax, log-sigmoid, log-add-exp), so 312 labels or
 * 200 classes never underflow; every term is a mean over the samples (and, for multi-label, the
 * entries) it applies to, and a batch where a term applies to nothing contributes exactly 0.
 */

/** A categorical task in a batch: logits [N,K], one-hot labels [N,K] (zero rows where unlabelled), has [N] ∈ {0,1}. */
export interface CategoricalBatch {
  kind: 'categorical';
  logits: tf.Tensor2D;
  oneHot: tf.Tensor2D;
  has: tf.Tensor1D;
}

/**
 * A multi-label task in a batch: logits [N,M], targets [N,M] ∈ {0,1} (0 where masked), mask [N,M] (1 = annotated),
 * has [N] (any entry annotated).
 */
export interface MultilabelBatch {
  kind: 'multilabel';
  logits: tf.Tensor2D;
  target: tf.Tensor2D;
  mask: tf.Tensor2D;
  has: tf.Tensor1D;
}

export type TaskBatch = CategoricalBatch | MultilabelBatch;

type CustomGradientFunc = Parameters<typeof tf.customGrad>[0];
const stopGradientOp = tf.customGrad(((x: tf.Tensor) => ({
  value: x.clone(),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as CustomGradientFunc);

/** Identity in the forward pass, zero gradient in the backward pass (tfjs has no stop_gradient op). */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return stopGradientOp(x) as T;
}

/**
 * log σ(z) = −softplus(−z). tf.logSigmoid is not used: its custom gradient reads its input after
 * the forward pass has disposed it whenever that input is an intermediate tensor (tfjs 4.22).
 */
function logSigmoid(logits: tf.Tensor): tf.Tensor {
  return tf.neg(tf.softplus(tf.neg(logits)));
}

/** Σ values·weights / max(Σ weights, 1): a weighted mean that is 0, not NaN, when nothing applies. */
function maskedMean(values: tf.Tensor, weights: tf.Tensor): tf.Scalar {
  return tf.div(tf.sum(tf.mul(values, weights)), tf.maximum(tf.sum(weights), 1)) as tf.Scalar;
}

/**
 * BCE(σ(z), t) = −[t log σ(z) + (1−t) log σ(−z)], elementwise, prediction first, target second.
 * Since log σ(z) = −softplus(−z) = z − softplus(z), this is exactly softplus(z) − t·z: the same log-space
 * value in three kernels instead of ten, which matters when every kernel launch costs.
 */
function bceWithLogits(logits: tf.Tensor, target: tf.Tensor): tf.Tensor {
  return tf.sub(tf.softplus(logits), tf.mul(target, logits));
}

/** Soft cross-entropy −Σ_k t_k log softmax(z)_k per sample: [N]. */
function softCrossEntropy(logits: tf.Tensor2D, target: tf.Tensor2D): tf.Tensor1D {
  return tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
}

/** Masked supervised loss of a categorical task: mean cross-entropy over the samples with a label. */
export function categoricalLoss(task: CategoricalBatch): tf.Scalar {
  return maskedMean(softCrossEntropy(task.logits, task.oneHot), task.has);
}

/** Masked supervised loss of a multi-label task: mean BCE over the annotated entries of the batch. */
export function multilabelLoss(task: MultilabelBatch): tf.Scalar {
  return maskedMean(bceWithLogits(task.logits, task.target), task.mask);
}

function supervisedLoss(task: TaskBatch): tf.Scalar {
  return task.kind === 'categorical' ? categoricalLoss(task) : multilabelLoss(task);
}

/** A relatedness matrix as the tensors the losses need; create once per cell, dispose at the end. */
export interface CouplingTensors {
  from: string;
  to: string;
  kind: PairKind;
  /** [K, M] (clipped) or [K1, K2]. */
  R: tf.Tensor2D;
  /** categorical→multi-label only: log R, log(1−R), the prototype mask 1[R ≥ 0.5], logit(R) [K,M] and Σ_i log(1−R[k,i]) [K]. */
  logR?: tf.Tensor2D;
  log1mR?: tf.Tensor2D;
  prototypes?: tf.Tensor2D;
  logitR?: tf.Tensor2D;
  sumLog1mR?: tf.Tensor1D;
}

export function couplingTensors(relatedness: RelatednessMatrix): CouplingTensors {
  const R = tf.tensor2d(relatedness.matrix, undefined, 'float32');
  if (relatedness.kind === 'categorical->categorical') return { from: relatedness.from, to: relatedness.to, kind: relatedness.kind, R };
  return {
    from: relatedness.from,
    to: relatedness.to,
    kind: relatedness.kind,
    R,
    logR: tf.tensor2d(relatedness.matrix.map((row) => row.map((v) => Math.log(v)))),
    log1mR: tf.tensor2d(relatedness.matrix.map((row) => row.map((v) => Math.log1p(-v)))),
    prototypes: tf.tensor2d(relatedness.matrix.map((row) => row.map((v) => (v >= 0.5 ? 1 : 0)))),
    logitR: tf.tensor2d(relatedness.matrix.map((row) => row.map((v) => Math.log(v) - Math.log1p(-v)))),
    sumLog1mR: tf.tensor1d(relatedness.matrix.map((row) => row.reduce((sum, v) => sum + Math.log1p(-v), 0))),
  };
}

export function disposeCoupling(coupling: CouplingTensors): void {
  for (const t of [coupling.R, coupling.logR, coupling.log1mR, coupling.prototypes, coupling.logitR, coupling.sumLog1mR]) t?.dispose();
}

function divideByTau(scores: tf.Tensor2D, tau: number): tf.Tensor2D {
  return tau === 1 ? scores : (tf.div(scores, tau) as tf.Tensor2D);
}

function notHas(task: TaskBatch): tf.Tensor1D {
  return tf.sub(1, task.has) as tf.Tensor1D;
}

// ---- soft co-annotation -------------------------------------------------------------------

/** Class k* known, A missing: BCE(p_A, R[k*,:]) averaged over labels, over those samples. */
function scaCategoricalToMultilabel(source: CategoricalBatch, target: MultilabelBatch, R: tf.Tensor2D): tf.Scalar {
  const soft = tf.matMul(source.oneHot, R);
  const perSample = tf.mean(bceWithLogits(target.logits, soft), 1);
  return maskedMean(perSample, tf.mul(source.has, notHas(target)));
}

/**
 * Σ_i over the annotated entries of [a_i log R[k,i] + (1−a_i) log(1−R[k,i])]: the log-likelihood of
 * a sample's observed labels under each class k, [N, K].
 */
export function labelLogLikelihood(target: MultilabelBatch, logR: tf.Tensor2D, log1mR: tf.Tensor2D): tf.Tensor2D {
  const positives = tf.mul(target.mask, target.target);
  const negatives = tf.sub(target.mask, positives);
  return tf.add(tf.matMul(positives, logR, false, true), tf.matMul(negatives, log1mR, false, true)) as tf.Tensor2D;
}

/** Labels a* known, C missing: target softmax_k(ℓ_k / τ), soft cross-entropy against p_C. */
export function scaMultilabelToCategorical(
  source: MultilabelBatch,
  target: CategoricalBatch,
  logR: tf.Tensor2D,
  log1mR: tf.Tensor2D,
  tau: number,
): tf.Scalar {
  const soft = tf.softmax(divideByTau(labelLogLikelihood(source, logR, log1mR), tau)) as tf.Tensor2D;
  return maskedMean(softCrossEntropy(target.logits, soft), tf.mul(source.has, notHas(target)));
}

/** C1 known, C2 missing: target R[k*,:], soft cross-entropy. */
export function scaCategoricalToCategorical(source: CategoricalBatch, target: CategoricalBatch, R: tf.Tensor2D): tf.Scalar {
  return maskedMean(softCrossEntropy(target.logits, tf.matMul(source.oneHot, R)), tf.mul(source.has, notHas(target)));
}

// ---- distribution matching ----------------------------------------------------------------

export interface DmOptions {
  tau: number;
  detachTarget: boolean;
  variant: MethodOptions['dmVariant'];
  scope: MethodOptions['dmScope'];
}

/** The mean of per-sample losses over the samples in scope: all of them, or those lacking the target task's label. */
function scopedMean(perSample: tf.Tensor1D, target: TaskBatch, scope: DmOptions['scope']): tf.Scalar {
  return scope === 'missing' ? maskedMean(perSample, notHas(target)) : tf.mean(perSample);
}

function maybeDetach<T extends tf.Tensor>(q: T, detach: boolean): T {
  return detach ? stopGradient(q) : q;
}

/** The DM target from a categorical head: q = p_C · R ([N, M] label probabilities or [N, K₂] class probabilities). */
export function dmTargetFromCategorical(source: CategoricalBatch, R: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(tf.softmax(source.logits) as tf.Tensor2D, R);
}

/** q_A = p_C · R; BCE(p_A, q_A) averaged over labels, over the samples in scope. */
function dmCategoricalToMultilabel(source: CategoricalBatch, target: MultilabelBatch, R: tf.Tensor2D, options: DmOptions): tf.Scalar {
  const q = maybeDetach(dmTargetFromCategorical(source, R), options.detachTarget);
  const perSample = tf.mean(bceWithLogits(target.logits, q), 1) as tf.Tensor1D;
  return scopedMean(perSample, target, options.scope);
}

/**
 * log q_C(k|x) before the 1/τ softmax, [N, K].
 * likelihood: Σ_i log(R[k,i] p_i + (1−R[k,i])(1−p_i)). With R = σ(r), each factor is
 * σ(r)σ(z) + σ(−r)σ(−z) = (1 + e^{z+r}) / ((1 + e^z)(1 + e^r)), so its logarithm is
 * softplus(z + r) − softplus(z) + log(1−R): a sum of stable log-space terms, never the log of a
 * small product, and far fewer kernels than a log-add-exp of log R + log σ(z) and log(1−R) + log σ(−z).
 * prototypical: Σ_{i: R[k,i] ≥ 0.5} log p_i (a class with no prototypical label scores log 1 = 0).
 */
export function multilabelClassScores(source: MultilabelBatch, coupling: CouplingTensors, variant: DmOptions['variant']): tf.Tensor2D {
  if (variant === 'prototypical') return tf.matMul(logSigmoid(source.logits) as tf.Tensor2D, coupling.prototypes!, false, true);
  const joint = tf.sum(tf.softplus(tf.add(tf.expandDims(source.logits, 1), tf.expandDims(coupling.logitR!, 0))), 2);
  const own = tf.sum(tf.softplus(source.logits), 1, true);
  return tf.add(tf.sub(joint, own), coupling.sumLog1mR!) as tf.Tensor2D;
}

/** q_C = softmax_k(score_k / τ); soft cross-entropy against p_C over the samples in scope. */
export function dmMultilabelToCategorical(
  source: MultilabelBatch,
  target: CategoricalBatch,
  coupling: CouplingTensors,
  options: DmOptions,
): tf.Scalar {
  const logQ = tf.logSoftmax(divideByTau(multilabelClassScores(source, coupling, options.variant), options.tau));
  const q = maybeDetach(tf.exp(logQ), options.detachTarget) as tf.Tensor2D;
  return scopedMean(softCrossEntropy(target.logits, q), target, options.scope);
}

/** q_C2 = p_C1 · R; soft cross-entropy against p_C2 over the samples in scope. */
export function dmCategoricalToCategorical(
  source: CategoricalBatch,
  target: CategoricalBatch,
  R: tf.Tensor2D,
  options: DmOptions,
): tf.Scalar {
  const q = maybeDetach(dmTargetFromCategorical(source, R), options.detachTarget);
  return scopedMean(softCrossEntropy(target.logits, q), target, options.scope);
}

// ---- the objective ------------------------------------------------------------------------

export interface ObjectiveOptions {
  sca: boolean;
  dm: boolean;
  method: CellMethodOptions;
}

export interface ObjectiveTerm {
  /** `sup:<task>`, `sca:<from>-><to>` or `dm:<from>-><to>`, named by the direction the knowledge flows. */
  name: string;
  value: tf.Scalar;
}

/** The names of the terms `objective` returns, in order, without running it. */
export function objectiveTermNames(
  tasks: readonly string[],
  couplings: readonly Pick<CouplingTensors, 'from' | 'to' | 'kind'>[],
  options: Pick<ObjectiveOptions, 'sca' | 'dm'>,
): string[] {
  const names = tasks.map((t) => `sup:${t}`);
  const directions = couplings.flatMap((c) =>
    c.kind === 'categorical->multilabel' ? [pairKey(c.from, c.to), pairKey(c.to, c.from)] : [pairKey(c.from, c.to)],
  );
  if (options.sca) names.push(...directions.map((d) => `sca:${d}`));
  if (options.dm) names.push(...directions.map((d) => `dm:${d}`));
  return names;
}

export interface ObjectiveValue {
  total: tf.Scalar;
  /** Every term, unweighted, in the order of objectiveTermNames. */
  terms: ObjectiveTerm[];
  /** The summands of `total`: w_t·L_t per task (in the order of `batches`), and λ times each coupling term. */
  weighted: { supervised: tf.Scalar[]; couplings: tf.Scalar[] };
}

/**
 * L = Σ_t w_t L_t + λ_SCA Σ(directions) L_SCA + λ_DM Σ(directions) L_DM, with the couplings of the
 * pairs whose tasks are both in `batches`. Returns the total, every unweighted term and the summands.
 */
export function objective(
  batches: Record<string, TaskBatch>,
  couplings: readonly CouplingTensors[],
  options: ObjectiveOptions,
): ObjectiveValue {
  const { method } = options;
  const terms: ObjectiveTerm[] = [];
  const weighted: tf.Scalar[] = [];
  for (const [name, task] of Object.entries(batches)) {
    const value = supervisedLoss(task);
    terms.push({ name: `sup:${name}`, value });
    weighted.push(tf.mul(value, method.taskWeights[name] ?? 1) as tf.Scalar);
  }
  const dm: DmOptions = { tau: method.tau, detachTarget: method.detachTarget, variant: method.dmVariant, scope: method.dmScope };
  const scaTerms: ObjectiveTerm[] = [];
  const dmTerms: ObjectiveTerm[] = [];
  for (const coupling of couplings) {
    const from = batches[coupling.from];
    const to = batches[coupling.to];
    if (!from || !to) continue;
    const forward = pairKey(coupling.from, coupling.to);
    const backward = pairKey(coupling.to, coupling.from);
    if (from.kind !== 'categorical') throw new Error(`coupling ${forward}: "from" must be categorical`);
    if (coupling.kind === 'categorical->multilabel') {
      if (to.kind !== 'multilabel') throw new Error(`coupling ${forward}: "to" must be multi-label`);
      if (options.sca) {
        scaTerms.push({ name: `sca:${forward}`, value: scaCategoricalToMultilabel(from, to, coupling.R) });
        scaTerms.push({
          name: `sca:${backward}`,
          value: scaMultilabelToCategorical(to, from, coupling.logR!, coupling.log1mR!, method.tau),
        });
      }
      if (options.dm) {
        dmTerms.push({ name: `dm:${forward}`, value: dmCategoricalToMultilabel(from, to, coupling.R, dm) });
        dmTerms.push({ name: `dm:${backward}`, value: dmMultilabelToCategorical(to, from, coupling, dm) });
      }
    } else {
      if (to.kind !== 'categorical') throw new Error(`coupling ${forward}: "to" must be categorical`);
      if (options.sca) scaTerms.push({ name: `sca:${forward}`, value: scaCategoricalToCategorical(from, to, coupling.R) });
      if (options.dm) dmTerms.push({ name: `dm:${forward}`, value: dmCategoricalToCategorical(from, to, coupling.R, dm) });
    }
  }
  terms.push(...scaTerms, ...dmTerms);
  const supervisedCount = weighted.length;
  for (const t of scaTerms) weighted.push(tf.mul(t.value, method.lambdaSca) as tf.Scalar);
  for (const t of dmTerms) weighted.push(tf.mul(t.value, method.lambdaDm) as tf.Scalar);
  const total = (weighted.length === 1 ? weighted[0]! : tf.addN(weighted)) as tf.Scalar;
  return { total, terms, weighted: { supervised: weighted.slice(0, supervisedCount), couplings: weighted.slice(supervisedCount) } };
}
