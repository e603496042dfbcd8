/**
 * `npm run bench:study`: how long a whole study takes on this machine, end to end, as one JSON object.
 *
 *   node dist/scripts/bench-study.js [FILE] [--jobs N] [--seeds 1,2] [--epochs N] [--regimes a,b]
 *        [--settings stl,mtl] [--backend wasm] [--wasm-threads N] [--repeat K] [--keep] [--debug]
 *
 * Runs `mtl-bench run FILE --out <fresh temporary folder> --json` (FILE: the package's
 * benchmarks/quick.yaml unless given; the other options are passed through, --jobs only when
 * given) as a child process, K times one after the other, and times each run from spawn to exit:
 * start-up, data loading, every cell and the reports. Each run's cells are read back from the run
 * folder (timings.json: the cell's wall time; metrics.json: the trainer's time), then the folder
 * is removed unless --keep.
 *
 * Printed: the figures of each run (`runs`) and, at the top level, their medians. Definitions:
 *   cellsPerHour         cells / wallSeconds × 3600
 *   sumCellWallSeconds   the cells' own wall times added up (what a sequential run would spend in cells)
 *   concurrency          sumCellWallSeconds / wallSeconds: cells running at once on average
 *   parallelEfficiency   concurrency / jobs: the share of the run's wall time each of the `jobs`
 *                        slots spent inside a cell (1 = always busy; start-up, data loading, the
 *                        reports and slots idle at the end lower it). Without --jobs, `jobs` is the
 *                        most cells seen running at the same moment (1 for a sequential run).
 * The data cache is the user's (MTL_BENCH_HOME): a first run on a fresh cache also builds it, and
 * with --repeat the median leaves such a run out.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { backendOption } from '../src/cli/options.js';
import { commaList, positiveInt } from '../src/cli/parse.js';
import { createProgram, runProgram } from '../src/cli/program.js';
import { MAX_WASM_THREADS } from '../src/engine/wasm_threads.js';
import { CELL_FILES, type MetricsFile, type Provenance, type TimingsFile, readJson } from '../src/runs/store.js';
import { cleanupOnExit } from '../src/util/cleanup.js';
import { UserError } from '../src/util/errors.js';
import { packageRoot } from '../src/util/paths.js';

interface StudyOptions {
  jobs?: number;
  seeds?: string[];
  epochs?: number;
  regimes?: string[];
  settings?: string[];
  backend?: string;
  wasmThreads?: number;
  repeat: number;
  keep?: boolean;
}

/** The figures of one timed run of the study. */
interface RunFigures {
  wallSeconds: number;
  cellsPerHour: number;
  sumCellWallSeconds: number;
  sumCellTrainSeconds: number;
  concurrency: number;
  peakConcurrentCells: number;
  parallelEfficiency: number;
  loadAverageAtStart: number[];
  /** Kept with --keep only. */
  runDir?: string;
}

interface RunOutcome {
  benchmark: string;
  cells: number;
  backend: string;
  /** As the cells' provenance.json records it (null on other backends). */
  wasmThreads: number | null;
  figures: RunFigures;
}

interface CellTimes {
  wallSeconds: number;
  trainSeconds: number;
  startedAt: number;
  finishedAt: number;
}

const MTL_BENCH = path.join(packageRoot, 'bin', 'mtl-bench.js');

const NOT_DONE = new Set(['cell-failed', 'cell-interrupted', 'cell-busy', 'cell-skipped', 'cell-refused']);

/** The arguments of `mtl-bench run` for one timed run. */
function runArguments(file: string | undefined, out: string, options: StudyOptions): string[] {
  const args = [MTL_BENCH, 'run', ...(file ? [file] : []), '--out', out, '--json'];
  if (options.jobs !== undefined) args.push('--jobs', String(options.jobs));
  if (options.seeds) args.push('--seeds', options.seeds.join(','));
  if (options.epochs !== undefined) args.push('--epochs', String(options.epochs));
  if (options.regimes) args.push('--regimes', options.regimes.join(','));
  if (options.settings) args.push('--settings', options.settings.join(','));
  if (options.backend) args.push('--backend', options.backend);
  return args;
}

