import type { CellRecord } from '../runs/store.js';
import type { BenchmarkLayout } from './layout.js';
import type { LeaderboardRow } from './leaderboard.js';
import { deltaM, mean, tidy } from './stats.js';

export const SUMMARY_COLUMNS = ['benchmark', 'regime', 'setting', 'delta_m_pct', 'tasks_worse_than_stl', 'negative_transfer', 'train_seconds'] as const;
export const SUMMARY_EXTRA_COLUMNS = ['n', 'worse_tasks', 'failed_cells', 'verdict'] as const;

export interface SummaryRow {
  benchmark: string;
  regime: string;
  setting: string;
  /** Undefined for stl itself and where a task has no stl baseline. */
  delta_m_pct?: number;
  tasks_worse_than_stl?: number;
  negative_transfer?: boolean;
  /** Mean training time of one cell (one seed) of this setting. */
  train_seconds?: number;
  n: number;
  worse_tasks: string[];
  failed_cells: number;
  verdict: string;
}

/** A baseline below this many percent makes Δm% (a relative change) swing wildly. */
const SMALL_BASELINE = 5;

/** One row per regime and setting: Δm% against stl, negative transfer and a verdict in words. */
export function buildSummary(layout: BenchmarkLayout, cells: CellRecord[], leaderboard: LeaderboardRow[]): SummaryRow[] {
  const summary: SummaryRow[] = [];
  for (const regime of layout.regimes) {
    for (const setting of layout.settings) {
      const group = cells.filter((c) => c.config.regime.name === regime && c.config.setting === setting);
      const groupDone = group.filter((c) => c.metrics);
      if (group.length === 0) continue;
      const failedCells = group.filter((c) => c.error).length;
      const trainSeconds = groupDone.length > 0 ? tidy(mean(groupDone.map((c) => c.metrics!.trainSeconds))) : undefined;
      const primaryRows = layout.tasks.map((t) => leaderboard.find((r) => r.regime === regime && r.setting === setting && r.task === t.name && r.metric === t.primary));
      const row: SummaryRow = {
        benchmark: layout.name,
        regime,
        setting,
        train_seconds: trainSeconds,
        n: groupDone.length,
        worse_tasks: [],
        failed_cells: failedCells,
        verdict: '',
      };
      if (setting === 'stl') {
        row.verdict = groupDone.length > 0 ? 'single-task baseline' : 'baseline failed';
      } else if (groupDone.length === 0) {
        row.verdict = 'no result (every cell failed)';
      } else if (primaryRows.some((r) => r === undefined)) {
        row.verdict = 'a task has no result';
      } else if (primaryRows.some((r) => r!.stl_mean === undefined)) {
        row.verdict = 'no stl baseline in this regime: Δm% and negative transfer cannot be computed';
      } else {
        const rowsOk = primaryRows as LeaderboardRow[];
        const dm = deltaM(rowsOk.map((r) => r.mean), rowsOk.map((r) => r.stl_mean!));
        row.worse_tasks = rowsOk.filter((r) => r.mean < r.stl_mean!).map((r) => r.task);
        row.tasks_worse_than_stl = row.worse_tasks.length;
        row.negative_transfer = row.worse_tasks.length > 0;
        row.delta_m_pct = dm === undefined ? undefined : tidy(dm);
        const dmText = dm === undefined ? 'Δm% undefined (an stl metric is 0)' : `Δm ${dm >= 0 ? '+' : ''}${dm.toFixed(2)}%`;
        if (row.negative_transfer) {
          const detail = rowsOk
            .filter((r) => r.mean < r.stl_mean!)
            .map((r) => `${r.task} ${r.metric} ${r.delta_vs_stl!.toFixed(2)} pts`)
            .join(', ');
          row.verdict = `HURTS: worse than stl on ${detail}; ${dmText}`;
        } else {
          row.verdict = `no negative transfer; ${dmText}`;
        }
      }
      if (failedCells > 0) row.verdict += `; ${failedCells} cell${failedCells > 1 ? 's' : ''} failed`;
      summary.push(row);
    }
  }
  return summary;
}

/**
 * Δm% divides by the stl value: against a near-zero baseline a change of a point reads as tens
 * of percent, so the reader is told which task drives it.
 */
export function smallBaselineWarnings(layout: BenchmarkLayout, leaderboard: LeaderboardRow[], summary: SummaryRow[]): string[] {
  const warnings: string[] = [];
  for (const regime of layout.regimes) {
    for (const task of layout.tasks) {
      const stl = leaderboard.find((r) => r.regime === regime && r.setting === 'stl' && r.task === task.name && r.metric === task.primary);
      if (stl && stl.mean < SMALL_BASELINE && summary.some((r) => r.regime === regime && r.delta_m_pct !== undefined)) {
        warnings.push(
          `benchmark "${layout.name}", regime ${regime}: stl's ${task.name} ${task.primary} is only ${stl.mean.toFixed(2)}%, so relative changes of that task dominate Δm%; read its rows in the leaderboard`,
        );
      }
    }
  }
  return warnings;
}
