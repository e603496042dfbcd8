import type { Command } from 'commander';
import { UserError } from '../util/errors.js';

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('write leaderboard CSVs and an HTML report from run folders')
    .argument('[dirs...]', 'run folders')
    .action(() => {
      throw new UserError('report: not implemented yet (issue 5)');
    });
}
