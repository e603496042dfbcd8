import * as tf from '@tensorflow/tfjs';
import {
  METHOD_OPTIONS,
  TRAIN_OPTIONS,
  completeMethodOptions,
  defaultsOf,
  methodOptionsFor,
  type MethodOptions,
} from '../config/options.js';
import { type Setting, isCoupled, settingSpec, usesCoupling } from '../config/settings.js';
import type { ImageSource, LabelColumn, TaskSpec } from '../datasets/types.js';
import type { CouplingTensors, ObjectiveOptions } from '../method/losses.js';
import { couplingTensors, disposeCoupling } from '../method/losses.js';
import { forwardMacs } from '../model/backbones.js';
import { buildNetwork } from '../model/network.js';
import { createBalancer } from './balancing/balancers.js';
import { encodeLabels, readImageBatch } from './batches.js';
import { Optimizer, type OptimizerSettings } from './optimizer.js';
import { Rng } from './random.js';
import { createTrainStep, evaluate } from './trainer.js';
import { UserError } from '../util/errors.js';

export interface ThroughputOptions {
  backbone: string;
  inputSize: number;
  batch: number;
  /** Steps timed after the warm-up steps (the first steps compile kernels and grow memory pools). */
  steps: number;
  warmup?: number;
  /** Timed rounds of `steps` steps each; the reported rates are the medians over rounds. */
  repeats?: number;
  classes?: number;
  seed?: number;
}

export interface ThroughputResult {
  model: string;
  backend: string;
  inputSize: number;
  batch: number;
  steps: number;
  repeats: number;
  /** Median over the rounds. */
  trainImagesPerSecond: number;
  inferImagesPerSecond: number;
  /** Every round's rate, in the order measured, so a reader can judge the noise. */
  trainRounds: number[];
  inferRounds: number[];
  /** Forward multiply-accumulates per image; a training step costs about three forward passes. */
  forwardMacsPerImage: number;
  trainGflopsPerSecond: number;
  inferGflopsPerSecond: number;
  peakRssMb: number;
}

/**
 * The cell whose step is timed: an mtl cell (or another multi-task setting) with a benchmark
 * file's defaults (Adam at 1e-3, no weight decay, every task weighing 1, each method's defaults)
 * on one categorical and one multi-label task.
 */
const TRAIN_DEFAULTS = defaultsOf(TRAIN_OPTIONS);
const MEASURED_OPTIMIZER: OptimizerSettings = {
  kind: TRAIN_DEFAULTS.optimizer!,
  momentum: TRAIN_DEFAULTS.momentum!,
  weightDecay: TRAIN_DEFAULTS.weightDecay!,
};
const MEASURED_LEARNING_RATE = TRAIN_DEFAULTS.learningRate!;
const MEASURED_SETTING: Setting = 'mtl';
const CHANNELS = 3;

function measuredObjective(setting: Setting): ObjectiveOptions {
  return {
    sca: usesCoupling(setting, 'sca'),
    dm: usesCoupling(setting, 'dm'),
    method: methodOptionsFor(setting, defaultsOf(METHOD_OPTIONS) as MethodOptions),
  };
}

/** A fixed class → tag relatedness for coupled settings: its values do not change the cost of a step. */
function measuredCoupling(tasks: readonly TaskSpec[]): CouplingTensors {
  const [from, to] = tasks;
  const matrix = from!.labels.map((_, k) => to!.labels.map((_, i) => 0.1 + (0.8 * ((k * 7 + i * 3) % 10)) / 9));
  return couplingTensors({ from: from!.name, to: to!.name, kind: 'categorical->multilabel', source: 'prior', matrix });
}

function measuredTasks(classes: number): TaskSpec[] {
  const names = (prefix: string) => Array.from({ length: classes }, (_, i) => `${prefix}${i}`);
  return [
    { name: 'class', kind: 'categorical', labels: names('class') },
    { name: 'tags', kind: 'multilabel', labels: names('tag') },
  ];
}

/**
 * One batch of random images and labels: the cost of a step does not depend on the values, so random data times
 * training exactly as real data would.
 */
