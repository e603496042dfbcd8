import { createHash } from 'node:crypto';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { CellConfig } from '../config/cell.js';
import { TRAIN_OPTIONS, completeMethodOptions, optionValue } from '../config/options.js';
import { settingSpec, usesCoupling } from '../config/settings.js';
import type { DatasetView, ImageSource, LabelColumn, TaskSpec } from '../datasets/types.js';
import type { CouplingTensors, DmOptions, ObjectiveOptions } from '../method/losses.js';
import { couplingTensors, disposeCoupling, objective, objectiveTermNames } from '../method/losses.js';
import type { RelatednessMatrix } from '../method/relatedness.js';
import { pairKey, resolveRelatedness } from '../method/relatedness.js';
import { diagnoseRelatedness } from '../method/relatedness_diagnostic.js';
import type { TeacherDirection } from '../method/teachers.js';
import { teacherDirections, teacherPrediction } from '../method/teachers.js';
import type { MultiTaskNetwork, WeightSnapshot } from '../model/network.js';
import { buildNetwork } from '../model/network.js';
import { UserError } from '../util/errors.js';
import type { Balancer } from './balancing/balancers.js';
import { createBalancer } from './balancing/balancers.js';
import { createBalancedStep } from './balancing/step.js';
import { encodeLabels, epochOrder, labelTensors, readImageBatch } from './batches.js';
import { assessStability, type UnitTrace } from './stability.js';
import type { Augmentation, EncodedTaskLabels } from './batches.js';
import type { BestSoFar, CheckpointState, PartialEpoch } from './checkpoint.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { METRIC_CONVENTIONS, TaskMetrics, meanOfFinite } from './metrics.js';
import { Optimizer, learningRateAt } from './optimizer.js';
import type { ProgressMode, ProgressReporter } from './progress.js';
import { createProgress } from './progress.js';
import { Rng, deriveSeed } from './random.js';
import { applyRegime, countLabelled, hasLabel } from './regimes.js';
import type { CellResult, EpochRecord } from './types.js';

export interface TrainCellOptions {
  /**
   * Folder for this cell's checkpoints (checkpoint.bin, or checkpoint-stl-<task>.bin per stl network).
   * Without it nothing is written and nothing resumes.
   */
  outDir?: string;
  /**
   * 'bar' (default): a cli-progress bar per epoch; 'lines': a plain line per epoch and checkpoint;
   * 'jsonl': one JSON object per epoch; 'quiet': nothing.
   */
  progress?: ProgressMode;
  /** Put before each 'lines' line, e.g. the cell's id. */
  progressLabel?: string;
  /** Where progress goes; default process.stderr. */
  progressStream?: NodeJS.WritableStream;
  /** Receives the progress instead of `progress` (a worker process forwards it to the run's display). */
  reporter?: ProgressReporter;
  /**
   * Checked before every step: an aborted cell finishes the step under way, writes a checkpoint of
   * the partial epoch and rejects with a TrainingAborted that says what the checkpoint holds.
   */
  signal?: AbortSignal;
  /** Images per forward pass when evaluating; default max(64, batch size). */
  evalBatchSize?: number;
  /** Called after each epoch, once its checkpoint is on disk. */
  onEpochEnd?: (unit: string, record: EpochRecord) => void;
  /** Called after each optimizer step (epoch and step counted from 1). */
  onStep?: (unit: string, epoch: number, step: number) => void;
}

/**
 * A cell stopped because its signal was aborted. Named AbortError, as the abort it answers; the
 * message says where training stopped and what the checkpoint holds for the next run.
 */
export class TrainingAborted extends Error {
  constructor(message: string, reason: unknown) {
    super(message, { cause: reason });
    this.name = 'AbortError';
  }
}

/** A loss that is NaN or infinite: the cell stops before the step's update is applied. */
export class NonFiniteLossError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'NonFiniteLossError';
  }
}

/** A split (or a slice of one) to evaluate on. */
interface EvalSet {
  description: string;
  images: ImageSource;
  samples: Int32Array;
  labels: Record<string, LabelColumn>;
}

/** What one network trains on: all the cell's tasks (mtl settings) or one task (each stl network). */
interface Unit {
  name: string;
  tasks: TaskSpec[];
  checkpointFile?: string;
}

interface UnitOutcome {
  history: EpochRecord[];
  best: BestSoFar;
  test: Record<string, Record<string, number>>;
  testPositiveRates: Record<string, { predicted: number; truth: number }>;
  testMajorityBaselines: Record<string, { accuracy: number; macro_f1: number }>;
  testSeconds: number;
}

interface CellContext {
  config: CellConfig;
  data: DatasetView;
  trainImages: ImageSource;
  trainLabels: Record<string, LabelColumn>;
  trainPool: Int32Array;
  val: EvalSet;
  test: EvalSet;
  relatedness: RelatednessMatrix[];
  objective: Omit<ObjectiveOptions, 'method'>;
  progress: ProgressReporter;
  options: TrainCellOptions;
  evalBatchSize: number;
  fingerprintBase: string;
}

const VAL_SLICE_FRACTION = 0.1;

// ---- the data the cell names ------------------------------------------------------------

/**
 * The config arrives resolved and validated (config/ and bench/ own that); what is left to check
 * is that the dataset view it is paired with holds what the config names.
 */