function childEnvironment(options: StudyOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  if (options.wasmThreads !== undefined) env.MTL_BENCH_WASM_THREADS = String(options.wasmThreads);
  return env;
}

/** Runs the child to its end; resolves with its exit code and output, and the wall time from spawn to exit. */
function runTimed(
  args: string[],
  env: NodeJS.ProcessEnv,
  onSpawn: (child: ChildProcess) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; seconds: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, seconds: (performance.now() - started) / 1000 }));
  });
}

/** The child's last non-empty stderr line: mtl-bench's one error line. */
function lastLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .filter((l) => l.trim())
      .at(-1) ?? 'no output'
  );
}

type RunEvent = { event: string; benchmark?: string; dir?: string; cells?: number; cell?: string; error?: string | null };

function parseEvents(stdout: string): RunEvent[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as RunEvent);
}

function readCell(cellDir: string): CellTimes {
  const timings = readJson<TimingsFile>(path.join(cellDir, CELL_FILES.timings));
  const metrics = readJson<MetricsFile>(path.join(cellDir, CELL_FILES.metrics));
  if (!timings || !metrics)
    throw new UserError(`${cellDir}: the cell finished without ${timings ? CELL_FILES.metrics : CELL_FILES.timings}`);
  return {
    wallSeconds: timings.wallSeconds,
    trainSeconds: metrics.trainSeconds,
    startedAt: Date.parse(timings.startedAt),
    finishedAt: Date.parse(timings.finishedAt),
  };
}

/** The most cells whose [start, finish) intervals overlap at one moment. */
function peakOverlap(cells: readonly CellTimes[]): number {
  const edges = cells.flatMap((c) => [
    { at: c.startedAt, change: 1 },
    { at: c.finishedAt, change: -1 },
  ]);
  // A cell that ends at the moment another starts does not overlap it: ends first.
  edges.sort((a, b) => a.at - b.at || a.change - b.change);
  let running = 0;
  let peak = 0;
  for (const edge of edges) {
    running += edge.change;
    peak = Math.max(peak, running);
  }
  return peak;
}

