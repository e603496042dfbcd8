import * as tf from '@tensorflow/tfjs';

/**
 * A Conv2D layer for a network's first convolution, whose input is the image batch.
 *
 * tfjs-layers runs every convolution as a fused op, and the fused op's gradient computes the
 * gradient for its input as well as for its kernel — for the first layer an unused [N,H,W,3]
 * tensor that costs as much as that layer's forward pass. A plain tf.conv2d has the same forward
 * result, and the engine only asks its gradient for inputs that lead to a trained variable, so
 * the image's gradient is never computed.
 *
 * It serialises as a standard "Conv2D" (same config, same weights): a saved backbone loads in
 * plain tfjs, and loading it here gives back the standard layer, which computes the same values.
 */

type ConvArgs = Parameters<typeof tf.layers.conv2d>[0];

/** The fields of tfjs-layers' Conv2D read here (they are protected in its typings). */
interface ConvInternals {
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  strides: number[];
  padding: 'same' | 'valid';
  dataFormat: 'channelsFirst' | 'channelsLast';
  dilationRate: number[];
  activation: { getClassName(): string };
}

// tfjs-layers exports a factory but not the class; its constructor is the class.
const Conv2D = tf.layers.conv2d({ filters: 1, kernelSize: 1 }).constructor as unknown as new (args: ConvArgs) => tf.layers.Layer;

export class ImageConv2D extends Conv2D {
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    const self = this as unknown as ConvInternals;
    const plain =
      self.bias === null &&
      self.activation.getClassName() === 'linear' &&
      self.dataFormat === 'channelsLast' &&
      self.dilationRate.every((d) => d === 1);
    if (!plain || (Array.isArray(inputs) && inputs.length !== 1)) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      return tf.conv2d(x, self.kernel.read() as tf.Tensor4D, [self.strides[0]!, self.strides[1]!], self.padding);
    });
  }
}

export function imageConv2d(args: ConvArgs): tf.layers.Layer {
  return new ImageConv2D(args);
}