function tasksOfCell(config: CellConfig, data: DatasetView): TaskSpec[] {
  const tasks = config.tasks.map(({ name }) => {
    const task = data.tasks.find((t) => t.name === name);
    if (!task)
      throw new UserError(`cell config: dataset ${data.id} has no task "${name}"; it has ${data.tasks.map((t) => t.name).join(', ')}`);
    if (task.labels.length < (task.kind === 'categorical' ? 2 : 1))
      throw new UserError(`dataset ${data.id}: task "${name}" has ${task.labels.length} labels`);
    return task;
  });
  for (const split of ['train', 'val', 'test'] as const) {
    const images = data.splits[split].images;
    if (data.splits[split].count > 0 && images.size !== config.inputSize) {
      throw new UserError(
        `cell config: input size ${config.inputSize} but dataset ${data.id} ${split} images are ${images.size}×${images.size}; ` +
          "load the dataset at the cell's input size",
      );
    }
  }
  return tasks;
}

// ---- training and evaluation steps --------------------------------------------------------

export interface TrainStep {
  /** 'total' then the objective's terms, in the order `run` returns their values. */
  termNames: string[];
  /** Forward, backward and (when the loss is finite) the update, in one tf.tidy; returns the loss terms. */
  run(images: Float32Array, labels: Record<string, EncodedTaskLabels>, learningRate: number): { values: Float32Array; finite: boolean };
  /** Called after the last step of every epoch. */
  endEpoch?(): void;
}

/**
 * The training step of one network. Without a balancing method: one pass of the objective's total;
 * with one, the method's passes and combination (src/train/balancing/). The optimizer must hold
 * the balancer's variables after the network's.
 */
export function createTrainStep(
  net: MultiTaskNetwork,
  optimizer: Optimizer,
  couplings: readonly CouplingTensors[],
  options: ObjectiveOptions,
  imageShape: [number, number, number],
  balancer?: Balancer,
): TrainStep {
  if (balancer) return createBalancedStep(net, optimizer, couplings, options, imageShape, balancer);
  const variables = net.trainableVariables();
  const termNames = [
    'total',
    ...objectiveTermNames(
      net.heads.map((h) => h.task),
      couplings,
      options,
    ),
  ];
  const pixels = imageShape[0] * imageShape[1] * imageShape[2];
  return {
    termNames,
    run(images, labels, learningRate) {
      let kept: tf.Tensor | undefined;
      try {
        return tf.tidy(() => {
          const x = tf.tensor4d(images, [images.length / pixels, ...imageShape]);
          const { grads } = tf.variableGrads(() => {
            const logits = net.forward(x, true);
            const { total, terms } = objective(labelTensors(labels, logits), couplings, options);
            // The terms are read after the backward pass; keep them out of variableGrads' own tidy.
            kept = tf.keep(tf.stack([total, ...terms.map((t) => t.value)]));
            return total;
          }, variables);
          const values = Float32Array.from(kept!.dataSync() as Float32Array);
          const finite = values.every((v) => Number.isFinite(v));
          if (finite)
            optimizer.apply(
              variables.map((v) => grads[v.name]!),
              learningRate,
            );
          return { values, finite };
        });
      } finally {
        kept?.dispose();
      }
    },
  };
}

/** Metrics of `tasks` on a split: one forward pass and one dataSync per batch of hard predictions. */
export function evaluate(
  net: MultiTaskNetwork,
  tasks: readonly TaskSpec[],
  set: EvalSet,
  batchSize: number,
): Record<string, Record<string, number>> {
  return evaluateInDetail(net, tasks, set, batchSize).metrics;
}

/** The SCA and DM directions of a network, with what scoring their targets needs. */
interface TeacherSetup {
  directions: TeacherDirection[];
  couplings: readonly CouplingTensors[];
  variant: DmOptions['variant'];
}

interface Evaluation {
  metrics: Record<string, Record<string, number>>;
  /** Each direction's target scored as a prediction of its student's task (empty without teachers). */
  teachers: Record<string, Record<string, number>>;
  /** Multi-label tasks: shares of annotated entries predicted and truly present. */
  positiveRates: Record<string, { predicted: number; truth: number }>;
  /** Categorical tasks: the scores of always predicting the most frequent class. */
  majorityBaselines: Record<string, { accuracy: number; macro_f1: number }>;
}

/** Rows of `predictions` (width `rowWidth`) whose sample carries a label of `column`: SCA teaches only from a known label. */
function labelledRows(
  predictions: Float32Array,
  rowWidth: number,
  samples: Int32Array,
  column: LabelColumn,
): { predictions: Float32Array; samples: Int32Array } {
  const keep: number[] = [];
  samples.forEach((sample, n) => {
    if (hasLabel(column, sample)) keep.push(n);
  });
  const kept = new Float32Array(keep.length * rowWidth);
  keep.forEach((n, r) => kept.set(predictions.subarray(n * rowWidth, (n + 1) * rowWidth), r * rowWidth));
  return { predictions: kept, samples: Int32Array.from(keep, (n) => samples[n]!) };
}

/**
 * `evaluate`, plus the teachers' scores and the multi-label positive rates. The teachers' hard
 * predictions ride in the same forward pass and dataSync as the heads'; the heads' metrics are
 * the same numbers with or without them.
 */
