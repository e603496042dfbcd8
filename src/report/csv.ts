import { stringify } from 'csv-stringify/sync';
import type { Report } from './aggregate.js';
import { LEADERBOARD_COLUMNS, LEADERBOARD_EXTRA_COLUMNS, type LeaderboardRow } from './leaderboard.js';
import { SUMMARY_COLUMNS, SUMMARY_EXTRA_COLUMNS, type SummaryRow } from './summary.js';

/** Metrics, their differences and Δm% are percent: two decimals, as in the paper. */
const PERCENT = 2;
const P_VALUE = 4;

/** Fixed decimals keep the files diffable and identical however the cells were spread over shards. */
function num(value: number | undefined, decimals: number): string {
  if (value === undefined || !Number.isFinite(value)) return '';
  const text = value.toFixed(decimals);
  // "-0.00" would read as a (tiny) loss where there is none.
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text;
}

function bool(value: boolean | undefined): string {
  return value === undefined ? '' : value ? 'true' : 'false';
}

function leaderboardRecord(row: LeaderboardRow): string[] {
  return [
    row.benchmark,
    row.regime,
    row.setting,
    row.task,
    row.metric,
    num(row.mean, PERCENT),
    num(row.std, PERCENT),
    String(row.n),
    num(row.stl_mean, PERCENT),
    num(row.delta_vs_stl, PERCENT),
    num(row.paper, PERCENT),
    num(row.gap_to_paper, PERCENT),
    String(row.rank),
    num(row.ci?.low, PERCENT),
    num(row.ci?.high, PERCENT),
    row.paired ? String(row.paired.n) : '',
    num(row.paired?.mean, PERCENT),
    num(row.paired?.ci?.low, PERCENT),
    num(row.paired?.ci?.high, PERCENT),
    num(row.paired?.p, P_VALUE),
    row.verdict,
    bool(row.primary),
    row.seeds.join(' '),
  ];
}

function summaryRecord(row: SummaryRow): string[] {
  return [
    row.benchmark,
    row.regime,
    row.setting,
    num(row.delta_m_pct, PERCENT),
    row.tasks_worse_than_stl === undefined ? '' : String(row.tasks_worse_than_stl),
    bool(row.negative_transfer),
    num(row.train_seconds, 2),
    String(row.n),
    row.paired_seeds === undefined ? '' : String(row.paired_seeds),
    num(row.delta_m_seeds?.mean, PERCENT),
    num(row.delta_m_seeds?.ci?.low, PERCENT),
    num(row.delta_m_seeds?.ci?.high, PERCENT),
    num(row.delta_m_seeds?.p, P_VALUE),
    row.delta_m_left_out.map((l) => l.reason).join('; '),
    row.rank_delta_m === undefined ? '' : String(row.rank_delta_m),
    row.tasks_significantly_worse === undefined ? '' : String(row.tasks_significantly_worse),
    bool(row.significant_negative_transfer),
    row.worse_tasks.join(';'),
    String(row.failed_cells),
    String(row.unstable_cells),
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