async function timeOneRun(file: string | undefined, options: StudyOptions): Promise<RunOutcome> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mtl-bench-study-'));
  let child: ChildProcess | undefined;
  // On Ctrl-C the folder goes too, with the child that writes into it.
  const unregister = cleanupOnExit(
    () => {
      child?.kill('SIGKILL');
      fs.rmSync(out, { recursive: true, force: true });
    },
    { signals: true },
  );
  try {
    const loadAverageAtStart = os.loadavg().map((l) => Math.round(l * 100) / 100);
    const run = await runTimed(runArguments(file, out, options), childEnvironment(options), (c) => (child = c));
    child = undefined;
    if (run.code !== 0) {
      const how = run.signal ? `was ended by ${run.signal}` : `exited with ${run.code}`;
      throw new UserError(`mtl-bench run ${how}: ${lastLine(run.stderr)}`);
    }
    const events = parseEvents(run.stdout);
    const starts = events.filter((e) => e.event === 'benchmark-start');
    if (starts.length !== 1) throw new UserError(`bench-study times one benchmark at a time; mtl-bench run started ${starts.length}`);
    const start = starts[0]!;
    // Every way a cell can end other than done (src/bench/progress.ts); other events (progress) pass.
    const failed = events.filter((e) => NOT_DONE.has(e.event));
    if (failed.length > 0) throw new UserError(`cell ${failed[0]!.cell} ended as ${failed[0]!.event}: ${failed[0]!.error ?? 'no message'}`);
    const done = events.filter((e) => e.event === 'cell-done');
    if (done.length !== start.cells)
      throw new UserError(`mtl-bench run trained ${done.length} of the study's ${start.cells} cells in a fresh folder`);
    const cells = done.map((e) => readCell(e.dir!));
    const provenance = readJson<Provenance>(path.join(done[0]!.dir!, CELL_FILES.provenance));
    const sumCellWallSeconds = cells.reduce((a, c) => a + c.wallSeconds, 0);
    const peakConcurrentCells = peakOverlap(cells);
    const concurrency = sumCellWallSeconds / run.seconds;
    const figures: RunFigures = {
      wallSeconds: round(run.seconds, 2),
      cellsPerHour: round((cells.length / run.seconds) * 3600, 1),
      sumCellWallSeconds: round(sumCellWallSeconds, 2),
      sumCellTrainSeconds: round(
        cells.reduce((a, c) => a + c.trainSeconds, 0),
        2,
      ),
      concurrency: round(concurrency, 3),
      peakConcurrentCells,
      parallelEfficiency: round(concurrency / (options.jobs ?? peakConcurrentCells), 3),
      loadAverageAtStart,
      ...(options.keep ? { runDir: start.dir! } : {}),
    };
    return {
      benchmark: start.benchmark!,
      cells: cells.length,
      backend: provenance?.backend ?? 'unknown',
      wasmThreads: provenance?.wasmThreads ?? null,
      figures,
    };
  } finally {
    unregister();
    if (!options.keep) fs.rmSync(out, { recursive: true, force: true });
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

async function benchStudy(file: string | undefined, options: StudyOptions): Promise<void> {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const loadAtStart = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const outcomes: RunOutcome[] = [];
  for (let r = 0; r < options.repeat; r++) outcomes.push(await timeOneRun(file, options));
  const first = outcomes[0]!;
  const runs = outcomes.map((o) => o.figures);
  const medianOf = (key: 'wallSeconds' | 'cellsPerHour' | 'sumCellWallSeconds' | 'sumCellTrainSeconds' | 'parallelEfficiency') =>
    round(median(runs.map((f) => f[key])), 3);
  const record = {
    benchmark: first.benchmark,
    jobs: options.jobs ?? null,
    cells: first.cells,
    repeat: options.repeat,
    wallSeconds: medianOf('wallSeconds'),
    cellsPerHour: medianOf('cellsPerHour'),
    sumCellWallSeconds: medianOf('sumCellWallSeconds'),
    sumCellTrainSeconds: medianOf('sumCellTrainSeconds'),
    parallelEfficiency: medianOf('parallelEfficiency'),
    machine: { cores, cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown', loadAverageAtStart: loadAtStart, node: process.version },
    backend: first.backend,
    wasmThreads: first.wasmThreads,
    runs,
  };
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

function threadCount(value: string): number {
  const n = positiveInt(value);
  if (n > MAX_WASM_THREADS) throw new InvalidArgumentError(`expected at most ${MAX_WASM_THREADS}, got "${value}"`);
  return n;
}

function buildProgram(): Command {
  return createProgram({ name: 'bench-study', description: "a whole study's wall time and cells per hour, as one JSON object" })
    .argument('[file]', 'benchmark YAML file (default: benchmarks/quick.yaml of the package)')
    .option('--jobs <n>', 'passed to mtl-bench run: cells trained at once (default: its own choice)', positiveInt)
    .option('--seeds <list>', "passed to mtl-bench run: these seeds instead of the benchmark's", commaList)
    .option('--epochs <n>', "passed to mtl-bench run: this many epochs instead of the benchmark's", positiveInt)
    .option('--regimes <list>', "passed to mtl-bench run: only these of the benchmark's regimes", commaList)
    .option('--settings <list>', 'passed to mtl-bench run: only these settings', commaList)
    .addOption(backendOption())
    .option(
      '--wasm-threads <n>',
      `sets MTL_BENCH_WASM_THREADS for the study (1–${MAX_WASM_THREADS}; default: mtl-bench's choice)`,
      threadCount,
    )
    .option('--repeat <k>', 'time the study K times, one after the other; top-level figures are medians', positiveInt, 1)
    .option('--keep', 'keep the run folders (their paths are in `runs`); by default each is removed')
    .action((file: string | undefined, options: StudyOptions) => benchStudy(file, options));
}

process.exitCode = await runProgram(buildProgram(), process.argv.slice(2));
