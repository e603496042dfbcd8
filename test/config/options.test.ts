import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { CellConfig } from '../../src/config/cell.js';
import {
  METHOD_OPTIONS,
  RELATEDNESS_OPTIONS,
  TRAIN_OPTIONS,
  blockSchema,
  completeMethodOptions,
  defaultsOf,
  methodOptionsFor,
  optionsTableMarkdown,
} from '../../src/config/options.js';
import {
  BALANCING_METHODS,
  SETTINGS,
  balancingMethod,
  inSettingOrder,
  isCoupled,
  parseSetting,
  settingSchema,
  settingSpec,
  usesCoupling,
  type Setting,
} from '../../src/config/settings.js';
import { configHash } from '../../src/runs/identity.js';
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
  const specs = new Map(
    [TRAIN_OPTIONS, METHOD_OPTIONS, RELATEDNESS_OPTIONS].flatMap((o) => Object.values(o).map((spec) => [spec.key.at(-1)!, spec] as const)),
  );
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
  assert.equal(
    blockSchema(TRAIN_OPTIONS).safeParse({ epochs: 1, augmentation: { flop: true } }).success,
    false,
    'unknown nested keys are rejected',
  );
  assert.equal(blockSchema(TRAIN_OPTIONS).safeParse({}).success, false, 'a required option is required');
  const pair = blockSchema(RELATEDNESS_OPTIONS).parse({ from: 'a', to: 'b', source: 'data' });
  assert.deepEqual(pair, { from: 'a', to: 'b', source: 'data', alpha: 1, minCoannotated: 20 });
  assert.equal('prior' in pair, false, 'an optional option left out stays absent');
});

const keepsOnlyTheOptionsItReads =
  'each setting keeps only the method options it reads; the rest carry their defaults, ' +
  "a balancing method's options appear only with it";
test(keepsOnlyTheOptionsItReads, () => {
  const coupling = {
    tau: 2,
    detachTarget: true,
    dmVariant: 'prototypical',
    dmScope: 'missing',
    lambdaSca: 3,
    lambdaDm: 4,
    taskWeights: { b: 2, a: 1 },
  } as const;
  const balancing = { dwaTemperature: 3, gradnormAlpha: 0.5, cagradC: 0.2, famoLr: 0.1, famoDecay: 0.001 } as const;
  const given = { ...coupling, ...balancing };
  const defaults = defaultsOf(METHOD_OPTIONS);
  const couplingDefaults = {
    tau: defaults.tau,
    detachTarget: defaults.detachTarget,
    dmVariant: defaults.dmVariant,
    dmScope: defaults.dmScope,
    lambdaSca: defaults.lambdaSca,
    lambdaDm: defaults.lambdaDm,
    taskWeights: {},
  };
  const sorted = { a: 1, b: 2 };
  assert.deepEqual(methodOptionsFor('stl', given), couplingDefaults);
  assert.deepEqual(methodOptionsFor('mtl', given), { ...couplingDefaults, taskWeights: sorted });
  assert.deepEqual(methodOptionsFor('mtl+sca', given), { ...couplingDefaults, tau: 2, lambdaSca: 3, taskWeights: sorted });
  assert.deepEqual(methodOptionsFor('mtl+dm', given), { ...coupling, lambdaSca: 1, taskWeights: sorted });
  assert.deepEqual(methodOptionsFor('mtl+sca+dm', given), { ...coupling, taskWeights: sorted });
  assert.deepEqual(Object.keys(methodOptionsFor('mtl', given).taskWeights), ['a', 'b'], 'task weights are sorted by name');
  assert.deepEqual(methodOptionsFor('mtl+uw', given), { ...couplingDefaults, taskWeights: sorted });
  assert.deepEqual(methodOptionsFor('mtl+dwa', given), { ...couplingDefaults, taskWeights: sorted, dwaTemperature: 3 });
  assert.deepEqual(methodOptionsFor('mtl+gradnorm', given), { ...couplingDefaults, taskWeights: sorted, gradnormAlpha: 0.5 });
  assert.deepEqual(methodOptionsFor('mtl+sca+dm+cagrad', given), { ...coupling, taskWeights: sorted, cagradC: 0.2 });
  assert.deepEqual(methodOptionsFor('mtl+dm+famo', given), {
    ...coupling,
    lambdaSca: 1,
    taskWeights: sorted,
    famoLr: 0.1,
    famoDecay: 0.001,
  });
  assert.deepEqual(
    completeMethodOptions(methodOptionsFor('mtl+dwa', given)),
    { ...defaults, taskWeights: sorted, dwaTemperature: 3 },
    "a cell's options completed with the defaults",
  );
  assert.equal(blockSchema(METHOD_OPTIONS).safeParse({ cagrad_c: 1 }).success, false, 'CAGrad needs c < 1');
});

