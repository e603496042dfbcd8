import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fetchDataset } from '../../src/datasets/fetch/fetch.js';
import { datasetInfo } from '../../src/datasets/info.js';
import { ensureIndex, loadDataset } from '../../src/datasets/load.js';
import { datasetLayout } from '../../src/datasets/layout.js';
import { getEntry, loadManifest } from '../../src/datasets/manifest.js';
import { runCli } from './cli.js';
import { startServer } from './server.js';
import { tempDir, write, writeManifest } from './helpers.js';
import { makeZip } from './archives.js';

const dir = tempDir('fetch');
const server = await startServer();
after(() => server.close());

/** An IDX file of unsigned bytes (the MNIST layout). */
export function idx(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

function tinyMnist(count: number, seed: number) {
  const images = new Uint8Array(count * 6 * 6);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = (i + seed) % 3;
    images.fill(40 + 80 * labels[i], i * 36, (i + 1) * 36);
  }
  return { images: zlib.gzipSync(idx([count, 6, 6], images)), labels: zlib.gzipSync(idx([count], labels)) };
}

const train = tinyMnist(30, 0);
const testPart = tinyMnist(9, 1);
const served: Record<string, Buffer> = {
  'train-images-idx3-ubyte.gz': train.images,
  'train-labels-idx1-ubyte.gz': train.labels,
  't10k-images-idx3-ubyte.gz': testPart.images,
  't10k-labels-idx1-ubyte.gz': testPart.labels,
};
for (const [name, body] of Object.entries(served)) server.routes.set(`/mnist/${name}`, { body });

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const tinyEntry = (overrides: Record<string, unknown> = {}) => ({
  id: 'tiny-mnist',
  name: 'Tiny MNIST-style set',
  homepage: 'https://example.org/tiny',
  license: 'test',
  access: 'public',
  files: Object.entries(served).map(([name, body]) => ({ url: server.url(`/mnist/${name}`), size: body.length, md5: md5(body) })),
  format: 'idx',
  image: { channels: 1, default_size: 8 },
  tasks: { category: { kind: 'categorical', labels: ['dark', 'mid', 'light'] } },
  ...overrides,
});

test('datasets fetch downloads, verifies, indexes and caches a public dataset; list and info report it', async () => {
  const home = path.join(dir, 'home-ok');
  const manifest = writeManifest(dir, [tinyEntry()]);
  const env = { MTL_BENCH_HOME: home };
  const fetched = await runCli(['datasets', 'fetch', 'tiny-mnist', '--manifest', manifest], env);
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.match(fetched.stdout, /tiny-mnist: train \d+, val \d+, test 9; tasks category \(3\)/);
  assert.match(fetched.stdout, /cache 8×8: 39 images/);
  const downloads = server.log.filter((r) => r.path.startsWith('/mnist/')).length;
  assert.equal(downloads, 4);

  const list = await runCli(['datasets', 'list', '--json', '--manifest', manifest], env);
  assert.equal(list.code, 0, list.stderr);
  const status = (JSON.parse(list.stdout) as { id: string; fetched: boolean; indexed: boolean; size: number }[]).find(
    (s) => s.id === 'tiny-mnist',
  )!;
  assert.deepEqual([status.fetched, status.indexed, status.size], [true, true, Object.values(served).reduce((n, b) => n + b.length, 0)]);
  const cubStatus = (JSON.parse(list.stdout) as { id: string; fetched: boolean }[]).find((s) => s.id === 'cub')!;
  assert.equal(cubStatus.fetched, false);

  const text = await runCli(['datasets', 'info', 'tiny-mnist', '--manifest', manifest], env);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /test\s+\(all\)\s+9\n\s+category\s+9\s+100\.0%\s+3\/3\s+0 samples/);
  const loaded = loadManifest({ extra: [manifest] });
  const entry = getEntry(loaded, 'tiny-mnist');
  const info = datasetInfo(entry, await ensureIndex(entry, { home }), home);
  assert.equal(
    info.splits.reduce((n, s) => n + s.count, 0),
    39,
  );
  assert.deepEqual(info.splits.find((s) => s.split === 'test')!.tasks[0], {
    task: 'category',
    kind: 'categorical',
    samples: 9,
    unlabelled: 0,
    coverage: 1,
    classesPresent: 3,
    classes: 3,
  });

  // A second fetch finds the verified downloads and the current index: nothing goes over the network.
  const again = await fetchDataset('tiny-mnist', { manifest: loaded, home });
  assert.deepEqual(again.downloaded, []);
  assert.equal(server.log.filter((r) => r.path.startsWith('/mnist/')).length, downloads);

  // Grey-scale images come back as 1 channel, resized to 8×8, labels aligned with pixels.
  const view = await loadDataset('tiny-mnist', { inputSize: 8, home, manifestFiles: [manifest] });
  assert.equal(view.splits.test.images.channels, 1);
  const pixels = view.splits.test.images.read([0, 1, 2]);
  const classes = view.splits.test.labels.category;
  assert.ok(classes.kind === 'categorical');
  for (let k = 0; k < 3; k++) assert.equal(pixels[k * 64 + 27], 40 + 80 * classes.values[k]);
});

