import * as tf from '@tensorflow/tfjs';
import { UserError } from '../util/errors.js';

/**
 * A plain VGG-style stack: each block is conv3x3 → batch-norm → ReLU → 2×2 max-pool, then global
 * average pooling gives a feature vector of the last block's width. Small enough to train on two
 * CPU cores, deep enough that the tasks have a shared representation to argue about.
 */
export interface ConvNetSpec {
  widths: number[];
  convsPerBlock: number;
}

export const CONVNET_SPECS: Record<string, ConvNetSpec> = {
  // The CPU default: three blocks; at 32×32 input the last block sees 8×8 maps.
  'convnet-s': { widths: [32, 64, 128], convsPerBlock: 1 },
  // The 4-block network of the CPU-speed study (64×64 input, 32-64-128-128 channels).
  'convnet-4': { widths: [32, 64, 128, 128], convsPerBlock: 1 },
};

export const BACKBONE_NAMES = Object.keys(CONVNET_SPECS);
export const DEFAULT_BACKBONE = 'convnet-s';

export interface BackboneOptions {
  name: string;
  inputSize: number;
  channels?: number;
  seed?: number;
}

/** Builds a backbone as a tf.LayersModel mapping [N, S, S, C] images in [0, 1] to [N, D] features. */
export function buildBackbone(options: BackboneOptions): tf.LayersModel {
  const spec = CONVNET_SPECS[options.name];
  if (!spec) throw new UserError(`unknown backbone "${options.name}"; expected one of ${BACKBONE_NAMES.join(', ')}`);
  const channels = options.channels ?? 3;
  const poolings = spec.widths.length;
  if (options.inputSize < 2 ** poolings) {
    throw new UserError(`backbone "${options.name}" halves its input ${poolings} times and needs at least ${2 ** poolings}×${2 ** poolings} pixels, got ${options.inputSize}`);
  }
  let seed = options.seed ?? 0;
  const init = () => tf.initializers.heNormal({ seed: seed++ });
  const input = tf.input({ shape: [options.inputSize, options.inputSize, channels], name: 'image' });
  let x: tf.SymbolicTensor = input;
  spec.widths.forEach((width, block) => {
    for (let c = 0; c < spec.convsPerBlock; c++) {
      const name = `block${block + 1}_conv${c + 1}`;
      x = tf.layers.conv2d({ filters: width, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(), name }).apply(x) as tf.SymbolicTensor;
      x = tf.layers.batchNormalization({ name: `${name}_bn` }).apply(x) as tf.SymbolicTensor;
      x = tf.layers.reLU({ name: `${name}_relu` }).apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${block + 1}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  const features = tf.layers.globalAveragePooling2d({ name: 'features' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: features, name: options.name });
}

/** Multiply-accumulates of one forward pass for one image (convolutions and dense layers only). */
export function forwardMacs(model: tf.LayersModel): number {
  let macs = 0;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'Conv2D') {
      const out = layer.outputShape as number[];
      const kernel = (layer.getWeights()[0] as tf.Tensor).shape;
      macs += out[1]! * out[2]! * out[3]! * kernel[0]! * kernel[1]! * kernel[2]!;
    } else if (cls === 'Dense') {
      const kernel = (layer.getWeights()[0] as tf.Tensor).shape;
      macs += kernel[0]! * kernel[1]!;
    }
  }
  return macs;
}
