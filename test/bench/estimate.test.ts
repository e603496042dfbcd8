/**
 * Time before work: the estimate's arithmetic, its wording, how `run` prints it (and the backend's
 * warnings) before the first cell, `run --dry-run`, and where the per-image cost comes from.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { perImageCost } from '../../src/bench/cost.js';
import { estimateBenchmark, formatEstimate, humanDuration, type ImageCounts, type PerImageCost } from '../../src/bench/estimate.js';
import type { Cell } from '../../src/bench/matrix.js';
import { runStudy } from '../../src/cli/run_study.js';
import { loadBackboneManifest } from '../../src/model/backbone_manifest.js';
import type { Setting } from '../../src/config/settings.js';
import type { ThroughputResult } from '../../src/train/throughput.js';
import { captureIO, fakeCatalog, fakeDeps, fakeTrainer, tempDir, toyBenchmarkYaml, writeBenchmark } from './doubles.js';

const cell = (setting: Setting, epochs: number, tasks = 2): Cell =>
  ({
    id: `full.${setting}.seed1`,
    index: 0,
    hash: 'h',
    config: { setting, tasks: Array.from({ length: tasks }, (_, i) => ({ name: `t${i}`, primary: 'accuracy' })), train: { epochs } },
  }) as unknown as Cell;

const IMAGES: ImageCounts = { train: 100, val: 10, test: 20, source: 'manifest' };
const COST: PerImageCost = { trainSeconds: 0.01, inferSeconds: 0.002, how: 'test' };

describe('the estimate', () => {
  it('is cells × networks × epochs × images at the measured cost per image', () => {
    const estimate = estimateBenchmark('b', [cell('stl', 3), cell('mtl', 3)], IMAGES, COST);
    // stl trains one network per task: 2 + 1 networks, each 3 epochs of (100 × 10 ms + 10 × 2 ms), then 20 test images × 2 ms.
    assert.equal(estimate.networks, 3);
    assert.ok(Math.abs(estimate.seconds! - 3 * (3 * (100 * 0.01 + 10 * 0.002) + 20 * 0.002)) < 1e-9);
    assert.equal(estimateBenchmark('b', [], IMAGES, COST).seconds, 0);
    const unknown = estimateBenchmark('b', [cell('mtl', 3)], undefined, COST, 'no image counts for cub');
    assert.equal(unknown.seconds, undefined);
    assert.equal(unknown.missing, 'no image counts for cub');
  });

  it("counts a balancing method's extra passes per training step", () => {
    const plain = estimateBenchmark('b', [cell('mtl', 3)], IMAGES, COST).seconds!;
    const training = 3 * 100 * 0.01;
    // Two tasks: PCGrad runs a pass per task (one more with the coupling terms); UW costs what mtl costs.
    assert.ok(Math.abs(estimateBenchmark('b', [cell('mtl+pcgrad', 3)], IMAGES, COST).seconds! - (plain + training)) < 1e-9);
    assert.ok(Math.abs(estimateBenchmark('b', [cell('mtl+sca+dm+pcgrad', 3)], IMAGES, COST).seconds! - (plain + 2 * training)) < 1e-9);
    assert.equal(estimateBenchmark('b', [cell('mtl+uw', 3)], IMAGES, COST).seconds, plain);
  });

  it('says durations plainly and, at days on a CPU backend, points at the GPU section and --shard', () => {
    assert.equal(humanDuration(40), 'about 40 s');
    assert.equal(humanDuration(25 * 60), 'about 25 min');
    assert.equal(humanDuration(3.5 * 3600), 'about 3.5 h');
    assert.equal(humanDuration(12.3 * 86400), 'about 12 days');
    const days = {
      backend: 'wasm',
      benchmarks: [{ ...estimateBenchmark('cub', [cell('mtl', 100)], { ...IMAGES, train: 6000 }, { ...COST, trainSeconds: 0.2 }) }],
    };
    assert.ok(days.benchmarks[0]!.seconds! > 86400, 'the example is meant to take days');
    const lines = formatEstimate({ ...days, seconds: days.benchmarks[0]!.seconds }, { gpuInUse: false });
    assert.match(
      lines[0]!,
      /^cub: 1 cell \(1 network\) × 100 epochs × 6,000 training images .*: about 33 h on wasm; per image 0\.20 s training/,
    );
    assert.match(
      lines[1]!,
      /days of training on wasm: train on a GPU \(README "Training on a GPU"\) or spread the cells over machines with --shard I\/N/,
    );
    const onGpu = formatEstimate({ ...days, backend: 'tensorflow-gpu' }, { gpuInUse: true });
    assert.doesNotMatch(onGpu.join('\n'), /Training on a GPU/);
    assert.match(onGpu.join('\n'), /--shard I\/N/);
    assert.deepEqual(
      formatEstimate({ backend: 'wasm', benchmarks: [estimateBenchmark('q', [cell('mtl', 2)], IMAGES, COST)] }, { gpuInUse: false }).length,
      1,
      'no advice for minutes',
    );
  });
});

/** Doubles for `run` with a catalog that knows image counts and a cost measurement that counts its calls. */
function estimatingDeps(options: { ready?: boolean; warnings?: string[]; pretrained?: { ready: boolean } } = {}) {
  const trainer = fakeTrainer();
  const catalog = {
    ...fakeCatalog({ birds: { ready: options.ready ?? false, fetchHint: 'run: mtl-bench datasets fetch birds' } }),
    imageCounts: (): ImageCounts => ({ train: 6000, val: 600, test: 5800, source: 'manifest' }),
  };
  const requests: unknown[] = [];
  const deps = {
    ...fakeDeps(trainer, catalog),
    backbones: ['convnet-s', 'resnet18', 'tinynet_pretrained'],
    initBackend: async () => ({ name: 'wasm', gpuInUse: false, warnings: options.warnings ?? [] }),
    measureCost: async (request: unknown) => {
      requests.push(request);
      return { trainSeconds: 0.5, inferSeconds: 0.1, how: 'measured: a test double' };
    },
    pretrainedBackbone: (name: string) =>
      name === 'tinynet_pretrained' && options.pretrained
        ? { label: 'Tiny net, ImageNet', ready: options.pretrained.ready, hint: 'run: mtl-bench backbones fetch tinynet_pretrained' }
        : undefined,
  };
  return { trainer, deps, requests };
}