function evaluateInDetail(
  net: MultiTaskNetwork,
  tasks: readonly TaskSpec[],
  set: EvalSet,
  batchSize: number,
  teachers?: TeacherSetup,
): Evaluation {
  const metrics = tasks.map((t) => new TaskMetrics(t));
  const teacherMetrics = (teachers?.directions ?? []).map((direction) => ({
    direction,
    metrics: new TaskMetrics(tasks.find((t) => t.name === direction.student)!),
  }));
  const headsWidth = metrics.reduce((sum, m) => sum + m.predictionWidth, 0);
  const rowWidth = headsWidth + teacherMetrics.reduce((sum, t) => sum + t.metrics.predictionWidth, 0);
  const size = set.images.size;
  const channels = set.images.channels;
  for (let start = 0; start < set.samples.length; start += batchSize) {
    const samples = set.samples.subarray(start, start + batchSize);
    const images = readImageBatch(set.images, samples);
    const predictions = tf.tidy(() => {
      const logits = net.forward(tf.tensor4d(images, [samples.length, size, size, channels]), false);
      const columns = tasks.map((task) =>
        task.kind === 'categorical'
          ? tf.expandDims(tf.cast(tf.argMax(logits[task.name]!, 1), 'float32'), 1)
          : tf.cast(tf.greater(logits[task.name]!, 0), 'float32'),
      );
      if (teachers && teacherMetrics.length > 0) {
        const batches = labelTensors(encodeLabels(tasks, set.labels, samples), logits);
        for (const { direction } of teacherMetrics)
          columns.push(teacherPrediction(direction, batches, teachers.couplings, teachers.variant));
      }
      return (columns.length === 1 ? columns[0]! : tf.concat(columns, 1)).dataSync() as Float32Array;
    });
    let offset = 0;
    metrics.forEach((m) => {
      m.add(predictions, rowWidth, offset, set.labels[m.task.name]!, samples);
      offset += m.predictionWidth;
    });
    for (const { direction, metrics: m } of teacherMetrics) {
      const rows =
        direction.coupling === 'sca'
          ? labelledRows(predictions, rowWidth, samples, set.labels[direction.source]!)
          : { predictions, samples };
      m.add(rows.predictions, rowWidth, offset, set.labels[m.task.name]!, rows.samples);
      offset += m.predictionWidth;
    }
  }
  const result: Evaluation = { metrics: {}, teachers: {}, positiveRates: {}, majorityBaselines: {} };
  metrics.forEach((m) => {
    result.metrics[m.task.name] = m.result();
    const rates = m.positiveRates();
    if (rates) result.positiveRates[m.task.name] = rates;
    const majority = m.majorityBaseline();
    if (majority) result.majorityBaselines[m.task.name] = majority;
  });
  for (const { direction, metrics: m } of teacherMetrics) result.teachers[direction.name] = m.result();
  return result;
}

function primaryScore(config: CellConfig, tasks: readonly TaskSpec[], val: Record<string, Record<string, number>>): number {
  return meanOfFinite(tasks.map((task) => val[task.name]![config.tasks.find((t) => t.name === task.name)!.primary]!));
}

function describeTerms(names: readonly string[], values: Float32Array): string {
  return names.map((name, i) => `${name}=${values[i]}`).join(', ');
}

// ---- one network ---------------------------------------------------------------------------

/** What stays fixed over a network's epochs. */
interface EpochPlan {
  samples: Int32Array;
  stepsPerEpoch: number;
  batchSize: number;
  /** Images trained on per epoch: every sample, less a final batch of one when it is skipped. */
  imagesPerEpoch: number;
  balanceColumn?: LabelColumn & { kind: 'categorical' };
  augmentation: Augmentation;
  step: TrainStep;
  /** The network's SCA and DM directions, scored on validation each epoch; absent without couplings. */
  teachers?: TeacherSetup;
}

/** Where a network's training stands: what its checkpoint holds besides weights and optimizer. */
interface TrainingState {
  rng: Rng;
  epochsDone: number;
  globalStep: number;
  history: EpochRecord[];
  best: BestSoFar | null;
  bestWeights: WeightSnapshot[] | null;
  /** The interrupted epoch a resume continues, until its steps have run. */
  partial: PartialEpoch | null;
}

function buildUnitNetwork(ctx: CellContext, unit: Unit): Promise<MultiTaskNetwork> {
  const { config } = ctx;
  return buildNetwork({
    backbone: config.backbone,
    inputSize: config.inputSize,
    channels: ctx.trainImages.channels,
    // Every setting of a seed starts its backbone from the same weights, so settings differ only in what they train on.
    seed: deriveSeed(config.seed, 'init'),
    heads: unit.tasks.map((t) => ({ task: t.name, kind: t.kind, units: t.labels.length })),
    ...(config.pretrained ? { pretrained: config.pretrained } : {}),
    init: optionValue(TRAIN_OPTIONS.init, config.train.init),
  });
}

/** The relatedness pairs whose tasks both belong to this network. */
function unitCouplings(ctx: CellContext, unit: Unit): CouplingTensors[] {
  const unitTaskNames = new Set(unit.tasks.map((t) => t.name));
  return ctx.relatedness.filter((r) => unitTaskNames.has(r.from) && unitTaskNames.has(r.to)).map(couplingTensors);
}

