import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/util/paths.js';
import { runNodeSync } from '../processes.js';

const script = path.join(packageRoot, 'dist', 'scripts', 'bench-study.js');

/**
 * A real study kept tiny (8×8 images, one epoch, the offline OpenMoji data): two settings and one
 * seed in the file, narrowed and widened by the passed-through --settings and --seeds.
 */
const STUDY = `name: study-timing
description: bench-study test
dataset: openmoji
tasks:
  group: { primary: accuracy }
  tags: { primary: label_accuracy }
input: { size: 8 }
backbone: convnet-s
train: { epochs: 1, batch: 128, lr: 0.003 }
regimes:
  full: full
settings: [stl, mtl]
seeds: [1]
`;

/** A folder for the study file, the data home and (through TMPDIR) the run folders bench-study makes. */
function workspace(t: { after: (fn: () => void) => void }): { dir: string; tmp: string; study: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mtl-bench-study-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
  const study = path.join(dir, 'study.yaml');
  fs.writeFileSync(study, STUDY);
  return { dir, tmp, study };
}

function benchStudy(args: string[], dir: string, tmp: string) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MTL_BENCH_')));
  return runNodeSync([script, ...args], {
    env: { ...env, NO_COLOR: '1', TMPDIR: tmp, MTL_BENCH_HOME: path.join(dir, 'home') },
    timeoutMs: 600_000,
  });
}

const FIGURES = ['wallSeconds', 'cellsPerHour', 'sumCellWallSeconds', 'sumCellTrainSeconds', 'parallelEfficiency'] as const;

test('bench-study times a study K times and prints one JSON object whose cells match the matrix', (t) => {
  const { dir, tmp, study } = workspace(t);
  const args = [study, '--settings', 'mtl', '--seeds', '1,2', '--backend', 'wasm', '--wasm-threads', '1'];
  const { code, stdout, stderr } = benchStudy([...args, '--repeat', '2', '--keep'], dir, tmp);
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, stdout);
  const record = JSON.parse(lines[0]!);
  assert.equal(record.benchmark, 'study-timing');
  // One regime × one setting × two seeds.
  assert.equal(record.cells, 2);
  assert.equal(record.jobs, null, 'no --jobs given: mtl-bench run chose');
  assert.equal(record.repeat, 2);
  assert.equal(record.backend, 'wasm');
  assert.equal(record.wasmThreads, 1, "as the cells' provenance records it");
  assert.equal(record.machine.cores, os.availableParallelism());
  assert.equal(typeof record.machine.cpuModel, 'string');
  assert.equal(record.machine.loadAverageAtStart.length, 3);
  assert.equal(record.machine.node, process.version);
  assert.equal(record.runs.length, 2);
  for (const run of record.runs) {
    for (const key of FIGURES) assert.ok(Number.isFinite(run[key]) && run[key] > 0, `${key} = ${run[key]}`);
    assert.ok(run.sumCellTrainSeconds <= run.sumCellWallSeconds, 'the trainer runs inside the cell');
    assert.ok(run.peakConcurrentCells >= 1 && run.peakConcurrentCells <= 2);
    // Cells never run longer together than the run that holds them, on any number of jobs.
    assert.ok(run.concurrency <= run.peakConcurrentCells + 1e-3, `concurrency ${run.concurrency}`);
    assert.ok(run.parallelEfficiency <= 1 + 1e-3, `efficiency ${run.parallelEfficiency}`);
    assert.ok(fs.realpathSync(run.runDir).startsWith(fs.realpathSync(tmp) + path.sep), `${run.runDir} is a fresh folder under TMPDIR`);
    const cellDirs = fs.readdirSync(run.runDir).filter((name) => fs.existsSync(path.join(run.runDir, name, 'metrics.json')));
    assert.deepEqual(cellDirs.sort(), ['full.mtl.seed1', 'full.mtl.seed2']);
  }
  const median = (a: number, b: number) => (a + b) / 2;
  assert.equal(record.wallSeconds, Math.round(median(record.runs[0].wallSeconds, record.runs[1].wallSeconds) * 1000) / 1000);
});

test('bench-study removes its run folder unless --keep', (t) => {
  const { dir, tmp, study } = workspace(t);
  const { code, stdout, stderr } = benchStudy([study, '--settings', 'stl', '--backend', 'wasm', '--wasm-threads', '1'], dir, tmp);
  assert.equal(code, 0, stderr);
  const record = JSON.parse(stdout);
  // stl is one cell: its networks, one per task, train inside it.
  assert.equal(record.cells, 1);
  assert.equal(record.runs[0].runDir, undefined);
  assert.deepEqual(fs.readdirSync(tmp), [], 'nothing left behind');
});

test("bench-study's errors are one line and a non-zero exit", (t) => {
  const { dir, tmp } = workspace(t);
  const usage = benchStudy(['--jobs', '0'], dir, tmp);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /^error: option '--jobs <n>' argument '0' is invalid\. expected a positive whole number, got "0"\n/);
  const twoFiles = benchStudy(['a.yaml', 'b.yaml'], dir, tmp);
  assert.equal(twoFiles.code, 1);
  assert.match(twoFiles.stderr, /^error: too many arguments/);
  const missing = path.join(dir, 'missing.yaml');
  const child = benchStudy([missing], dir, tmp);
  assert.equal(child.code, 1);
  assert.equal(child.stderr, `bench-study: error: mtl-bench run exited with 1: mtl-bench: error: ${missing}: no such benchmark file\n`);
  assert.deepEqual(fs.readdirSync(tmp), [], 'the failed run left no folder');
});
