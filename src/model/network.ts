import * as tf from '@tensorflow/tfjs';
import type { TaskKind } from '../datasets/types.js';
import { UserError } from '../util/errors.js';
import { BACKBONE_NAMES, buildBackbone, type InitScheme, type KernelInitializer } from './backbones.js';
import { loadLayersModelFrom } from './io.js';
import { loadPretrainedBackbone } from './pretrained.js';
import { hashString } from '../util/hash.js';

/** One output head: a dense layer giving K softmax logits (categorical) or M sigmoid logits (multi-label). */
export interface HeadSpec {
  task: string;
  kind: TaskKind;
  units: number;
}

export interface NetworkSpec {
  /** A built-in architecture (trained from scratch) or the id of a pretrained backbone of backbones.yaml, fetched here. */
  backbone: string;
  inputSize: number;
  channels: number;
  seed: number;
  heads: HeadSpec[];
  /** A tfjs Layers model (folder, model.json, file:// or http(s) URL) used as the backbone instead of `backbone`. */
  pretrained?: string;
  /** How the backbone's convolutions (unless pretrained) and the heads start; default `he`. */
  init?: InitScheme;
}

/**
 * A weight of the network by position: names differ between builds (tfjs makes variable names unique per process),
 * order and shape do not.
 */
export interface WeightSnapshot {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * A shared backbone with one dense head per task. The heads output logits; the softmax or sigmoid
 * lives in the losses and in prediction, where it can be taken in log space.
 */
export class MultiTaskNetwork {
  readonly model: tf.LayersModel;
  readonly heads: readonly HeadSpec[];
  readonly featureSize: number;

  constructor(model: tf.LayersModel, heads: HeadSpec[], featureSize: number) {
    this.model = model;
    this.heads = heads;
    this.featureSize = featureSize;
  }

  /**
   * Logits per task for a batch of images [N, S, S, C] in [0, 1]. `training` switches batch-norm to batch statistics
   * (and updates its moving averages).
   */
  forward(images: tf.Tensor4D, training: boolean): Record<string, tf.Tensor2D> {
    const outputs = this.model.apply(images, { training }) as tf.Tensor | tf.Tensor[];
    const list = Array.isArray(outputs) ? outputs : [outputs];
    const byTask: Record<string, tf.Tensor2D> = {};
    this.heads.forEach((head, i) => {
      byTask[head.task] = list[i] as tf.Tensor2D;
    });
    return byTask;
  }

