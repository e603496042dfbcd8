import { Argument, Option } from 'commander';
import { DEFAULT_RUNS_DIR } from '../config/defaults.js';
import { positiveInt, repeatable } from './parse.js';

/**
 * The options several commands share, each defined once (flag, description, parser, default).
 * Each is a factory because commander keeps per-command state in an Option.
 */

/** Names the backends as text so that `--help` need not load TensorFlow.js; test/cli checks them against engine/backend.ts. */
export const backendOption = (): Option =>
  new Option(
    '--backend <name>',
    'backend: tensorflow-gpu, tensorflow, wasm or cpu (default: MTL_BENCH_BACKEND, else the first that loads)',
  );

export const manifestOption = (): Option =>
  new Option('--manifest <file>', 'extra dataset manifest adding or overriding datasets.yaml entries (repeatable)').argParser(
    repeatable((value) => value),
  );

/** `--json`; what is printed differs by command, so each says it. */
export const jsonOption = (description: string): Option => new Option('--json', description);

/** `--out`; what goes there differs by command, so each says it. */
export const outOption = (description: string): Option => new Option('--out <dir>', description);

/** Run folders to read: a run, several shards, or a runs/ root. */
export const runFoldersArgument = (): Argument => new Argument('[dirs...]', 'run folders').default([DEFAULT_RUNS_DIR], DEFAULT_RUNS_DIR);

/** The throughput measurement of `doctor` and scripts/bench-train.ts. */
export const batchOption = (): Option =>
  new Option('--batch <n>', 'batch size of the throughput measurement').argParser(positiveInt).default(32);
export const stepsOption = (): Option => new Option('--steps <n>', 'timed training steps').argParser(positiveInt).default(5);
