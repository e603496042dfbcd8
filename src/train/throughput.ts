import * as tf from '@tensorflow/tfjs';
import { buildBackbone, forwardMacs } from '../model/backbones.js';

export interface ThroughputOptions {
  backbone: string;
  inputSize: number;
  batch: number;
  /** Steps timed after the warm-up steps (the first steps compile kernels and grow memory pools). */
  steps: number;
  warmup?: number;
  classes?: number;
  seed?: number;
}

export interface ThroughputResult {
  model: string;
  backend: string;
  inputSize: number;
  batch: number;
  steps: number;
  trainImagesPerSecond: number;
  inferImagesPerSecond: number;
  /** Forward multiply-accumulates per image; a training step costs about three forward passes. */
  forwardMacsPerImage: number;
  trainGflopsPerSecond: number;
  peakRssMb: number;
}

/**
 * Trains a backbone with a softmax head on random images for a fixed number of steps and times
 * training and inference. Random data is enough: the cost of a step does not depend on the pixels.
 */
export async function measureThroughput(options: ThroughputOptions): Promise<ThroughputResult> {
  const warmup = options.warmup ?? 2;
  const classes = options.classes ?? 10;
  const backbone = buildBackbone({ name: options.backbone, inputSize: options.inputSize, seed: options.seed ?? 1 });
  const head = tf.layers.dense({ units: classes, kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) });
  const images = tf.randomUniform([options.batch, options.inputSize, options.inputSize, 3], 0, 1, 'float32', 3);
  const labels = tf.oneHot(tf.randomUniform([options.batch], 0, classes, 'int32', 4), classes);
  const optimizer = tf.train.adam(1e-3);
  let peakRss = process.memoryUsage().rss;
  const step = () => {
    const cost = optimizer.minimize(() => {
      const features = backbone.apply(images, { training: true }) as tf.Tensor;
      const logits = head.apply(features) as tf.Tensor;
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    }, true);
    cost!.dataSync();
    cost!.dispose();
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };
  const infer = () => {
    tf.tidy(() => {
      const logits = head.apply(backbone.apply(images, { training: false }) as tf.Tensor) as tf.Tensor;
      logits.dataSync();
    });
  };
  try {
    for (let i = 0; i < warmup; i++) step();
    let start = performance.now();
    for (let i = 0; i < options.steps; i++) step();
    const trainSeconds = (performance.now() - start) / 1000;
    infer();
    start = performance.now();
    for (let i = 0; i < options.steps; i++) infer();
    const inferSeconds = (performance.now() - start) / 1000;
    const macs = forwardMacs(backbone) + (backbone.outputShape as number[])[1]! * classes;
    const trainImagesPerSecond = (options.batch * options.steps) / trainSeconds;
    return {
      model: options.backbone,
      backend: tf.getBackend(),
      inputSize: options.inputSize,
      batch: options.batch,
      steps: options.steps,
      trainImagesPerSecond,
      inferImagesPerSecond: (options.batch * options.steps) / inferSeconds,
      forwardMacsPerImage: macs,
      // 2 FLOPs per multiply-accumulate, 3 passes (forward, input gradient, weight gradient).
      trainGflopsPerSecond: (trainImagesPerSecond * macs * 2 * 3) / 1e9,
      peakRssMb: peakRss / 2 ** 20,
    };
  } finally {
    optimizer.dispose();
    images.dispose();
    labels.dispose();
    backbone.dispose();
    head.dispose();
  }
}
