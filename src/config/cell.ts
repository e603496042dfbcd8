import type { MetricName } from './metrics.js';
import type { CellMethodOptions, RelatednessOptions, TrainOptions } from './options.js';
import type { RegimeSpec } from './regimes.js';
import type { Setting } from './settings.js';

/**
 * One cell of a study, fully resolved (every default filled in): one dataset view, one annotation
 * regime, one setting, one seed. It is the contract between the benchmark runner and the
 * trainer, and what a run folder's config.json holds.
 */
export interface CellConfig {
  benchmark: string;
  dataset: string;
  tasks: { name: string; primary: MetricName }[];
  inputSize: number;
  backbone: string;
  pretrained?: string;
  train: TrainOptions;
  method: CellMethodOptions;
  /** Empty for settings that couple no tasks. */
  relatedness: RelatednessSpec[];
  regime: { name: string; spec: RegimeSpec };
  setting: Setting;
  seed: number;
  /** The trainer's behaviour this config was trained with (config/defaults.ts, TRAINING_REVISION). */
  trainingRevision: number;
}

export type RelatednessSpec = RelatednessOptions;
