/** What the trainer returns for one cell (its input, CellConfig, is defined by the configuration module). */

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