/**
 * Optimizer steps per epoch: every full batch and the partial one at the end, so no sample sits
 * out an epoch (a scarce-regime network would lose a fifth of its updates), except a final batch
 * of a single sample, where batch norm has no variance to normalise by.
 */
export function batchesPerEpoch(samples: number, batchSize: number): number {
  const full = Math.floor(samples / batchSize);
  const rest = samples % batchSize;
  return full + (rest > 1 || full === 0 ? 1 : 0);
}

/** The samples a network trains on, and the batches and augmentation of each of its epochs. */
function planEpochs(ctx: CellContext, unit: Unit, step: TrainStep, couplings: readonly CouplingTensors[]): EpochPlan {
  const { config } = ctx;
  const train = config.train;
  // stl networks and uncoupled settings train on the samples that carry one of their labels;
  // distribution matching also learns from samples with no label at all.
  const samples = ctx.objective.dm
    ? ctx.trainPool
    : ctx.trainPool.filter((s) => unit.tasks.some((t) => hasLabel(ctx.trainLabels[t.name]!, s)));
  if (samples.length === 0)
    throw new UserError(
      `${unit.name}: no training sample carries a label of ${unit.tasks.map((t) => t.name).join(' or ')} ` +
        `under regime "${config.regime.name}"`,
    );
  const balanceTask = train.classBalanced ? unit.tasks.find((t) => t.kind === 'categorical') : undefined;
  const directions = teacherDirections(couplings, ctx.objective);
  const batchSize = Math.min(train.batchSize, samples.length);
  const stepsPerEpoch = batchesPerEpoch(samples.length, batchSize);
  return {
    samples,
    stepsPerEpoch,
    batchSize,
    imagesPerEpoch: Math.min(samples.length, stepsPerEpoch * batchSize),
    ...(balanceTask ? { balanceColumn: ctx.trainLabels[balanceTask.name] as LabelColumn & { kind: 'categorical' } } : {}),
    augmentation: { padding: train.cropPadding, flip: train.flip },
    step,
    ...(directions.length > 0 ? { teachers: { directions, couplings, variant: config.method.dmVariant } } : {}),
  };
}

function unitFingerprint(ctx: CellContext, unit: Unit): string {
  return createHash('sha256').update(ctx.fingerprintBase).update(`\0${unit.name}`).digest('hex');
}

/** Restores network, optimizer and training state from the unit's checkpoint when it belongs to this run; else a fresh start. */
async function resumeOrStart(
  ctx: CellContext,
  unit: Unit,
  fingerprint: string,
  net: MultiTaskNetwork,
  optimizer: Optimizer,
  balancer: Balancer | undefined,
): Promise<TrainingState> {
  const fresh: TrainingState = {
    rng: Rng.fromSeed(ctx.config.seed, 'train', unit.name),
    epochsDone: 0,
    globalStep: 0,
    history: [],
    best: null,
    bestWeights: null,
    partial: null,
  };
  const saved = unit.checkpointFile ? await readCheckpoint(unit.checkpointFile) : undefined;
  if (!saved) return fresh;
  if (saved.fingerprint !== fingerprint) {
    ctx.progress.note(unit.name, `${unit.checkpointFile} belongs to a different configuration or dataset; starting over`);
    return fresh;
  }
  net.restore(saved.weights, `checkpoint ${unit.checkpointFile}`);
  optimizer.restore(saved.optimizer, `checkpoint ${unit.checkpointFile}`);
  balancer?.restore(saved.balancing, `checkpoint ${unit.checkpointFile}`);
  const partial = saved.partial ?? null;
  if (partial && partial.epoch !== saved.epochsDone)
    throw new UserError(
      `checkpoint ${unit.checkpointFile} is inconsistent (partial epoch ${partial.epoch + 1} after ${saved.epochsDone} full ones); ` +
        'delete it to train this cell again from the start',
    );
  ctx.progress.note(
    unit.name,
    partial
      ? `resuming from ${unit.checkpointFile} in epoch ${partial.epoch + 1} at step ${partial.step + 1}`
      : `resuming from ${unit.checkpointFile} after epoch ${saved.epochsDone}`,
  );
  return {
    rng: Rng.fromState(saved.rng),
    epochsDone: saved.epochsDone,
    globalStep: saved.globalStep,
    history: saved.history,
    best: saved.best,
    // Written at an epoch's end, the best weights are omitted when they are the current ones; a
    // partial epoch's file stores them whenever an epoch has ended.
    bestWeights: partial ? saved.bestWeights : (saved.bestWeights ?? saved.weights),
    partial,
  };
}

function nonFiniteLoss(
  unit: Unit,
  plan: EpochPlan,
  epoch: number,
  stepInEpoch: number,
  globalStep: number,
  learningRate: number,
  values: Float32Array,
): NonFiniteLossError {
  // A checkpoint exists from the end of the first epoch on (a resumed run starts after one).
  const where = unit.checkpointFile
    ? epoch > 0
      ? `the last checkpoint (${unit.checkpointFile}, after epoch ${epoch}) is left as it was`
      : 'no checkpoint had been written yet'
    : 'no checkpoint folder was given';
  return new NonFiniteLossError(
    `${unit.name}: non-finite loss at epoch ${epoch + 1}, step ${stepInEpoch + 1}/${plan.stepsPerEpoch} ` +
      `(global step ${globalStep + 1}, learning rate ${learningRate}): ${describeTerms(plan.step.termNames, values)}; ` +
      `the update was not applied and ${where}`,
  );
}

