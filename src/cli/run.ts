import type { Command } from 'commander';
import type { RunCommandOptions } from '../bench/command.js';
import type { CommandIO } from '../util/command_io.js';
import { UserError } from '../util/errors.js';
import { paint, paintErr } from './output.js';
import { DEFAULT_RUNS_DIR } from '../config/defaults.js';
import { backendOption, jsonOption, manifestOption, outOption } from './options.js';
import { commaList, positiveInt } from './parse.js';

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run a benchmark matrix (default: the built-in quick study), then write its reports')
    .argument('[files...]', 'benchmark YAML files (default: benchmarks/quick.yaml of the package)')
    .addOption(outOption('parent folder of the run folders: cells go to DIR/<benchmark>/<cell>/').default(DEFAULT_RUNS_DIR))
    .option('--settings <list>', 'only these settings, e.g. stl,mtl+sca+dm', commaList)
    .option('--regimes <list>', "only these of the benchmark's regimes", commaList)
    .option('--seeds <list>', "these seeds instead of the benchmark's, e.g. 1,2", commaList)
    .option('--epochs <n>', "train this many epochs instead of the benchmark's", positiveInt)
    .option(
      '--jobs <n>',
      'train up to N cells at once, each in a worker process with cores/N wasm threads ' +
        '(default: one per core on wasm and cpu, one on native TensorFlow, or one per CUDA_VISIBLE_DEVICES device)',
      positiveInt,
    )
    .option(
      '--no-reuse',
      'train every cell here, even one that another benchmark under --out has already trained with the same configuration',
    )
    .option('--shard <i/n>', 'run only shard I of N (1 ≤ I ≤ N) of the cells; merge the folders with `mtl-bench report`')
    .addOption(backendOption())
    .addOption(manifestOption())
    .addOption(jsonOption('JSON lines on stdout (progress, results, summary) instead of text'))
    .option('--check', "compare the results with the benchmark's check block; exit non-zero naming each value out of tolerance")
    .option(
      '--dry-run',
      'print the cells, the resolved configuration and the time estimate on this backend; train nothing (the data need not be here)',
    )
    .action(async (files: string[], opts: RunCommandOptions & { manifest?: string[]; jobs?: number }) => {
      const controller = new AbortController();
      let stoppedBy: NodeJS.Signals | undefined;
      // The first Ctrl-C (or SIGTERM) stops cleanly after the current training step: the running
      // cell checkpoints its partial epoch, the reports are written, and the exit code is 130
      // (143). The listeners are removed at once, so a second signal takes its default action and
      // ends the process immediately, even inside a step; every file is written atomically (or
      // under a lock a later run takes over), so nothing already written is left damaged.
      const onSignal = (signal: NodeJS.Signals) => {
        stoppedBy = signal;
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        const again = signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM';
        process.stderr.write(
          `\nstopping after the current training step (${again} again to quit at once); run the same command to resume\n`,
        );
        controller.abort(new Error(`interrupted by ${signal}`));
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        // Loaded on demand: the trainer pulls in TensorFlow.js, seconds of start-up `--help` should not pay.
        const { runVerdict } = await import('../bench/command.js');
        const { defaultBenchDeps } = await import('../bench/deps.js');
        const { runStudy } = await import('./run_study.js');
        const { planJobs, runEnvironment } = await import('../bench/jobs.js');
        const { nativePackageInstalled } = await import('../engine/backend.js');
        const { currentMachineLoad } = await import('../engine/wasm_threads.js');
        const jobPlan = planJobs({
          jobs: opts.jobs,
          backend: opts.backend ?? process.env.MTL_BENCH_BACKEND,
          nativeInstalled: nativePackageInstalled(),
          machine: currentMachineLoad(),
          env: process.env,
        });
        // Before the backend starts: the time estimate is measured at one job's share of the
        // cores, and the worker processes inherit it.
        Object.assign(process.env, runEnvironment(jobPlan, process.env));
        const io: CommandIO = {
          stdout: (text) => process.stdout.write(text),
          stderr: (text) => process.stderr.write(text),
          paint,
          paintErr,
          interactive: Boolean(process.stderr.isTTY),
          columns: process.stderr.isTTY ? process.stderr.columns : undefined,
          signal: controller.signal,
        };
        const result = await runStudy(files, { ...opts, jobPlan }, defaultBenchDeps({ manifestFiles: opts.manifest }), io);
        const verdict = runVerdict(result);
        if (stoppedBy) {
          const exitCode = stoppedBy === 'SIGTERM' ? 143 : 130;
          throw new UserError(verdict?.message ?? 'interrupted after every cell had finished; the results and reports are complete', {
            exitCode,
          });
        }
        if (verdict) throw verdict;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