test('adding balancing methods leaves the config hash of every existing setting as it was', () => {
  // Computed on main (070978b) before the balancing methods existed, with the same skeleton and
  // the method block without the balancing keys (which main's schema rejects).
  const before: Record<string, string> = {
    stl: '2148229bbee892524098cc9a73799ec327d662a3a2f988fd51c1a5d17e3cdc56',
    mtl: 'c5e5a7d21d0885132a511ca639162edb08b334b17e88a34b2bcf67166b7fb90f',
    'mtl+sca': '7e16bc6e3856f0e8ec8e5e02a9d11e1925e23c3985be0af2ea4be9947e56bff3',
    'mtl+dm': '76f7308e1258b94bd2d18b340dc25c9f5d76c7b23a79f95ed2295837edec8d0c',
    'mtl+sca+dm': '08ade1257f6201a607944f00f1f3243ff361014a8f9757e6784d9e06cc05a39e',
  };
  const method = blockSchema(METHOD_OPTIONS).parse({ tau: 2, lambda_dm: 0.5, task_weights: { tags: 2 }, famo_lr: 0.5, cagrad_c: 0.1 });
  const train = blockSchema(TRAIN_OPTIONS).parse({ epochs: 3 });
  const cell = (setting: Setting): CellConfig => ({
    benchmark: 'openmoji',
    dataset: 'openmoji',
    tasks: [
      { name: 'group', primary: 'accuracy' },
      { name: 'tags', primary: 'macro_f1' },
    ],
    inputSize: 32,
    backbone: 'convnet-s',
    train,
    method: methodOptionsFor(setting, method),
    relatedness: isCoupled(setting) ? [{ from: 'group', to: 'tags', source: 'data', alpha: 1, minCoannotated: 20 }] : [],
    regime: { name: 'disjoint', spec: { kind: 'disjoint', overlap: 0.05 } },
    setting,
    seed: 1,
    // The revision main had then, written out so that a later revision does not move these hashes.
    trainingRevision: 2,
  });
  for (const [setting, hash] of Object.entries(before)) assert.equal(configHash(cell(setting as Setting)), hash, setting);
  assert.notEqual(configHash(cell('mtl+famo')), configHash(cell('mtl')));
  assert.notEqual(configHash(cell('mtl+sca+dm+famo')), before['mtl+sca+dm']);
});

test('the settings grammar: stl first, which settings are multi-task and which couplings each adds', () => {
  assert.equal(SETTINGS[0], 'stl');
  assert.deepEqual(
    SETTINGS.slice(0, 5).map((s) => [
      s,
      settingSpec(s).multiTask,
      usesCoupling(s, 'sca'),
      usesCoupling(s, 'dm'),
      isCoupled(s),
      balancingMethod(s),
    ]),
    [
      ['stl', false, false, false, false, undefined],
      ['mtl', true, false, false, false, undefined],
      ['mtl+sca', true, true, false, true, undefined],
      ['mtl+dm', true, false, true, true, undefined],
      ['mtl+sca+dm', true, true, true, true, undefined],
    ],
  );
});

