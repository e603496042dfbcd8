import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { UserError, errorMessage } from '../util/errors.js';
import { packageRoot } from '../util/paths.js';
import { registerDatasetsCommands } from './datasets.js';
import { paintErr } from './output.js';
import { positiveInt } from './parse.js';
import { registerReportCommand } from './report.js';
import { registerRunCommand } from './run.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new Command('mtl-bench')
    .description('Multi-task learning of classification tasks with distribution matching: datasets, benchmark runs, reports')
    .version(packageVersion(), '-V, --version')
    .option('--debug', 'print stack traces on errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  registerDatasetsCommands(program);
  registerRunCommand(program);
  registerReportCommand(program);

  program
    .command('doctor')
    .description('show the training backend, the cache folder and a measured training throughput')
    .option('--backend <name>', 'backend to use: tensorflow-gpu, tensorflow, wasm or cpu (default: MTL_BENCH_BACKEND, else the first that loads)')
    .option('--batch <n>', 'batch size of the throughput measurement', positiveInt, 32)
    .option('--size <pixels>', 'input size of the throughput measurement', positiveInt, 32)
    .option('--steps <n>', 'timed training steps', positiveInt, 5)
    .option('--json', 'print one JSON object instead of text')
    // Loaded on demand: TensorFlow.js takes seconds to import, and `--help` should not wait for it.
    .action(async (opts) => (await import('./doctor.js')).doctorCommand(opts));

  return program;
}

/** Runs the CLI; returns the process exit code instead of exiting so tests can call it. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const overrideAll = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(overrideAll);
  };
  overrideAll(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end by "throwing" success; commander has already printed the message.
      return err.exitCode;
    }
    const debug = argv.includes('--debug');
    if (debug && err instanceof Error) process.stderr.write(`${err.stack ?? err.message}\n`);
    const message = errorMessage(err).split('\n')[0];
    process.stderr.write(`${paintErr.red('mtl-bench: error:')} ${message}${err instanceof UserError || debug ? '' : ' (run with --debug for details)'}\n`);
    return err instanceof UserError ? err.exitCode : 1;
  }
}