/** Raised between two steps when the cell's signal is aborted; runUnit turns it into a checkpoint and a TrainingAborted. */
class StepsInterrupted extends Error {
  constructor(readonly partial: PartialEpoch) {
    super('interrupted between two training steps');
  }
}

/** Signal handlers run on the event loop: letting it turn before each step makes an interrupt act within one step. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The optimizer steps of one epoch (or of the rest of an interrupted one); returns each loss term
 * summed over the epoch's steps, the time spent in them, and the seconds of an earlier run of it.
 */
async function trainSteps(
  ctx: CellContext,
  unit: Unit,
  plan: EpochPlan,
  state: TrainingState,
  epoch: number,
): Promise<{ sums: Float64Array; trainMs: number; earlierSeconds: number }> {
  const train = ctx.config.train;
  const resumed = state.partial?.epoch === epoch ? state.partial : null;
  state.partial = null;
  if (
    resumed &&
    (resumed.order.length !== plan.samples.length ||
      resumed.step > plan.stepsPerEpoch ||
      resumed.sums.length !== plan.step.termNames.length)
  ) {
    throw new UserError(
      `checkpoint ${unit.checkpointFile} holds a partial epoch that does not fit this training ` +
        `(${resumed.order.length} samples, step ${resumed.step}); delete it to train this cell again from the start`,
    );
  }
  // A resumed epoch keeps its order and sums: its generator state is the one after the steps it ran.
  const order = resumed
    ? resumed.order
    : epochOrder(plan.samples, state.rng, plan.balanceColumn ? { column: plan.balanceColumn } : undefined);
  const sums = resumed ? resumed.sums : new Float64Array(plan.step.termNames.length);
  let trainMs = resumed?.trainMs ?? 0;
  const earlierSeconds = resumed?.seconds ?? 0;
  const started = performance.now();
  // Only an epoch's last batch can be short, so the steps a resumed epoch already ran were full.
  let images = Math.min((resumed?.step ?? 0) * plan.batchSize, order.length);
  ctx.progress.startEpoch({ unit: unit.name, epoch: epoch + 1, epochs: train.epochs, steps: plan.stepsPerEpoch });
  for (let s = resumed?.step ?? 0; s < plan.stepsPerEpoch; s++) {
    await yieldToEventLoop();
    if (ctx.options.signal?.aborted)
      throw new StepsInterrupted({ epoch, step: s, order, sums, trainMs, seconds: earlierSeconds + (performance.now() - started) / 1000 });
    const stepStart = performance.now();
    const batch = order.subarray(s * plan.batchSize, (s + 1) * plan.batchSize);
    const pixels = readImageBatch(ctx.trainImages, batch, plan.augmentation, state.rng);
    const labels = encodeLabels(unit.tasks, ctx.trainLabels, batch);
    const learningRate = learningRateAt(train, epoch, s, plan.stepsPerEpoch);
    const { values, finite } = plan.step.run(pixels, labels, learningRate);
    if (!finite) throw nonFiniteLoss(unit, plan, epoch, s, state.globalStep, learningRate, values);
    state.globalStep++;
    values.forEach((v, i) => {
      sums[i]! += v;
    });
    trainMs += performance.now() - stepStart;
    images += batch.length;
    ctx.progress.step(s + 1, sums[0]! / (s + 1), (images * 1000) / trainMs);
    ctx.options.onStep?.(unit.name, epoch + 1, s + 1);
  }
  plan.step.endEpoch?.();
  return { sums, trainMs, earlierSeconds };
}

/** Each term's mean over the epoch's steps, plus one total per coupling group (sca, dm) that has terms. */
function meanTerms(termNames: readonly string[], sums: Float64Array, steps: number): Record<string, number> {
  const terms: Record<string, number> = {};
  termNames.slice(1).forEach((name, i) => {
    terms[name] = sums[i + 1]! / steps;
  });
  for (const group of ['sca', 'dm']) {
    const parts = Object.entries(terms).filter(([name]) => name.startsWith(`${group}:`));
    if (parts.length > 0) terms[group] = parts.reduce((a, [, v]) => a + v, 0);
  }
  return terms;
}

/** Trains one epoch and validates it. */
async function runEpoch(
  ctx: CellContext,
  unit: Unit,
  plan: EpochPlan,
  state: TrainingState,
  net: MultiTaskNetwork,
  epoch: number,
): Promise<EpochRecord> {
  const epochStart = performance.now();
  const { sums, trainMs, earlierSeconds } = await trainSteps(ctx, unit, plan, state, epoch);
  const { metrics: val, teachers } = evaluateInDetail(net, unit.tasks, ctx.val, ctx.evalBatchSize, plan.teachers);
  const terms = meanTerms(plan.step.termNames, sums, plan.stepsPerEpoch);
  const valPrimaryMean = primaryScore(ctx.config, unit.tasks, val);
  return {
    epoch: epoch + 1,
    loss: sums[0]! / plan.stepsPerEpoch,
    terms,
    val,
    valPrimaryMean,
    ...(plan.teachers ? { teachers } : {}),
    seconds: earlierSeconds + (performance.now() - epochStart) / 1000,
    imagesPerSecond: (plan.imagesPerEpoch * 1000) / trainMs,
  };
}

