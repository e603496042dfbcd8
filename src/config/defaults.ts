import path from 'node:path';
import { packageRoot } from '../util/paths.js';

/** The study `mtl-bench run` runs when given no benchmark file: the quick study on OpenMoji. */
export const DEFAULT_BENCHMARK = path.join(packageRoot, 'benchmarks', 'quick.yaml');

/** Where `run` writes its run folders and where `report` looks for them, unless told otherwise. */
export const DEFAULT_RUNS_DIR = 'runs';
