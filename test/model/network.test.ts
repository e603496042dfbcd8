import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initTestWasmBackend } from '../wasm_backend.js';
import { BACKBONE_NAMES, buildBackbone, forwardMacs } from '../../src/model/backbones.js';
import { saveLayersModel } from '../../src/model/io.js';
import { buildNetwork } from '../../src/model/network.js';
import { UserError } from '../../src/util/errors.js';

const HEADS = [
  { task: 'kind', kind: 'categorical' as const, units: 4 },
  { task: 'attrs', kind: 'multilabel' as const, units: 7 },
];

function trainableCount(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y ?? 0), 1), 0);
}

describe('multi-task network', () => {
  let tmp: string;
  before(async () => {
    await initTestWasmBackend();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mtl-model-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('gives one head of logits per task and seeds every initializer', async () => {
    const a = await buildNetwork({ backbone: 'convnet-s', inputSize: 16, channels: 3, seed: 4, heads: HEADS });
    const b = await buildNetwork({ backbone: 'convnet-s', inputSize: 16, channels: 3, seed: 4, heads: HEADS });
    const c = await buildNetwork({ backbone: 'convnet-s', inputSize: 16, channels: 3, seed: 5, heads: HEADS });
    const out = tf.tidy(() => {
      const x = tf.randomUniform([3, 16, 16, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
      const logits = a.forward(x, false);
      return { kind: logits.kind!.shape, attrs: logits.attrs!.shape };
    });
    assert.deepEqual(out, { kind: [3, 4], attrs: [3, 7] });
    const sa = a.snapshot();
    const sb = b.snapshot();
    const sc = c.snapshot();
    sa.forEach((w, i) => assert.deepEqual(w.data, sb[i]!.data, `same seed, weight ${w.name}`));
    assert.ok(
      sa.some((w, i) => w.data.some((v, j) => v !== sc[i]!.data[j])),
      'another seed gives other weights',
    );
    // Decay applies to the convolution and dense kernels only.
    const mask = a.decayMask();
    const names = a.model.trainableWeights.map((w) => w.originalName);
    assert.deepEqual(
      names.filter((_, i) => mask[i]),
      names.filter((n) => /kernel$/.test(n)),
    );
    assert.equal(mask.filter(Boolean).length, 3 + 2);
    // restore() puts a snapshot back exactly.
    c.restore(sa, 'test');
    c.snapshot().forEach((w, i) => assert.deepEqual(w.data, sa[i]!.data));
    for (const n of [a, b, c]) n.dispose();
  });

  it('tells which variables each head owns and which layer is the last shared one', async () => {
    const net = await buildNetwork({ backbone: 'convnet-s', inputSize: 16, channels: 3, seed: 4, heads: HEADS });
    const names = net.model.trainableWeights.map((w) => w.originalName);
    const tasks = net.variableTasks();
    assert.deepEqual(tasks.slice(-4), ['kind', 'kind', 'attrs', 'attrs']);
    assert.ok(
      tasks.slice(0, -4).every((t) => t === undefined),
      'everything else is shared',
    );
    assert.deepEqual(
      net.lastSharedLayer().map((i) => names[i]),
      ['block3_conv1/kernel'],
    );
    assert.equal(net.statefulWeights().length, 6, 'three batch norms, each with a moving mean and variance');
    net.dispose();
  });

  it('builds resnet18, resnet50 and mobilenetv2 with torchvision parameter counts and any square input', () => {
    assert.ok(['convnet-s', 'resnet18', 'resnet50', 'mobilenetv2'].every((n) => BACKBONE_NAMES.includes(n)));
    // torchvision without the classifier: resnet18 11,176,512; resnet50 23,508,032; mobilenet_v2 2,223,872.
    const expected: Record<string, [number, number]> = {
      resnet18: [11176512, 512],
      resnet50: [23508032, 2048],
      mobilenetv2: [2223872, 1280],
    };
    for (const [name, [params, width]] of Object.entries(expected)) {
      const large = buildBackbone({ name, inputSize: 64, seed: 1 });
      assert.equal(trainableCount(large), params, `${name} parameters`);
      assert.ok(forwardMacs(large) > 0);
      large.dispose();
      for (const size of [12, 33]) {
        const model = buildBackbone({ name, inputSize: size, seed: 1 });
        const shape = tf.tidy(() => (model.predict(tf.zeros([1, size, size, 3])) as tf.Tensor).shape);
        assert.deepEqual(shape, [1, width], `${name} at ${size}×${size}`);
        model.dispose();
      }
    }
    assert.throws(() => buildBackbone({ name: 'vgg99', inputSize: 32 }), UserError);
  });

  it('loads a saved tfjs Layers model as the backbone (path, file:// URL and http), pooling its feature map', async () => {
    // A small "pretrained" feature extractor that ends in a feature map, saved by the test itself.
    const input = tf.input({ shape: [16, 16, 3] });
    const conv = tf.layers
      .conv2d({
        filters: 6,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 9 }),
        name: 'pre_conv',
      })
      .apply(input) as tf.SymbolicTensor;
    const pooled = tf.layers.maxPooling2d({ poolSize: 2 }).apply(conv) as tf.SymbolicTensor;
    const source = tf.model({ inputs: input, outputs: pooled });
    const folder = path.join(tmp, 'pretrained');
    await saveLayersModel(source, folder);
    assert.ok(fs.existsSync(path.join(folder, 'model.json')) && fs.existsSync(path.join(folder, 'weights.bin')));
    const kernel = Array.from((source.getLayer('pre_conv').getWeights()[0] as tf.Tensor).dataSync());

    const server = http.createServer((req, res) => {
      const file = path.join(folder, path.basename(req.url ?? ''));
      if (!fs.existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200).end(fs.readFileSync(file));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      for (const location of [folder, path.join(folder, 'model.json'), pathToFileURL(folder).href, `http://127.0.0.1:${port}/model.json`]) {
        const net = await buildNetwork({ backbone: 'convnet-s', inputSize: 16, channels: 3, seed: 1, heads: HEADS, pretrained: location });
        assert.equal(net.featureSize, 6, `${location}: the 8×8×6 map is pooled to 6 features`);
        const loaded = net.model.weights.find((w) => w.originalName.endsWith('pre_conv/kernel'))!;
        assert.deepEqual(Array.from(loaded.read().dataSync()), kernel, `${location}: weights come from the file`);
        const shape = tf.tidy(() => net.forward(tf.zeros([2, 16, 16, 3]) as tf.Tensor4D, false).attrs!.shape);
        assert.deepEqual(shape, [2, 7]);
        net.dispose();
      }
    } finally {
      server.close();
    }
    await assert.rejects(
      buildNetwork({ backbone: 'convnet-s', inputSize: 32, channels: 3, seed: 1, heads: HEADS, pretrained: folder }),
      /takes input \[\?, 16, 16, 3\]/,
    );
    await assert.rejects(
      buildNetwork({ backbone: 'convnet-s', inputSize: 16, channels: 3, seed: 1, heads: HEADS, pretrained: path.join(tmp, 'missing') }),
      (err: unknown) => err instanceof UserError && /cannot read/.test(err.message),
    );
    fs.writeFileSync(path.join(tmp, 'broken.json'), '{"modelTopology": ');
    await assert.rejects(
      buildNetwork({ backbone: 'convnet-s', inputSize: 16, channels: 3, seed: 1, heads: HEADS, pretrained: path.join(tmp, 'broken.json') }),
      /not valid JSON/,
    );
    source.dispose();
  });
});