/** Keeps the epoch's weights when its validation score beats the best so far (strictly: the earlier epoch wins a tie). */
function keepIfBest(state: TrainingState, record: EpochRecord, net: MultiTaskNetwork): void {
  const finite = Number.isFinite(record.valPrimaryMean);
  const score = finite ? record.valPrimaryMean : Number.NEGATIVE_INFINITY;
  const bestScore = state.best?.value ?? Number.NEGATIVE_INFINITY;
  if (!state.best || score > bestScore) {
    state.best = { epoch: record.epoch, value: finite ? record.valPrimaryMean : null, val: record.val };
    state.bestWeights = net.snapshot();
  }
}

/** The checkpoint after an epoch; the best weights are stored once when the best epoch is the latest. */
function checkpointState(
  unit: Unit,
  fingerprint: string,
  state: TrainingState,
  net: MultiTaskNetwork,
  optimizer: Optimizer,
  balancer: Balancer | undefined,
): CheckpointState {
  const best = state.best!;
  const bestIsLatest = best.epoch === state.epochsDone;
  return {
    fingerprint,
    unit: unit.name,
    epochsDone: state.epochsDone,
    globalStep: state.globalStep,
    rng: state.rng.state(),
    history: state.history,
    best,
    weights: bestIsLatest ? state.bestWeights! : net.snapshot(),
    optimizer: optimizer.state(),
    bestWeights: bestIsLatest ? null : state.bestWeights,
    ...(balancer ? { balancing: balancer.state() } : {}),
  };
}

/** What the checkpoint of a unit stopped between epochs holds, in words. */
function keptBetweenEpochs(unit: Unit, state: TrainingState): string {
  if (!unit.checkpointFile) return 'no checkpoint folder was given, so nothing is kept';
  if (state.partial)
    return `${unit.checkpointFile} holds epoch ${state.partial.epoch + 1} up to step ${state.partial.step}, where the next run continues`;
  if (state.epochsDone === 0) return 'no epoch had ended, so there is no checkpoint yet';
  return `${unit.checkpointFile} holds epoch ${state.epochsDone}, the last full one`;
}

/**
 * Stops a unit interrupted between two steps: its partial epoch is written as the checkpoint (the
 * next run continues at the following step), unless no step of it had run.
 */
async function stopInEpoch(
  ctx: CellContext,
  unit: Unit,
  plan: EpochPlan,
  fingerprint: string,
  state: TrainingState,
  net: MultiTaskNetwork,
  optimizer: Optimizer,
  balancer: Balancer | undefined,
  partial: PartialEpoch,
): Promise<TrainingAborted> {
  const reason: unknown = ctx.options.signal?.reason;
  const where = `${unit.name}: stopped in epoch ${partial.epoch + 1} after step ${partial.step} of ${plan.stepsPerEpoch}`;
  if (!unit.checkpointFile || partial.step === 0) return new TrainingAborted(`${where}; ${keptBetweenEpochs(unit, state)}`, reason);
  await writeCheckpoint(unit.checkpointFile, {
    fingerprint,
    unit: unit.name,
    epochsDone: state.epochsDone,
    globalStep: state.globalStep,
    rng: state.rng.state(),
    history: state.history,
    best: state.best,
    weights: net.snapshot(),
    optimizer: optimizer.state(),
    bestWeights: state.best ? state.bestWeights : null,
    partial,
    ...(balancer ? { balancing: balancer.state() } : {}),
  });
  return new TrainingAborted(
    `${where}; ${unit.checkpointFile} holds this partial epoch, and the next run continues at step ${partial.step + 1}`,
    reason,
  );
}

/** Tests the weights of the selected epoch, once. */
function testSelected(ctx: CellContext, unit: Unit, state: TrainingState, net: MultiTaskNetwork): UnitOutcome {
  const { best, bestWeights, history } = state;
  if (!best || !bestWeights) throw new Error(`${unit.name}: training ended without a selected epoch`);
  const testStart = performance.now();
  net.restore(bestWeights, `best weights of ${unit.name}`);
  const { metrics: test, positiveRates, majorityBaselines } = evaluateInDetail(net, unit.tasks, ctx.test, ctx.evalBatchSize);
  const testSeconds = (performance.now() - testStart) / 1000;
  ctx.progress.finish(unit.name, test, best.epoch);
  return { history, best, test, testPositiveRates: positiveRates, testMajorityBaselines: majorityBaselines, testSeconds };
}

