import { test } from 'node:test';
import fs from 'node:fs';
import { register } from 'node:module';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { colorEnabled } from '../../src/cli/output.js';
import { packageRoot } from '../../src/util/paths.js';
import { runNodeSync } from '../processes.js';

const bin = path.join(packageRoot, 'bin', 'mtl-bench.js');

/**
 * This process's environment without what changes the CLI's choices (MTL_BENCH_BACKEND,
 * MTL_BENCH_WASM_THREADS, MTL_BENCH_HOME, colour variables), so a developer's or CI's settings
 * cannot decide a test; each test sets what it relies on. Output goes to pipes, so it is plain
 * unless a test forces colour.
 */
function neutralEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('MTL_BENCH_') && name !== 'NO_COLOR' && name !== 'FORCE_COLOR'),
  );
}

function cli(args: string[], env: Record<string, string> = {}) {
  return runNodeSync([bin, ...args], { env: { ...neutralEnv(), ...env }, timeoutMs: 120_000 });
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
  // The backend is named: the automatic choice depends on what the machine has installed.
  const home = path.join(os.tmpdir(), 'mtl-bench-doctor-test');
  const { code, stdout, stderr } = cli(['doctor', '--json', '--steps', '1', '--batch', '4'], {
    MTL_BENCH_BACKEND: 'wasm',
    MTL_BENCH_HOME: home,
    MTL_BENCH_WASM_THREADS: '2',
  });
  assert.equal(code, 0, stderr);
  const report = JSON.parse(stdout);
  assert.equal(report.backend, 'wasm');
  assert.equal(report.chosenBy, 'env');
  assert.equal(report.home, home);
  assert.ok(report.throughput.trainImagesPerSecond > 0);
  assert.ok(report.throughput.inferImagesPerSecond > 0);
  assert.deepEqual(report.wasmThreads, { threads: 2, chosenBy: 'MTL_BENCH_WASM_THREADS', build: 'threaded-simd', helpers: 1 });
});

// stdout is a pipe here, which alone turns colour off; FORCE_COLOR turns it back on, so only the
// NO_COLOR handling can keep the second run plain.
test('doctor in text mode is coloured with FORCE_COLOR, and has no colour when NO_COLOR is set too', () => {
  const doctor = ['doctor', '--steps', '1', '--batch', '2', '--backend', 'cpu'];
  const forced = cli(doctor, { FORCE_COLOR: '1' });
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /\u001b\[/);
  const { code, stdout, stderr } = cli(doctor, { FORCE_COLOR: '1', NO_COLOR: '1' });
  assert.equal(code, 0, stderr);
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

test('colour is on for a terminal, off for a pipe, and NO_COLOR (when not empty) wins over both', () => {
  const terminal = { isTTY: true } as NodeJS.WriteStream;
  const pipe = { isTTY: false } as NodeJS.WriteStream;
  assert.equal(colorEnabled(terminal, {}), true);
  assert.equal(colorEnabled(pipe, {}), false);
  assert.equal(colorEnabled(pipe, { FORCE_COLOR: '1' }), true);
  assert.equal(colorEnabled(pipe, { FORCE_COLOR: '0' }), false);
  assert.equal(colorEnabled(terminal, { NO_COLOR: '1' }), false);
  assert.equal(colorEnabled(terminal, { NO_COLOR: '1', FORCE_COLOR: '1' }), false);
  assert.equal(colorEnabled(terminal, { NO_COLOR: '' }), true, 'https://no-color.org: an empty NO_COLOR does not count');
});

test('--debug adds the stack trace to the error line', () => {
  const { code, stderr } = cli(['--debug', 'doctor'], { MTL_BENCH_BACKEND: 'quantum' });
  assert.equal(code, 1);
  assert.match(stderr, /^mtl-bench: error: MTL_BENCH_BACKEND: unknown backend "quantum"/m);
  assert.match(stderr, /^\s+at .*[/\\]engine[/\\]backend\.js:\d+/m, 'the stack names where the error was thrown');
});

const brokenBackends = new URL('./broken_backends.js', import.meta.url).href;

test(
  'doctor skips tfjs-node-gpu and tfjs-node when installed but broken, each with the first line of its error',
  { skip: typeof register !== 'function' && 'needs module.register (Node 20.6 or later)' },
  (t) => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mtl-bench-doctor-'));
    t.after(() => fs.rmSync(home, { recursive: true, force: true }));
    const env = { MTL_BENCH_HOME: home, MTL_BENCH_WASM_THREADS: '1' };
    const args = ['--import', brokenBackends, bin, 'doctor', '--steps', '1', '--batch', '2', '--size', '8'];
    const json = runNodeSync([...args, '--json'], { env: { ...neutralEnv(), ...env }, timeoutMs: 120_000 });
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout);
    assert.equal(report.backend, 'wasm');
    assert.equal(report.chosenBy, 'auto');
    assert.deepEqual(report.skipped, [
      { choice: 'tensorflow-gpu', reason: 'failed to load: libcudnn.so.8: cannot open shared object file: No such file or directory' },
      { choice: 'tensorflow', reason: 'failed to load: The tfjs_binding.node native addon failed to load' },
    ]);
    const text = runNodeSync(args, { env: { ...neutralEnv(), ...env }, timeoutMs: 120_000 });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ {2}skipped {3}tensorflow-gpu: failed to load: libcudnn\.so\.8: cannot open shared object file/m);
    assert.match(text.stdout, /^ {2}skipped {3}tensorflow: failed to load: The tfjs_binding\.node native addon failed to load$/m);
    assert.doesNotMatch(text.stdout, /second line/);
  },
);

// Proves which file a bare `run` reads, not that it trains it: the regime check comes after the
// file is loaded and before any data, backend or training, so the test stays quick.
test("run without a file reads the package's benchmarks/quick.yaml", (t) => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'mtl-bench-bare-run-'));
  t.after(() => fs.rmSync(cwd, { recursive: true, force: true }));
  const result = runNodeSync([bin, 'run', '--regimes', 'no-such-regime'], {
    cwd,
    env: { ...neutralEnv(), MTL_BENCH_HOME: path.join(cwd, 'home') },
    timeoutMs: 120_000,
  });
  assert.equal(result.code, 1);
  const quick = path.join(packageRoot, 'benchmarks', 'quick.yaml');
  assert.ok(result.stderr.includes(`"no-such-regime" is not a regime of ${quick}; its regimes are disjoint`), result.stderr);
  assert.deepEqual(fs.readdirSync(cwd), [], 'nothing written: no run folder, no data home');
});
