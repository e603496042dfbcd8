import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../src/util/paths.js';

const bin = path.join(packageRoot, 'bin', 'mtl-bench.js');

function cli(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('--version prints the package version', () => {
  const { code, stdout } = cli(['--version']);
  assert.equal(code, 0);
  assert.match(stdout.trim(), /^\d+\.\d+\.\d+$/);
});

test('every command has --help', () => {
  for (const command of ['datasets', 'run', 'report', 'doctor']) {
    const { code, stdout } = cli([command, '--help']);
    assert.equal(code, 0, command);
    assert.match(stdout, new RegExp(`Usage: mtl-bench ${command}`));
  }
});

test('a bad flag value is one error line and a non-zero exit', () => {
  const { code, stderr } = cli(['doctor', '--batch', 'many']);
  assert.notEqual(code, 0);
  assert.match(stderr, /--batch <n>.*expected a positive whole number, got "many"/);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace without --debug');
});

test('an unknown backend is one error line naming the source', () => {
  const { code, stderr } = cli(['doctor', '--steps', '1'], { MTL_BENCH_BACKEND: 'quantum' });
  assert.equal(code, 1);
  assert.equal(stderr.trim().split('\n').length, 1);
  assert.match(stderr, /MTL_BENCH_BACKEND: unknown backend "quantum"/);
});

test('doctor names the wasm backend, its threads, the cache folder and a throughput', () => {
  const { code, stdout, stderr } = cli(['doctor', '--json', '--steps', '1', '--batch', '4'], { MTL_BENCH_HOME: '/tmp/mtl-bench-doctor-test', MTL_BENCH_WASM_THREADS: '2' });
  assert.equal(code, 0, stderr);
  const report = JSON.parse(stdout);
  // This machine has no working tfjs-node: the automatic choice must fall through to wasm.
  assert.equal(report.backend, 'wasm');
  assert.equal(report.home, '/tmp/mtl-bench-doctor-test');
  assert.ok(report.skipped.some((s: { choice: string }) => s.choice === 'tensorflow-gpu'));
  assert.ok(report.throughput.trainImagesPerSecond > 0);
  assert.ok(report.throughput.inferImagesPerSecond > 0);
  assert.deepEqual(report.wasmThreads, { threads: 2, chosenBy: 'MTL_BENCH_WASM_THREADS', build: 'threaded-simd', helpers: 1 });
});

test('doctor in text mode has no colour when NO_COLOR is set', () => {
  const { code, stdout } = cli(['doctor', '--steps', '1', '--batch', '2', '--backend', 'cpu']);
  assert.equal(code, 0);
  assert.match(stdout, /backend\s+cpu/);
  assert.match(stdout, /images\/s/);
  assert.doesNotMatch(stdout, /\u001b\[/);
});

test('the shared --backend option names every backend the engine accepts', async () => {
  const { BACKEND_PREFERENCE } = await import('../../src/engine/backend.js');
  const { backendOption } = await import('../../src/cli/options.js');
  const description = backendOption().description;
  const listed = /: (.*) \(default/.exec(description)?.[1]?.split(/, | or /);
  assert.deepEqual(listed, [...BACKEND_PREFERENCE]);
});