/** Trains one network (resuming from its checkpoint), keeps the best epoch on validation, and tests it. */
async function runUnit(ctx: CellContext, unit: Unit): Promise<UnitOutcome> {
  const { config } = ctx;
  const train = config.train;
  const net = await buildUnitNetwork(ctx, unit);
  const method = settingSpec(config.setting).balancing;
  // Only a network of several tasks has anything to balance.
  const balancer =
    method && unit.tasks.length > 1 ? createBalancer(method, completeMethodOptions(config.method), net, config.seed) : undefined;
  const balancerVariables = balancer?.variables ?? [];
  const optimizer = new Optimizer(
    { kind: train.optimizer, momentum: train.momentum, weightDecay: train.weightDecay },
    [...net.trainableVariables(), ...balancerVariables],
    [...net.decayMask(), ...balancerVariables.map(() => false)],
  );
  const couplings = unitCouplings(ctx, unit);
  try {
    const imageShape: [number, number, number] = [config.inputSize, config.inputSize, ctx.trainImages.channels];
    const plan = planEpochs(
      ctx,
      unit,
      createTrainStep(net, optimizer, couplings, { ...ctx.objective, method: config.method }, imageShape, balancer),
      couplings,
    );
    const fingerprint = unitFingerprint(ctx, unit);
    const state = await resumeOrStart(ctx, unit, fingerprint, net, optimizer, balancer);
    for (let epoch = state.epochsDone; epoch < train.epochs; epoch++) {
      if (ctx.options.signal?.aborted)
        throw new TrainingAborted(
          `${unit.name}: stopped after epoch ${state.epochsDone} of ${train.epochs}; ${keptBetweenEpochs(unit, state)}`,
          ctx.options.signal.reason,
        );
      let record: EpochRecord;
      try {
        record = await runEpoch(ctx, unit, plan, state, net, epoch);
      } catch (err) {
        if (err instanceof StepsInterrupted)
          throw await stopInEpoch(ctx, unit, plan, fingerprint, state, net, optimizer, balancer, err.partial);
        throw err;
      }
      state.history.push(record);
      keepIfBest(state, record, net);
      state.epochsDone = epoch + 1;
      if (unit.checkpointFile)
        await writeCheckpoint(unit.checkpointFile, checkpointState(unit, fingerprint, state, net, optimizer, balancer));
      ctx.progress.endEpoch(unit.name, record);
      if (unit.checkpointFile) ctx.progress.checkpoint(unit.name, unit.checkpointFile, state.epochsDone);
      ctx.options.onEpochEnd?.(unit.name, record);
    }
    return testSelected(ctx, unit, state, net);
  } finally {
    couplings.forEach(disposeCoupling);
    optimizer.dispose();
    balancer?.dispose();
    net.dispose();
  }
}

// ---- the cell ------------------------------------------------------------------------------

function fingerprintBase(config: CellConfig, data: DatasetView): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(config));
  hash.update(`\0${data.id}\0${data.splits.train.count}/${data.splits.val.count}/${data.splits.test.count}\0${tf.getBackend()}`);
  for (const id of data.splits.train.ids) hash.update(`${id}\n`);
  return hash.digest('hex');
}

