import path from 'node:path';
import { DEFAULT_RUNS_DIR } from '../config/defaults.js';
import { collectRuns } from '../runs/collect.js';
import type { BenchmarkInfo } from '../runs/store.js';
import type { CommandIO } from '../util/command_io.js';
import { UserError } from '../util/errors.js';
import { displayPath } from '../util/paths.js';
import { buildReport } from './aggregate.js';
import { evaluateChecks } from './check.js';
import { writeReportFiles, writeReports, type WrittenReport } from './index.js';
import { summaryTable } from './terminal.js';

export interface ReportCommandOptions {
  out?: string;
  json?: boolean;
}

function printWritten(written: WrittenReport, io: CommandIO): void {
  io.stdout(summaryTable(written.report, io.paint));
  io.stderr(`reports: ${written.files.map((f) => displayPath(f)).join(', ')}\n`);
}

/** `mtl-bench report`: merges the given folders (one run, several shards, or a runs/ root). */
export async function reportCommand(dirs: string[], options: ReportCommandOptions, io: CommandIO): Promise<WrittenReport> {
  const sources = dirs.length > 0 ? dirs : [DEFAULT_RUNS_DIR];
  if (!options.out && sources.length > 1)
    throw new UserError('report: several folders are merged into one report; say where it goes with --out DIR');
  const outDir = path.resolve(options.out ?? sources[0]!);
  const report = buildReport(collectRuns(sources.map((d) => path.resolve(d))));
  if (report.benchmarks.length === 0) throw new UserError(`report: no results found under ${sources.join(', ')}`);
  const written = await writeReportFiles(report, outDir);
  if (options.json) {
    const summary = written.report.benchmarks.flatMap((b) => b.summary);
    io.stdout(`${JSON.stringify({ files: written.files, summary, warnings: written.report.warnings })}\n`);
  } else {
    printWritten(written, io);
  }
  return written;
}

export interface RunReportOptions {
  json?: boolean;
  check?: boolean;
}

/**
 * What `run` does once a benchmark's cells are done: writes its reports into the run folder,
 * prints the summary and, with --check, compares the results with the benchmark's check block.
 * Returns the problems that must fail the command.
 */
export async function reportAfterRun(runDir: string, info: BenchmarkInfo, options: RunReportOptions, io: CommandIO): Promise<string[]> {
  const written = await writeReports([runDir], runDir);
  if (options.json) {
    const summary = written.report.benchmarks.flatMap((b) => b.summary);
    io.stdout(`${JSON.stringify({ event: 'report', benchmark: info.name, files: written.files, summary })}\n`);
  } else {
    printWritten(written, io);
  }
  if (!options.check) return [];
  const outcome = evaluateChecks(info, written.report);
  if (info.check.length === 0) io.stderr(`${info.name}: --check: the benchmark has no check block\n`);
  else if (!options.json) io.stderr(`${info.name}: check: ${outcome.passed} of ${info.check.length} values within tolerance\n`);
  for (const f of outcome.failures) io.stderr(`${io.paintErr.red('check failed:')} ${f.message}\n`);
  if (options.json) {
    const failures = outcome.failures.map((f) => f.message);
    io.stdout(`${JSON.stringify({ event: 'check', benchmark: info.name, passed: outcome.passed, failures })}\n`);
  }
  const count = outcome.failures.length;
  return count > 0 ? [`--check: ${count} value${count > 1 ? 's' : ''} out of tolerance`] : [];
}

/**
 * What `run` does after several benchmarks: when they form a sharpness sweep (benchmarks that
 * differ only in β), the Δm%-against-β chart needs them together, so one report over all their
 * folders is written into the folder that holds them. Returns the files written (none otherwise).
 */
export async function reportAcrossRuns(runDirs: string[], options: RunReportOptions, io: CommandIO): Promise<string[]> {
  const parents = [...new Set(runDirs.map((d) => path.dirname(path.resolve(d))))];
  if (runDirs.length < 2 || parents.length !== 1) return [];
  const report = buildReport(collectRuns(runDirs.map((d) => path.resolve(d))));
  if (report.sweeps.length === 0) return [];
  const written = await writeReportFiles(report, parents[0]!);
  if (options.json)
    io.stdout(`${JSON.stringify({ event: 'report', benchmarks: report.benchmarks.map((b) => b.name), files: written.files })}\n`);
  else
    io.stderr(
      `reports over all ${runDirs.length} benchmarks (Δm% against the sharpness blend β): ` +
        `${written.files.map((f) => displayPath(f)).join(', ')}\n`,
    );
  return written.files;
}
