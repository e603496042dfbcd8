import { test } from 'node:test';
import assert from 'node:assert/strict';
import yaml from 'js-yaml';
import { expandMatrix, parseShard, selectShard } from '../../src/bench/matrix.js';
import { TRAINING_REVISION } from '../../src/config/defaults.js';
import { configHash } from '../../src/runs/identity.js';
import { stableStringify } from '../../src/util/stable_json.js';
import { applyOverrides, resolveBenchmark } from '../../src/bench/resolve.js';
import { parseBenchmark } from '../../src/bench/schema.js';
import { UserError } from '../../src/util/errors.js';
import { fakeCatalog, toyBenchmarkYaml } from './doubles.js';

function resolveToy(text = toyBenchmarkYaml(), overrides = {}) {
  return resolveBenchmark(applyOverrides(parseBenchmark(yaml.load(text), 'toy.yaml'), overrides), fakeCatalog(), ['convnet-s']);
}

test('the matrix is regime × setting × seed, seed-major, one stl cell per regime and seed', () => {
  const cells = expandMatrix(resolveToy());
  assert.equal(cells.length, 2 * 5 * 2);
  assert.equal(new Set(cells.map((c) => c.id)).size, cells.length, 'ids are unique');
  assert.deepEqual(
    cells.slice(0, 6).map((c) => c.id),
    ['full.stl.seed1', 'full.mtl.seed1', 'full.mtl+sca.seed1', 'full.mtl+dm.seed1', 'full.mtl+sca+dm.seed1', 'disjoint.stl.seed1'],
  );
  assert.ok(
    cells.slice(0, 10).every((c) => c.config.seed === 1),
    'all of seed 1 first',
  );
  assert.deepEqual(
    cells.map((c) => c.index),
    cells.map((_, i) => i),
  );
  const stl = cells.filter((c) => c.config.setting === 'stl');
  assert.equal(stl.length, 4);
  assert.deepEqual(
    stl[0]!.config.tasks.map((t) => t.name),
    ['group', 'tags'],
    'an stl cell carries every task (one network each)',
  );
  const disjoint = cells.find((c) => c.id === 'disjoint.mtl+dm.seed2')!;
  assert.deepEqual(disjoint.config.regime, { name: 'disjoint', spec: { kind: 'disjoint', overlap: 0.2 } });
  assert.equal(disjoint.config.relatedness.length, 1);
  assert.equal(cells.find((c) => c.id === 'full.mtl.seed1')!.config.relatedness.length, 0, 'uncoupled settings use no relatedness');
  assert.ok(
    cells.every((c) => c.config.trainingRevision === TRAINING_REVISION),
    "every cell records the trainer's revision, so a trainer change reruns it",
  );
  const older = { ...disjoint.config, trainingRevision: TRAINING_REVISION - 1 };
  assert.notEqual(configHash(older), disjoint.hash, 'a run folder from an older trainer is not taken as done');
});

test('stable JSON ignores key order; the hash is a sha256 of it', () => {
  assert.equal(stableStringify({ b: 1, a: { d: [3, { y: 1, x: 2 }], c: null } }), '{"a":{"c":null,"d":[3,{"x":2,"y":1}]},"b":1}');
  assert.equal(stableStringify({ a: undefined, b: 2 }), '{"b":2}');
  const [cell] = expandMatrix(resolveToy());
  const reversed = Object.fromEntries(Object.entries(cell!.config).reverse());
  assert.notDeepEqual(Object.keys(reversed), Object.keys(cell!.config));
  assert.equal(configHash(reversed as unknown as typeof cell.config), cell!.hash);
  assert.match(cell!.hash, /^[0-9a-f]{64}$/);
  // The same file resolved twice gives the same hashes.
  assert.deepEqual(
    expandMatrix(resolveToy()).map((c) => c.hash),
    expandMatrix(resolveToy()).map((c) => c.hash),
  );
});

test('a changed option changes the hash of exactly the cells it affects', () => {
  const before = new Map(expandMatrix(resolveToy()).map((c) => [c.id, c.hash]));
  const changedDm = expandMatrix(resolveToy(toyBenchmarkYaml('method: { lambda_dm: 0.5 }\n')));
  const rerun = changedDm.filter((c) => before.get(c.id) !== c.hash).map((c) => c.config.setting);
  assert.deepEqual([...new Set(rerun)].sort(), ['mtl+dm', 'mtl+sca+dm']);
  const changedSca = expandMatrix(resolveToy(toyBenchmarkYaml('method: { lambda_sca: 2 }\n')));
  assert.deepEqual([...new Set(changedSca.filter((c) => before.get(c.id) !== c.hash).map((c) => c.config.setting))].sort(), [
    'mtl+sca',
    'mtl+sca+dm',
  ]);
  const changedEpochs = expandMatrix(resolveToy(toyBenchmarkYaml(), { epochs: 3 }));
  assert.ok(
    changedEpochs.every((c) => before.get(c.id) !== c.hash),
    'epochs affect every cell',
  );
  const extraSeed = expandMatrix(resolveToy(toyBenchmarkYaml(), { seeds: [1, 2, 3] }));
  assert.equal(extraSeed.filter((c) => before.get(c.id) !== c.hash).length, 10, 'only the new seed is new');
});

test('--shard I/N: one-line errors for bad values', () => {
  for (const bad of ['3/2', '0/2', 'x/y', '1/0', '2', '1/2/3', '-1/2']) {
    assert.throws(
      () => parseShard(bad),
      (err: unknown) => err instanceof UserError && err.message.startsWith('--shard:') && !err.message.includes('\n'),
      bad,
    );
  }
  assert.deepEqual(parseShard('2/2'), { index: 2, count: 2 });
  assert.deepEqual(parseShard(' 1 / 3 '), { index: 1, count: 3 });
});

test('shards are disjoint and together cover the matrix', () => {
  const cells = expandMatrix(resolveToy(toyBenchmarkYaml(), { seeds: [1, 2, 3] }));
  for (const count of [1, 2, 3, 7]) {
    const parts = Array.from({ length: count }, (_, i) => selectShard(cells, { index: i + 1, count }).map((c) => c.id));
    const union = parts.flat();
    assert.equal(union.length, cells.length, `N=${count}: no cell twice`);
    assert.deepEqual(new Set(union), new Set(cells.map((c) => c.id)), `N=${count}: every cell once`);
    const sizes = parts.map((p) => p.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `N=${count}: balanced ${sizes}`);
  }
  assert.deepEqual(
    selectShard(cells, { index: 1, count: 2 }).map((c) => c.id),
    selectShard(expandMatrix(resolveToy(toyBenchmarkYaml(), { seeds: [1, 2, 3] })), { index: 1, count: 2 }).map((c) => c.id),
    'deterministic',
  );
  const settingsInShard1 = new Set(selectShard(cells, { index: 1, count: 2 }).map((c) => c.config.setting));
  assert.equal(settingsInShard1.size, 5, 'each shard mixes settings');
});
