import { runCommand, type BenchDeps, type RunCommandOptions, type RunCommandResult } from '../bench/command.js';
import { reportAcrossRuns, reportAfterRun } from '../report/command.js';
import type { CommandIO } from '../util/command_io.js';

/**
 * `mtl-bench run` end to end: the runner trains the cells, then each benchmark's reports (and
 * checks) are written. The two layers do not know each other; this is where they meet.
 */
export async function runStudy(files: string[], options: RunCommandOptions, deps: BenchDeps, io: CommandIO): Promise<RunCommandResult> {
  const result = await runCommand(files, options, deps, io, (run, info) =>
    reportAfterRun(run.dir, info, { json: options.json, check: options.check }, io),
  );
  // Benchmarks that sweep the sharpness blend are read together (the Δm%-against-β chart).
  if (!options.dryRun)
    await reportAcrossRuns(
      result.runs.map((r) => r.dir),
      { json: options.json },
      io,
    );
  return result;
}
