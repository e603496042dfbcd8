import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runVerdict } from '../../src/bench/command.js';
import { runStudy } from '../../src/cli/run_study.js';
import { collectRuns } from '../../src/runs/collect.js';
import { CELL_FILES } from '../../src/runs/store.js';
import { captureIO, fakeDeps, fakeTrainer, tempDir, toyBenchmarkYaml, writeBenchmark } from './doubles.js';

/**
 * How runs share a folder, with the real locks and claims and the fake trainer: a cell another
 * live process is training is left to it, cells a live run holds with another config are refused
 * with one line naming both configs, the marks of processes that are gone are taken over, and a
 * damaged config.sha256 makes `run` and `report` agree (the cell is not done; the report says why).
 * test/bench/faults.test.ts does the same with real processes.
 */

const ONLY_FULL = { regimes: ['full'], seeds: ['1'] };

/** A process that stays alive (until killed, or its timeout) so that its pid is a live owner. */
function liveProcess(): ChildProcess {
  return spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore', timeout: 60_000 });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.on('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

test('a cell another live process is training is left to it and said so; a lock of a dead process is taken over', async () => {
  const dir = tempDir('busy');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const out = path.join(dir, 'runs');
  const locks = path.join(out, 'toy-study', '.locks');
  const other = liveProcess();
  try {
    fs.mkdirSync(locks, { recursive: true });
    fs.writeFileSync(
      path.join(locks, 'full.mtl.seed1.lock'),
      JSON.stringify({
        pid: other.pid,
        host: os.hostname(),
        since: new Date().toISOString(),
        purpose: 'training full.mtl.seed1',
        token: 't',
      }),
    );
    const trainer = fakeTrainer();
    const io = captureIO();
    const result = await runStudy([file], { out, ...ONLY_FULL }, fakeDeps(trainer), io);
    assert.deepEqual(trainer.calls.map((c) => c.setting).sort(), ['mtl+dm', 'mtl+sca', 'mtl+sca+dm', 'stl']);
    const busy = result.runs[0]!.outcomes.filter((o) => o.status === 'busy');
    assert.deepEqual(
      busy.map((o) => o.cell.id),
      ['full.mtl.seed1'],
    );
    assert.match(io.err.join(''), new RegExp(`full\\.mtl\\.seed1 skipped: process ${other.pid} is training it; left to that process`));
    assert.match(io.err.join(''), /toy-study: 4 trained, 0 already done, 0 failed, 1 left to another process/);
    assert.equal(runVerdict(result), undefined, 'nothing went wrong: the other process is on it');
  } finally {
    await stop(other);
  }

  // Its owner is gone now: the next run takes the lock over, with a notice, and trains the cell.
  const trainer = fakeTrainer();
  const io = captureIO();
  await runStudy([file], { out, ...ONLY_FULL }, fakeDeps(trainer), io);
  assert.deepEqual(
    trainer.calls.map((c) => c.setting),
    ['mtl'],
  );
  assert.match(
    io.err.join(''),
    new RegExp(`taking over the lock .*full\\.mtl\\.seed1\\.lock: process ${other.pid}, which held it, is gone`),
  );
  assert.deepEqual(fs.readdirSync(locks), [], 'every lock is released');
});

test('cells a live run holds with another config are refused with one line naming both; once it is gone they rerun', async () => {
  const dir = tempDir('refused');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const out = path.join(dir, 'runs');
  await runStudy([file], { out, ...ONLY_FULL }, fakeDeps(fakeTrainer()), captureIO());
  const cellDir = path.join(out, 'toy-study', 'full.stl.seed1');
  const before = fs.readFileSync(path.join(cellDir, CELL_FILES.metrics), 'utf8');
  const theirs = 'a'.repeat(64);
  const other = liveProcess();
  const claims = path.join(out, 'toy-study', '.claims');
  try {
    fs.writeFileSync(
      path.join(claims, `${os.hostname()}.${other.pid}.x.json`),
      JSON.stringify({
        pid: other.pid,
        host: os.hostname(),
        since: '2026-01-01T00:00:00.000Z',
        token: 'x',
        cells: { 'full.stl.seed1': theirs, 'full.mtl.seed1': theirs },
      }),
    );
    // Another number of epochs: every cell's config changes.
    const trainer = fakeTrainer();
    const io = captureIO();
    const result = await runStudy([file], { out, ...ONLY_FULL, epochs: 3 }, fakeDeps(trainer), io);
    assert.deepEqual(trainer.calls.map((c) => c.setting).sort(), ['mtl+dm', 'mtl+sca', 'mtl+sca+dm']);
    const err = io.err.join('');
    assert.match(
      err,
      new RegExp(
        `toy-study: 2 cells refused: another run \\(process ${other.pid}, started 2026-01-01T00:00:00\\.000Z\\) ` +
          'is using them with a different configuration ' +
          '\\(full\\.stl\\.seed1 and 1 more: config aaaaaaaaaaaa there, [0-9a-f]{12} here\\); ' +
          'nothing was overwritten; wait for that run to finish, or use another --out',
      ),
    );
    assert.match(err, /toy-study: 5 cells, 0 already done, 3 to run, 2 refused/);
    assert.match(
      runVerdict(result)!.message,
      /^2 cells refused: another run is using them with a different configuration \(see above\); nothing was overwritten$/,
    );
    assert.equal(fs.readFileSync(path.join(cellDir, CELL_FILES.metrics), 'utf8'), before, 'the other run’s cell is untouched');
  } finally {
    await stop(other);
  }

  // The other run is gone: a changed config now reruns what changed, saying it replaces old results.
  const trainer = fakeTrainer();
  const io = captureIO();
  const result = await runStudy([file], { out, ...ONLY_FULL, epochs: 3 }, fakeDeps(trainer), io);
  assert.deepEqual(trainer.calls.map((c) => c.setting).sort(), ['mtl', 'stl']);
  assert.equal(runVerdict(result), undefined);
  assert.match(io.err.join(''), /removed the claim of process \d+ on toy-study: that run is gone/);
  assert.match(io.err.join(''), /full\.stl\.seed1: its folder held the results of an earlier, different configuration; they are replaced/);
  assert.deepEqual(fs.readdirSync(claims), [], 'no claim is left behind');
});

test('an empty config.sha256: report says why the cell is left out, and run does it again instead of saying "already done"', async () => {
  const dir = tempDir('empty-hash');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const out = path.join(dir, 'runs');
  await runStudy([file], { out, ...ONLY_FULL }, fakeDeps(fakeTrainer()), captureIO());
  const cellDir = path.join(out, 'toy-study', 'full.mtl+dm.seed1');
  fs.writeFileSync(path.join(cellDir, CELL_FILES.hash), '');
  const collected = collectRuns([out]);
  assert.equal(collected.cells.length, 4);
  assert.ok(
    collected.warnings.includes(
      `${cellDir}: config.sha256 is missing, empty or damaged, so its results cannot be matched to its config; ` +
        'run the benchmark again to redo this cell; left out',
    ),
    collected.warnings.join('\n'),
  );

  const trainer = fakeTrainer();
  const io = captureIO();
  const result = await runStudy([file], { out, ...ONLY_FULL }, fakeDeps(trainer), io);
  assert.deepEqual(
    trainer.calls.map((c) => c.setting),
    ['mtl+dm'],
  );
  assert.match(io.err.join(''), /toy-study: 5 cells, 4 already done, 1 to run/);
  assert.match(io.err.join(''), /full\.mtl\+dm\.seed1: its config\.sha256 was missing or damaged; the cell is run again/);
  assert.equal(runVerdict(result), undefined);
  assert.equal(collectRuns([out]).cells.length, 5);
});
