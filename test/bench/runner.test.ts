import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runVerdict } from '../../src/bench/command.js';
import { runStudy } from '../../src/cli/run_study.js';
import { configHash } from '../../src/runs/identity.js';
import { CELL_FILES } from '../../src/runs/store.js';
import type { CellConfig } from '../../src/config/cell.js';
import { captureIO, fakeDeps, fakeTrainer, tempDir, toyBenchmarkYaml, writeBenchmark } from './doubles.js';

function readJson(file: string) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

test('every cell folder holds its config, hash, metrics, relatedness, history, timings and provenance', async () => {
  const dir = tempDir('runner');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const trainer = fakeTrainer();
  const io = captureIO();
  const result = await runStudy([file], { out: path.join(dir, 'runs') }, fakeDeps(trainer), io);
  assert.equal(runVerdict(result), undefined);
  assert.equal(trainer.calls.length, 20);
  const benchDir = path.join(dir, 'runs', 'toy-study');
  const cellDir = path.join(benchDir, 'disjoint.mtl+sca+dm.seed2');
  for (const name of Object.values(CELL_FILES).filter((n) => n !== CELL_FILES.error))
    assert.ok(fs.existsSync(path.join(cellDir, name)), name);
  assert.ok(!fs.existsSync(path.join(cellDir, CELL_FILES.error)));
  const config = readJson(path.join(cellDir, CELL_FILES.config)) as CellConfig;
  const hash = fs.readFileSync(path.join(cellDir, CELL_FILES.hash), 'utf8').trim();
  assert.equal(configHash(config), hash, 'the stored hash is the hash of the stored config');
  assert.equal(readJson(path.join(cellDir, CELL_FILES.metrics)).configHash, hash);
  assert.equal(config.setting, 'mtl+sca+dm');
  assert.equal(config.seed, 2);
  assert.deepEqual(config.regime.spec, { kind: 'disjoint', overlap: 0.2 });
  assert.deepEqual(Object.keys(readJson(path.join(cellDir, CELL_FILES.relatedness))), ['group->tags']);
  assert.equal(readJson(path.join(cellDir, CELL_FILES.history)).length, 2);
  const provenance = readJson(path.join(cellDir, CELL_FILES.provenance));
  assert.equal(provenance.backend, 'test-double');
  const timings = readJson(path.join(cellDir, CELL_FILES.timings));
  assert.ok(timings.wallSeconds >= 0 && typeof timings.startedAt === 'string');
  assert.ok(fs.existsSync(path.join(benchDir, 'benchmark.json')));
  for (const report of ['leaderboard.csv', 'summary.csv', 'report.html']) assert.ok(fs.existsSync(path.join(benchDir, report)), report);
  assert.match(io.out.join(''), /toy-study/);
  assert.match(io.err.join(''), /\[1\/20\] full\.stl\.seed1/);
  // No temporary files left behind by the atomic writes.
  assert.deepEqual(
    fs.readdirSync(cellDir).filter((f) => f.endsWith('.tmp')),
    [],
  );
});

test('a second run skips finished cells; a changed option reruns only the cells it affects', async () => {
  const dir = tempDir('resume');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const out = path.join(dir, 'runs');
  await runStudy([file], { out }, fakeDeps(fakeTrainer()), captureIO());
  const again = fakeTrainer();
  const deps = fakeDeps(again);
  const result = await runStudy([file], { out }, deps, captureIO());
  assert.equal(again.calls.length, 0, 'nothing retrained');
  assert.equal(deps.loads.length, 0, 'not even the data is loaded when every cell is done');
  assert.ok(result.runs[0]!.outcomes.every((o) => o.status === 'skipped'));

  writeBenchmark(dir, toyBenchmarkYaml('method: { lambda_dm: 0.5 }\n'));
  const third = fakeTrainer();
  await runStudy([file], { out }, fakeDeps(third), captureIO());
  assert.deepEqual([...new Set(third.calls.map((c) => c.setting))].sort(), ['mtl+dm', 'mtl+sca+dm']);
  assert.equal(third.calls.length, 8);
  const cellDir = path.join(out, 'toy-study', 'full.mtl+dm.seed1');
  assert.equal(readJson(path.join(cellDir, CELL_FILES.config)).method.lambdaDm, 0.5);
});

