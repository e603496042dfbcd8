/** Statistics over seeds. Metric values arrive in percent. */

export function mean(values: number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

/** Sample standard deviation (n − 1); undefined below two values. */
export function sampleStd(values: number[]): number | undefined {
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
