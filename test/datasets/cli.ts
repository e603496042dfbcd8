import path from 'node:path';
import { packageRoot } from '../../src/util/paths.js';
import { type Finished, runNode } from '../processes.js';

const bin = path.join(packageRoot, 'bin', 'mtl-bench.js');

/** Runs the CLI without blocking this process (tests serve HTTP from it meanwhile). */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<Finished> {
  return runNode([bin, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, timeoutMs: 120_000 });
}
