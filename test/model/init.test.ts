import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { initBackend } from '../../src/engine/backend.js';
import { buildNetwork } from '../../src/model/network.js';

const HEADS = [{ task: 'kind', kind: 'categorical' as const, units: 8 }];

function spread(values: Float32Array): { std: number; maxAbs: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return { std: Math.sqrt(variance), maxAbs: values.reduce((a, b) => Math.max(a, Math.abs(b)), 0) };
}

describe('initialisation schemes', () => {
  before(async () => {
    await initBackend({ requested: 'wasm' });
  });

  it('he is the default: the same weights as a network built without the option', async () => {
    const plain = await buildNetwork({ backbone: 'convnet-s', inputSize: 16, channels: 3, seed: 3, heads: HEADS });
    const he = await buildNetwork({ backbone: 'convnet-s', inputSize: 16, channels: 3, seed: 3, heads: HEADS, init: 'he' });
    plain.snapshot().forEach((w, i) => assert.deepEqual(w.data, he.snapshot()[i]!.data, w.name));
    plain.dispose();
    he.dispose();
  });

  it('pytorch: kernels uniform in ±1/√fan_in (std 1/√(3·fan_in)), head biases drawn in the same bound', async () => {
    const net = await buildNetwork({ backbone: 'convnet-s', inputSize: 16, channels: 3, seed: 3, heads: HEADS, init: 'pytorch' });
    const he = await buildNetwork({ backbone: 'convnet-s', inputSize: 16, channels: 3, seed: 3, heads: HEADS });
    const weights = net.snapshot();
    const second = weights.find((w) => w.name.startsWith('block2_conv1') && w.name.endsWith('kernel'))!;
    const fanIn = 3 * 3 * 32;
    const { std, maxAbs } = spread(second.data);
    assert.ok(maxAbs <= 1 / Math.sqrt(fanIn) + 1e-7, `max |w| ${maxAbs}`);
    assert.ok(Math.abs(std - 1 / Math.sqrt(3 * fanIn)) < 0.1 / Math.sqrt(3 * fanIn), `std ${std}`);
    const heSecond = he.snapshot().find((w) => w.name === second.name)!;
    assert.ok(spread(heSecond.data).std > 2 * std, 'He-normal kernels are wider (√6 in variance terms)');
    const bias = weights.find((w) => w.name.startsWith('head0') && w.name.endsWith('bias'))!;
    const headFan = 128;
    assert.ok(
      bias.data.some((v) => v !== 0),
      'biases are drawn, not zero',
    );
    assert.ok(spread(bias.data).maxAbs <= 1 / Math.sqrt(headFan) + 1e-7);
    net.dispose();
    he.dispose();
  });
});
