import jStat from 'jstat';

/** Statistics over seeds. Metric values arrive in percent. */

export function mean(values: number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

/** Sample standard deviation (n − 1); undefined below two values. */
function sampleStd(values: number[]): number | undefined {
  if (values.length < 2) return undefined;
  const m = mean(values);
  return Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / (values.length - 1));
}

/**
 * Means are summed in a fixed order (by seed) and rounded far below any metric's resolution,
 * so that a merged report equals a single run's and float noise never decides a comparison.
 */
export function tidy(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}

/** Δm% = (100/T) Σ_t (M_t(setting) − M_t(stl)) / M_t(stl), over the primary metrics (method.md). */
export function deltaM(settingMeans: number[], stlMeans: number[]): number | undefined {
  if (settingMeans.length === 0 || settingMeans.length !== stlMeans.length) return undefined;
  let sum = 0;
  for (let t = 0; t < settingMeans.length; t++) {
    if (stlMeans[t] === 0) return undefined;
    sum += (settingMeans[t]! - stlMeans[t]!) / stlMeans[t]!;
  }
  return (100 / settingMeans.length) * sum;
}

/** Two-sided confidence level of every interval in the reports. */
const CONFIDENCE = 0.95;
/** A paired difference is called significant when its two-sided p-value is below this. */
export const SIGNIFICANCE = 1 - CONFIDENCE;

export interface Interval {
  low: number;
  high: number;
}

export interface SeedStats {
  mean: number;
  /** Sample standard deviation; undefined for one value. */
  std?: number;
  n: number;
  /** 95% Student-t interval of the mean; undefined for one value. */
  ci?: Interval;
}

function tInterval(center: number, std: number, n: number): Interval {
  const half = jStat.studentt.inv(1 - SIGNIFICANCE / 2, n - 1) * (std / Math.sqrt(n));
  return { low: center - half, high: center + half };
}

/** Mean, sample std and the 95% interval of the mean (Student t, n − 1 degrees of freedom) of values over seeds. */
export function seedStats(values: number[]): SeedStats {
  const m = mean(values);
  const std = sampleStd(values);
  return { mean: m, std, n: values.length, ...(std === undefined ? {} : { ci: tInterval(m, std, values.length) }) };
}

export interface PairedTest extends SeedStats {
  /**
   * Two-sided p-value of the paired t-test (H0: the mean difference is 0); undefined for one pair.
   * With zero spread it is 1 for differences that are all 0 and 0 otherwise (t is infinite).
   */
  p?: number;
}

/**
 * The paired t-test on per-seed differences (setting − stl on the same seed): their mean, its
 * 95% interval and the two-sided p-value, with n − 1 degrees of freedom.
 */
export function pairedTest(differences: number[]): PairedTest {
  const stats = seedStats(differences);
  if (stats.std === undefined) return stats;
  const { mean: m, std, n } = stats;
  if (std === 0) return { ...stats, p: m === 0 ? 1 : 0 };
  const t = m / (std / Math.sqrt(n));
  return { ...stats, p: Math.min(1, 2 * jStat.studentt.cdf(-Math.abs(t), n - 1)) };
}
