import type { Command } from 'commander';
import { jsonOption, outOption, runFoldersArgument } from './options.js';
import { paint, paintErr } from './output.js';

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('write leaderboard.csv, summary.csv and report.html from run folders (one run, several shards, or a runs/ root)')
    .addArgument(runFoldersArgument())
    .addOption(outOption('where the reports go (default: the folder given; required when merging several)'))
    .addOption(jsonOption('print the summary as one JSON object instead of a table'))
    .action(async (dirs: string[], opts: { out?: string; json?: boolean }) => {
      const { reportCommand } = await import('../report/command.js');
      await reportCommand(dirs, opts, {
        stdout: (text) => process.stdout.write(text),
        stderr: (text) => process.stderr.write(text),
        paint,
        paintErr,
        interactive: Boolean(process.stderr.isTTY),
      });
    });
}
