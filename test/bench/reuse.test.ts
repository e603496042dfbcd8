import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runVerdict } from '../../src/bench/command.js';
import { runStudy } from '../../src/cli/run_study.js';
import { CELL_FILES } from '../../src/runs/store.js';
import { captureIO, fakeDeps, fakeTrainer, tempDir, toyBenchmarkYaml, writeBenchmark } from './doubles.js';

function readJson(file: string) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** The toy study cut to one regime, one seed, stl and mtl+dm, under another name and with `extra` appended. */
function toyCut(name: string, extra = ''): string {
  return toyBenchmarkYaml(extra, name)
    .replace(/regimes:\n {2}full: full\n {2}disjoint: .*\n/, 'regimes:\n  full: full\n')
    .replace(/settings: .*/, 'settings: [stl, mtl+dm]')
    .replace(/seeds: .*/, 'seeds: [1]');
}

const settingsTrained = (trainer: ReturnType<typeof fakeTrainer>) => trainer.calls.map((c) => c.setting).sort();

test('a cell that another benchmark under --out trained the same way is reused, not trained; what differs is trained', async () => {
  const dir = tempDir('reuse');
  const out = path.join(dir, 'runs');
  const first = fakeTrainer();
  await runStudy([writeBenchmark(dir, toyCut('toy-study'), 'a.yaml')], { out }, fakeDeps(first), captureIO());
  assert.deepEqual(settingsTrained(first), ['mtl+dm', 'stl']);

  // The contrast changes the relatedness only, which stl does not read.
  const contrast = toyCut('toy-contrast').replace('min_coannotated: 5 }', 'min_coannotated: 5, alpha: 2 }');
  const second = fakeTrainer();
  const io = captureIO();
  const result = await runStudy([writeBenchmark(dir, contrast, 'b.yaml')], { out }, fakeDeps(second), io);
  assert.equal(runVerdict(result), undefined);
  assert.deepEqual(settingsTrained(second), ['mtl+dm'], 'only the cell whose training differs is trained');
  const outcome = result.runs[0]!.outcomes.find((o) => o.cell.id === 'full.stl.seed1')!;
  assert.equal(outcome.status, 'reused');
  assert.match(io.err.join(''), /1 cell reused from toy-study, which trained the same networks/);
  assert.match(io.err.join(''), /toy-contrast: 2 cells, 0 already done, 1 reused, 1 to run/);

  const source = path.join(out, 'toy-study', 'full.stl.seed1');
  const copy = path.join(out, 'toy-contrast', 'full.stl.seed1');
  const sourceMetrics = readJson(path.join(source, CELL_FILES.metrics));
  const copyMetrics = readJson(path.join(copy, CELL_FILES.metrics));
  const copyHash = fs.readFileSync(path.join(copy, CELL_FILES.hash), 'utf8').trim();
  assert.equal(readJson(path.join(copy, CELL_FILES.config)).benchmark, 'toy-contrast');
  assert.equal(copyMetrics.configHash, copyHash, 'the copy is done under its own config hash');
  assert.notEqual(copyHash, sourceMetrics.configHash);
  assert.deepEqual(copyMetrics.reusedFrom, { benchmark: 'toy-study', cell: 'full.stl.seed1', configHash: sourceMetrics.configHash });
  assert.deepEqual(copyMetrics.test, sourceMetrics.test);
  assert.deepEqual(readJson(path.join(copy, CELL_FILES.history)), readJson(path.join(source, CELL_FILES.history)));
  assert.deepEqual(readJson(path.join(copy, CELL_FILES.provenance)), readJson(path.join(source, CELL_FILES.provenance)));
  const html = fs.readFileSync(path.join(out, 'toy-contrast', 'report.html'), 'utf8');
  assert.match(html, /1 cell \(full\.stl\.seed1\) not trained here: results of toy-study/);

  // A copy of a copy names the cell that was trained.
  const third = fakeTrainer();
  await runStudy(
    [writeBenchmark(dir, contrast.replace('name: toy-contrast', 'name: zz-third'), 'c.yaml')],
    { out },
    fakeDeps(third),
    captureIO(),
  );
  assert.deepEqual(settingsTrained(third), []);
  const chained = readJson(path.join(out, 'zz-third', 'full.stl.seed1', CELL_FILES.metrics));
  assert.equal(chained.reusedFrom.benchmark, 'toy-study');
});

