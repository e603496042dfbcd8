import path from 'node:path';
import { DEFAULT_BENCHMARK, DEFAULT_RUNS_DIR } from '../config/defaults.js';
import type { BenchmarkInfo } from '../runs/store.js';
import type { CommandIO } from '../util/command_io.js';
import { UserError } from '../util/errors.js';
import { displayPath } from '../util/paths.js';
import type { DatasetCatalog } from './catalog.js';
import { parseShard, type Shard } from './matrix.js';
import { ensureBackboneReady, estimateStudy, planStudy, reportDryRun, reportEstimate, type PreviewDeps } from './preview.js';
import type { JobPlan } from './jobs.js';
import { jsonReporter, textReporter } from './progress.js';
import { applyOverrides, ensureDatasetsReady, resolveBenchmark, type Overrides, type ResolvedBenchmark } from './resolve.js';
import { livePanel } from './live_panel.js';
import { benchmarkInfo, runBenchmark, type BenchmarkRun, type ProgressMode, type RunOptions, type RunnerDeps } from './runner.js';
import { loadBenchmarkFile, type LoadedBenchmark } from './schema.js';

/**
 * The training backend once started: its name, whether it trains on a GPU, and what `run` must tell
 * the user once (e.g. that the GPU package runs on the CPU).
 */
export interface StartedBackend {
  name: string;
  gpuInUse: boolean;
  warnings: string[];
}

/** Everything `run` needs from the rest of the program; tests pass doubles. */
export interface BenchDeps extends RunnerDeps, PreviewDeps {
  catalog(): DatasetCatalog | Promise<DatasetCatalog>;
  backbones: readonly string[];
  initBackend(requested?: string): Promise<StartedBackend>;
}

export interface RunCommandOptions {
  out?: string;
  settings?: string[];
  regimes?: string[];
  seeds?: string[];
  epochs?: number;
  shard?: string;
  backend?: string;
  json?: boolean;
  check?: boolean;
  /** Print the matrix, the resolved configuration and the time estimate; train nothing. */
  dryRun?: boolean;
  /**
   * false (`--no-reuse`): train cells that another benchmark under --out already trained with the
   * same configuration instead of taking their results (runs/reuse.ts). Default true.
   */
  reuse?: boolean;
  /** Cells trained at once and the threads of each (`--jobs`, planned by the CLI before the backend starts); absent, one at a time. */
  jobPlan?: JobPlan;
}

/**
 * What happens once a benchmark's cells have run: the CLI writes its reports and checks there
 * (report/ sits beside bench/, so the runner is handed it rather than importing it). Returns
 * problems that make the command fail, e.g. values out of a check's tolerance.
 */
export type AfterBenchmark = (run: BenchmarkRun, info: BenchmarkInfo) => Promise<string[]>;

export interface RunCommandResult {
  runs: BenchmarkRun[];
  /** What the after-benchmark step found wrong, in order. */
  problems: string[];
}

function parseSeeds(values: string[] | undefined): number[] | undefined {
  if (!values) return undefined;
  return values.map((v) => {
    if (!/^\d+$/.test(v)) throw new UserError(`--seeds: expected whole numbers ≥ 0, got "${v}"`);
    return Number(v);
  });
}

/**
 * `mtl-bench run`: validates every file and every name in it, makes sure the data is there, and
 * only then trains, so that a typo in the last file cannot waste the first file's hours.
 */