test('a wrong checksum stops the fetch with one line and leaves no data behind', async () => {
  const home = path.join(dir, 'home-bad');
  const entry = tinyEntry();
  (entry.files as { md5: string }[])[2].md5 = '0'.repeat(32);
  const manifest = writeManifest(dir, [entry]);
  const result = await runCli(['datasets', 'fetch', 'tiny-mnist', '--manifest', manifest], { MTL_BENCH_HOME: home });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /mtl-bench: error: t10k-images-idx3-ubyte\.gz: md5 [0-9a-f]{32}, expected 0{32}; the download was deleted/);
  assert.equal(
    result.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('mtl-bench')).length,
    1,
  );
  const layout = datasetLayout('tiny-mnist', home);
  assert.equal(fs.existsSync(layout.data), false);
  assert.equal(fs.existsSync(layout.indexFile), false);
  assert.deepEqual(fs.readdirSync(layout.downloads).sort(), ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz']);
});

test('request datasets: no --from fails at once saying where to ask; --from takes an archive or a folder', async () => {
  const home = path.join(dir, 'home-request');
  const entry = tinyEntry({
    id: 'tiny-private',
    access: 'request',
    files: [],
    request: { url: 'https://example.org/ask', instructions: 'sign the form' },
  });
  const manifest = writeManifest(dir, [entry]);
  const before = server.log.length;
  const refused = await runCli(['datasets', 'fetch', 'tiny-private', '--manifest', manifest], { MTL_BENCH_HOME: home });
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    new RegExp(
      'dataset "tiny-private" is not here yet: sign the form \\(https:\\/\\/example\\.org\\/ask\\), ' +
        'then run: mtl-bench datasets fetch tiny-private --from PATH',
    ),
  );
  assert.equal(server.log.length, before);

  // The user's zip of the four files: extracted into data/ and indexed.
  const loaded = loadManifest({ extra: [manifest] });
  const zip = write(path.join(dir, 'mine.zip'), makeZip(Object.entries(served).map(([name, content]) => ({ name, content }))));
  const fromZip = await fetchDataset('tiny-private', { manifest: loaded, home, from: [zip] });
  assert.equal(fromZip.root, datasetLayout('tiny-private', home).data);
  assert.ok(fs.existsSync(path.join(fromZip.root, 't10k-labels-idx1-ubyte.gz')));

  // An already-extracted folder (here with the files un-gzipped) is used in place.
  const folder = path.join(dir, 'mine-folder');
  for (const [name, body] of Object.entries(served)) write(path.join(folder, name.replace(/\.gz$/, '')), zlib.gunzipSync(body));
  const fromFolder = await fetchDataset('tiny-private', { manifest: loaded, home, from: [folder] });
  assert.equal(fromFolder.root, folder);
  assert.equal(fromFolder.index.splits.test.ids.length, 9);
  const source = JSON.parse(fs.readFileSync(datasetLayout('tiny-private', home).sourceFile, 'utf8')) as { root: string; kind: string };
  assert.deepEqual([source.root, source.kind], [folder, 'folder']);

  await assert.rejects(
    fetchDataset('tiny-private', { manifest: loaded, home, from: [path.join(dir, 'nope.zip')] }),
    /--from .*nope\.zip: no such file or folder/,
  );
});
