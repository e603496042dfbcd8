import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairedTest, seedStats } from '../../src/report/stats.js';

/** Values computed by hand (the t quantiles from printed tables, the p-values from t's closed-form CDF for 1 and 2 degrees of freedom). */
const close = (actual: number | undefined, expected: number, what: string, tolerance = 1e-6) => {
  assert.ok(actual !== undefined && Math.abs(actual - expected) < tolerance, `${what}: ${actual} instead of ${expected}`);
};

test('one seed: a mean and nothing that pretends to measure its uncertainty', () => {
  assert.deepEqual(seedStats([61.25]), { mean: 61.25, std: undefined, n: 1 });
  assert.deepEqual(pairedTest([-1.5]), { mean: -1.5, std: undefined, n: 1 }, 'no interval and no p-value from one pair');
});

test('two seeds: the 95% interval uses t(0.975, 1) = 12.7062', () => {
  const s = seedStats([58, 62]);
  assert.equal(s.mean, 60);
  close(s.std, 2 * Math.SQRT2, 'std');
  // half-width = 12.7062047 × 2.8284271 / √2 = 25.4124094
  close(s.ci?.low, 60 - 25.4124094, 'low');
  close(s.ci?.high, 60 + 25.4124094, 'high');
});

test('zero variance: an interval of width 0 around the mean', () => {
  const s = seedStats([70, 70, 70]);
  assert.deepEqual(s, { mean: 70, std: 0, n: 3, ci: { low: 70, high: 70 } });
});

test('paired t-test, 2 degrees of freedom: p = 1 − |t| / √(t² + 2)', () => {
  // differences 1, 2, 3: mean 2, s = 1, t = 2 / (1/√3) = 3.4641016
  const p = pairedTest([1, 2, 3]);
  close(p.mean, 2, 'mean');
  close(p.std, 1, 'std');
  const t = 2 * Math.sqrt(3);
  close(p.p, 1 - t / Math.sqrt(t * t + 2), 'p'); // 0.0741799
  close(p.p, 0.0741799, 'p (printed)', 1e-6);
  // half-width = t(0.975, 2) × s / √n = 4.3026527 × 0.5773503 = 2.4841377
  close(p.ci?.low, 2 - 2.4841377, 'low');
  close(p.ci?.high, 2 + 2.4841377, 'high');
});

test('paired t-test, 1 degree of freedom: p = 1 − (2/π) atan|t|, the same for a drop', () => {
  // differences −1, −3: mean −2, s = √2, t = −2
  const p = pairedTest([-1, -3]);
  close(p.p, 1 - (2 / Math.PI) * Math.atan(2), 'p'); // 0.2951672
  close(p.ci?.high, -2 + 12.7062047, 'high');
});

test('paired differences with zero variance: p = 1 when all are 0, p = 0 when all equal a non-zero value', () => {
  assert.deepEqual(pairedTest([0, 0, 0]), { mean: 0, std: 0, n: 3, ci: { low: 0, high: 0 }, p: 1 });
  assert.deepEqual(pairedTest([-1, -1]), { mean: -1, std: 0, n: 2, ci: { low: -1, high: -1 }, p: 0 });
});