export async function runCommand(
  files: string[],
  options: RunCommandOptions,
  deps: BenchDeps,
  io: CommandIO,
  afterBenchmark: AfterBenchmark,
): Promise<RunCommandResult> {
  const overrides: Overrides = {
    settings: options.settings,
    regimes: options.regimes,
    seeds: parseSeeds(options.seeds),
    epochs: options.epochs,
  };
  const shard: Shard | undefined = options.shard !== undefined ? parseShard(options.shard) : undefined;
  const paths = files.length > 0 ? files : [DEFAULT_BENCHMARK];
  const loaded: LoadedBenchmark[] = paths.map((file) => loadBenchmarkFile(displayPath(path.resolve(file))));
  const names = new Map<string, string>();
  for (const l of loaded) {
    const other = names.get(l.doc.name);
    if (other)
      throw new UserError(`${l.file}: name: "${l.doc.name}" is also the name of ${other}; both would write to the same run folder`);
    names.set(l.doc.name, l.file);
  }
  const catalog = await deps.catalog();
  const plans: { original: ResolvedBenchmark; resolved: ResolvedBenchmark }[] = loaded.map((l) => ({
    original: resolveBenchmark(l, catalog, deps.backbones),
    resolved: resolveBenchmark(applyOverrides(l, overrides), catalog, deps.backbones),
  }));
  if (!options.dryRun) {
    for (const plan of plans) {
      await ensureDatasetsReady(plan.resolved, catalog);
      ensureBackboneReady(plan.resolved, deps);
    }
  }
  const backend = await deps.initBackend(options.backend);
  for (const warning of backend.warnings) io.stderr(`${io.paintErr.yellow(`warning: ${warning}`)}\n`);

  const outRoot = path.resolve(options.out ?? DEFAULT_RUNS_DIR);
  const previews = planStudy(
    plans.map((p) => p.resolved),
    { outRoot, shard, catalog, deps, reuse: options.reuse !== false },
  );
  const jobs = options.jobPlan?.jobs ?? 1;
  const estimate = await estimateStudy(previews, { catalog, deps, backend: backend.name, jobs });
  if (options.dryRun) {
    reportDryRun(previews, estimate, { json: options.json, gpuInUse: backend.gpuInUse }, io);
    return { runs: [], problems: [] };
  }
  if (estimate) reportEstimate(estimate, { json: options.json, gpuInUse: backend.gpuInUse }, io);
  // Not a terminal (a log file, Slurm, CI): a plain line per epoch instead of a bar.
  const progress: ProgressMode = options.json ? 'jsonl' : io.interactive ? 'bar' : 'lines';
  const reporter = options.json
    ? jsonReporter((line) => io.stdout(`${line}\n`))
    : textReporter((line) => io.stderr(`${line}\n`), io.paintErr, io.columns);
  if (jobs > 1 && options.jobPlan) {
    const threads =
      options.jobPlan.wasmThreads !== undefined
        ? `, ${options.jobPlan.wasmThreads} wasm thread${options.jobPlan.wasmThreads === 1 ? '' : 's'} each`
        : '';
    const why = options.jobPlan.reason === '--jobs' ? `--jobs ${jobs}` : `${options.jobPlan.reason}; --jobs N to change`;
    const line = `${jobs} cells at a time in worker processes${threads} (${why})`;
    if (options.json)
      io.stdout(
        `${JSON.stringify({ event: 'jobs', jobs, wasmThreads: options.jobPlan.wasmThreads ?? null, reason: options.jobPlan.reason })}\n`,
      );
    else io.stderr(`${io.paintErr.bold('jobs')} ${line}\n`);
  }
  const result: RunCommandResult = { runs: [], problems: [] };
  for (const plan of plans) {
    const info = benchmarkInfo(plan.original);
    const runOptions: RunOptions = {
      outRoot,
      shard,
      progress,
      signal: io.signal,
      reporter,
      jobs: options.jobPlan,
      backend: backend.name,
      reuse: options.reuse !== false,
    };
    // Several cells at once at a terminal: one live line per job under the study's line.
    const panel = progress === 'bar' && jobs > 1 ? livePanel(process.stderr, jobs) : undefined;
    if (panel) {
      runOptions.reporter = panel.track(textReporter((line) => panel.log(line), io.paintErr, io.columns));
      runOptions.cellProgress = (slot, label) => panel.cellProgress(slot, label);
      runOptions.log = (line) => panel.log(line);
    }
    let run: BenchmarkRun;
    try {
      run = await runBenchmark(plan.resolved, info, runOptions, deps);
    } finally {
      panel?.stop();
    }
    result.runs.push(run);
    result.problems.push(...(await afterBenchmark(run, info)));
    if (run.interrupted) break;
  }
  return result;
}

/** Turns what went wrong into the command's one-line error (and so its exit code). */
export function runVerdict(result: RunCommandResult): UserError | undefined {
  const problems: string[] = [];
  if (result.runs.some((r) => r.interrupted)) problems.push('interrupted; run the same command again to finish the missing cells');
  const failed = result.runs.flatMap((r) => r.outcomes.filter((o) => o.status === 'failed').map((o) => `${r.benchmark}/${o.cell.id}`));
  if (failed.length > 0)
    problems.push(
      `${failed.length} cell${failed.length > 1 ? 's' : ''} failed ` +
        `(${failed.slice(0, 5).join(', ')}${failed.length > 5 ? ', …' : ''}); each folder holds error.json`,
    );
  const refused = result.runs.reduce((n, r) => n + r.outcomes.filter((o) => o.status === 'refused').length, 0);
  if (refused > 0)
    problems.push(
      `${refused} cell${refused > 1 ? 's' : ''} refused: another run is using ${refused > 1 ? 'them' : 'it'} ` +
        'with a different configuration (see above); nothing was overwritten',
    );
  problems.push(...result.problems);
  return problems.length > 0 ? new UserError(problems.join('; ')) : undefined;
}
