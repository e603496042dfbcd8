import { Command, CommanderError } from 'commander';
import { UserError, errorMessage } from '../util/errors.js';
import { paintErr } from './output.js';

/** A top-level program with what every mtl-bench program shares: `--debug` and the usage hint after a usage error. */
export function createProgram(options: { name: string; description: string; version?: string }): Command {
  const program = new Command(options.name).description(options.description);
  if (options.version) program.version(options.version, '-V, --version');
  return program.option('--debug', 'print stack traces on errors').showHelpAfterError('(run with --help for usage)');
}

/**
 * Runs a program and turns whatever it throws into one error line (the stack too with --debug).
 * Returns the process exit code instead of exiting so tests can call it.
 */
export async function runProgram(program: Command, argv: string[]): Promise<number> {
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
    process.stderr.write(
      `${paintErr.red(`${program.name()}: error:`)} ${message}` +
        `${err instanceof UserError || debug ? '' : ' (run with --debug for details)'}\n`,
    );
    return err instanceof UserError ? err.exitCode : 1;
  }
}
