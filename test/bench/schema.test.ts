import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { applyOverrides, ensureDatasetsReady, resolveBenchmark } from '../../src/bench/resolve.js';
import { loadBenchmarkFile, parseBenchmark } from '../../src/bench/schema.js';
import { UserError } from '../../src/util/errors.js';
import { fakeCatalog, tempDir, toyBenchmarkYaml, writeBenchmark } from './doubles.js';

const BACKBONES = ['convnet-s'];

function parseYaml(text: string, file = 'benchmarks/x.yaml') {
  return parseBenchmark(yaml.load(text), file);
}

function expectError(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.equal(err.message.split('\n').length, 1, 'one line');
    assert.match(err.message, pattern);
    return true;
  });
}

test('a valid benchmark gets method.md defaults for every option it leaves out', () => {
  const { doc } = parseYaml(toyBenchmarkYaml());
  assert.deepEqual(doc.method, {
    tau: 1,
    detachTarget: false,
    dmVariant: 'likelihood',
    dmScope: 'all',
    lambdaSca: 1,
    lambdaDm: 1,
    taskWeights: {},
    dwaTemperature: 2,
    gradnormAlpha: 1.5,
    cagradC: 0.5,
    famoLr: 0.025,
    famoDecay: 0.01,
  });
  assert.equal(doc.relatedness[0]!.alpha, 1);
  assert.deepEqual(doc.regimes.full, { kind: 'full' });
  assert.deepEqual(doc.regimes.disjoint, { kind: 'disjoint', overlap: 0.2 });
  assert.equal(doc.train.optimizer, 'adam');
  assert.equal(doc.train.batchSize, 16);
});

test('a bad value names the file and the key path', () => {
  expectError(
    () => parseYaml(toyBenchmarkYaml().replace('epochs: 2', 'epochs: -3')),
    /^benchmarks\/x\.yaml: train\.epochs: expected a positive integer$/,
  );
  expectError(
    () => parseYaml(toyBenchmarkYaml().replace('epochs: 2', 'epochs: 1.5')),
    /^benchmarks\/x\.yaml: train\.epochs: expected a positive integer$/,
  );
  expectError(
    () => parseYaml(toyBenchmarkYaml().replace('train: { epochs: 2, batch: 16 }', 'train: { batch: 16 }')),
    /benchmarks\/x\.yaml: train\.epochs: missing \(required\)/,
  );
  expectError(
    () => parseYaml(toyBenchmarkYaml().replace('overlap: 0.2', 'overlap: 1.5')),
    /regimes\.disjoint\.overlap: expected a fraction in \[0, 1\)/,
  );
});

test('unknown keys are rejected at any depth', () => {
  expectError(() => parseYaml(`${toyBenchmarkYaml()}colour: blue\n`), /^benchmarks\/x\.yaml: colour: unknown key$/);
  expectError(
    () => parseYaml(toyBenchmarkYaml().replace('batch: 16', 'batch: 16, epoch: 3')),
    /^benchmarks\/x\.yaml: train\.epoch: unknown key$/,
  );
  expectError(
    () => parseYaml(toyBenchmarkYaml().replace('group: { primary: accuracy }', 'group: { primary: accuracy, weight: 2 }')),
    /tasks\.group\.weight: unknown key/,
  );
});

test('unknown settings, metrics and regime kinds are named', () => {
  expectError(
    () => parseYaml(toyBenchmarkYaml().replace('[stl, mtl,', '[stl, mtl+magic,')),
    /settings\[1\]: unknown setting "mtl\+magic"; a setting is stl, or mtl followed by any of \+sca, \+dm/,
  );
  expectError(
    () => parseYaml(toyBenchmarkYaml().replace('primary: macro_f1', 'primary: auc')),
    /tasks\.tags\.primary: expected one of accuracy, label_accuracy, macro_f1/,
  );
  expectError(() => parseYaml(toyBenchmarkYaml().replace('kind: disjoint, overlap: 0.2', 'kind: sparse')), /regimes\.disjoint/);
  expectError(() => parseYaml(toyBenchmarkYaml().replace('seeds: [1, 2]', 'seeds: [1, 1]')), /seeds\[1\]: 1 is listed twice/);
});

test('names that point nowhere inside the file are errors', () => {
  expectError(
    () => parseYaml(toyBenchmarkYaml().replace('from: group, to: tags', 'from: group, to: colours')),
    /relatedness\[0\]\.to: unknown task "colours"; the tasks are group, tags/,
  );
  expectError(
    () =>
      parseYaml(
        toyBenchmarkYaml().replace('disjoint: { kind: disjoint, overlap: 0.2 }', 'scarce: { kind: scarce, task: tone, fraction: 0.1 }'),
      ),
    /regimes\.scarce\.task: unknown task "tone"/,
  );
  expectError(
    () =>
      parseYaml(
        toyBenchmarkYaml('check:\n  - { regime: half, setting: mtl, task: group, metric: accuracy, expected: 50, tolerance: 5 }\n'),
      ),
    /check\[0\]\.regime: unknown regime "half"/,
  );
  expectError(
    () => parseYaml(toyBenchmarkYaml().replace('dataset: toy', 'dataset: toy\nsources: { group: { dataset: toy, task: group } }')),
    /give either dataset or sources, not both/,
  );
});