function randomBatch(
  tasks: readonly TaskSpec[],
  batch: number,
  inputSize: number,
  seed: number,
): { images: ImageSource; labels: Record<string, LabelColumn> } {
  const rng = Rng.fromSeed(seed, 'throughput');
  const pixels = Uint8Array.from({ length: batch * inputSize * inputSize * CHANNELS }, () => rng.int(256));
  const per = inputSize * inputSize * CHANNELS;
  const images: ImageSource = {
    size: inputSize,
    channels: CHANNELS,
    count: batch,
    read(indices) {
      const out = new Uint8Array(indices.length * per);
      for (let n = 0; n < indices.length; n++) out.set(pixels.subarray(indices[n]! * per, (indices[n]! + 1) * per), n * per);
      return out;
    },
  };
  const labels: Record<string, LabelColumn> = {};
  for (const task of tasks) {
    const width = task.labels.length;
    labels[task.name] =
      task.kind === 'categorical'
        ? { kind: 'categorical', values: Int32Array.from({ length: batch }, () => rng.int(width)) }
        : { kind: 'multilabel', width, values: Uint8Array.from({ length: batch * width }, () => (rng.bool() ? 1 : 0)) };
  }
  return { images, labels };
}

/** The trainer's own training step and evaluation, on one fixed batch of random data. */
export interface TrainingHarness {
  /** One training step exactly as `run` executes it (forward, backward, the project's optimizer); returns the total loss. */
  step(): number;
  /** The trainer's evaluation of the batch; waits for the predictions. */
  infer(): void;
  /** Forward multiply-accumulates per image of backbone and heads. */
  macsPerImage: number;
  dispose(): void;
}

