/**
 * The contract between the benchmark runner (bench/) and the trainer (train/): one cell of a
 * study is one dataset view, one annotation regime, one setting, one seed.
 */

export const SETTINGS = ['stl', 'mtl', 'mtl+sca', 'mtl+dm', 'mtl+sca+dm'] as const;
export type Setting = (typeof SETTINGS)[number];

export type CategoricalMetric = 'accuracy' | 'macro_f1';
export type MultilabelMetric = 'label_accuracy' | 'macro_f1';
export type MetricName = CategoricalMetric | MultilabelMetric;

/** How the training labels are thinned before training (validation and test keep every label). */
export type RegimeSpec =
  | { kind: 'full' }
  /** Split train into one part per task; `overlap` is the fraction of samples that keep every label. */
  | { kind: 'disjoint'; overlap: number }
  /** `task` keeps its label on `fraction` of the samples; the other tasks keep all of theirs. */
  | { kind: 'scarce'; task: string; fraction: number }
  /** The tasks come from different datasets: no sample carries two tasks (already so in the data). */
  | { kind: 'multi-source' };

export interface RelatednessSpec {
  from: string;
  to: string;
  source: 'prior' | 'file' | 'data';
  /** Additive smoothing for `data`. */
  alpha: number;
  /** For `data`: fewer co-annotated training samples than this is an error, never a silent uniform matrix. */
  minCoannotated: number;
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: 'adam' | 'sgd';
  momentum: number;
  schedule: 'cosine' | 'step' | 'constant';
  /** For `step`: multiply the rate by `stepGamma` every `stepEvery` epochs. */
  stepEvery: number;
  stepGamma: number;
  weightDecay: number;
  /** Random crop after zero-padding by this many pixels (0 = off), and horizontal flip. */
  cropPadding: number;
  flip: boolean;
  classBalanced: boolean;
}

export interface MethodOptions {
  tau: number;
  detachTarget: boolean;
  dmVariant: 'likelihood' | 'prototypical';
  dmScope: 'all' | 'missing';
  lambdaSca: number;
  lambdaDm: number;
  /** w_t per task; missing tasks weigh 1. */
  taskWeights: Record<string, number>;
}

export interface CellConfig {
  benchmark: string;
  dataset: string;
  tasks: { name: string; primary: MetricName }[];
  inputSize: number;
  backbone: string;
  pretrained?: string;
  train: TrainOptions;
  method: MethodOptions;
  relatedness: RelatednessSpec[];
  regime: { name: string; spec: RegimeSpec };
  setting: Setting;
  seed: number;
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  /** Mean of each loss term over the epoch (supervised per task, sca, dm). */
  terms: Record<string, number>;
  val: Record<string, Record<string, number>>;
  valPrimaryMean: number;
  seconds: number;
  imagesPerSecond: number;
}

export interface CellResult {
  /** Test metrics of the checkpoint selected on validation: task → metric → value (fractions in [0, 1]). */
  test: Record<string, Record<string, number>>;
  val: Record<string, Record<string, number>>;
  /** The selected epoch; for stl, where each task's network selects its own, the latest of them. */
  bestEpoch: number;
  /** The epoch selected for each task (the same for every task of an mtl network). Added by the trainer. */
  bestEpochByTask?: Record<string, number>;
  selectionRule: string;
  history: EpochRecord[];
  /** The relatedness matrices actually used, keyed "from->to". */
  relatedness: Record<string, { source: string; matrix: number[][] }>;
  /** Training samples that kept a label, per task, after the regime was applied. */
  labelCounts: Record<string, number>;
  trainSeconds: number;
}
