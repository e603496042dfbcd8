import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { inProcessTrainer, type CellTrainer, type WorkerSetup } from '../../src/bench/cell_trainer.js';
import { planJobs, workerEnvironment, type JobPlan } from '../../src/bench/jobs.js';
import { runStudy } from '../../src/cli/run_study.js';
import { CELL_FILES } from '../../src/runs/store.js';
import { UserError } from '../../src/util/errors.js';
import { captureIO, fakeDeps, fakeTrainer, tempDir, toyBenchmarkYaml, writeBenchmark } from './doubles.js';

const quiet = { cores: 2, load: 0 };

test('by default wasm and cpu get one job per core, one thread each, whatever the load; at most 8', () => {
  const base = { nativeInstalled: false, env: {} };
  assert.deepEqual(planJobs({ ...base, machine: quiet }), { jobs: 2, wasmThreads: 1, reason: '2 cores, 1 thread per job' });
  assert.equal(planJobs({ ...base, machine: { cores: 16, load: 0 } }).jobs, 8, 'at most 8 by default');
  assert.equal(planJobs({ ...base, machine: { cores: 2, load: 9 } }).jobs, 2, 'jobs do not wait on each other, so load does not cut them');
  assert.equal(planJobs({ ...base, machine: { cores: 1, load: 0 } }).jobs, 1);
  // MTL_BENCH_WASM_THREADS fixes the threads: the cores are shared out in jobs of that many.
  const fixed = planJobs({ ...base, machine: { cores: 8, load: 0 }, env: { MTL_BENCH_WASM_THREADS: '2' } });
  assert.deepEqual([fixed.jobs, fixed.wasmThreads], [4, undefined]);
});

test('--jobs N splits the cores N ways, unless MTL_BENCH_WASM_THREADS says otherwise; --jobs 1 keeps the backend’s choice', () => {
  const base = { nativeInstalled: false, env: {} as NodeJS.ProcessEnv };
  assert.deepEqual(planJobs({ ...base, jobs: 2, machine: { cores: 8, load: 3 } }), { jobs: 2, wasmThreads: 4, reason: '--jobs' });
  assert.equal(planJobs({ ...base, jobs: 3, machine: quiet }).wasmThreads, 1);
  assert.equal(planJobs({ ...base, jobs: 1, machine: { cores: 64, load: 0 } }).wasmThreads, undefined);
  assert.equal(planJobs({ ...base, jobs: 2, machine: { cores: 64, load: 0 } }).wasmThreads, 8, 'capped at the build’s 8 threads');
  assert.equal(planJobs({ ...base, jobs: 2, machine: quiet, env: { MTL_BENCH_WASM_THREADS: '2' } }).wasmThreads, undefined);
  assert.throws(() => planJobs({ ...base, jobs: 0, machine: quiet }), UserError);
});

test('native TensorFlow runs one job, or one per CUDA_VISIBLE_DEVICES device, each worker on its own device', () => {
  const native = { nativeInstalled: true, machine: { cores: 32, load: 0 } };
  assert.equal(planJobs({ ...native, env: {} }).jobs, 1);
  assert.equal(planJobs({ ...native, env: {}, backend: 'wasm' }).jobs, 8, 'asking for wasm overrides the installed package');
  assert.equal(planJobs({ nativeInstalled: false, machine: quiet, env: {}, backend: 'tensorflow' }).jobs, 1);
  const gpus = planJobs({ ...native, env: { CUDA_VISIBLE_DEVICES: '0,2,3' } });
  assert.deepEqual([gpus.jobs, gpus.devices, gpus.wasmThreads], [3, ['0', '2', '3'], undefined]);
  assert.equal(workerEnvironment(gpus, 1, { PATH: '/bin' }).CUDA_VISIBLE_DEVICES, '2');
  assert.equal(workerEnvironment(gpus, 1, { PATH: '/bin' }).PATH, '/bin');
  assert.equal(workerEnvironment(gpus, 1, {}).TF_FORCE_GPU_ALLOW_GROWTH, 'true', 'no process takes a whole GPU');
  assert.equal(workerEnvironment(gpus, 1, { TF_FORCE_GPU_ALLOW_GROWTH: 'false' }).TF_FORCE_GPU_ALLOW_GROWTH, 'false', 'the user decides');
  assert.equal(planJobs({ ...native, env: { CUDA_VISIBLE_DEVICES: '-1' } }).jobs, 1, '-1 hides every device');
  const cpuJobs: JobPlan = { jobs: 2, wasmThreads: 1, reason: '--jobs' };
  assert.equal(workerEnvironment(cpuJobs, 0, {}).MTL_BENCH_WASM_THREADS, '1');
});

/**
 * Stand-in worker processes: the in-process trainer behind a delay, so that several cells are in
 * flight at once, with a count of how many are.
 */
function fakeWorkers(deps: ReturnType<typeof fakeDeps>, options: { prepareError?: Error } = {}) {
  const stats = { running: 0, most: 0, started: [] as number[], closed: 0 };
  const workerTrainer = (setup: WorkerSetup): CellTrainer => {
    const inner = inProcessTrainer(setup.resolved, setup.pending, deps, 'quiet');
    stats.started.push(setup.slot);
    return {
      async prepare() {
        if (options.prepareError) throw options.prepareError;
        return inner.prepare();
      },
      async train(cell, run) {
        stats.running++;
        stats.most = Math.max(stats.most, stats.running);
        try {
          await new Promise((resolve) => setTimeout(resolve, 5 + (cell.index % 3) * 5));
          return await inner.train(cell, run);
        } finally {
          stats.running--;
        }
      },
      async close() {
        stats.closed++;
      },
    };
  };
  return { stats, workerTrainer };
}