  trainableVariables(): tf.Variable[] {
    return this.model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  /** Which trainable variables take weight decay: convolution and dense kernels, not biases or batch-norm scales and shifts. */
  decayMask(): boolean[] {
    return this.model.trainableWeights.map((w) => isKernel(w.originalName));
  }

  /** For each trainable variable (in trainableVariables() order), the task whose head holds it; undefined for the shared backbone. */
  variableTasks(): (string | undefined)[] {
    const owner = new Map<tf.LayerVariable, string>();
    this.heads.forEach((head, i) => {
      for (const w of this.model.getLayer(safeLayerName(head.task, i)).trainableWeights) owner.set(w, head.task);
    });
    return this.model.trainableWeights.map((w) => owner.get(w));
  }

  /**
   * Positions (in trainableVariables() order) of the weights of the last shared layer that has a
   * convolution or dense kernel: the layer whose gradient norms GradNorm balances.
   */
  lastSharedLayer(): number[] {
    const tasks = this.variableTasks();
    const weights = this.model.trainableWeights;
    const shared = weights.map((_, i) => i).filter((i) => tasks[i] === undefined);
    const last = shared.filter((i) => isKernel(weights[i]!.originalName)).at(-1);
    if (last === undefined) throw new UserError('the network has no shared convolution or dense layer');
    const layerOf = (name: string) => name.slice(0, name.lastIndexOf('/') + 1);
    const layer = layerOf(weights[last]!.originalName);
    return shared.filter((i) => layerOf(weights[i]!.originalName) === layer);
  }

  /** The weights a training-mode forward pass changes (batch-norm moving statistics). */
  statefulWeights(): tf.LayerVariable[] {
    return this.model.nonTrainableWeights;
  }

  /** Every weight, trainable or not (batch-norm moving statistics included), in a stable order. */
  snapshot(): WeightSnapshot[] {
    return this.model.weights.map((w) => ({
      name: w.originalName,
      shape: w.shape.map((d) => d ?? 0),
      data: Float32Array.from(w.read().dataSync() as Float32Array),
    }));
  }

  restore(weights: readonly WeightSnapshot[], origin: string): void {
    const targets = this.model.weights;
    if (weights.length !== targets.length)
      throw new UserError(`${origin}: holds ${weights.length} weights, the network has ${targets.length}`);
    targets.forEach((target, i) => {
      const source = weights[i]!;
      const expected = target.shape.reduce((a: number, b) => a * (b ?? 0), 1);
      if (source.data.length !== expected || source.shape.join('x') !== target.shape.join('x')) {
        throw new UserError(
          `${origin}: weight ${i} (${source.name}) has shape [${source.shape}], ` +
            `the network expects [${target.shape}] (${target.originalName})`,
        );
      }
    });
    tf.tidy(() => {
      targets.forEach((target, i) => target.write(tf.tensor(weights[i]!.data, weights[i]!.shape, 'float32')));
    });
  }

  dispose(): void {
    this.model.dispose();
  }
}

function isKernel(weightName: string): boolean {
  return /(^|\/)(kernel|depthwise_kernel)(_\d+)?$/.test(weightName);
}

function safeLayerName(task: string, index: number): string {
  return `head${index}_${task.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/** `he`: Glorot-uniform kernel, zero bias. `pytorch`: nn.Linear's defaults, kernel and bias uniform in ±1/√fan_in. */
function headInitializers(
  scheme: InitScheme,
  seed: number,
  fanIn: number,
): { kernelInitializer: KernelInitializer; biasInitializer: KernelInitializer | 'zeros' } {
  if (scheme === 'he') return { kernelInitializer: tf.initializers.glorotUniform({ seed }), biasInitializer: 'zeros' };
  const bound = 1 / Math.sqrt(fanIn);
  return {
    kernelInitializer: tf.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanIn', distribution: 'uniform', seed }),
    // A seed apart from the kernel's, so the bias is not the kernel's first draws.
    biasInitializer: tf.initializers.randomUniform({ minval: -bound, maxval: bound, seed: hashString('bias', seed) }),
  };
}

/** Builds (or loads) the backbone and attaches the heads; every initializer is seeded from `spec.seed`. */
export async function buildNetwork(spec: NetworkSpec): Promise<MultiTaskNetwork> {
  if (spec.heads.length === 0) throw new Error('a network needs at least one head');
  let backbone: tf.LayersModel;
  let inputRange: readonly [number, number] = [0, 1];
  if (spec.pretrained) {
    backbone = await loadLayersModelFrom(spec.pretrained);
    const inputShape = backbone.inputs[0]!.shape;
    const expected = [spec.inputSize, spec.inputSize, spec.channels];
    const mismatch = inputShape.length !== 4 || inputShape.slice(1).some((d, i) => d !== null && d !== expected[i]);
    if (backbone.inputs.length !== 1 || mismatch) {
      backbone.dispose();
      throw new UserError(
        `pretrained model ${spec.pretrained}: takes input [${inputShape.map((d) => d ?? '?').join(', ')}], ` +
          `the data gives [?, ${expected.join(', ')}]`,
      );
    }
  } else if (BACKBONE_NAMES.includes(spec.backbone)) {
    backbone = buildBackbone({
      name: spec.backbone,
      inputSize: spec.inputSize,
      channels: spec.channels,
      seed: spec.seed,
      init: spec.init ?? 'he',
    });
  } else {
    ({ model: backbone, inputRange } = await loadPretrainedBackbone(spec.backbone, { inputSize: spec.inputSize, channels: spec.channels }));
  }
  const input = tf.input({ shape: [spec.inputSize, spec.inputSize, spec.channels], name: 'images' });
  // Images arrive in [0, 1]; pretrained weights may have been trained on another range (MobileNet: [-1, 1]).
  const [low, high] = inputRange;
  const scaled =
    low === 0 && high === 1
      ? input
      : (tf.layers.rescaling({ scale: high - low, offset: low, name: 'pretrained_input_range' }).apply(input) as tf.SymbolicTensor);
  let features = backbone.apply(scaled) as tf.SymbolicTensor | tf.SymbolicTensor[];
  if (Array.isArray(features)) {
    if (features.length !== 1) {
      backbone.dispose();
      throw new UserError(`pretrained model ${spec.pretrained}: has ${features.length} outputs, a backbone needs exactly one`);
    }
    features = features[0]!;
  }
  // A pretrained feature extractor often ends in a feature map; pool it to one vector per image.
  if (features.shape.length === 4)
    features = tf.layers.globalAveragePooling2d({ name: 'pretrained_pool' }).apply(features) as tf.SymbolicTensor;
  else if (features.shape.length !== 2) features = tf.layers.flatten({ name: 'pretrained_flatten' }).apply(features) as tf.SymbolicTensor;
  const featureSize = features.shape[1] as number;
  const outputs = spec.heads.map(
    (head, i) =>
      tf.layers
        .dense({
          units: head.units,
          // Seeded by task name, so a task's head starts the same in its stl network and in every mtl network.
          ...headInitializers(spec.init ?? 'he', hashString(head.task, spec.seed), featureSize),
          name: safeLayerName(head.task, i),
        })
        .apply(features) as tf.SymbolicTensor,
  );
  const model = tf.model({ inputs: input, outputs, name: 'multitask' });
  return new MultiTaskNetwork(model, [...spec.heads], featureSize);
}
