import type { RelatednessDiagnostic } from '../method/relatedness_diagnostic.js';
import type { StabilityVerdict } from './stability.js';

/** What the trainer returns for one cell (its input, CellConfig, is defined by the configuration module). */

export interface EpochRecord {
  epoch: number;
  loss: number;
  /** Mean of each loss term over the epoch (supervised per task, sca, dm). */
  terms: Record<string, number>;
  val: Record<string, Record<string, number>>;
  valPrimaryMean: number;
  /**
   * Each SCA and DM direction's target scored as a prediction on the validation split, keyed by
   * its term name (`dm:<from>-><to>`; the student is `<to>`, whose own score is in `val`). Absent
   * for settings without couplings.
   */
  teachers?: Record<string, Record<string, number>>;
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
  /** How crisp each relatedness pair is and where it came from, keyed "from->to" (src/method/relatedness_diagnostic.ts). */
  relatednessDiagnostics?: Record<string, RelatednessDiagnostic>;
  /** Whether training was stable (src/train/stability.ts). The trainer always sets both; results written before they existed lack them. */
  stability?: StabilityVerdict;
  /** Training samples that kept a label, per task, after the regime was applied. */
  labelCounts: Record<string, number>;
  trainSeconds: number;
}