export async function createTrainingHarness(options: {
  backbone: string;
  inputSize: number;
  batch: number;
  classes?: number;
  seed?: number;
  setting?: Setting;
}): Promise<TrainingHarness> {
  const setting = options.setting ?? MEASURED_SETTING;
  if (!settingSpec(setting).multiTask)
    throw new UserError(`throughput is measured on one multi-task network; "${setting}" trains one network per task`);
  const tasks = measuredTasks(options.classes ?? 10);
  const seed = options.seed ?? 1;
  const objective = measuredObjective(setting);
  const net = await buildNetwork({
    backbone: options.backbone,
    inputSize: options.inputSize,
    channels: CHANNELS,
    seed,
    heads: tasks.map((t) => ({ task: t.name, kind: t.kind, units: t.labels.length })),
  });
  const method = settingSpec(setting).balancing;
  const balancer = method ? createBalancer(method, completeMethodOptions(objective.method), net, seed) : undefined;
  const extra = balancer?.variables ?? [];
  let optimizer: Optimizer;
  try {
    optimizer = new Optimizer(MEASURED_OPTIMIZER, [...net.trainableVariables(), ...extra], [...net.decayMask(), ...extra.map(() => false)]);
  } catch (err) {
    balancer?.dispose();
    net.dispose();
    throw err;
  }
  const couplings = isCoupled(setting) ? [measuredCoupling(tasks)] : [];
  const trainStep = createTrainStep(net, optimizer, couplings, objective, [options.inputSize, options.inputSize, CHANNELS], balancer);
  const data = randomBatch(tasks, options.batch, options.inputSize, seed);
  const samples = Int32Array.from({ length: options.batch }, (_, i) => i);
  const images = readImageBatch(data.images, samples);
  const labels = encodeLabels(tasks, data.labels, samples);
  const evalSet = { description: 'a random batch', images: data.images, samples, labels: data.labels };
  return {
    step() {
      return trainStep.run(images, labels, MEASURED_LEARNING_RATE).values[0]!;
    },
    infer() {
      evaluate(net, tasks, evalSet, options.batch);
    },
    macsPerImage: forwardMacs(net.model),
    dispose() {
      couplings.forEach(disposeCoupling);
      optimizer.dispose();
      balancer?.dispose();
      net.dispose();
    },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Times the trainer's training step and evaluation on random data for a fixed number of steps. */
export async function measureThroughput(options: ThroughputOptions): Promise<ThroughputResult> {
  const warmup = options.warmup ?? 2;
  const repeats = options.repeats ?? 1;
  const harness = await createTrainingHarness(options);
  let peakRss = process.memoryUsage().rss;
  const sampleRss = () => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };
  const rate = (body: () => void): number => {
    const start = performance.now();
    for (let i = 0; i < options.steps; i++) {
      body();
      sampleRss();
    }
    return (options.batch * options.steps) / ((performance.now() - start) / 1000);
  };
  try {
    for (let i = 0; i < warmup; i++) harness.step();
    harness.infer();
    const trainRounds: number[] = [];
    const inferRounds: number[] = [];
    // Interleaved rounds: a burst of load from another process on a shared machine then spoils
    // one training and one inference round instead of a whole series.
    for (let r = 0; r < repeats; r++) {
      trainRounds.push(rate(() => harness.step()));
      inferRounds.push(rate(() => harness.infer()));
    }
    const trainImagesPerSecond = median(trainRounds);
    const inferImagesPerSecond = median(inferRounds);
    const macs = harness.macsPerImage;
    return {
      model: options.backbone,
      backend: tf.getBackend(),
      inputSize: options.inputSize,
      batch: options.batch,
      steps: options.steps,
      repeats,
      trainImagesPerSecond,
      inferImagesPerSecond,
      trainRounds,
      inferRounds,
      forwardMacsPerImage: macs,
      // 2 FLOPs per multiply-accumulate, 3 passes (forward, input gradient, weight gradient).
      trainGflopsPerSecond: (trainImagesPerSecond * macs * 2 * 3) / 1e9,
      inferGflopsPerSecond: (inferImagesPerSecond * macs * 2) / 1e9,
      peakRssMb: peakRss / 2 ** 20,
    };
  } finally {
    harness.dispose();
  }
}

export interface StepCost {
  setting: Setting;
  /** Median over the rounds of the mean wall time of one training step. */
  stepMs: number;
  /** Every round's mean step wall time, in the order measured. */
  rounds: number[];
  /** Median over the rounds of the process's CPU time (user + system, all threads) per step. */
  cpuMs: number;
  cpuRounds: number[];
}

/**
 * The time of one training step of each setting on the same network and batch. The settings are
 * timed in interleaved rounds (a round of `steps` steps of each setting in turn), so that a burst
 * of load from another process on a shared machine falls on every setting alike and their ratios
 * stay comparable within one run. CPU time is recorded too: on a loaded machine it follows the
 * work a step does far more closely than wall time does.
 */
export async function measureStepCosts(
  options: Omit<ThroughputOptions, 'repeats'> & { repeats: number; settings: readonly Setting[] },
): Promise<StepCost[]> {
  const harnesses: TrainingHarness[] = [];
  try {
    for (const setting of options.settings) harnesses.push(await createTrainingHarness({ ...options, setting }));
    for (const harness of harnesses) for (let i = 0; i < (options.warmup ?? 2); i++) harness.step();
    const rounds = harnesses.map(() => [] as number[]);
    const cpuRounds = harnesses.map(() => [] as number[]);
    for (let r = 0; r < options.repeats; r++) {
      harnesses.forEach((harness, k) => {
        const start = performance.now();
        const cpuStart = process.cpuUsage();
        for (let i = 0; i < options.steps; i++) harness.step();
        const cpu = process.cpuUsage(cpuStart);
        rounds[k]!.push((performance.now() - start) / options.steps);
        cpuRounds[k]!.push((cpu.user + cpu.system) / 1000 / options.steps);
      });
    }
    return options.settings.map((setting, k) => ({
      setting,
      stepMs: median(rounds[k]!),
      rounds: rounds[k]!,
      cpuMs: median(cpuRounds[k]!),
      cpuRounds: cpuRounds[k]!,
    }));
  } finally {
    harnesses.forEach((h) => h.dispose());
  }
}