const birdsYaml = (backbone = 'convnet-s') => `name: birds-study
dataset: birds
tasks:
  species: { primary: accuracy }
  attributes: { primary: label_accuracy }
input: { size: 64 }
backbone: { name: ${backbone} }
train: { epochs: 30, batch: 32 }
relatedness:
  - { from: species, to: attributes, source: file }
regimes:
  full: full
settings: [stl, mtl+sca+dm]
seeds: [1, 2]
`;

describe('run and run --dry-run', () => {
  const dryRunTitle =
    '--dry-run prints the cells, the resolved configuration, the backbone and the estimate without the data, and trains nothing';
  it(dryRunTitle, async () => {
    const dir = tempDir('dry-run');
    const file = writeBenchmark(dir, birdsYaml('tinynet_pretrained'));
    const { trainer, deps, requests } = estimatingDeps({ pretrained: { ready: false } });
    const io = captureIO();
    const out = path.join(dir, 'runs');
    const result = await runStudy([file], { out, dryRun: true }, deps, io);
    assert.deepEqual(result, { runs: [], problems: [] });
    assert.equal(trainer.calls.length, 0);
    assert.equal(fs.existsSync(out), false, 'nothing written');
    const text = io.out.join('');
    assert.match(text, /dataset {6}birds: not here: run: mtl-bench datasets fetch birds/);
    assert.match(
      text,
      new RegExp(
        'backbone {5}tinynet_pretrained: pretrained, Tiny net, ImageNet \\(backbones\\.yaml\\); ' +
          'not fetched here: run: mtl-bench backbones fetch tinynet_pretrained',
      ),
    );
    assert.match(text, /train {8}\{"batchSize":32,.*"epochs":30,/);
    assert.match(text, /cells {8}4: 0 done here, 4 to run/);
    for (const id of ['full.stl.seed1', 'full.mtl+sca+dm.seed1', 'full.stl.seed2', 'full.mtl+sca+dm.seed2'])
      assert.match(text, new RegExp(`\\n {4}${id.replace(/[+.]/g, '\\$&')} +[0-9a-f]{12}\\n`));
    // 4 cells: 2 stl (2 networks each) + 2 mtl+sca+dm = 6 networks × 30 epochs × (6000 × 0.5 s + 600 × 0.1 s) + test.
    assert.match(
      text,
      new RegExp(
        'estimate {5}birds-study: 4 cells \\(6 networks\\) × 30 epochs × 6,000 training images .*: about 6\\.4 days on wasm; ' +
          'per image 0\\.50 s training, 0\\.10 s evaluation \\(measured: a test double\\)',
      ),
    );
    assert.match(
      text,
      /days of training on wasm: train on a GPU \(README "Training on a GPU"\) or spread the cells over machines with --shard I\/N/,
    );
    assert.deepEqual(requests, [{ backbone: 'tinynet_pretrained', inputSize: 64, batch: 32, backend: 'wasm' }]);

    const json = captureIO();
    await runStudy([file], { out, dryRun: true, json: true }, deps, json);
    const events = json.out
      .join('')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      events.map((e) => e.event),
      ['plan', 'estimate'],
    );
    assert.equal(events[0].cells.length, 4);
    assert.equal(events[0].backbone.library.ready, false);
    assert.ok(events[1].seconds > 5 * 86400);
  });

  it('run refuses a pretrained backbone that is not fetched, before any training', async () => {
    const dir = tempDir('unfetched');
    const file = writeBenchmark(dir, birdsYaml('tinynet_pretrained'));
    const { trainer, deps } = estimatingDeps({ ready: true, pretrained: { ready: false } });
    await assert.rejects(
      runStudy([file], { out: path.join(dir, 'runs') }, deps, captureIO()),
      new RegExp(
        'study\\.yaml: backbone: pretrained backbone "tinynet_pretrained" is not fetched here; ' +
          'run: mtl-bench backbones fetch tinynet_pretrained$',
      ),
    );
    assert.equal(trainer.calls.length, 0);
  });

  const runEstimateTitle =
    'run prints the backend warnings once and the estimate before the first cell; a finished study has nothing left to estimate';
  it(runEstimateTitle, async () => {
    const dir = tempDir('estimate-run');
    const file = writeBenchmark(dir, toyBenchmarkYaml());
    const { deps, requests } = estimatingDeps({ warnings: ['GPU not used: no NVIDIA device is visible; fix: pass the GPU in'] });
    const io = captureIO();
    const out = path.join(dir, 'runs');
    await runStudy([file], { out, seeds: ['1'], regimes: ['full'] }, deps, io);
    const err = io.err.join('');
    assert.equal(err.split('GPU not used').length - 1, 1, 'the warning is printed once');
    const lines = err.split('\n');
    const warning = lines.findIndex((l) => l.startsWith('warning: GPU not used: no NVIDIA device is visible'));
    const estimate = lines.findIndex((l) => /^estimate toy-study: 5 cells \(6 networks\) × 2 epochs × 6,000 training images/.test(l));
    const firstCell = lines.findIndex((l) => l.startsWith('[1/5]'));
    assert.ok(warning >= 0 && estimate > warning && firstCell > estimate, err);
    assert.equal(requests.length, 1);

    const again = captureIO();
    await runStudy([file], { out, seeds: ['1'], regimes: ['full'] }, deps, again);
    assert.match(again.err.join(''), /estimate toy-study: nothing left to run/);
    assert.equal(requests.length, 1, 'nothing to time when every cell is done');
  });
});

