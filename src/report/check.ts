import type { BenchmarkInfo } from '../runs/store.js';
import type { Report } from './aggregate.js';

export interface CheckFailure {
  benchmark: string;
  message: string;
}

export interface CheckOutcome {
  passed: number;
  failures: CheckFailure[];
}

/**
 * Compares the means over seeds with the benchmark's `check` block: each value must lie within
 * its tolerance (percentage points) of the expected value; a value with no result fails too.
 */
export function evaluateChecks(info: BenchmarkInfo, report: Report): CheckOutcome {
  const failures: CheckFailure[] = [];
  let passed = 0;
  const rows = report.benchmarks.find((b) => b.name === info.name)?.leaderboard ?? [];
  for (const c of info.check) {
    const label = `${info.name}: ${c.regime}/${c.setting}/${c.task} ${c.metric}`;
    const row = rows.find((r) => r.regime === c.regime && r.setting === c.setting && r.task === c.task && r.metric === c.metric);
    if (!row) {
      failures.push({ benchmark: info.name, message: `${label}: no result (expected ${c.expected} ± ${c.tolerance})` });
      continue;
    }
    const off = row.mean - c.expected;
    if (Math.abs(off) > c.tolerance) {
      const sign = off > 0 ? '+' : '';
      failures.push({
        benchmark: info.name,
        message: `${label} = ${row.mean.toFixed(2)}, expected ${c.expected} ± ${c.tolerance} (off by ${sign}${off.toFixed(2)})`,
      });
    } else {
      passed++;
    }
  }
  return { passed, failures };
}
