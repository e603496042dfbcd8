import * as tf from '@tensorflow/tfjs';
import { buildBackbone, forwardMacs } from '../model/backbones.js';

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
 * A backbone with a softmax head on one fixed batch of random images: the cost of a step does not
 * depend on the pixels, so random data times training exactly as real data would.
 */
export interface TrainingHarness {
  /** One optimizer step (forward, backward, Adam update); waits for the loss so the work is done. */
  step(): void;
  /** One inference pass over the batch; waits for the logits. */
  infer(): void;
  /** Forward multiply-accumulates per image of backbone and head. */
  macsPerImage: number;
  dispose(): void;
}

export function createTrainingHarness(options: { backbone: string; inputSize: number; batch: number; classes?: number; seed?: number }): TrainingHarness {
  const classes = options.classes ?? 10;
  const backbone = buildBackbone({ name: options.backbone, inputSize: options.inputSize, seed: options.seed ?? 1 });
  const head = tf.layers.dense({ units: classes, kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) });
  const images = tf.randomUniform([options.batch, options.inputSize, options.inputSize, 3], 0, 1, 'float32', 3);
  const labels = tf.tidy(() => tf.oneHot(tf.randomUniform([options.batch], 0, classes, 'int32', 4), classes));
  const optimizer = tf.train.adam(1e-3);
  return {
    step() {
      const cost = optimizer.minimize(() => {
        const features = backbone.apply(images, { training: true }) as tf.Tensor;
        const logits = head.apply(features) as tf.Tensor;
        return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
      }, true);
      cost!.dataSync();
      cost!.dispose();
    },
    infer() {
      tf.tidy(() => {
        const logits = head.apply(backbone.apply(images, { training: false }) as tf.Tensor) as tf.Tensor;
        logits.dataSync();
      });
    },
    macsPerImage: forwardMacs(backbone) + (backbone.outputShape as number[])[1]! * classes,
    dispose() {
      optimizer.dispose();
      images.dispose();
      labels.dispose();
      backbone.dispose();
      head.dispose();
    },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Trains and times a backbone on random images for a fixed number of steps. */
export async function measureThroughput(options: ThroughputOptions): Promise<ThroughputResult> {
  const warmup = options.warmup ?? 2;
  const repeats = options.repeats ?? 1;
  const harness = createTrainingHarness(options);
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