function safeFileName(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Merges the per-network histories of an stl cell into one record per epoch. */
function mergeHistories(histories: EpochRecord[][]): EpochRecord[] {
  if (histories.length === 1) return histories[0]!;
  const epochs = Math.min(...histories.map((h) => h.length));
  const merged: EpochRecord[] = [];
  for (let e = 0; e < epochs; e++) {
    const records = histories.map((h) => h[e]!);
    const seconds = records.reduce((a, r) => a + r.seconds, 0);
    const trainSeconds = records.reduce((a, r) => a + (r.imagesPerSecond > 0 ? 1 / r.imagesPerSecond : 0), 0);
    merged.push({
      epoch: e + 1,
      loss: records.reduce((a, r) => a + r.loss, 0),
      terms: mergeRecords(records.map((r) => r.terms)),
      val: mergeRecords(records.map((r) => r.val)),
      ...(records.some((r) => r.teachers)
        ? { teachers: Object.fromEntries(records.flatMap((r) => Object.entries(r.teachers ?? {}))) }
        : {}),
      valPrimaryMean: meanOfFinite(records.map((r) => r.valPrimaryMean)),
      seconds,
      // Harmonic combination: the networks train one after another on their own samples.
      imagesPerSecond: trainSeconds > 0 ? records.length / trainSeconds : 0,
    });
  }
  return merged;
}

/** The keyed results of several networks (or epochs' parts) as one record; later keys win. */
function mergeRecords<T>(parts: readonly Record<string, T>[]): Record<string, T> {
  return Object.assign({}, ...parts) as Record<string, T>;
}

/**
 * Trains and tests one cell: one dataset view, one annotation regime, one setting, one seed.
 * Deterministic for a given seed, backend and data; resumable from `options.outDir`.
 */
export async function trainCell(config: CellConfig, data: DatasetView, options: TrainCellOptions = {}): Promise<CellResult> {
  const tasks = tasksOfCell(config, data);
  const train = data.splits.train;
  if (train.count === 0) throw new UserError(`dataset ${data.id} has no training samples`);
  const regime = applyRegime(train, tasks, config.regime.spec, config.seed);

  let trainPool = Int32Array.from(train.ids.keys());
  let val: EvalSet;
  if (data.splits.val.count > 0) {
    const split = data.splits.val;
    val = {
      description: `the validation split (${split.count} samples)`,
      images: split.images,
      samples: Int32Array.from(split.ids.keys()),
      labels: split.labels,
    };
  } else {
    // No validation split: hold out a seeded slice of train, with all its labels, and never train on it.
    const shuffled = Rng.fromSeed(config.seed, 'val-slice').shuffle(Int32Array.from(train.ids.keys()));
    const held = Math.max(1, Math.round(VAL_SLICE_FRACTION * train.count));
    if (train.count - held < 1)
      throw new UserError(`dataset ${data.id} has no validation split and too few training samples (${train.count}) to hold some out`);
    const heldSet = new Set(shuffled.subarray(0, held));
    val = {
      description: `a seeded ${VAL_SLICE_FRACTION * 100}% slice of train (${held} samples; the dataset has no validation split)`,
      images: train.images,
      samples: Int32Array.from(shuffled.subarray(0, held)).sort(),
      labels: train.labels,
    };
    trainPool = trainPool.filter((s) => !heldSet.has(s));
  }
  const testSplit = data.splits.test;
  if (testSplit.count === 0) throw new UserError(`dataset ${data.id} has no test samples`);
  const test: EvalSet = {
    description: `the test split (${testSplit.count} samples)`,
    images: testSplit.images,
    samples: Int32Array.from(testSplit.ids.keys()),
    labels: testSplit.labels,
  };
  for (const set of [val, test])
    for (const task of tasks)
      if (!set.labels[task.name]) throw new UserError(`dataset ${data.id}: ${set.description} has no labels for task "${task.name}"`);

  const labelCounts: Record<string, number> = {};
  for (const task of tasks) labelCounts[task.name] = countLabelled(regime.labels[task.name]!, trainPool);

  const sca = usesCoupling(config.setting, 'sca');
  const dm = usesCoupling(config.setting, 'dm');
  const relatedness: RelatednessMatrix[] = [];
  if (sca || dm) {
    if (config.relatedness.length === 0)
      throw new UserError(`setting ${config.setting} couples tasks through relatedness, but the cell names no relatedness pair`);
    if (tasks.length < 2) throw new UserError(`setting ${config.setting} needs at least two tasks`);
    for (const spec of config.relatedness) relatedness.push(resolveRelatedness(spec, tasks, regime.labels, data.relatedness, trainPool));
  }

  const units: Unit[] = !settingSpec(config.setting).multiTask
    ? tasks.map((task) => ({
        name: task.name,
        tasks: [task],
        ...(options.outDir ? { checkpointFile: path.join(options.outDir, `checkpoint-stl-${safeFileName(task.name)}.bin`) } : {}),
      }))
    : [{ name: 'mtl', tasks, ...(options.outDir ? { checkpointFile: path.join(options.outDir, 'checkpoint.bin') } : {}) }];

  const ctx: CellContext = {
    config,
    data,
    trainImages: train.images,
    trainLabels: regime.labels,
    trainPool,
    val,
    test,
    relatedness,
    objective: { sca, dm },
    progress: options.reporter ?? createProgress(options.progress ?? 'bar', options.progressStream, { label: options.progressLabel }),
    options,
    evalBatchSize: options.evalBatchSize ?? Math.max(64, config.train.batchSize),
    fingerprintBase: fingerprintBase(config, data),
  };

  const outcomes: UnitOutcome[] = [];
  for (const unit of units) outcomes.push(await runUnit(ctx, unit));

  const result: CellResult = {
    test: mergeRecords(outcomes.map((o) => o.test)),
    val: mergeRecords(outcomes.map((o) => o.best.val)),
    bestEpoch: Math.max(...outcomes.map((o) => o.best.epoch)),
    bestEpochByTask: Object.fromEntries(units.flatMap((u, i) => u.tasks.map((t) => [t.name, outcomes[i]!.best.epoch]))),
    selectionRule: selectionRule(config, tasks, val, data.splits.test.count),
    history: mergeHistories(outcomes.map((o) => o.history)),
    relatedness: Object.fromEntries(relatedness.map((r) => [pairKey(r.from, r.to), { source: r.source, matrix: r.matrix }])),
    relatednessDiagnostics: Object.fromEntries(relatedness.map((r) => [pairKey(r.from, r.to), diagnoseRelatedness(r)])),
    stability: assessStability(units.map((unit, i) => unitTrace(config, unit, outcomes[i]!))),
    labelCounts,
    trainSeconds: outcomes.reduce((a, o) => a + o.history.reduce((b, r) => b + r.seconds, 0) + o.testSeconds, 0),
  };
  return result;
}

function unitTrace(config: CellConfig, unit: Unit, outcome: UnitOutcome): UnitTrace {
  return {
    unit: unit.name,
    history: outcome.history,
    primaries: Object.fromEntries(unit.tasks.map((t) => [t.name, config.tasks.find((c) => c.name === t.name)!.primary])),
    testPositiveRates: outcome.testPositiveRates,
    testCategorical: Object.fromEntries(
      Object.entries(outcome.testMajorityBaselines).map(([task, majority]) => [
        task,
        { accuracy: outcome.test[task]!.accuracy!, macro_f1: outcome.test[task]!.macro_f1!, majority },
      ]),
    ),
  };
}

function selectionRule(config: CellConfig, tasks: readonly TaskSpec[], val: EvalSet, testCount: number): string {
  const primaries = tasks.map((t) => `${t.name} ${config.tasks.find((c) => c.name === t.name)!.primary}`).join(', ');
  const scope = !settingSpec(config.setting).multiTask
    ? `each single-task network keeps its own epoch with the highest primary metric (${primaries}) on ${val.description}`
    : `the epoch with the highest mean primary metric (${primaries}) on ${val.description}`;
  return (
    `${scope}, over epochs 1-${config.train.epochs}, the earlier epoch on ties; ` +
    `that checkpoint is tested once on the test split (${testCount} samples). Metrics: ${METRIC_CONVENTIONS}.`
  );
}
