import path from 'node:path';
import type { ChalkInstance } from 'chalk';
import { summaryTable } from '../report/terminal.js';
import { buildReport, collectRuns, writeReportFiles, writeReports, type WrittenReport } from '../report/index.js';
import { UserError } from '../util/errors.js';
import { packageRoot } from '../util/paths.js';
import type { DatasetCatalog } from './catalog.js';
import { evaluateChecks, type CheckFailure } from './check.js';
import { parseShard, type Shard } from './matrix.js';
import { jsonReporter, textReporter } from './progress.js';
import { applyOverrides, ensureDatasetsReady, resolveBenchmark, type Overrides, type ResolvedBenchmark } from './resolve.js';
import { benchmarkInfo, runBenchmark, type BenchmarkRun, type ProgressMode, type RunnerDeps } from './runner.js';
import { displayPath, loadBenchmarkFile, type LoadedBenchmark } from './schema.js';

export const DEFAULT_BENCHMARK = path.join(packageRoot, 'benchmarks', 'quick.yaml');

/** Everything `run` needs from the rest of the program; tests pass doubles. */
export interface BenchDeps extends RunnerDeps {
  catalog(): DatasetCatalog | Promise<DatasetCatalog>;
  backbones: readonly string[];
  initBackend(requested?: string): Promise<void>;
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
}

export interface CommandIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  paint: ChalkInstance;
  paintErr: ChalkInstance;
  /** Trainer progress: bars for a person at a terminal, nothing in logs. */
  interactive: boolean;
  signal?: AbortSignal;
}

export interface RunCommandResult {
  runs: BenchmarkRun[];
  reports: WrittenReport[];
  checkFailures: CheckFailure[];
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
export async function runCommand(files: string[], options: RunCommandOptions, deps: BenchDeps, io: CommandIO): Promise<RunCommandResult> {
  const overrides: Overrides = { settings: options.settings, regimes: options.regimes, seeds: parseSeeds(options.seeds), epochs: options.epochs };
  const shard: Shard | undefined = options.shard !== undefined ? parseShard(options.shard) : undefined;
  const paths = files.length > 0 ? files : [DEFAULT_BENCHMARK];
  const loaded: LoadedBenchmark[] = paths.map((file) => loadBenchmarkFile(displayPath(path.resolve(file))));
  const names = new Map<string, string>();
  for (const l of loaded) {
    const other = names.get(l.doc.name);
    if (other) throw new UserError(`${l.file}: name: "${l.doc.name}" is also the name of ${other}; both would write to the same run folder`);
    names.set(l.doc.name, l.file);
  }
  const catalog = await deps.catalog();
  const plans: { original: ResolvedBenchmark; resolved: ResolvedBenchmark }[] = loaded.map((l) => ({
    original: resolveBenchmark(l, catalog, deps.backbones),
    resolved: resolveBenchmark(applyOverrides(l, overrides), catalog, deps.backbones),
  }));
  for (const plan of plans) await ensureDatasetsReady(plan.resolved, catalog);
  await deps.initBackend(options.backend);

  const outRoot = path.resolve(options.out ?? 'runs');
  const progress: ProgressMode = options.json ? 'jsonl' : io.interactive ? 'bar' : 'quiet';
  const reporter = options.json ? jsonReporter((line) => io.stdout(`${line}\n`)) : textReporter((line) => io.stderr(`${line}\n`), io.paintErr);
  const result: RunCommandResult = { runs: [], reports: [], checkFailures: [] };
  for (const plan of plans) {
    const info = benchmarkInfo(plan.original);
    const run = await runBenchmark(plan.resolved, info, { outRoot, shard, progress, signal: io.signal, reporter }, deps);
    result.runs.push(run);
    const written = await writeReports([run.dir], run.dir);
    result.reports.push(written);
    if (options.json) {
      io.stdout(`${JSON.stringify({ event: 'report', benchmark: run.benchmark, files: written.files, summary: written.report.benchmarks.flatMap((b) => b.summary) })}\n`);
    } else {
      io.stdout(summaryTable(written.report, io.paint));
      io.stderr(`reports: ${written.files.map((f) => displayPath(f)).join(', ')}\n`);
    }
    if (options.check) {
      const outcome = evaluateChecks(info, written.report);
      result.checkFailures.push(...outcome.failures);
      if (info.check.length === 0) io.stderr(`${info.name}: --check: the benchmark has no check block\n`);
      else if (!options.json) io.stderr(`${info.name}: check: ${outcome.passed} of ${info.check.length} values within tolerance\n`);
      for (const f of outcome.failures) io.stderr(`${io.paintErr.red('check failed:')} ${f.message}\n`);
      if (options.json) io.stdout(`${JSON.stringify({ event: 'check', benchmark: info.name, passed: outcome.passed, failures: outcome.failures.map((f) => f.message) })}\n`);
    }
    if (run.interrupted) break;
  }
  return result;
}

/** Turns what went wrong into the command's one-line error (and so its exit code). */
export function runVerdict(result: RunCommandResult): UserError | undefined {
  const problems: string[] = [];
  if (result.runs.some((r) => r.interrupted)) problems.push('interrupted; run the same command again to finish the missing cells');
  const failed = result.runs.flatMap((r) => r.outcomes.filter((o) => o.status === 'failed').map((o) => `${r.benchmark}/${o.cell.id}`));
  if (failed.length > 0) problems.push(`${failed.length} cell${failed.length > 1 ? 's' : ''} failed (${failed.slice(0, 5).join(', ')}${failed.length > 5 ? ', …' : ''}); each folder holds error.json`);
  if (result.checkFailures.length > 0) problems.push(`--check: ${result.checkFailures.length} value${result.checkFailures.length > 1 ? 's' : ''} out of tolerance`);
  return problems.length > 0 ? new UserError(problems.join('; ')) : undefined;
}

export interface ReportCommandOptions {
  out?: string;
  json?: boolean;
}

/** `mtl-bench report`: merges the given folders (one run, several shards, or a runs/ root). */
export async function reportCommand(dirs: string[], options: ReportCommandOptions, io: CommandIO): Promise<WrittenReport> {
  const sources = dirs.length > 0 ? dirs : ['runs'];
  if (!options.out && sources.length > 1) throw new UserError('report: several folders are merged into one report; say where it goes with --out DIR');
  const outDir = path.resolve(options.out ?? sources[0]!);
  const report = buildReport(collectRuns(sources.map((d) => path.resolve(d))));
  if (report.benchmarks.length === 0) throw new UserError(`report: no results found under ${sources.join(', ')}`);
  const written = await writeReportFiles(report, outDir);
  if (options.json) {
    io.stdout(`${JSON.stringify({ files: written.files, summary: written.report.benchmarks.flatMap((b) => b.summary), warnings: written.report.warnings })}\n`);
  } else {
    io.stdout(summaryTable(written.report, io.paint));
    io.stderr(`reports: ${written.files.map((f) => displayPath(f)).join(', ')}\n`);
  }
  return written;
}
