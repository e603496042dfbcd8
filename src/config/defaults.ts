import path from 'node:path';
import { packageRoot } from '../util/paths.js';

/** The study `mtl-bench run` runs when given no benchmark file: the quick study on OpenMoji. */
export const DEFAULT_BENCHMARK = path.join(packageRoot, 'benchmarks', 'quick.yaml');

/** Where `run` writes its run folders and where `report` looks for them, unless told otherwise. */
export const DEFAULT_RUNS_DIR = 'runs';

/**
 * Bumped whenever the trainer changes what a given config produces, so that the change is part of
 * every cell's config hash and run folders from before it are trained again instead of being
 * reported beside new results. 2: random-crop padding replicates the edge (was black) and the last
 * partial batch of an epoch is trained (was dropped).
 */
export const TRAINING_REVISION = 2;

/**
 * `run --jobs`: on the wasm and cpu backends, how many wasm threads each parallel job gets when
 * the user sets neither --jobs nor MTL_BENCH_WASM_THREADS. One: a second wasm thread speeds a step
 * up by only about 1.4× on two cores, while a second job doubles the cells in flight (measured in
 * the README, "Parallel jobs").
 */
export const THREADS_PER_JOB = 1;

/** The most jobs `run` starts by itself (each holds the dataset and a backend; more only if asked). */
export const MAX_DEFAULT_JOBS = 8;
