import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { DEFAULT_MANIFEST, getEntry, loadManifest, priorMatrix } from '../../src/datasets/manifest.js';
import { UserError } from '../../src/util/errors.js';
import { tempDir, write, writeManifest } from './helpers.js';

const dir = tempDir('manifest');

const userEntry = {
  id: 'shoes',
  name: 'My shoes',
  homepage: 'https://example.org/shoes',
  license: 'mine',
  access: 'request',
  request: { instructions: 'ask me' },
  format: 'csv',
  options: { file: 'labels.csv' },
  tasks: { type: { kind: 'categorical', column: 'type' }, attrs: { kind: 'multilabel', columns: ['a', 'b'] } },
};

test('the package manifest has every dataset of issue 3 and the Du et al. prior', () => {
  const manifest = loadManifest();
  for (const id of ['cub', 'affectnet', 'sadd', 'cad', 'celeba', 'rafdb', 'disfa', 'bp4d', 'emotionet', 'openmoji', 'fashion-mnist']) {
    assert.ok(manifest.datasets.has(id), id);
  }
  assert.equal(getEntry(manifest, 'cub').files[0].sha256, '0c685df5597a8b24909f6a7c9db6d11e008733779a671760afef78feb49bf081');
  assert.equal(getEntry(manifest, 'cub').files[0].size, 1150585339);
  assert.equal(getEntry(manifest, 'openmoji').access, 'package');
  assert.equal(getEntry(manifest, 'affectnet').access, 'request');
  const du = manifest.priors.get('du2014')!;
  assert.equal(du.rows.sadness.AU17, 0.67);
  assert.deepEqual(du.rows.neutral, {});
  // Rows follow the task's class order, columns its AU names in any spelling; unmentioned AUs are 0.
  const matrix = priorMatrix(du, ['neutral', 'happiness', 'surprise'], ['AU01', 'AU 2', 'au6', 'AU12', 'AU14']);
  assert.deepEqual(matrix, [
    [0, 0, 0, 0, 0],
    [0, 0, 0.51, 1, 0],
    [1, 1, 0, 0, 0],
  ]);
  assert.throws(() => priorMatrix(du, ['contempt'], ['AU1']), /no row for class "contempt"/);
});

test('an unknown dataset id is one line naming the known ones', () => {
  assert.throws(
    () => getEntry(loadManifest(), 'imagenet'),
    (err: unknown) => err instanceof UserError && /unknown dataset "imagenet"; known: .*cub/.test(err.message),
  );
});

test('errors name the file, the entry and the key path', () => {
  const cases: [unknown, RegExp][] = [
    [
      { ...userEntry, access: 'public', files: [{ url: 'https://example.org/a.tgz', sha256: 'abc' }] },
      /entry "shoes": files\[0\]\.sha256: expected 64 hexadecimal digits/,
    ],
    [{ ...userEntry, options: { file: 'labels.csv', colour: 'red' } }, /entry "shoes": options.*colour/],
    [
      { ...userEntry, relatedness: [{ from: 'type', to: 'nothing', prior: 'x' }] },
      /entry "shoes": relatedness\[0\]\.to: no task named "nothing"/,
    ],
    [
      { ...userEntry, relatedness: [{ from: 'attrs', to: 'type', prior: 'x' }] },
      /relatedness\[0\]\.from: relatedness rows come from a categorical task/,
    ],
    [{ ...userEntry, request: undefined }, /entry "shoes": request: a "request" dataset needs request.instructions/],
    [{ ...userEntry, tasks: { type: { kind: 'ordinal' } } }, /entry "shoes": tasks\.type\.kind:/],
    [
      { ...userEntry, access: 'public', files: [{ url: 'https://example.org/a.tgz' }] },
      /files\[0\].*needs at least one of "sha256", "md5" or "size"/,
    ],
    [{ ...userEntry, id: 'Bad Id' }, /entry "Bad Id": id: lower-case/],
    [{ name: 'no id' }, /entry #1: id:/],
  ];
  for (const [entry, pattern] of cases) {
    const file = writeManifest(dir, [entry]);
    assert.throws(
      () => loadManifest({ extra: [file] }),
      (err: unknown) =>
        err instanceof UserError && err.message.startsWith(`${file}: `) && pattern.test(err.message) && !err.message.includes('\n'),
      `${JSON.stringify(entry).slice(0, 80)} → expected ${pattern}`,
    );
  }
  const badYaml = write(path.join(dir, 'bad.yaml'), 'version: 1\ndatasets: [\n');
  assert.throws(
    () => loadManifest({ extra: [badYaml] }),
    (err: unknown) => err instanceof UserError && err.message.startsWith(`${badYaml}:3:1: not valid YAML: unexpected end`),
  );
  assert.throws(() => loadManifest({ extra: [path.join(dir, 'missing.yaml')] }), /missing\.yaml: manifest file not found/);
  const unknownPrior = writeManifest(dir, [{ ...userEntry, relatedness: [{ from: 'type', to: 'attrs', prior: 'nobody' }] }]);
  assert.throws(() => loadManifest({ extra: [unknownPrior] }), /entry "shoes": relatedness\[0\]\.prior: no prior named "nobody"/);
});

test('--manifest files add entries and override package entries by id', () => {
  const file = writeManifest(dir, [userEntry, { ...userEntry, id: 'cub', name: 'My CUB copy' }], {
    mine: { description: 'mine', rows: { a: { b: 0.5 } } },
  });
  const manifest = loadManifest({ extra: [file] });
  assert.equal(getEntry(manifest, 'shoes').name, 'My shoes');
  assert.equal(getEntry(manifest, 'shoes').source, file);
  assert.equal(getEntry(manifest, 'cub').name, 'My CUB copy');
  assert.equal(getEntry(manifest, 'celeba').source, DEFAULT_MANIFEST);
  assert.ok(manifest.priors.has('mine') && manifest.priors.has('du2014'));
  assert.deepEqual(manifest.files, [DEFAULT_MANIFEST, file]);
});