const threeJobs: JobPlan = { jobs: 3, reason: '--jobs' };

function metricsWithoutTimings(benchDir: string): Record<string, unknown> {
  const cells: Record<string, unknown> = {};
  for (const id of fs.readdirSync(benchDir).filter((n) => fs.existsSync(path.join(benchDir, n, CELL_FILES.metrics)))) {
    const metrics = JSON.parse(fs.readFileSync(path.join(benchDir, id, CELL_FILES.metrics), 'utf8')) as Record<string, unknown>;
    delete metrics.trainSeconds;
    delete metrics.wallSeconds;
    cells[id] = metrics;
  }
  return cells;
}

test('--jobs 3 keeps three cells in flight and writes what one job at a time writes', async () => {
  const dir = tempDir('jobs');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const sequential = await runStudy([file], { out: path.join(dir, 'one') }, fakeDeps(fakeTrainer()), captureIO());
  const deps = fakeDeps(fakeTrainer());
  const workers = fakeWorkers(deps);
  deps.workerTrainer = workers.workerTrainer;
  const io = captureIO();
  const parallel = await runStudy([file], { out: path.join(dir, 'three'), jobPlan: threeJobs }, deps, io);
  assert.equal(workers.stats.most, 3, 'three cells trained at once');
  assert.deepEqual(workers.stats.started, [0, 1, 2]);
  assert.equal(workers.stats.closed, 3, 'every worker is closed');
  assert.deepEqual(
    parallel.runs[0]!.outcomes.map((o) => [o.cell.id, o.status]),
    sequential.runs[0]!.outcomes.map((o) => [o.cell.id, o.status]),
    'the same cells, in matrix order',
  );
  assert.deepEqual(metricsWithoutTimings(path.join(dir, 'three', 'toy-study')), metricsWithoutTimings(path.join(dir, 'one', 'toy-study')));
  assert.ok(Object.keys(metricsWithoutTimings(path.join(dir, 'three', 'toy-study'))).length === 20);
  assert.match(io.err.join(''), /jobs 3 cells at a time in worker processes \(--jobs 3\)/);
  const benchmark = JSON.parse(fs.readFileSync(path.join(dir, 'three', 'toy-study', 'benchmark.json'), 'utf8'));
  assert.ok(
    benchmark.tasks.every((t: { classes?: number }) => typeof t.classes === 'number'),
    'class counts recorded',
  );
});

test('with parallel jobs a crashing cell is recorded and the others go on; an abort interrupts the cells in flight', async () => {
  const dir = tempDir('jobs-faults');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const deps = fakeDeps(fakeTrainer((config) => config.setting === 'mtl+dm' && config.regime.name === 'full'));
  deps.workerTrainer = fakeWorkers(deps).workerTrainer;
  const result = await runStudy([file], { out: path.join(dir, 'crash'), jobPlan: threeJobs }, deps, captureIO());
  const outcomes = result.runs[0]!.outcomes;
  assert.deepEqual(
    outcomes.filter((o) => o.status === 'failed').map((o) => o.cell.id),
    ['full.mtl+dm.seed1', 'full.mtl+dm.seed2'],
  );
  assert.equal(outcomes.filter((o) => o.status === 'done').length, 18);
  assert.ok(fs.existsSync(path.join(dir, 'crash', 'toy-study', 'full.mtl+dm.seed1', CELL_FILES.error)));

  const controller = new AbortController();
  const stopping = fakeDeps(fakeTrainer());
  const workers = fakeWorkers(stopping);
  const inner = workers.workerTrainer;
  let trained = 0;
  stopping.workerTrainer = (setup) => {
    const trainer = inner(setup);
    return {
      ...trainer,
      async train(cell, run) {
        if (++trained === 4) controller.abort(new Error('interrupted by SIGINT'));
        // A real worker stops after its step once told; here the cell sees the aborted signal.
        if (run.signal?.aborted) throw new Error('stopped in epoch 1');
        return trainer.train(cell, run);
      },
    };
  };
  const stopped = await runStudy([file], { out: path.join(dir, 'stop'), jobPlan: threeJobs }, stopping, captureIO(controller.signal));
  const run = stopped.runs[0]!;
  assert.ok(run.interrupted);
  const interrupted = run.outcomes.filter((o) => o.status === 'interrupted');
  assert.ok(interrupted.length >= 1 && interrupted.length <= 3, `${interrupted.length} cells in flight interrupted`);
  assert.ok(
    interrupted.every((o) => !fs.existsSync(path.join(o.dir, CELL_FILES.error))),
    'no error.json for a stopped cell',
  );
  assert.ok(run.outcomes.length < 20, 'no cell starts after the stop');
});

test('with parallel jobs an error loading the data stops the run with that error, not as a failed cell', async () => {
  const dir = tempDir('jobs-prepare');
  const file = writeBenchmark(dir, toyBenchmarkYaml());
  const deps = fakeDeps(fakeTrainer());
  deps.workerTrainer = fakeWorkers(deps, { prepareError: new UserError('openmoji: the index is damaged') }).workerTrainer;
  await assert.rejects(runStudy([file], { out: path.join(dir, 'runs'), jobPlan: threeJobs }, deps, captureIO()), /the index is damaged/);
  const benchDir = path.join(dir, 'runs', 'toy-study');
  assert.ok(
    fs.readdirSync(benchDir).every((n) => !fs.existsSync(path.join(benchDir, n, CELL_FILES.error))),
    'no cell is blamed',
  );
});
