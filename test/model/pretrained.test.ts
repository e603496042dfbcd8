/**
 * Pretrained backbones: a small Layers model saved by the test is served from 127.0.0.1 and
 * fetched through backbones.yaml's machinery (the datasets' downloader: verification, pins,
 * resume), then loaded as the backbone of a multi-task network at another input size; and a model
 * shaped like the README's converted ResNet-50 (a frozen preprocessing convolution in front) is
 * loaded with `pretrained: PATH`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.js';
import { loadBackboneManifest } from '../../src/model/backbone_manifest.js';
import { backboneLayout, backboneStatuses, fetchBackbone, fetchedBackboneFolder } from '../../src/model/backbone_store.js';
import { saveLayersModel } from '../../src/model/io.js';
import { buildNetwork } from '../../src/model/network.js';
import { loadPretrainedBackbone } from '../../src/model/pretrained.js';
import { UserError } from '../../src/util/errors.js';
import { tempDir } from '../bench/doubles.js';
import { startServer, type TestServer } from '../datasets/server.js';

const HEADS = [
  { task: 'kind', kind: 'categorical' as const, units: 4 },
  { task: 'attrs', kind: 'multilabel' as const, units: 5 },
];
const fast = { retries: 3, retryDelayMs: 10, timeoutMs: 2000 };
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A tiny ImageNet-style classifier: 16×16 input, two convolutions (the features end at "tiny_features"), pooled, dense classifier. */
function tinyClassifier(seed: number): tf.LayersModel {
  const input = tf.input({ shape: [16, 16, 3], name: 'tiny_input' });
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed + s });
  let x = tf.layers
    .conv2d({ filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: init(1), name: 'tiny_conv1' })
    .apply(input) as tf.SymbolicTensor;
  x = tf.layers
    .conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: init(2), name: 'tiny_conv2' })
    .apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'tiny_features' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'tiny_pool' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 10, kernelInitializer: init(3), name: 'tiny_classifier' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'tiny' });
}

function manifestYaml(entries: { id: string; url: string; files?: string }[]): string {
  return `version: 1
backbones:
${entries
  .map(
    (e) => `  - id: ${e.id}
    name: tiny test backbone
    homepage: https://example.org/tiny
    license: test
    model: ${e.url}
    features: tiny_features
    input: { size: 16, min_size: 8, range: [-1, 1] }
    macs: 10000
${e.files ? `    files: ${e.files}\n` : ''}`,
  )
  .join('')}`;
}