test('a YAML syntax error names the file and line', () => {
  const dir = tempDir('schema');
  const file = writeBenchmark(dir, 'name: x\ntasks: [\n  oops: 1\n', 'broken.yaml');
  expectError(() => loadBenchmarkFile(file), new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: invalid YAML`));
  expectError(() => loadBenchmarkFile(path.join(dir, 'missing.yaml')), /missing\.yaml: no such benchmark file/);
});

test('resolving against the datasets catches unknown datasets, tasks and metrics', () => {
  const catalog = fakeCatalog();
  const resolve = (text: string) => resolveBenchmark(parseYaml(text), catalog, BACKBONES);
  expectError(
    () => resolve(toyBenchmarkYaml().replace('dataset: toy', 'dataset: toys')),
    /^benchmarks\/x\.yaml: dataset: unknown dataset "toys"; known datasets: aus, birds, emoji, faces, toy$/,
  );
  expectError(
    () =>
      resolve(
        toyBenchmarkYaml()
          .replace('group: { primary: accuracy }', 'genre: { primary: accuracy }')
          .replace('from: group', 'from: genre')
          .replace('group: { accuracy: 70 }', 'genre: { accuracy: 70 }'),
      ),
    /tasks\.genre: dataset "toy" has no task "genre"/,
  );
  expectError(
    () => resolve(toyBenchmarkYaml().replace('group: { primary: accuracy }', 'group: { primary: label_accuracy }')),
    /tasks\.group\.primary: "label_accuracy" does not apply to categorical task "group"; expected accuracy or macro_f1/,
  );
  expectError(
    () => resolve(toyBenchmarkYaml().replace('group: { accuracy: 70 }', 'tags: { accuracy: 70 }')),
    /reference\.tags\.accuracy: "accuracy" does not apply to multilabel task "tags"/,
  );
  expectError(() => resolve(toyBenchmarkYaml().replace('backbone: convnet-s', 'backbone: vgg99')), /backbone: unknown backbone "vgg99"/);
  expectError(
    () => resolve(toyBenchmarkYaml().replace('source: data', 'source: prior')),
    /relatedness\[0\]: group->tags: no prior relatedness table between "group" and "tags" is shipped with toy/,
  );
  expectError(
    () => resolve(toyBenchmarkYaml().replace('from: group, to: tags', 'from: tags, to: group')),
    new RegExp(
      'relatedness\\[0\\]\\.from: tags->group: relatedness is written from the categorical task \\(group->tags\\); ' +
        'that one pair couples both directions',
    ),
  );
  expectError(
    () => resolve(toyBenchmarkYaml().replace('overlap: 0.2', 'overlap: 0')),
    /relatedness\[0\]: group->tags: source "data" needs co-annotated samples, but regime "disjoint" keeps none/,
  );
});

test('multi-source: a task its source dataset lacks, and data relatedness across sources, are errors', () => {
  const catalog = fakeCatalog();
  const multi = (au: string, rel: string) =>
    `name: ms
dataset_placeholder: 1
tasks: { expression: { primary: accuracy }, au: { primary: macro_f1 } }
sources: { expression: { dataset: faces, task: expression }, au: { dataset: aus, task: ${au} } }
input: { size: 8 }
backbone: convnet-s
train: { epochs: 1 }
relatedness: [ ${rel} ]
regimes: { ms: multi-source }
settings: [stl, mtl+dm]
seeds: [1]
`.replace('dataset_placeholder: 1\n', '');
  const resolved = resolveBenchmark(
    parseYaml(multi('au', '{ from: expression, to: au, source: prior, prior: du2014 }')),
    catalog,
    BACKBONES,
  );
  assert.equal(resolved.datasetLabel, 'faces.expression+aus.au');
  assert.deepEqual(resolved.datasetIds, ['faces', 'aus']);
  expectError(
    () => resolveBenchmark(parseYaml(multi('aus_12', '')), catalog, BACKBONES),
    /sources\.au\.task: dataset "aus" has no task "aus_12"; its tasks are au/,
  );
  expectError(
    () => resolveBenchmark(parseYaml(multi('au', '{ from: expression, to: au, source: data }')), catalog, BACKBONES),
    /tasks from different sources share none/,
  );
  expectError(
    () => resolveBenchmark(parseYaml(multi('au', '{ from: expression, to: au, source: prior, prior: nope }')), catalog, BACKBONES),
    /relatedness\[0\]\.prior: no prior named "nope"/,
  );
  expectError(
    () => parseYaml(multi('au', '').replace('ms: multi-source', 'ms: full')),
    /regimes\.ms: with sources, no sample carries two tasks/,
  );
});

test('a dataset that is not fetched names the command that fetches it; offline datasets are built', async () => {
  const catalog = fakeCatalog();
  const birds = `name: birds
dataset: birds
tasks: { species: { primary: accuracy }, attributes: { primary: label_accuracy } }
input: { size: 8 }
backbone: convnet-s
train: { epochs: 1 }
relatedness: [ { from: species, to: attributes, source: file } ]
regimes: { full: full }
settings: [stl, mtl+dm]
seeds: [1]
`;
  const resolved = resolveBenchmark(parseYaml(birds, 'benchmarks/paper/cub.yaml'), catalog, BACKBONES);
  await assert.rejects(
    ensureDatasetsReady(resolved, catalog),
    /^UserError: benchmarks\/paper\/cub\.yaml: dataset: dataset "birds" is not fetched here; run: mtl-bench datasets fetch birds$/,
  );
  const emoji = resolveBenchmark(
    parseYaml(
      birds
        .replace('dataset: birds', 'dataset: emoji')
        .replace(/species/g, 'group')
        .replace(/attributes/g, 'tags')
        .replace('source: file', 'source: data'),
    ),
    catalog,
    BACKBONES,
  );
  await ensureDatasetsReady(emoji, catalog);
  assert.deepEqual(catalog.prepared, ['emoji']);
});

test('command-line overrides are validated and applied', () => {
  const loaded = parseYaml(toyBenchmarkYaml());
  const o = applyOverrides(loaded, { settings: ['mtl+dm', 'stl'], regimes: ['disjoint'], seeds: [7], epochs: 9 });
  assert.deepEqual(o.doc.settings, ['stl', 'mtl+dm'], 'kept in canonical order');
  assert.deepEqual(Object.keys(o.doc.regimes), ['disjoint']);
  assert.deepEqual(o.doc.seeds, [7]);
  assert.equal(o.doc.train.epochs, 9);
  assert.equal(loaded.doc.train.epochs, 2, 'the loaded file is not modified');
  expectError(() => applyOverrides(loaded, { settings: ['mtl+xyz'] }), /^--settings: unknown setting "mtl\+xyz"/);
  expectError(
    () => applyOverrides(loaded, { regimes: ['scarce'] }),
    /^--regimes: "scarce" is not a regime of benchmarks\/x\.yaml; its regimes are full, disjoint$/,
  );
});

test('every shipped benchmark file passes the schema', () => {
  const root = path.resolve(import.meta.dirname, '..', '..', '..', 'benchmarks');
  const files = [
    ...fs
      .readdirSync(root)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => path.join(root, f)),
    ...fs
      .readdirSync(path.join(root, 'paper'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => path.join(root, 'paper', f)),
  ];
  assert.ok(files.length >= 9, `found ${files.length} files`);
  for (const file of files) {
    const { doc } = loadBenchmarkFile(file);
    assert.equal(`${doc.name}.yaml`, path.basename(file), `${file}: name matches the file`);
  }
});

test('every shipped benchmark resolves against the package dataset manifest', async () => {
  const { manifestCatalog } = await import('../../src/bench/deps.js');
  const { loadManifest } = await import('../../src/datasets/manifest.js');
  const { BACKBONE_NAMES: builtIn } = await import('../../src/model/backbones.js');
  const { loadBackboneManifest } = await import('../../src/model/backbone_manifest.js');
  // The paper's studies name a pretrained backbone of backbones.yaml.
  const BACKBONE_NAMES = [...builtIn, ...loadBackboneManifest().backbones.keys()];
  const catalog = manifestCatalog(loadManifest(), tempDir('home'));
  const root = path.resolve(import.meta.dirname, '..', '..', '..', 'benchmarks');
  const files = [
    ...fs
      .readdirSync(root)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => path.join(root, f)),
    ...fs
      .readdirSync(path.join(root, 'paper'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => path.join(root, 'paper', f)),
  ];
  for (const file of files) {
    const resolved = resolveBenchmark(loadBenchmarkFile(file), catalog, BACKBONE_NAMES);
    assert.ok(resolved.tasks.length >= 2, file);
  }
  // In an empty home only the package dataset can be made ready; the paper's data must be fetched.
  const cub = resolveBenchmark(loadBenchmarkFile(path.join(root, 'paper', 'cub.yaml')), catalog, BACKBONE_NAMES);
  await assert.rejects(
    ensureDatasetsReady(cub, catalog),
    /paper\/cub\.yaml: dataset: dataset "cub" is not fetched here; run: mtl-bench datasets fetch cub$/,
  );
  const affectnet = resolveBenchmark(loadBenchmarkFile(path.join(root, 'paper', 'affectnet.yaml')), catalog, BACKBONE_NAMES);
  await assert.rejects(
    ensureDatasetsReady(affectnet, catalog),
    new RegExp(
      'sources: dataset "affectnet" is not fetched here; it needs a licence \\(.*\\); ' +
        'then run: mtl-bench datasets fetch affectnet --from PATH$',
    ),
  );
});
