import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { METHOD_OPTIONS, RELATEDNESS_OPTIONS, TRAIN_OPTIONS, blockSchema, defaultsOf, methodOptionsFor, optionsTableMarkdown } from '../../src/config/options.js';
import { SETTINGS, isCoupled, settingSpec, usesCoupling } from '../../src/config/settings.js';
import { packageRoot } from '../../src/util/paths.js';

const README = fs.readFileSync(path.join(packageRoot, 'README.md'), 'utf8');

test("the README's option table is the one the configuration module generates", () => {
  const match = /<!-- options:begin -->\n([\s\S]*?)\n<!-- options:end -->/.exec(README);
  assert.ok(match, 'README.md has the options:begin/options:end markers');
  assert.equal(match[1], optionsTableMarkdown(), 'regenerate the table with optionsTableMarkdown() from src/config/options.ts');
});

test("every option the README's method-choices table names exists, with a value it accepts", () => {
  const section = README.slice(README.indexOf('## The method, and the choices the paper leaves open'));
  const start = section.indexOf('| choice |');
  const rows = section.slice(start, section.indexOf('\n\n', start)).split('\n').slice(2);
  const specs = new Map([TRAIN_OPTIONS, METHOD_OPTIONS, RELATEDNESS_OPTIONS].flatMap((o) => Object.values(o).map((spec) => [spec.key.at(-1)!, spec] as const)));
  let named = 0;
  for (const row of rows) {
    const optionCell = row.split('|').at(-2)!;
    for (const [, name, value] of optionCell.matchAll(/`([a-z_]+)(?::\s*([^`]+))?`/g)) {
      named++;
      const spec = specs.get(name!);
      assert.ok(spec, `README names option "${name}", which src/config/options.ts does not define`);
      if (value !== undefined) {
        const parsed = value === 'true' || value === 'false' ? value === 'true' : value;
        assert.ok(spec.schema.safeParse(parsed).success, `README shows ${name}: ${value}, which the option rejects`);
      }
    }
  }
  assert.ok(named >= 8, `the option column was read (${named} options named)`);
});

test('a block schema fills defaults, keeps what was given and maps nested keys to the camelCase fields', () => {
  const train = blockSchema(TRAIN_OPTIONS).parse({ epochs: 3, lr: 0.1, augmentation: { flip: true } });
  assert.deepEqual(train, { ...defaultsOf(TRAIN_OPTIONS), epochs: 3, learningRate: 0.1, flip: true });
  assert.equal(train.cropPadding, 0, 'a nested option left out of a given block gets its default');
  assert.equal(blockSchema(TRAIN_OPTIONS).parse({ epochs: 1 }).cropPadding, 0, 'an omitted nested block is filled from its defaults');
  assert.equal(blockSchema(TRAIN_OPTIONS).safeParse({ epochs: 1, augmentation: { flop: true } }).success, false, 'unknown nested keys are rejected');
  assert.equal(blockSchema(TRAIN_OPTIONS).safeParse({}).success, false, 'a required option is required');
  const pair = blockSchema(RELATEDNESS_OPTIONS).parse({ from: 'a', to: 'b', source: 'data' });
  assert.deepEqual(pair, { from: 'a', to: 'b', source: 'data', alpha: 1, minCoannotated: 20 });
  assert.equal('prior' in pair, false, 'an optional option left out stays absent');
});

test('each setting keeps only the method options it reads; the rest carry their defaults', () => {
  const given = { tau: 2, detachTarget: true, dmVariant: 'prototypical', dmScope: 'missing', lambdaSca: 3, lambdaDm: 4, taskWeights: { b: 2, a: 1 } } as const;
  const defaults = defaultsOf(METHOD_OPTIONS);
  assert.deepEqual(methodOptionsFor('stl', given), defaults);
  assert.deepEqual(methodOptionsFor('mtl', given), { ...defaults, taskWeights: { a: 1, b: 2 } });
  assert.deepEqual(methodOptionsFor('mtl+sca', given), { ...defaults, tau: 2, lambdaSca: 3, taskWeights: { a: 1, b: 2 } });
  assert.deepEqual(methodOptionsFor('mtl+dm', given), { ...given, lambdaSca: 1, taskWeights: { a: 1, b: 2 } });
  assert.deepEqual(methodOptionsFor('mtl+sca+dm', given), { ...given, taskWeights: { a: 1, b: 2 } });
  assert.deepEqual(Object.keys(methodOptionsFor('mtl', given).taskWeights), ['a', 'b'], 'task weights are sorted by name');
});

test('the settings grammar: stl first, which settings are multi-task and which couplings each adds', () => {
  assert.equal(SETTINGS[0], 'stl');
  assert.deepEqual(
    SETTINGS.map((s) => [s, settingSpec(s).multiTask, usesCoupling(s, 'sca'), usesCoupling(s, 'dm'), isCoupled(s)]),
    [
      ['stl', false, false, false, false],
      ['mtl', true, false, false, false],
      ['mtl+sca', true, true, false, true],
      ['mtl+dm', true, false, true, true],
      ['mtl+sca+dm', true, true, true, true],
    ],
  );
});

test('options added after studies ran are left out of a config at their default, so earlier config hashes still match', async () => {
  const { default: yaml } = await import('js-yaml');
  const { expandMatrix } = await import('../../src/bench/matrix.js');
  const { applyOverrides, resolveBenchmark } = await import('../../src/bench/resolve.js');
  const { parseBenchmark } = await import('../../src/bench/schema.js');
  const { fakeCatalog, toyBenchmarkYaml } = await import('../bench/doubles.js');
  const hashes = (text: string) =>
    new Map(expandMatrix(resolveBenchmark(applyOverrides(parseBenchmark(yaml.load(text), 'toy.yaml'), {}), fakeCatalog(), ['convnet-s'])).map((c) => [c.id, c.hash]));
  // Computed on main (eecef64), where `init` and `sharpness_blend` do not exist.
  const onMain = {
    'full.stl.seed1': '9c7734452bd0586cd83f05a6cf42aa611b304ce0acbb3771ae566dae2aec751a',
    'disjoint.mtl+dm.seed1': '5ae160bb8b1eb547cb799781099007861f37483f04cc9e4ddca641717bbfa6c0',
    'full.mtl+sca+dm.seed1': '79040bf72ec3699c69a5b4c59857576823c4def24f0e643458d6594a0ac807f9',
  };
  const plain = hashes(toyBenchmarkYaml());
  for (const [id, hash] of Object.entries(onMain)) assert.equal(plain.get(id), hash, `${id}: hash changed`);
  const explicitDefaults = toyBenchmarkYaml()
    .replace('train: { epochs: 2, batch: 16 }', 'train: { epochs: 2, batch: 16, init: he }')
    .replace('min_coannotated: 5 }', 'min_coannotated: 5, sharpness_blend: 0 }');
  assert.notEqual(explicitDefaults, toyBenchmarkYaml(), 'the toy benchmark still has the lines this test edits');
  for (const [id, hash] of Object.entries(onMain)) assert.equal(hashes(explicitDefaults).get(id), hash, `${id}: writing the default out changed the hash`);
  const blended = hashes(toyBenchmarkYaml().replace('min_coannotated: 5 }', 'min_coannotated: 5, sharpness_blend: 0.5 }'));
  assert.notEqual(blended.get('disjoint.mtl+dm.seed1'), onMain['disjoint.mtl+dm.seed1'], 'a blend is a different training');
  assert.equal(blended.get('full.stl.seed1'), onMain['full.stl.seed1'], 'stl reads no relatedness');
  const pytorch = hashes(toyBenchmarkYaml().replace('train: { epochs: 2, batch: 16 }', 'train: { epochs: 2, batch: 16, init: pytorch }'));
  assert.notEqual(pytorch.get('full.stl.seed1'), onMain['full.stl.seed1']);
});
