import type { BenchmarkLayout } from './layout.js';
import { orderBy } from './order.js';
import type { SeedValues } from './seed_values.js';
import { mean, sampleStd, tidy } from './stats.js';

export const LEADERBOARD_COLUMNS = ['benchmark', 'regime', 'setting', 'task', 'metric', 'mean', 'std', 'n', 'stl_mean', 'delta_vs_stl', 'paper', 'gap_to_paper', 'rank'] as const;
export const LEADERBOARD_EXTRA_COLUMNS = ['primary', 'seeds'] as const;

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
  stl_mean?: number;
  delta_vs_stl?: number;
  paper?: number;
  gap_to_paper?: number;
  /** 1 = best setting on this task, metric and regime; equal means share a rank. */
  rank: number;
  primary: boolean;
  seeds: number[];
}

const METRIC_ORDER = ['accuracy', 'label_accuracy', 'macro_f1'];

/** One row per regime, task, metric and setting: the mean over seeds against stl and the paper. */
export function buildLeaderboard(layout: BenchmarkLayout, values: SeedValues): LeaderboardRow[] {
  const leaderboard: LeaderboardRow[] = [];
  for (const regime of layout.regimes) {
    for (const task of layout.tasks) {
      const metrics = values.metricsOf(task.name);
      const ordered = [task.primary, ...orderBy(metrics.filter((m) => m !== task.primary), METRIC_ORDER)].filter((m) => metrics.includes(m));
      for (const metric of ordered) {
        const stl = values.get(regime, 'stl', task.name, metric);
        const stlMean = stl ? tidy(mean(stl.values)) : undefined;
        const paper = layout.reference[task.name]?.[metric];
        const rows: LeaderboardRow[] = [];
        for (const setting of layout.settings) {
          const entry = values.get(regime, setting, task.name, metric);
          if (!entry) continue;
          const m = tidy(mean(entry.values));
          const std = sampleStd(entry.values);
          rows.push({
            benchmark: layout.name,
            regime,
            setting,
            task: task.name,
            metric,
            mean: m,
            std: std === undefined ? undefined : tidy(std),
            n: entry.values.length,
            stl_mean: stlMean,
            delta_vs_stl: stlMean === undefined ? undefined : tidy(m - stlMean),
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
