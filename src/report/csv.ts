import { stringify } from 'csv-stringify/sync';
import type { Report } from './aggregate.js';
import { LEADERBOARD_COLUMNS, LEADERBOARD_EXTRA_COLUMNS, type LeaderboardRow } from './leaderboard.js';
import { SUMMARY_COLUMNS, SUMMARY_EXTRA_COLUMNS, type SummaryRow } from './summary.js';

/** Fixed decimals keep the files diffable and identical however the cells were spread over shards. */
function num(value: number | undefined, decimals: number): string {
  if (value === undefined || !Number.isFinite(value)) return '';
  const text = value.toFixed(decimals);
  // "-0.0000" would read as a (tiny) loss where there is none.
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text;
}

function leaderboardRecord(row: LeaderboardRow): string[] {
  return [
    row.benchmark,
    row.regime,
    row.setting,
    row.task,
    row.metric,
    num(row.mean, 4),
    num(row.std, 4),
    String(row.n),
    num(row.stl_mean, 4),
    num(row.delta_vs_stl, 4),
    num(row.paper, 2),
    num(row.gap_to_paper, 4),
    String(row.rank),
    row.primary ? 'true' : 'false',
    row.seeds.join(' '),
  ];
}

function summaryRecord(row: SummaryRow): string[] {
  return [
    row.benchmark,
    row.regime,
    row.setting,
    num(row.delta_m_pct, 4),
    row.tasks_worse_than_stl === undefined ? '' : String(row.tasks_worse_than_stl),
    row.negative_transfer === undefined ? '' : row.negative_transfer ? 'true' : 'false',
    num(row.train_seconds, 2),
    String(row.n),
    row.worse_tasks.join(';'),
    String(row.failed_cells),
    row.verdict,
  ];
}

export function leaderboardCsv(report: Report): string {
  const rows = report.benchmarks.flatMap((b) => b.leaderboard.map(leaderboardRecord));
  return stringify(rows, { header: true, columns: [...LEADERBOARD_COLUMNS, ...LEADERBOARD_EXTRA_COLUMNS] });
}

export function summaryCsv(report: Report): string {
  const rows = report.benchmarks.flatMap((b) => b.summary.map(summaryRecord));
  return stringify(rows, { header: true, columns: [...SUMMARY_COLUMNS, ...SUMMARY_EXTRA_COLUMNS] });
}
