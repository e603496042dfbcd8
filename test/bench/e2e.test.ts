import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../src/util/paths.js';
import { runNodeSync } from '../processes.js';
import { tempDir } from './doubles.js';

/**
 * The real thing, kept tiny: the CLI runs a study on the offline OpenMoji data with the real
 * trainer on the wasm backend (8×8 images, one epoch, stl against the full method), writes every
 * cell folder and the reports, and a second run finds nothing left to do.
 */
const STUDY = `name: e2e
description: end-to-end test of the real trainer on OpenMoji
dataset: openmoji
tasks:
  group: { primary: accuracy }
  # label accuracy: after one epoch at 8×8 stl's tags macro-F1 is often exactly 0, which leaves
  # Δm% undefined (it divides by the stl value); this test wants a defined Δm%.
  tags: { primary: label_accuracy }
input: { size: 8 }
backbone: convnet-s
train: { epochs: 1, batch: 128, lr: 0.003 }
relatedness:
  - { from: group, to: tags, source: data, min_coannotated: 20 }
regimes:
  full: full
settings: [stl, mtl+sca+dm]
seeds: [1]
check:
  - { regime: full, setting: stl, task: group, metric: accuracy, expected: 99, tolerance: 0.5 }
`;

function cli(args: string[], cwd: string) {
  return runNodeSync([path.join(packageRoot, 'bin', 'mtl-bench.js'), ...args], {
    cwd,
    // A tiny study: minutes at most even on a busy machine.
    timeoutMs: 600_000,
    // Its own data home inside the test folder: the test indexes OpenMoji itself and leaves the
    // user's cache alone.
    // Two wasm threads, as the in-process training tests pin (see ../wasm_backend.ts).
    env: { ...process.env, NO_COLOR: '1', MTL_BENCH_BACKEND: 'wasm', MTL_BENCH_WASM_THREADS: '2', MTL_BENCH_HOME: path.join(cwd, 'home') },
  });
}

test('mtl-bench run trains a tiny OpenMoji study end to end, resumes, and --check fails honestly', () => {
  const dir = tempDir('e2e');
  fs.writeFileSync(path.join(dir, 'e2e.yaml'), STUDY);
  const first = cli(['run', 'e2e.yaml', '--json'], dir);
  assert.equal(first.code, 0, first.stderr);
  const events = first.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  const done = events.filter((e) => e.event === 'cell-done');
  assert.deepEqual(
    done.map((e) => e.cell),
    ['full.stl.seed1', 'full.mtl+sca+dm.seed1'],
  );
  for (const e of done) {
    for (const [task, metric] of [
      ['group', 'accuracy'],
      ['group', 'macro_f1'],
      ['tags', 'label_accuracy'],
      ['tags', 'macro_f1'],
    ] as const) {
      const value = e.test[task][metric];
      assert.ok(Number.isFinite(value) && value >= 0 && value <= 1, `${e.cell} ${task} ${metric} = ${value}`);
    }
  }
  const benchDir = path.join(dir, 'runs', 'e2e');
  const cellDir = path.join(benchDir, 'full.mtl+sca+dm.seed1');
  const relatedness = JSON.parse(fs.readFileSync(path.join(cellDir, 'relatedness.json'), 'utf8'));
  const matrix = relatedness['group->tags'].matrix as number[][];
  assert.equal(matrix.length, 8, 'one row per emoji group');
  assert.equal(matrix[0]!.length, 32, 'one column per tag');
  assert.ok(matrix.flat().every((v) => v > 0 && v < 1));
  assert.equal(JSON.parse(fs.readFileSync(path.join(cellDir, 'history.json'), 'utf8')).length, 1);
  assert.equal(JSON.parse(fs.readFileSync(path.join(cellDir, 'provenance.json'), 'utf8')).backend, 'wasm');
  const summary = fs.readFileSync(path.join(benchDir, 'summary.csv'), 'utf8').trim().split('\n');
  assert.match(summary[0]!, /^benchmark,regime,setting,delta_m_pct,tasks_worse_than_stl,negative_transfer,train_seconds,/);
  assert.match(summary[2]!, /^e2e,full,mtl\+sca\+dm,-?\d+\.\d{2},[0-2],(true|false),\d+\.\d\d,/);
  assert.ok(fs.existsSync(path.join(benchDir, 'report.html')));

  // Nothing left to train; the check block's 99% stl accuracy after one epoch at 8×8 is not met.
  const second = cli(['run', 'e2e.yaml', '--check'], dir);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /2 already done, 0 to run/);
  assert.match(second.stderr, /check failed: e2e: full\/stl\/group accuracy = \d+\.\d\d, expected 99 ± 0\.5/);
  assert.match(second.stderr, /mtl-bench: error: --check: 1 value out of tolerance/);
});