test('--no-reuse, a changed training option or an unfinished source: the cell is trained', async () => {
  const dir = tempDir('reuse-not');
  const out = path.join(dir, 'runs');
  await runStudy([writeBenchmark(dir, toyCut('toy-study'), 'a.yaml')], { out }, fakeDeps(fakeTrainer()), captureIO());

  const noReuse = fakeTrainer();
  await runStudy([writeBenchmark(dir, toyCut('toy-b'), 'b.yaml')], { out, reuse: false }, fakeDeps(noReuse), captureIO());
  assert.deepEqual(settingsTrained(noReuse), ['mtl+dm', 'stl']);
  assert.equal(readJson(path.join(out, 'toy-b', 'full.stl.seed1', CELL_FILES.metrics)).reusedFrom, undefined);

  const otherEpochs = fakeTrainer();
  const changed = toyCut('toy-c').replace('train: { epochs: 2, batch: 16 }', 'train: { epochs: 3, batch: 16 }');
  await runStudy([writeBenchmark(dir, changed, 'c.yaml')], { out }, fakeDeps(otherEpochs), captureIO());
  assert.deepEqual(settingsTrained(otherEpochs), ['mtl+dm', 'stl'], 'a different training is never reused');

  // Sources whose metrics.json does not match their config (killed, or rerun under another config) are passed over.
  for (const name of ['toy-study', 'toy-b']) {
    const metricsFile = path.join(out, name, 'full.stl.seed1', CELL_FILES.metrics);
    fs.writeFileSync(metricsFile, JSON.stringify({ ...readJson(metricsFile), configHash: '0'.repeat(64) }));
  }
  const damaged = fakeTrainer();
  await runStudy([writeBenchmark(dir, toyCut('toy-d'), 'd.yaml')], { out }, fakeDeps(damaged), captureIO());
  assert.deepEqual(settingsTrained(damaged), ['stl'], 'mtl+dm is reused from toy-b; stl has no finished source');
});

test('in one study, a later benchmark reuses what an earlier one trains, and --dry-run says so before anything trains', async () => {
  const dir = tempDir('reuse-study');
  const out = path.join(dir, 'runs');
  const files = [
    writeBenchmark(dir, toyCut('sweep-b0'), 'b0.yaml'),
    writeBenchmark(dir, toyCut('sweep-b1').replace('min_coannotated: 5 }', 'min_coannotated: 5, sharpness_blend: 1 }'), 'b1.yaml'),
  ];
  const dry = captureIO();
  await runStudy(files, { out, dryRun: true }, fakeDeps(fakeTrainer()), dry);
  const plan = dry.out.join('');
  assert.match(plan, /cells {8}2: 0 done here, 1 reused from other benchmarks, 1 to run/);
  assert.match(plan, /full\.stl\.seed1 +[0-9a-f]{12} {2}reuses sweep-b0\/full\.stl\.seed1/);

  const trainer = fakeTrainer();
  const result = await runStudy(files, { out }, fakeDeps(trainer), captureIO());
  assert.deepEqual(
    trainer.calls.map((c) => `${c.benchmark}/${c.setting}`),
    ['sweep-b0/stl', 'sweep-b0/mtl+dm', 'sweep-b1/mtl+dm'],
  );
  assert.deepEqual(
    result.runs.map((r) => r.outcomes.map((o) => o.status)),
    [
      ['done', 'done'],
      ['reused', 'done'],
    ],
  );
});
