import type { Command } from 'commander';
import { UserError } from '../util/errors.js';

export function registerDatasetsCommands(program: Command): void {
  program
    .command('datasets')
    .description('list, fetch, index and inspect datasets described in datasets.yaml')
    .action(() => {
      throw new UserError('datasets: not implemented yet (issue 3)');
    });
}
