import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { buildBackbone } from '../../src/model/backbones.js';
import { ImageConv2D } from '../../src/model/image_conv.js';

/** How many times each kernel ran while computing the variables' gradients of `loss`. */
async function kernelCounts(loss: () => tf.Scalar): Promise<Map<string, number>> {
  const info = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(loss);
    tf.dispose([value, ...Object.values(grads)]);
  });
  const counts = new Map<string, number>();
  for (const k of info.kernels) counts.set(k.name, (counts.get(k.name) ?? 0) + 1);
  return counts;
}

test('the first convolution skips the image gradient and otherwise equals a standard Conv2D', async () => {
  await tf.setBackend('cpu');
  const args = {
    filters: 4,
    kernelSize: 3,
    padding: 'same' as const,
    useBias: false,
    kernelInitializer: tf.initializers.heNormal({ seed: 3 }),
  };
  const ours = new ImageConv2D(args);
  const standard = tf.layers.conv2d({ ...args, name: 'standard' });
  const x = tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
  ours.apply(x);
  standard.apply(x);
  standard.setWeights(ours.getWeights());
  const weighting = tf.randomNormal([2, 6, 6, 4], 0, 1, 'float32', 5);
  const lossOf = (layer: tf.layers.Layer) => () => tf.sum(tf.mul(weighting, layer.apply(x) as tf.Tensor)) as tf.Scalar;

  const oursCounts = await kernelCounts(lossOf(ours));
  const standardCounts = await kernelCounts(lossOf(standard));
  assert.equal(oursCounts.get('Conv2DBackpropInput') ?? 0, 0, 'no gradient for the image');
  assert.equal(standardCounts.get('Conv2DBackpropInput'), 1, 'the fused standard layer computes it');

  const a = tf.variableGrads(lossOf(ours));
  const b = tf.variableGrads(lossOf(standard));
  assert.deepEqual((ours.apply(x) as tf.Tensor).dataSync(), (standard.apply(x) as tf.Tensor).dataSync());
  assert.deepEqual(Object.values(a.grads)[0]!.dataSync(), Object.values(b.grads)[0]!.dataSync());
  // Where the input does need a gradient (here: it is itself trained), the plain op provides it.
  const trainedInput = tf.variable(x);
  const { grads } = tf.variableGrads(() => tf.sum(ours.apply(trainedInput) as tf.Tensor) as tf.Scalar, [trainedInput]);
  const expected = tf.grad((input: tf.Tensor) => tf.sum(standard.apply(input) as tf.Tensor))(x);
  assert.ok(tf.max(tf.abs(tf.sub(grads[trainedInput.name]!, expected))).dataSync()[0]! < 1e-5);
  tf.dispose([
    x,
    weighting,
    a.value,
    b.value,
    ...Object.values(a.grads),
    ...Object.values(b.grads),
    trainedInput,
    ...Object.values(grads),
    expected,
  ]);
});

test('backbones use it for the convolution on the image only, and save it as a standard Conv2D', async () => {
  await tf.setBackend('cpu');
  for (const name of ['convnet-s', 'resnet18']) {
    const model = buildBackbone({ name, inputSize: 32 });
    const imageConvs = model.layers.filter((l) => l instanceof ImageConv2D);
    assert.equal(imageConvs.length, 1, `${name}: one convolution reads the image`);
    assert.equal(imageConvs[0]!.inboundNodes[0]!.inboundLayers[0]!.name, 'image');
    const restored = await tf.models.modelFromJSON({ modelTopology: model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'] });
    assert.equal(restored.layers.filter((l) => l instanceof ImageConv2D).length, 0);
    assert.equal(restored.layers[1]!.getClassName(), 'Conv2D');
    const x = tf.ones([1, 32, 32, 3]);
    const counts = await kernelCounts(() => tf.sum(model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
    assert.equal(
      counts.get('Conv2DBackpropInput'),
      counts.get('Conv2DBackpropFilter')! - 1,
      `${name}: every convolution but the first computes its input gradient`,
    );
    model.dispose();
    restored.dispose();
    x.dispose();
  }
});
