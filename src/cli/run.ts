import type { Command } from 'commander';
import { UserError } from '../util/errors.js';

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run a benchmark matrix (default: the built-in quick study)')
    .argument('[files...]', 'benchmark YAML files')
    .action(() => {
      throw new UserError('run: not implemented yet (issue 5)');
    });
}
