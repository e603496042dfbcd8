import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { packageRoot } from '../util/paths.js';
import { registerBackbonesCommands } from './backbones.js';
import { registerDatasetsCommands } from './datasets.js';
import { registerDoctorCommand } from './doctor.js';
import { createProgram, runProgram } from './program.js';
import { registerReportCommand } from './report.js';
import { registerRunCommand } from './run.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = createProgram({
    name: 'mtl-bench',
    description: 'Multi-task learning of classification tasks with distribution matching: datasets, benchmark runs, reports',
    version: packageVersion(),
  });
  registerDatasetsCommands(program);
  registerBackbonesCommands(program);
  registerRunCommand(program);
  registerReportCommand(program);
  registerDoctorCommand(program);
  return program;
}

/** Runs the CLI; returns the process exit code instead of exiting so tests can call it. */
export function main(argv: string[]): Promise<number> {
  return runProgram(buildProgram(), argv);
}