describe('the cost per image', () => {
  const result = (train: number, infer: number, trainGflops = 10, inferGflops = 20): ThroughputResult =>
    ({
      trainImagesPerSecond: train,
      inferImagesPerSecond: infer,
      trainGflopsPerSecond: trainGflops,
      inferGflopsPerSecond: inferGflops,
    }) as ThroughputResult;

  const builtInTitle =
    "times a built-in backbone itself: on CPU backends on a small batch first, at the benchmark's batch only when a step stays short";
  it(builtInTitle, async () => {
    let imagesPerSecond = 50;
    const calls: { batch: number }[] = [];
    const measure = async (options: { batch: number }) => {
      calls.push(options);
      return result(imagesPerSecond * (options.batch === 4 ? 1 : 2), 200);
    };
    // 32 images at 50 images/s is well within a step's budget: timed again at batch 32.
    const cost = await perImageCost({ backbone: 'resnet50', inputSize: 224, batch: 32, backend: 'wasm' }, { measure });
    assert.deepEqual(cost, { trainSeconds: 0.01, inferSeconds: 0.005, how: 'measured: resnet50 at 224×224, batch 32' });
    assert.deepEqual(calls, [
      { backbone: 'resnet50', inputSize: 224, batch: 4, steps: 1, warmup: 1 },
      { backbone: 'resnet50', inputSize: 224, batch: 32, steps: 1, warmup: 1 },
    ]);
    // At 2 images/s a step of 32 would take 16 s: the small batch's timing stands.
    imagesPerSecond = 2;
    calls.length = 0;
    const slow = await perImageCost({ backbone: 'resnet50', inputSize: 224, batch: 32, backend: 'wasm' }, { measure });
    assert.equal(slow!.how, 'measured: resnet50 at 224×224, batch 4');
    assert.deepEqual(
      calls.map((c) => c.batch),
      [4],
    );
    // Native backends time the benchmark's batch at once.
    calls.length = 0;
    await perImageCost({ backbone: 'resnet50', inputSize: 224, batch: 32, backend: 'tensorflow-gpu' }, { measure });
    assert.deepEqual(
      calls.map((c) => c.batch),
      [32],
    );
  });

  it('for a pretrained backbone not fetched here, uses its FLOP count and the GFLOP/s measured with the default backbone', async () => {
    const dir = tempDir('cost');
    const manifestFile = path.join(dir, 'backbones.yaml');
    fs.writeFileSync(
      manifestFile,
      'version: 1\nbackbones:\n' +
        '  - { id: tiny-pre, name: tiny, homepage: "https://example.org", license: test, model: "https://example.org/model.json", ' +
        'features: f, input: { size: 224 }, macs: 500000000 }\n' +
        '  - { id: tiny-nomacs, name: tiny, homepage: "https://example.org", license: test, model: "https://example.org/model.json", ' +
        'features: f, input: { size: 224 } }\n',
    );
    const manifest = loadBackboneManifest({ env: { MTL_BENCH_BACKBONES: manifestFile } });
    const calls: { backbone: string }[] = [];
    const measure = async (options: { backbone: string }) => {
      calls.push(options);
      return result(1, 1, 4, 8);
    };
    const home = path.join(dir, 'home');
    const cost = await perImageCost({ backbone: 'tiny-pre', inputSize: 112, batch: 16, backend: 'wasm' }, { measure, manifest, home });
    // 0.5 GMAC at 224 is 0.125 GMAC at 112; training 6 FLOPs per MAC at 4 GFLOP/s, evaluation 2 at 8.
    assert.equal(calls[0]!.backbone, 'convnet-s');
    assert.ok(Math.abs(cost!.trainSeconds - (0.125e9 * 6) / 4e9) < 1e-12 && Math.abs(cost!.inferSeconds - (0.125e9 * 2) / 8e9) < 1e-12);
    assert.match(
      cost!.how,
      /tiny-pre is not fetched here: its 0\.13 GMAC per image at 112×112 at the 4\.0 GFLOP\/s measured with convnet-s/,
    );
    assert.equal(
      await perImageCost({ backbone: 'tiny-nomacs', inputSize: 112, batch: 16, backend: 'wasm' }, { measure, manifest, home }),
      undefined,
    );
  });
});
