import * as tf from '@tensorflow/tfjs';
import { UserError } from '../util/errors.js';
import { imageConv2d } from './image_conv.js';
import { trainingBatchNormalization } from './training_batch_norm.js';

/**
 * A plain VGG-style stack: each block is conv3x3 → batch-norm → ReLU → 2×2 max-pool, then global
 * average pooling gives a feature vector of the last block's width. Small enough to train on two
 * CPU cores, deep enough that the tasks have a shared representation to argue about.
 */
export interface ConvNetSpec {
  widths: number[];
  convsPerBlock: number;
}

const CONVNET_SPECS: Record<string, ConvNetSpec> = {
  // The CPU default: three blocks; at 32×32 input the last block sees 8×8 maps.
  'convnet-s': { widths: [32, 64, 128], convsPerBlock: 1 },
  // The 4-block network of the CPU-speed study (64×64 input, 32-64-128-128 channels).
  'convnet-4': { widths: [32, 64, 128, 128], convsPerBlock: 1 },
};

/** Residual and mobile networks for users with a GPU; the CPU study uses the convnets. */
const DEEP_BACKBONES = ['resnet18', 'resnet50', 'mobilenetv2'] as const;

export const BACKBONE_NAMES = [...Object.keys(CONVNET_SPECS), ...DEEP_BACKBONES];
export const DEFAULT_BACKBONE = 'convnet-s';

/**
 * Below this input size the deep backbones use the small-image stem that CIFAR versions of these
 * networks use (3×3 stride-1 first convolution, no stem max-pool, no stride in MobileNetV2's first
 * downsampling stage), so a 32×32 input still reaches the last stage as a 4×4 map instead of 1×1.
 */
const SMALL_INPUT_STEM_BELOW = 64;

/**
 * How weights start. `he`: He-normal convolution kernels (the Keras/tfjs convention this project
 * began with). `pytorch`: PyTorch's defaults, kaiming-uniform with a = √5, i.e. uniform in
 * ±1/√fan_in, a variance of 1/(3·fan_in) against He's 2/fan_in. Batch-norm starts at scale 1,
 * shift 0 in both.
 */
export type InitScheme = 'he' | 'pytorch';

/** What tfjs's initializer factories return (tfjs does not export the class from its namespace). */
export type KernelInitializer = ReturnType<typeof tf.initializers.heNormal>;

/** A seeded initializer of convolution kernels of one scheme; `fanIn` overrides tfjs's fan for depthwise kernels. */
function convKernelInit(scheme: InitScheme, seed: number, fanIn?: number): KernelInitializer {
  if (scheme === 'he') return tf.initializers.heNormal({ seed });
  // tfjs counts a depthwise kernel's fan-in over all input channels; PyTorch counts one group's (3·3).
  if (fanIn !== undefined) return tf.initializers.randomUniform({ minval: -1 / Math.sqrt(fanIn), maxval: 1 / Math.sqrt(fanIn), seed });
  return tf.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanIn', distribution: 'uniform', seed });
}

export interface BackboneOptions {
  name: string;
  inputSize: number;
  channels?: number;
  seed?: number;
  /** Default `he`. */
  init?: InitScheme;
}