test("the settings grammar: every coupling combination takes an optional balancing method, listed after the paper's settings", () => {
  assert.equal(SETTINGS.length, 1 + 4 * (1 + BALANCING_METHODS.length));
  assert.equal(new Set(SETTINGS).size, SETTINGS.length);
  assert.deepEqual(
    SETTINGS.slice(5, 5 + BALANCING_METHODS.length),
    BALANCING_METHODS.map((m) => `mtl+${m}`),
  );
  assert.deepEqual(settingSpec('mtl+sca+dm+cagrad'), { multiTask: true, couplings: ['sca', 'dm'], balancing: 'cagrad' });
  assert.deepEqual(settingSpec('mtl+pcgrad'), { multiTask: true, couplings: [], balancing: 'pcgrad' });
  assert.equal(isCoupled('mtl+dm+famo'), true);
  assert.equal(isCoupled('mtl+uw'), false);
  for (const setting of SETTINGS) assert.equal(parseSetting(setting).ok, true, setting);
  assert.deepEqual(inSettingOrder(['mtl+famo', 'stl', 'mtl+dm', 'mtl+uw', 'mtl+famo']), ['stl', 'mtl+dm', 'mtl+uw', 'mtl+famo']);
});

test('a name outside the settings grammar gets one line that lists what is valid', () => {
  for (const name of ['mtl+foo', 'stl+dm', 'mtl+uw+dwa', 'mtl+dm+dm', 'MTL', '', 'mtl+', 'stl+uw']) {
    const parsed = parseSetting(name);
    assert.equal(parsed.ok, false, name);
    const problem = (parsed as { problem: string }).problem;
    assert.doesNotMatch(problem, /\n/);
    assert.match(
      problem,
      new RegExp(
        '^unknown setting ".*"; a setting is stl, or mtl followed by any of \\+sca, \\+dm \\(in that order\\) ' +
          'and at most one balancing method \\+uw, \\+dwa, \\+gradnorm, \\+pcgrad, \\+mgda, \\+cagrad or \\+famo',
      ),
      name,
    );
  }
  assert.deepEqual(parseSetting('mtl+dm+sca'), {
    ok: false,
    problem: 'setting "mtl+dm+sca" is written mtl+sca+dm: couplings come in the order sca, dm, the balancing method last',
  });
  assert.equal(parseSetting('mtl+uw+dm').ok, false);
  assert.equal(settingSchema.safeParse('mtl+sca+dm+famo').success, true);
  const rejected = settingSchema.safeParse('mtl+gradnrom');
  assert.equal(rejected.success, false);
  assert.match(rejected.error!.issues[0]!.message, /unknown setting "mtl\+gradnrom"; a setting is stl, or mtl/);
});

test('options added after studies ran are left out of a config at their default, so earlier config hashes still match', async () => {
  const { default: yaml } = await import('js-yaml');
  const { expandMatrix } = await import('../../src/bench/matrix.js');
  const { applyOverrides, resolveBenchmark } = await import('../../src/bench/resolve.js');
  const { parseBenchmark } = await import('../../src/bench/schema.js');
  const { fakeCatalog, toyBenchmarkYaml } = await import('../bench/doubles.js');
  const hashes = (text: string) =>
    new Map(
      expandMatrix(resolveBenchmark(applyOverrides(parseBenchmark(yaml.load(text), 'toy.yaml'), {}), fakeCatalog(), ['convnet-s'])).map(
        (c) => [c.id, c.hash],
      ),
    );
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
  for (const [id, hash] of Object.entries(onMain))
    assert.equal(hashes(explicitDefaults).get(id), hash, `${id}: writing the default out changed the hash`);
  const blended = hashes(toyBenchmarkYaml().replace('min_coannotated: 5 }', 'min_coannotated: 5, sharpness_blend: 0.5 }'));
  assert.notEqual(blended.get('disjoint.mtl+dm.seed1'), onMain['disjoint.mtl+dm.seed1'], 'a blend is a different training');
  assert.equal(blended.get('full.stl.seed1'), onMain['full.stl.seed1'], 'stl reads no relatedness');
  const pytorch = hashes(toyBenchmarkYaml().replace('train: { epochs: 2, batch: 16 }', 'train: { epochs: 2, batch: 16, init: pytorch }'));
  assert.notEqual(pytorch.get('full.stl.seed1'), onMain['full.stl.seed1']);
});
