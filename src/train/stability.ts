import type { EpochRecord } from './types.js';

/**
 * Whether a cell trained stably. A collapsed seed must not be averaged with healthy ones as if it
 * were noise, so each cell carries this verdict in its metrics.json and the report keeps such
 * cells apart. The rule looks for the three signs the collapse of issue 14 showed:
 *
 * 1. a training loss that rises: the last epoch's mean total loss, or the mean supervised loss of
 *    any task, above LOSS_RISE_FACTOR × its lowest epoch mean and at least LOSS_RISE_MIN above it
 *    (a loss near zero doubling from 0.005 to 0.01 is noise, not a rise; needs 2 epochs or more);
 * 2. a validation metric that swings: a task's primary validation metric falling by more than
 *    VAL_DROP (an absolute fraction: 0.2 is 20 points) from one epoch to the next at least
 *    VAL_DROPS times (one dip that recovers is what a constant learning rate does now and then);
 * 3. a multi-label head that predicts nearly everything present: on the test split of the
 *    selected checkpoint, the share of annotated entries predicted present is at least
 *    SATURATION_SHARE and at least SATURATION_RATIO × the share truly present;
 * 4. a categorical head that learnt less than a constant: on the test split of the selected
 *    checkpoint, its accuracy more than BELOW_MAJORITY (an absolute fraction) under the share of
 *    the most frequent class, and its macro-F1 under what always predicting that class scores (a
 *    head trained for balanced classes may trade accuracy for macro-F1, so both must fall; issue
 *    14's quick study had a seed whose group head ended at 29% where the most frequent group is
 *    65% of the test split).
 *
 * SCA and DM terms are left out of (1): they measure agreement between heads, which may grow
 * while training is healthy.
 */
const LOSS_RISE_FACTOR = 1.5;
const LOSS_RISE_MIN = 0.1;
const VAL_DROP = 0.2;
const VAL_DROPS = 2;
const SATURATION_SHARE = 0.5;
const SATURATION_RATIO = 2;
const BELOW_MAJORITY = 0.1;

export interface StabilityVerdict {
  unstable: boolean;
  /** One sentence per sign found, each starting with the network's name and a colon ("group: …"). */
  reasons: string[];
  /**
   * The networks with a sign: `mtl`, or the tasks of an stl cell's networks. An stl cell trains
   * one network per task, so one network's collapse says nothing of the others'. Absent in
   * results written before it was recorded; flaggedNetworks reads it from the reasons there.
   */
  networks?: string[];
}

/** The networks a verdict flags. */
export function flaggedNetworks(verdict: StabilityVerdict): string[] {
  if (!verdict.unstable) return [];
  return verdict.networks ?? [...new Set(verdict.reasons.map((reason) => reason.slice(0, reason.indexOf(':'))))];
}

export interface UnitTrace {
  /** The network: `mtl`, or the task of an stl network. */
  unit: string;
  history: readonly EpochRecord[];
  /** task → its primary metric name. */
  primaries: Record<string, string>;
  /** Multi-label tasks of this network → shares of annotated test entries predicted and truly present. */
  testPositiveRates: Record<string, { predicted: number; truth: number }>;
  /** Categorical tasks of this network → its test accuracy and macro-F1, and those of always predicting the most frequent class. */
  testCategorical?: Record<string, { accuracy: number; macro_f1: number; majority: { accuracy: number; macro_f1: number } }>;
}

function percent(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}

function lossRises(trace: UnitTrace): string[] {
  const { history } = trace;
  if (history.length < 2) return [];
  const series: [string, number[]][] = [['total', history.map((r) => r.loss)]];
  for (const name of Object.keys(history[0]!.terms))
    if (name.startsWith('sup:')) series.push([name, history.map((r) => r.terms[name] ?? Number.NaN)]);
  const reasons: string[] = [];
  for (const [name, values] of series) {
    const finite = values.filter((v) => Number.isFinite(v));
    if (finite.length < 2) continue;
    const lowest = Math.min(...finite);
    const last = values[values.length - 1]!;
    if (Number.isFinite(last) && last > LOSS_RISE_FACTOR * lowest && last - lowest >= LOSS_RISE_MIN) {
      const at = values.indexOf(lowest) + 1;
      reasons.push(
        `${trace.unit}: training loss ${name} rose to ${last.toPrecision(3)} at epoch ${history.length}, ` +
          `${(last / lowest).toFixed(1)}× its lowest (${lowest.toPrecision(3)} at epoch ${at})`,
      );
    }
  }
  return reasons;
}

function validationSwings(trace: UnitTrace): string[] {
  const reasons: string[] = [];
  for (const [task, metric] of Object.entries(trace.primaries)) {
    const values = trace.history.map((r) => r.val[task]?.[metric] ?? Number.NaN);
    const drops: { from: number; drop: number }[] = [];
    for (let e = 1; e < values.length; e++) {
      const drop = values[e - 1]! - values[e]!;
      if (Number.isFinite(drop) && drop > VAL_DROP) drops.push({ from: e - 1, drop });
    }
    if (drops.length >= VAL_DROPS) {
      const worst = drops.reduce((a, b) => (b.drop > a.drop ? b : a));
      const before = values[worst.from]!;
      const after = values[worst.from + 1]!;
      reasons.push(
        `${trace.unit}: validation ${task} ${metric} fell more than ${VAL_DROP * 100} points between two epochs ${drops.length} times, ` +
          `at most ${(worst.drop * 100).toFixed(1)} points from epoch ${worst.from + 1} to ${worst.from + 2} ` +
          `(${percent(before)} → ${percent(after)})`,
      );
    }
  }
  return reasons;
}

function saturatedHeads(trace: UnitTrace): string[] {
  return Object.entries(trace.testPositiveRates)
    .filter(([, rates]) => rates.predicted >= SATURATION_SHARE && rates.predicted >= SATURATION_RATIO * rates.truth)
    .map(
      ([task, rates]) =>
        `${trace.unit}: the ${task} head predicts ${percent(rates.predicted)} of annotated test entries present, ` +
        `where ${percent(rates.truth)} are`,
    );
}

function headsBelowConstant(trace: UnitTrace): string[] {
  return Object.entries(trace.testCategorical ?? {})
    .filter(([, t]) => t.accuracy < t.majority.accuracy - BELOW_MAJORITY && t.macro_f1 < t.majority.macro_f1)
    .map(
      ([task, t]) =>
        `${trace.unit}: the ${task} head scores below always predicting the most frequent class on test ` +
        `(accuracy ${percent(t.accuracy)} against ${percent(t.majority.accuracy)}, macro-F1 ${percent(t.macro_f1)} against ${percent(t.majority.macro_f1)})`,
    );
}

export function assessStability(traces: readonly UnitTrace[]): StabilityVerdict {
  const byNetwork = traces.map((trace) => ({
    network: trace.unit,
    reasons: [...lossRises(trace), ...validationSwings(trace), ...saturatedHeads(trace), ...headsBelowConstant(trace)],
  }));
  const reasons = byNetwork.flatMap((n) => n.reasons);
  if (reasons.length === 0) return { unstable: false, reasons };
  return { unstable: true, reasons, networks: byNetwork.filter((n) => n.reasons.length > 0).map((n) => n.network) };
}