test("benchmark.json records each task's class count from the data, and a run that loads no data keeps it", async () => {
  const dir = tempDir('classes');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const out = path.join(dir, 'runs');
  const infoFile = path.join(out, 'toy-study', 'benchmark.json');
  await runStudy([file], { out, regimes: ['full'], settings: ['stl'], seeds: ['1'] }, fakeDeps(fakeTrainer()), captureIO());
  const classes = (info: { tasks: { name: string; classes?: number }[] }) => Object.fromEntries(info.tasks.map((t) => [t.name, t.classes]));
  assert.deepEqual(classes(readJson(infoFile)), { group: 3, tags: 4 }, 'the toy view: 3 groups, 4 tags');
  const deps = fakeDeps(fakeTrainer());
  await runStudy([file], { out, regimes: ['full'], settings: ['stl'], seeds: ['1'] }, deps, captureIO());
  assert.equal(deps.loads.length, 0);
  assert.deepEqual(classes(readJson(infoFile)), { group: 3, tags: 4 });
});

test('without a terminal the trainer is asked for a plain line per epoch, labelled with the cell; with --json for JSON lines', async () => {
  const dir = tempDir('lines');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const trainer = fakeTrainer();
  const seen: { progress?: string; progressLabel?: string }[] = [];
  const deps = fakeDeps({ ...trainer, train: (config, data, options) => (seen.push(options), trainer.train(config, data, options)) });
  await runStudy([file], { out: path.join(dir, 'runs'), regimes: ['full'], settings: ['stl'], seeds: ['1'] }, deps, captureIO());
  assert.deepEqual(
    seen.map((o) => [o.progress, o.progressLabel]),
    [['lines', '[full.stl.seed1]']],
  );
  await runStudy(
    [file],
    { out: path.join(dir, 'runs'), regimes: ['full'], settings: ['mtl'], seeds: ['1'], json: true },
    deps,
    captureIO(),
  );
  assert.equal(seen[1]!.progress, 'jsonl');
});

test('a cell killed half-way (config written, no metrics) is run again; stale checkpoints of another config are cleared', async () => {
  const dir = tempDir('killed');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const out = path.join(dir, 'runs');
  await runStudy([file], { out, regimes: ['full'], seeds: ['1'] }, fakeDeps(fakeTrainer()), captureIO());
  const cellDir = path.join(out, 'toy-study', 'full.mtl.seed1');
  fs.rmSync(path.join(cellDir, CELL_FILES.metrics));
  const other = path.join(out, 'toy-study', 'full.stl.seed1');
  // As if the folder had been trained under another config: hash and metrics both say so.
  fs.writeFileSync(path.join(other, CELL_FILES.hash), 'f'.repeat(64));
  fs.writeFileSync(
    path.join(other, CELL_FILES.metrics),
    JSON.stringify({ ...readJson(path.join(other, CELL_FILES.metrics)), configHash: 'f'.repeat(64) }),
  );
  fs.writeFileSync(path.join(other, 'stale-checkpoint.bin'), 'old weights');
  const trainer = fakeTrainer();
  await runStudy([file], { out, regimes: ['full'], seeds: ['1'] }, fakeDeps(trainer), captureIO());
  assert.deepEqual(trainer.calls.map((c) => c.setting).sort(), ['mtl', 'stl']);
  assert.ok(!fs.existsSync(path.join(other, 'stale-checkpoint.bin')));
});

test('a crashing cell is recorded in its folder, the rest go on, and the run reports failure', async () => {
  const dir = tempDir('crash');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const out = path.join(dir, 'runs');
  const crashing = (c: CellConfig) => c.regime.name === 'disjoint' && c.setting === 'mtl+dm' && c.seed === 1;
  const trainer = fakeTrainer(crashing);
  const io = captureIO();
  const result = await runStudy([file], { out }, fakeDeps(trainer), io);
  assert.equal(trainer.calls.length, 20, 'every cell was attempted');
  const outcomes = result.runs[0]!.outcomes;
  assert.equal(outcomes.filter((o) => o.status === 'failed').length, 1);
  assert.equal(outcomes.filter((o) => o.status === 'done').length, 19);
  const failedDir = path.join(out, 'toy-study', 'disjoint.mtl+dm.seed1');
  const error = readJson(path.join(failedDir, CELL_FILES.error));
  assert.match(error.message, /simulated trainer crash in disjoint\/mtl\+dm\/seed1/);
  assert.equal(error.configHash, fs.readFileSync(path.join(failedDir, CELL_FILES.hash), 'utf8').trim());
  assert.ok(!fs.existsSync(path.join(failedDir, CELL_FILES.metrics)));
  const verdict = runVerdict(result);
  assert.ok(verdict);
  assert.match(verdict.message, /1 cell failed \(toy-study\/disjoint\.mtl\+dm\.seed1\); each folder holds error\.json/);
  assert.match(io.err.join(''), /disjoint\.mtl\+dm\.seed1 FAILED: simulated trainer crash/);
  const summary = fs.readFileSync(path.join(out, 'toy-study', 'summary.csv'), 'utf8');
  assert.match(summary, /toy-study,disjoint,mtl\+dm,.*,1,.*1 cell failed/);

  // The next run retries only the failed cell.
  const retry = fakeTrainer();
  const second = await runStudy([file], { out }, fakeDeps(retry), captureIO());
  assert.equal(retry.calls.length, 1);
  assert.equal(runVerdict(second), undefined);
  assert.ok(!fs.existsSync(path.join(failedDir, CELL_FILES.error)));
});

