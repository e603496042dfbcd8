import type { BenchmarkLayout } from './layout.js';
import { orderBy } from './order.js';
import { pairedDifferences, type SeedValues } from './seed_values.js';
import { pairedTest, seedStats, tidy, type Interval, type PairedTest } from './stats.js';
import { findingOf, findingWords, type Finding } from './verdict.js';

export const LEADERBOARD_COLUMNS = [
  'benchmark',
  'regime',
  'setting',
  'task',
  'metric',
  'mean',
  'std',
  'n',
  'stl_mean',
  'delta_vs_stl',
  'paper',
  'gap_to_paper',
  'rank',
] as const;
export const LEADERBOARD_EXTRA_COLUMNS = [
  'ci_low',
  'ci_high',
  'paired_seeds',
  'diff_mean',
  'diff_ci_low',
  'diff_ci_high',
  'diff_p',
  'verdict',
  'primary',
  'seeds',
] as const;

export interface LeaderboardRow {
  benchmark: string;
  regime: string;
  setting: string;
  task: string;
  metric: string;
  mean: number;
  /** Sample standard deviation over seeds; undefined for a single seed. */
  std?: number;
  n: number;
  /** 95% Student-t interval of the mean over seeds; undefined for a single seed. */
  ci?: Interval;
  stl_mean?: number;
  delta_vs_stl?: number;
  /** Against stl on the same seeds (same regime draw and split): the paired differences' mean, interval and t-test. */
  paired?: PairedTest;
  finding: Finding;
  /** The finding in words, with its p-value. */
  verdict: string;
  paper?: number;
  gap_to_paper?: number;
  /** 1 = best setting on this task, metric and regime; equal means share a rank. */
  rank: number;
  primary: boolean;
  seeds: number[];
}

const METRIC_ORDER = ['accuracy', 'label_accuracy', 'macro_f1'];

function tidyInterval(interval: Interval | undefined): Interval | undefined {
  return interval && { low: tidy(interval.low), high: tidy(interval.high) };
}

function tidyTest(test: PairedTest): PairedTest {
  return {
    mean: tidy(test.mean),
    n: test.n,
    ...(test.std === undefined ? {} : { std: tidy(test.std) }),
    ...(test.ci ? { ci: tidyInterval(test.ci) } : {}),
    ...(test.p === undefined ? {} : { p: tidy(test.p) }),
  };
}

/**
 * One row per regime, task, metric and setting: the mean over seeds with its interval, against
 * stl (paired by seed) and against the paper.
 */
export function buildLeaderboard(layout: BenchmarkLayout, values: SeedValues): LeaderboardRow[] {
  const leaderboard: LeaderboardRow[] = [];
  for (const regime of layout.regimes) {
    for (const task of layout.tasks) {
      const metrics = values.metricsOf(task.name);
      const ordered = [
        task.primary,
        ...orderBy(
          metrics.filter((m) => m !== task.primary),
          METRIC_ORDER,
        ),
      ].filter((m) => metrics.includes(m));
      for (const metric of ordered) {
        const stl = values.get(regime, 'stl', task.name, metric);
        const stlMean = stl ? tidy(seedStats(stl.values).mean) : undefined;
        const paper = layout.reference[task.name]?.[metric];
        const rows: LeaderboardRow[] = [];
        for (const setting of layout.settings) {
          const entry = values.get(regime, setting, task.name, metric);
          if (!entry) continue;
          const stats = seedStats(entry.values);
          const m = tidy(stats.mean);
          const paired = setting !== 'stl' && stl ? tidyTest(pairedTest(pairedDifferences(entry, stl).differences)) : undefined;
          const finding: Finding = setting === 'stl' ? 'baseline' : !stl ? 'no-baseline' : findingOf(paired);
          rows.push({
            benchmark: layout.name,
            regime,
            setting,
            task: task.name,
            metric,
            mean: m,
            std: stats.std === undefined ? undefined : tidy(stats.std),
            n: stats.n,
            ...(stats.ci ? { ci: tidyInterval(stats.ci) } : {}),
            stl_mean: stlMean,
            delta_vs_stl: stlMean === undefined ? undefined : tidy(m - stlMean),
            ...(paired ? { paired } : {}),
            finding,
            verdict: findingWords(finding, paired?.p),
            paper,
            gap_to_paper: paper === undefined ? undefined : tidy(m - paper),
            rank: 0,
            primary: metric === task.primary,
            seeds: entry.seeds,
          });
        }
        for (const row of rows) row.rank = 1 + rows.filter((other) => other.mean > row.mean).length;
        leaderboard.push(...rows);
      }
    }
  }
  return leaderboard;
}
