import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/util/paths.js';

const script = path.join(packageRoot, 'dist', 'scripts', 'bench-train.js');

function benchTrain(args: string[]) {
  const result = spawnSync(process.execPath, [script, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, NO_COLOR: '1', MTL_BENCH_WASM_THREADS: '1' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('bench-train prints one JSON line per network', () => {
  const { code, stdout, stderr } = benchTrain([
    '--backend',
    'wasm',
    '--models',
    'convnet-s',
    '--batch',
    '2',
    '--steps',
    '1',
    '--warmup',
    '0',
    '--repeats',
    '1',
    '--json',
  ]);
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0]!);
  assert.equal(record.model, 'convnet-s');
  assert.equal(record.backend, 'wasm');
  assert.ok(record.train_images_per_s > 0);
});

test("bench-train's errors are mtl-bench's: one line, exit 1, no stack without --debug", () => {
  const bad = benchTrain(['--models', 'resnet-9000']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'bench-train: error: --models: unknown network "resnet-9000"; expected one of convnet-s, convnet-4\n');
  const usage = benchTrain(['--batch', 'many']);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /--batch <n>.*expected a positive whole number, got "many"/);
});

test('bench-train --settings adds the cost of one step of each setting relative to mtl', () => {
  const { code, stdout, stderr } = benchTrain([
    '--backend',
    'wasm',
    '--models',
    'convnet-s',
    '--batch',
    '2',
    '--steps',
    '1',
    '--warmup',
    '0',
    '--repeats',
    '1',
    '--json',
    '--settings',
    'mtl,mtl+uw',
  ]);
  assert.equal(code, 0, stderr);
  const record = JSON.parse(stdout.trim());
  assert.deepEqual(
    record.step_costs.map((c: { setting: string; relative_to: string }) => [c.setting, c.relative_to]),
    [
      ['mtl', 'mtl'],
      ['mtl+uw', 'mtl'],
    ],
  );
  assert.equal(record.step_costs[0].ratio, 1);
  const bad = benchTrain(['--settings', 'mtl+bogus']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^bench-train: error: --settings: unknown setting "mtl\+bogus"; a setting is stl, or mtl/);
});