test('an abort stops after the running cell without recording an error', async () => {
  const dir = tempDir('abort');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const controller = new AbortController();
  const trainer = fakeTrainer();
  const deps = fakeDeps(trainer);
  const inner = deps.trainCell;
  deps.trainCell = async (config, data, options) => {
    if (trainer.calls.length === 3) {
      controller.abort();
      trainer.calls.push(config);
      throw new Error('stopped by signal');
    }
    return inner(config, data, options);
  };
  const result = await runStudy([file], { out: path.join(dir, 'runs') }, deps, captureIO(controller.signal));
  assert.ok(result.runs[0]!.interrupted);
  assert.equal(trainer.calls.length, 4);
  const interrupted = result.runs[0]!.outcomes.find((o) => o.status === 'interrupted')!;
  assert.ok(!fs.existsSync(path.join(interrupted.dir, CELL_FILES.error)));
  assert.match(runVerdict(result)!.message, /interrupted; run the same command again/);
});

test('relatedness from data over a regime with too few co-annotated samples fails before training', async () => {
  const dir = tempDir('coannot');
  const file = writeBenchmark(dir, toyBenchmarkYaml().replace('min_coannotated: 5', 'min_coannotated: 50'));
  const trainer = fakeTrainer();
  await assert.rejects(
    runStudy([file], { out: path.join(dir, 'runs') }, fakeDeps(trainer), captureIO()),
    new RegExp(
      'relatedness group->tags \\(data\\): regime "disjoint" leaves about \\d+ ' +
        'co-annotated training samples \\(of \\d+\\), fewer than min_coannotated 50',
    ),
  );
  assert.equal(trainer.calls.length, 0);
});

test('bad command-line values fail before any training', async () => {
  const dir = tempDir('flags');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const trainer = fakeTrainer();
  const deps = fakeDeps(trainer);
  await assert.rejects(
    runStudy([file], { shard: '3/2' }, deps, captureIO()),
    /^UserError: --shard: the shard number must be between 1 and 2, got "3\/2"$/,
  );
  await assert.rejects(runStudy([file], { seeds: ['1', 'two'] }, deps, captureIO()), /--seeds: expected whole numbers/);
  await assert.rejects(runStudy([file], { settings: ['mtl+xyz'] }, deps, captureIO()), /--settings: unknown setting "mtl\+xyz"/);
  const second = writeBenchmark(dir, toyBenchmarkYaml().replace('dataset: toy', 'dataset: birds'), 'second.yaml');
  await assert.rejects(
    runStudy([file, second], { out: path.join(dir, 'runs') }, deps, captureIO()),
    /second\.yaml: name: "toy-study" is also the name of/,
  );
  const third = writeBenchmark(dir, toyBenchmarkYaml('', 'other').replace('dataset: toy', 'dataset: nope'), 'third.yaml');
  await assert.rejects(
    runStudy([file, third], { out: path.join(dir, 'runs') }, deps, captureIO()),
    /third\.yaml: dataset: unknown dataset "nope"/,
  );
  assert.equal(trainer.calls.length, 0, 'the valid first file did not start training');
});

test('--json prints one JSON object per line on stdout', async () => {
  const dir = tempDir('json');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const io = captureIO();
  await runStudy([file], { out: path.join(dir, 'runs'), json: true, regimes: ['full'], seeds: ['1'] }, fakeDeps(fakeTrainer()), io);
  const events = io.out
    .join('')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  assert.deepEqual(
    events.map((e) => e.event),
    ['benchmark-start', ...Array(5).fill(['cell-start', 'cell-done']).flat(), 'benchmark-end', 'report'],
  );
  assert.equal(events[2].test.group.accuracy > 0, true);
});
