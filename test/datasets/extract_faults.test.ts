import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fetchDataset } from '../../src/datasets/fetch/fetch.js';
import { datasetLayout } from '../../src/datasets/layout.js';
import { loadManifest } from '../../src/datasets/manifest.js';
import { UserError } from '../../src/util/errors.js';
import { packageRoot } from '../../src/util/paths.js';
import { makeTar, makeTarGz } from './archives.js';
import { tempDir, write, writeManifest } from './helpers.js';

/**
 * Extraction failures leave nothing behind: a broken archive is one line naming it and what is
 * wrong, with no temporary folder left; Ctrl-C or SIGTERM during extraction removes the folder;
 * kill -9 leaves it to the next fetch of the dataset, which removes it.
 */

const dir = tempDir('extract-faults');
const bin = path.join(packageRoot, 'bin', 'mtl-bench.js');

function idx(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

/** The four files of a tiny MNIST-style dataset, plus `padding` bytes of noise files to make the archive slow to extract. */
function datasetFiles(padding = 0): { name: string; content: Uint8Array }[] {
  const images = (n: number) =>
    idx(
      [n, 6, 6],
      Uint8Array.from({ length: n * 36 }, (_, i) => 40 + 80 * (Math.floor(i / 36) % 3)),
    );
  const labels = (n: number) =>
    idx(
      [n],
      Uint8Array.from({ length: n }, (_, i) => i % 3),
    );
  const files = [
    { name: 'train-images-idx3-ubyte', content: images(30) },
    { name: 'train-labels-idx1-ubyte', content: labels(30) },
    { name: 't10k-images-idx3-ubyte', content: images(9) },
    { name: 't10k-labels-idx1-ubyte', content: labels(9) },
  ];
  const chunk = 256 * 1024;
  for (let i = 0; i * chunk < padding; i++) files.push({ name: `noise/${i}.bin`, content: randomBytes(chunk) });
  return files;
}

const manifestFile = writeManifest(dir, [
  {
    id: 'tiny-own',
    name: 'Tiny MNIST-style set of ones own',
    homepage: 'https://example.org/tiny',
    license: 'test',
    access: 'request',
    request: { instructions: 'it is yours' },
    files: [],
    format: 'idx',
    image: { channels: 1, default_size: 8 },
    tasks: { category: { kind: 'categorical', labels: ['dark', 'mid', 'light'] } },
  },
]);
const manifest = loadManifest({ extra: [manifestFile] });

const leftovers = (home: string) => {
  const layout = datasetLayout('tiny-own', home);
  return fs.existsSync(layout.dir) ? fs.readdirSync(layout.dir).filter((n) => n.endsWith('.tmp') || n.startsWith('data')) : [];
};

test('a truncated .tgz is one line naming it and saying it is truncated, and leaves no temporary folder (every time)', async () => {
  const home = path.join(dir, 'home-truncated');
  const good = makeTarGz(datasetFiles(4 * 1024 * 1024));
  const truncated = write(path.join(dir, 'truncated.tgz'), good.subarray(0, Math.floor(good.length * 0.6)));
  // The race issue 12 saw (ENOTEMPTY while tar was still writing) came about half the time.
  for (let attempt = 0; attempt < 6; attempt++) {
    await assert.rejects(
      fetchDataset('tiny-own', { manifest, home, from: [truncated] }),
      (err: unknown) =>
        err instanceof UserError &&
        err.message.startsWith(`${truncated}: the archive is truncated (unexpected end of file)`) &&
        !err.message.includes('\n'),
    );
    assert.deepEqual(leftovers(home), [], `attempt ${attempt + 1}`);
  }

  const notGzip = write(path.join(dir, 'damaged.tgz'), Buffer.concat([Buffer.from([0x1f, 0x8b]), randomBytes(4096)]));
  await assert.rejects(
    fetchDataset('tiny-own', { manifest, home, from: [notGzip] }),
    (err: unknown) => err instanceof UserError && err.message.startsWith(`${notGzip}: not valid gzip data (`),
  );
  const gzipOfText = write(path.join(dir, 'text.tgz'), zlib.gzipSync('not a tar archive at all, just some words '.repeat(40)));
  await assert.rejects(
    fetchDataset('tiny-own', { manifest, home, from: [gzipOfText] }),
    (err: unknown) => err instanceof UserError && err.message.startsWith(`${gzipOfText}: not a tar archive inside the gzip data`),
  );
  const plainTruncated = write(path.join(dir, 'truncated.tar'), makeTar(datasetFiles()).subarray(0, 3000));
  await assert.rejects(
    fetchDataset('tiny-own', { manifest, home, from: [plainTruncated] }),
    (err: unknown) => err instanceof UserError && err.message.startsWith(`${plainTruncated}: the archive is truncated`),
  );
  assert.deepEqual(leftovers(home), []);
});

/** Starts `datasets fetch` on a large archive and resolves once its temporary folder is filling. */
async function fetchUntilExtracting(home: string, archive: string) {
  const child = spawn(process.execPath, [bin, 'datasets', 'fetch', 'tiny-own', '--from', archive, '--manifest', manifestFile], {
    env: { ...process.env, NO_COLOR: '1', MTL_BENCH_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const layoutDir = datasetLayout('tiny-own', home).dir;
  for (;;) {
    const tmp = fs.existsSync(layoutDir) ? fs.readdirSync(layoutDir).find((n) => /^\.data\..*\.tmp$/.test(n)) : undefined;
    if (tmp && fs.existsSync(path.join(layoutDir, tmp, 'noise'))) break;
    if (child.exitCode !== null) throw new Error(`fetch ended before extracting: ${stderr}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return { child, exited, stderr: () => stderr };
}

test('Ctrl-C or SIGTERM during extraction removes the temporary folder; kill -9 leaves it to the next fetch', async () => {
  const big = write(path.join(dir, 'big.tgz'), zlib.gzipSync(makeTar(datasetFiles(48 * 1024 * 1024)), { level: 1 }));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const home = path.join(dir, `home-${signal}`);
    const run = await fetchUntilExtracting(home, big);
    run.child.kill(signal);
    const ended = await run.exited;
    assert.equal(ended.signal, signal, `ended by ${signal} (stderr: ${run.stderr()})`);
    assert.deepEqual(leftovers(home), [], signal);
    assert.equal(fs.existsSync(path.join(datasetLayout('tiny-own', home).dir, 'fetch.lock')), false, 'the fetch lock is released too');
  }

  const home = path.join(dir, 'home-kill9');
  const run = await fetchUntilExtracting(home, big);
  run.child.kill('SIGKILL');
  await run.exited;
  const stale = leftovers(home);
  assert.equal(stale.length, 1, 'kill -9 cannot clean up');
  const small = write(path.join(dir, 'small.tgz'), makeTarGz(datasetFiles()));
  const lines: string[] = [];
  const result = await fetchDataset('tiny-own', { manifest, home, from: [small], log: (line) => lines.push(line) });
  assert.equal(result.index.splits.test.ids.length, 9);
  assert.deepEqual(leftovers(home), ['data']);
  assert.ok(lines.includes(`removing ${stale[0]}, left by an interrupted fetch`), lines.join('\n'));
  assert.ok(
    lines.some((l) => /taking over the lock .*fetch\.lock: process \d+, which held it, is gone/.test(l)),
    lines.join('\n'),
  );
});