/** Builds a backbone as a tf.LayersModel mapping [N, S, S, C] images in [0, 1] to [N, D] features. */
export function buildBackbone(options: BackboneOptions): tf.LayersModel {
  if (!Number.isInteger(options.inputSize) || options.inputSize < 1)
    throw new UserError(`backbone "${options.name}": input size must be a positive integer, got ${options.inputSize}`);
  if ((DEEP_BACKBONES as readonly string[]).includes(options.name)) return buildDeepBackbone(options);
  const spec = CONVNET_SPECS[options.name];
  if (!spec) throw new UserError(`unknown backbone "${options.name}"; expected one of ${BACKBONE_NAMES.join(', ')}`);
  const channels = options.channels ?? 3;
  const poolings = spec.widths.length;
  if (options.inputSize < 2 ** poolings) {
    throw new UserError(
      `backbone "${options.name}" halves its input ${poolings} times ` +
        `and needs at least ${2 ** poolings}×${2 ** poolings} pixels, got ${options.inputSize}`,
    );
  }
  let seed = options.seed ?? 0;
  const scheme = options.init ?? 'he';
  const init = () => convKernelInit(scheme, seed++);
  const input = tf.input({ shape: [options.inputSize, options.inputSize, channels], name: 'image' });
  let x: tf.SymbolicTensor = input;
  spec.widths.forEach((width, block) => {
    for (let c = 0; c < spec.convsPerBlock; c++) {
      const name = `block${block + 1}_conv${c + 1}`;
      const conv = x === input ? imageConv2d : tf.layers.conv2d;
      x = conv({ filters: width, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(), name }).apply(
        x,
      ) as tf.SymbolicTensor;
      // PyTorch's batch-norm update rate (0.1, tfjs's default is 0.01): with tfjs's default the moving
      // statistics of a short CPU run are still far from the data after an epoch, and validation suffers.
      x = trainingBatchNormalization({ momentum: 0.9, epsilon: 1e-5, name: `${name}_bn` }).apply(x) as tf.SymbolicTensor;
      x = tf.layers.reLU({ name: `${name}_relu` }).apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${block + 1}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  const features = tf.layers.globalAveragePooling2d({ name: 'features' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: features, name: options.name });
}

/** Layer builders sharing one seed counter, so every initializer of a network is seeded and distinct. */
class LayerFactory {
  private seed: number;
  constructor(
    seed: number,
    private readonly input: tf.SymbolicTensor,
    private readonly scheme: InitScheme,
  ) {
    this.seed = seed;
  }

  private kernelInit(depthwiseFanIn?: number) {
    return convKernelInit(this.scheme, this.seed++, depthwiseFanIn);
  }

  /** A convolution; on the network's input it skips the image's unused gradient (see ImageConv2D). */
  conv(x: tf.SymbolicTensor, filters: number, kernelSize: number, strides: number, name: string): tf.SymbolicTensor {
    const conv = x === this.input ? imageConv2d : tf.layers.conv2d;
    return conv({ filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: this.kernelInit(), name }).apply(
      x,
    ) as tf.SymbolicTensor;
  }

  depthwise(x: tf.SymbolicTensor, strides: number, name: string): tf.SymbolicTensor {
    return tf.layers
      .depthwiseConv2d({ kernelSize: 3, strides, padding: 'same', useBias: false, depthwiseInitializer: this.kernelInit(9), name })
      .apply(x) as tf.SymbolicTensor;
  }

  bn(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
    // Momentum and epsilon of PyTorch's BatchNorm2d (0.1 update rate, 1e-5), which these networks were designed with.
    return trainingBatchNormalization({ momentum: 0.9, epsilon: 1e-5, name }).apply(x) as tf.SymbolicTensor;
  }

  relu(x: tf.SymbolicTensor, name: string, maxValue?: number): tf.SymbolicTensor {
    return tf.layers.reLU({ name, ...(maxValue === undefined ? {} : { maxValue }) }).apply(x) as tf.SymbolicTensor;
  }

  add(a: tf.SymbolicTensor, b: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
    return tf.layers.add({ name }).apply([a, b]) as tf.SymbolicTensor;
  }
}

function channelsOf(x: tf.SymbolicTensor): number {
  return x.shape[x.shape.length - 1] as number;
}

/** ResNet-18/50 as in torchvision (v1.5: the bottleneck's stride sits on its 3×3 convolution). */
function resnet(
  f: LayerFactory,
  input: tf.SymbolicTensor,
  inputSize: number,
  kind: 'basic' | 'bottleneck',
  depths: number[],
): tf.SymbolicTensor {
  let x: tf.SymbolicTensor;
  if (inputSize < SMALL_INPUT_STEM_BELOW) {
    x = f.relu(f.bn(f.conv(input, 64, 3, 1, 'stem_conv'), 'stem_bn'), 'stem_relu');
  } else {
    x = f.relu(f.bn(f.conv(input, 64, 7, 2, 'stem_conv'), 'stem_bn'), 'stem_relu');
    x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'stem_pool' }).apply(x) as tf.SymbolicTensor;
  }
  const expansion = kind === 'basic' ? 1 : 4;
  depths.forEach((depth, stage) => {
    const width = 64 * 2 ** stage;
    for (let block = 0; block < depth; block++) {
      const stride = stage > 0 && block === 0 ? 2 : 1;
      const name = `stage${stage + 1}_block${block + 1}`;
      let y: tf.SymbolicTensor;
      if (kind === 'basic') {
        y = f.relu(f.bn(f.conv(x, width, 3, stride, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
        y = f.bn(f.conv(y, width, 3, 1, `${name}_conv2`), `${name}_bn2`);
      } else {
        y = f.relu(f.bn(f.conv(x, width, 1, 1, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
        y = f.relu(f.bn(f.conv(y, width, 3, stride, `${name}_conv2`), `${name}_bn2`), `${name}_relu2`);
        y = f.bn(f.conv(y, width * expansion, 1, 1, `${name}_conv3`), `${name}_bn3`);
      }
      const shortcut =
        stride !== 1 || channelsOf(x) !== width * expansion
          ? f.bn(f.conv(x, width * expansion, 1, stride, `${name}_down`), `${name}_down_bn`)
          : x;
      x = f.relu(f.add(y, shortcut, `${name}_add`), `${name}_out`);
    }
  });
  return x;
}

/** MobileNetV2 (width multiplier 1) as in torchvision: inverted residuals with ReLU6 and linear bottlenecks. */
function mobilenetV2(f: LayerFactory, input: tf.SymbolicTensor, inputSize: number): tf.SymbolicTensor {
  const small = inputSize < SMALL_INPUT_STEM_BELOW;
  // (expansion t, output channels c, repeats n, first stride s)
  const stages: [number, number, number, number][] = [
    [1, 16, 1, 1],
    [6, 24, 2, small ? 1 : 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
  ];
  let x = f.relu(f.bn(f.conv(input, 32, 3, small ? 1 : 2, 'stem_conv'), 'stem_bn'), 'stem_relu', 6);
  stages.forEach(([expansion, out, repeats, firstStride], stage) => {
    for (let block = 0; block < repeats; block++) {
      const stride = block === 0 ? firstStride : 1;
      const name = `ir${stage + 1}_${block + 1}`;
      const inChannels = channelsOf(x);
      let y = x;
      if (expansion !== 1)
        y = f.relu(f.bn(f.conv(y, inChannels * expansion, 1, 1, `${name}_expand`), `${name}_expand_bn`), `${name}_expand_relu`, 6);
      y = f.relu(f.bn(f.depthwise(y, stride, `${name}_dw`), `${name}_dw_bn`), `${name}_dw_relu`, 6);
      y = f.bn(f.conv(y, out, 1, 1, `${name}_project`), `${name}_project_bn`);
      x = stride === 1 && inChannels === out ? f.add(x, y, `${name}_add`) : y;
    }
  });
  return f.relu(f.bn(f.conv(x, 1280, 1, 1, 'head_conv'), 'head_bn'), 'head_relu', 6);
}

function buildDeepBackbone(options: BackboneOptions): tf.LayersModel {
  const input = tf.input({ shape: [options.inputSize, options.inputSize, options.channels ?? 3], name: 'image' });
  const f = new LayerFactory(options.seed ?? 0, input, options.init ?? 'he');
  let x: tf.SymbolicTensor;
  switch (options.name) {
    case 'resnet18':
      x = resnet(f, input, options.inputSize, 'basic', [2, 2, 2, 2]);
      break;
    case 'resnet50':
      x = resnet(f, input, options.inputSize, 'bottleneck', [3, 4, 6, 3]);
      break;
    case 'mobilenetv2':
      x = mobilenetV2(f, input, options.inputSize);
      break;
    default:
      throw new UserError(`unknown backbone "${options.name}"; expected one of ${BACKBONE_NAMES.join(', ')}`);
  }
  const features = tf.layers.globalAveragePooling2d({ name: 'features' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: features, name: options.name });
}

/** Multiply-accumulates of one forward pass for one image (convolutions and dense layers, nested models included). */
export function forwardMacs(model: tf.LayersModel): number {
  let macs = 0;
  for (const layer of model.layers) {
    if (layer instanceof tf.LayersModel) {
      macs += forwardMacs(layer);
      continue;
    }
    const cls = layer.getClassName();
    if (cls === 'Conv2D') {
      const out = layer.outputShape as number[];
      const kernel = (layer.getWeights()[0] as tf.Tensor).shape;
      macs += out[1]! * out[2]! * out[3]! * kernel[0]! * kernel[1]! * kernel[2]!;
    } else if (cls === 'DepthwiseConv2D') {
      const out = layer.outputShape as number[];
      const kernel = (layer.getWeights()[0] as tf.Tensor).shape;
      macs += out[1]! * out[2]! * kernel[0]! * kernel[1]! * kernel[2]! * kernel[3]!;
    } else if (cls === 'Dense') {
      const kernel = (layer.getWeights()[0] as tf.Tensor).shape;
      macs += kernel[0]! * kernel[1]!;
    }
  }
  return macs;
}