describe('pretrained backbones from backbones.yaml', () => {
  let dir: string;
  let home: string;
  let server: TestServer;
  let modelJson: Buffer;
  let weights: Buffer;
  let kernel2: number[];
  const env = (file: string) => ({ MTL_BENCH_BACKBONES: file });

  before(async () => {
    await initBackend({ requested: 'wasm' });
    dir = tempDir('pretrained');
    home = path.join(dir, 'home');
    const saved = path.join(dir, 'saved');
    const model = tinyClassifier(3);
    kernel2 = Array.from((model.getLayer('tiny_conv2').getWeights()[0] as tf.Tensor).dataSync());
    await saveLayersModel(model, saved);
    model.dispose();
    modelJson = fs.readFileSync(path.join(saved, 'model.json'));
    weights = fs.readFileSync(path.join(saved, 'weights.bin'));
    server = await startServer();
  });
  after(() => server.close());

  const writeManifest = (name: string, entries: { id: string; url: string; files?: string }[]) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, manifestYaml(entries));
    return file;
  };

  it('fetches model.json and its shard, pins their sha256 at the first download, and checks later downloads against the pins', async () => {
    server.routes.set('/a/model.json', { body: modelJson, contentType: 'application/json' });
    server.routes.set('/a/weights.bin', { body: weights });
    const file = writeManifest('a.yaml', [{ id: 'tiny', url: server.url('/a/model.json') }]);
    const manifest = loadBackboneManifest({ env: env(file) });
    assert.ok(
      manifest.backbones.has('mobilenet_v1_1.0_224') && manifest.backbones.has('tiny'),
      'MTL_BENCH_BACKBONES adds to the package manifest',
    );

    const lines: string[] = [];
    const first = await fetchBackbone('tiny', { manifest, home, network: fast, log: (l) => lines.push(l) });
    assert.equal(first.downloaded, true);
    assert.deepEqual(
      first.files.map((f) => [f.name, f.sha256, f.verification]),
      [
        ['model.json', sha256(modelJson), 'pinned now'],
        ['weights.bin', sha256(weights), 'pinned now'],
      ],
    );
    assert.ok(
      lines.includes(
        `pinned weights.bin: sha256 ${sha256(weights)}, ${weights.length} bytes (no published checksum; later downloads must match it)`,
      ),
    );
    const pins = JSON.parse(fs.readFileSync(backboneLayout('tiny', home).pins, 'utf8'));
    assert.equal(pins['weights.bin'].sha256, sha256(weights));
    assert.equal(fetchedBackboneFolder('tiny', home), backboneLayout('tiny', home).model);
    assert.deepEqual(backboneStatuses(manifest, home).find((s) => s.id === 'tiny')?.fetched, true);

    const again = await fetchBackbone('tiny', { manifest, home, network: fast });
    assert.equal(again.downloaded, false, 'a verified copy is not downloaded twice');

    const requests = server.log.length;
    const verified = await fetchBackbone('tiny', { manifest, home, network: fast, force: true });
    assert.ok(server.log.length > requests);
    assert.ok(verified.files.every((f) => f.verification === 'pinned earlier'));

    // The publisher's file changes (same size, other bytes): the pin catches it and the copy in use stays.
    const tampered = Buffer.from(weights);
    tampered[tampered.length - 1] ^= 0xff;
    server.routes.set('/a/weights.bin', { body: tampered });
    await assert.rejects(
      fetchBackbone('tiny', { manifest, home, network: fast, force: true }),
      (err: unknown) =>
        err instanceof UserError &&
        /weights\.bin: sha256 [0-9a-f]{64}, expected [0-9a-f]{64}; .*pinned at the first download .*pins\.json/.test(err.message),
    );
    assert.deepEqual(
      fs.readFileSync(path.join(backboneLayout('tiny', home).model, 'weights.bin')),
      weights,
      'the verified model is untouched',
    );
    server.routes.set('/a/weights.bin', { body: weights });
  });

  it('refuses a shard whose published sha256 is wrong and leaves the backbone unfetched', async () => {
    server.routes.set('/b/model.json', { body: modelJson, contentType: 'application/json' });
    server.routes.set('/b/weights.bin', { body: weights });
    const file = writeManifest('b.yaml', [
      {
        id: 'tiny-wrong',
        url: server.url('/b/model.json'),
        files: `{ weights.bin: { size: ${weights.length}, sha256: '${'0'.repeat(64)}' } }`,
      },
    ]);
    const manifest = loadBackboneManifest({ env: env(file) });
    await assert.rejects(
      fetchBackbone('tiny-wrong', { manifest, home, network: fast }),
      (err: unknown) =>
        err instanceof UserError &&
        err.message.startsWith(`tiny-wrong/weights.bin: sha256 ${sha256(weights)}, expected ${'0'.repeat(64)}; the download was deleted`),
    );
    assert.equal(fetchedBackboneFolder('tiny-wrong', home), undefined);
    assert.equal(fs.existsSync(path.join(backboneLayout('tiny-wrong', home).downloads, 'weights.bin')), false);
    const pins = JSON.parse(fs.readFileSync(backboneLayout('tiny-wrong', home).pins, 'utf8'));
    assert.deepEqual(Object.keys(pins), ['model.json'], 'a file with a published hash is never pinned');
  });

  it('resumes an interrupted shard download with a Range request', async () => {
    server.routes.set('/c/model.json', { body: modelJson, contentType: 'application/json' });
    server.routes.set('/c/weights.bin', { body: weights, behaviour: (n) => (n === 1 ? 'drop-half' : 'normal') });
    const file = writeManifest('c.yaml', [{ id: 'tiny-resume', url: server.url('/c/model.json') }]);
    const result = await fetchBackbone('tiny-resume', { manifest: loadBackboneManifest({ env: env(file) }), home, network: fast });
    assert.equal(result.files.find((f) => f.name === 'weights.bin')?.sha256, sha256(weights));
    const ranges = server.log.filter((r) => r.path === '/c/weights.bin').map((r) => r.range);
    assert.equal(ranges[0], undefined);
    assert.match(ranges[1] ?? '', /^bytes=\d+-$/);
  });

  it('loads a fetched backbone cut at its feature layer, at another input size, with its weights and input range', async () => {
    const file = writeManifest('a.yaml', [{ id: 'tiny', url: server.url('/a/model.json') }]);
    const manifest = loadBackboneManifest({ env: env(file) });
    const before = tf.memory().numTensors;
    const loaded = await loadPretrainedBackbone('tiny', { inputSize: 24, channels: 3, manifest, home });
    assert.deepEqual(loaded.inputRange, [-1, 1]);
    assert.deepEqual(loaded.model.outputs[0]!.shape, [null, 12, 12, 6], 'cut after tiny_features, at 24×24');
    assert.ok(!loaded.model.layers.some((l) => l.name === 'tiny_classifier'));
    const conv2 = Array.from((loaded.model.getLayer('tiny_conv2').getWeights()[0] as tf.Tensor).dataSync());
    assert.deepEqual(conv2, kernel2, 'weights come from the fetched file');
    loaded.model.dispose();
    assert.equal(tf.memory().numTensors, before, 'the dropped classifier and the cut model leave no tensor behind');

    await assert.rejects(loadPretrainedBackbone('tiny', { inputSize: 4, channels: 3, manifest, home }), /needs inputs of at least 8×8/);
    await assert.rejects(
      loadPretrainedBackbone('tiny', { inputSize: 16, channels: 1, manifest, home }),
      /takes 3-channel images, the data has 1/,
    );
    await assert.rejects(
      loadPretrainedBackbone('tiny-never', { inputSize: 16, channels: 3, manifest, home }),
      /unknown pretrained backbone "tiny-never"/,
    );
    const unfetched = writeManifest('d.yaml', [{ id: 'tiny-absent', url: server.url('/absent/model.json') }]);
    await assert.rejects(
      loadPretrainedBackbone('tiny-absent', { inputSize: 16, channels: 3, manifest: loadBackboneManifest({ env: env(unfetched) }), home }),
      /not fetched here; run: mtl-bench backbones fetch tiny-absent/,
    );
  });

  it("is the backbone of a network that names it, fed images rescaled to the weights' range", async () => {
    const file = writeManifest('a.yaml', [{ id: 'tiny', url: server.url('/a/model.json') }]);
    const saved = { home: process.env.MTL_BENCH_HOME, backbones: process.env.MTL_BENCH_BACKBONES };
    process.env.MTL_BENCH_HOME = home;
    process.env.MTL_BENCH_BACKBONES = file;
    try {
      const net = await buildNetwork({ backbone: 'tiny', inputSize: 20, channels: 3, seed: 1, heads: HEADS });
      assert.equal(net.featureSize, 6);
      const rescale = net.model.getLayer('pretrained_input_range');
      assert.deepEqual([rescale.getConfig().scale, rescale.getConfig().offset], [2, -1]);
      const { kind, attrs } = tf.tidy(() => {
        const out = net.forward(tf.ones([2, 20, 20, 3]) as tf.Tensor4D, false);
        return { kind: out.kind!.shape, attrs: out.attrs!.shape };
      });
      assert.deepEqual(
        [kind, attrs],
        [
          [2, 4],
          [2, 5],
        ],
      );
      net.dispose();
    } finally {
      for (const [key, value] of [
        ['MTL_BENCH_HOME', saved.home],
        ['MTL_BENCH_BACKBONES', saved.backbones],
      ] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});

describe('a converted model with its preprocessing built in, loaded with pretrained: PATH', () => {
  before(async () => {
    await initBackend({ requested: 'wasm' });
  });

  it('keeps the frozen preprocessing convolution out of training and computes what the saved model computes', async () => {
    // What the README's ResNet-50 recipe produces: RGB in [0, 1] → BGR × 255 − ImageNet mean by a
    // frozen 1×1 convolution, then the network (here one convolution).
    const input = tf.input({ shape: [16, 16, 3], name: 'rgb' });
    const mean = [103.939, 116.779, 123.68];
    const permute = [0, 0, 255, 0, 255, 0, 255, 0, 0];
    const preprocess = tf.layers.conv2d({
      filters: 3,
      kernelSize: 1,
      trainable: false,
      weights: [tf.tensor4d(permute, [1, 1, 3, 3]), tf.tensor1d(mean.map((m) => -m))],
      name: 'caffe_preprocess',
    });
    let x = preprocess.apply(input) as tf.SymbolicTensor;
    x = tf.layers
      .conv2d({
        filters: 5,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
        name: 'body_conv',
      })
      .apply(x) as tf.SymbolicTensor;
    const source = tf.model({ inputs: input, outputs: x });
    const folder = path.join(tempDir('converted'), 'resnet-like');
    await saveLayersModel(source, folder);
    const image = tf.randomUniform([1, 16, 16, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const expected = tf.tidy(() => Array.from((source.predict(image) as tf.Tensor).mean([1, 2]).dataSync()));

    const net = await buildNetwork({
      backbone: 'resnet50',
      pretrained: path.join(folder, 'model.json'),
      inputSize: 16,
      channels: 3,
      seed: 1,
      heads: HEADS,
    });
    const trainable = net.model.trainableWeights.map((w) => w.originalName);
    assert.ok(!trainable.some((name) => name.startsWith('caffe_preprocess')), trainable.join(', '));
    assert.ok(trainable.some((name) => name.startsWith('body_conv')));
    const features = net.model.getLayer('pretrained_pool');
    const probe = tf.model({ inputs: net.model.inputs, outputs: features.output as tf.SymbolicTensor });
    const actual = tf.tidy(() => Array.from((probe.predict(image) as tf.Tensor).dataSync()));
    actual.forEach((v, i) =>
      assert.ok(Math.abs(v - expected[i]!) < 1e-3 * Math.max(1, Math.abs(expected[i]!)), `feature ${i}: ${v} vs ${expected[i]}`),
    );
    image.dispose();
    source.dispose();
    net.dispose();
  });
});
