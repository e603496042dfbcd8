import type { CellRecord } from '../runs/store.js';
import { floorReason } from './floor.js';
import type { BenchmarkLayout, TaskInfo } from './layout.js';
import type { LeaderboardRow } from './leaderboard.js';
import type { SeedValues } from './seed_values.js';
import { deltaM, mean, pairedTest, tidy, type Interval, type PairedTest } from './stats.js';
import { isUnstable, isWhollyUnstable, unstableTasks } from './unstable.js';
import { formatP, type Finding, type RowFinding } from './verdict.js';

export const SUMMARY_COLUMNS = [
  'benchmark',
  'regime',
  'setting',
  'delta_m_pct',
  'tasks_worse_than_stl',
  'negative_transfer',
  'train_seconds',
] as const;
export const SUMMARY_EXTRA_COLUMNS = [
  'n',
  'paired_seeds',
  'delta_m_seed_mean',
  'delta_m_ci_low',
  'delta_m_ci_high',
  'delta_m_p',
  'delta_m_left_out',
  'rank_delta_m',
  'tasks_significantly_worse',
  'significant_negative_transfer',
  'worse_tasks',
  'failed_cells',
  'unstable_cells',
  'verdict',
] as const;

/** One task's primary metric in a summary row. */
export interface TaskOutcome {
  task: string;
  metric: string;
  mean: number;
  ci?: Interval;
  n: number;
  delta_vs_stl?: number;
  paired?: PairedTest;
  finding: Finding;
}

export interface SummaryRow {
  benchmark: string;
  regime: string;
  setting: string;
  /**
   * The paper's Δm% on the means over seeds, over the tasks whose stl baseline is usable (see
   * `delta_m_left_out`); undefined for stl itself, where a task has no stl baseline, and where
   * no task is left.
   */
  delta_m_pct?: number;
  /** Tasks whose mean is below stl's (the paper's negative transfer counts these). */
  tasks_worse_than_stl?: number;
  negative_transfer?: boolean;
  /** Mean training time of one cell (one seed) of this setting. */
  train_seconds?: number;
  n: number;
  /** Seeds on which this setting and stl both have every task Δm% uses. */
  paired_seeds?: number;
  /** Δm% computed on each paired seed, then summarised: mean, 95% interval, paired t-test against 0. */
  delta_m_seeds?: PairedTest;
  /** The tasks left out of Δm%, each with why (plain ASCII). */
  delta_m_left_out: { task: string; reason: string }[];
  /**
   * 1 = the highest Δm% among the regime's multi-task settings (equal values share a rank), so
   * "distribution matching against the best standard method" is one column; undefined without Δm%.
   */
  rank_delta_m?: number;
  /** Tasks that are worse than stl by the paired t-test at 5%; undefined where no task has two paired seeds. */
  tasks_significantly_worse?: number;
  significant_negative_transfer?: boolean;
  worse_tasks: string[];
  failed_cells: number;
  /** Cells flagged unstable by their trainer: left out of every number of the row, like failed cells. */
  unstable_cells: number;
  /** The primary metric of every task, for tables that show them beside Δm%. */
  tasks: TaskOutcome[];
  /** The strongest finding of the row, for colour: a significant drop outweighs everything else. */
  finding: RowFinding;
  verdict: string;
}

/** A baseline below this many percent makes Δm% (a relative change) swing wildly. */
const SMALL_BASELINE = 5;

function signed(value: number, decimals = 2): string {
  return `${value > 0 ? '+' : ''}${value.toFixed(decimals)}`;
}

function outcomeOf(row: LeaderboardRow): TaskOutcome {
  return {
    task: row.task,
    metric: row.metric,
    mean: row.mean,
    ...(row.ci ? { ci: row.ci } : {}),
    n: row.n,
    ...(row.delta_vs_stl === undefined ? {} : { delta_vs_stl: row.delta_vs_stl }),
    ...(row.paired ? { paired: row.paired } : {}),
    finding: row.finding,
  };
}

/** Δm% of each seed that the setting and stl share on every task of `tasks`, in seed order. */
function deltaMPerSeed(values: SeedValues, regime: string, setting: string, tasks: TaskInfo[]): number[] {
  const series = tasks.map((t) => ({
    own: values.get(regime, setting, t.name, t.primary)!,
    stl: values.get(regime, 'stl', t.name, t.primary)!,
  }));
  const seeds = series[0]!.own.seeds.filter((seed) => series.every((s) => s.own.seeds.includes(seed) && s.stl.seeds.includes(seed)));
  const at = (s: { seeds: number[]; values: number[] }, seed: number) => s.values[s.seeds.indexOf(seed)]!;
  return seeds.map((seed) =>
    deltaM(
      series.map((s) => at(s.own, seed)),
      series.map((s) => at(s.stl, seed)),
    )!,
  );
}

function overallFinding(outcomes: TaskOutcome[]): Finding {
  const has = (finding: Finding) => outcomes.some((o) => o.finding === finding);
  if (has('significant-drop')) return 'significant-drop';
  if (outcomes.every((o) => o.finding === 'one-seed' || o.finding === 'no-pair')) return 'one-seed';
  if (has('drop-within-noise')) return 'drop-within-noise';
  if (has('significant-gain')) return 'significant-gain';
  return 'no-difference';
}

function pts(o: TaskOutcome): string {
  const p = o.paired?.p;
  return `${o.task} ${o.metric} (${signed(o.delta_vs_stl!)} pts${p === undefined ? '' : `, ${formatP(p)}`})`;
}

/** The row's verdict in words (plain ASCII): what differs from stl, how sure that is, and Δm%. */
function describe(row: SummaryRow, outcomes: TaskOutcome[]): string {
  const parts: string[] = [];
  const where = (finding: Finding) => outcomes.filter((o) => o.finding === finding);
  if (row.finding === 'one-seed') {
    parts.push('1 seed: no uncertainty estimate');
    const lower = outcomes.filter((o) => o.delta_vs_stl! < 0);
    if (lower.length > 0) parts.push(`lower than stl on ${lower.map(pts).join(', ')}`);
  } else {
    const drops = where('significant-drop');
    const noisy = where('drop-within-noise');
    const gains = where('significant-gain');
    if (drops.length > 0) parts.push(`worse than stl (significant) on ${drops.map(pts).join(', ')}`);
    if (noisy.length > 0) parts.push(`worse, within noise, on ${noisy.map(pts).join(', ')}`);
    if (gains.length > 0) parts.push(`better than stl (significant) on ${gains.map(pts).join(', ')}`);
    if (parts.length === 0) parts.push('no detectable difference on any task');
  }
  if (row.delta_m_pct === undefined) {
    parts.push('delta_m undefined: no task has a usable stl baseline');
  } else {
    const s = row.delta_m_seeds;
    const interval = s?.ci ? ` (95% CI ${s.ci.low.toFixed(2)} to ${s.ci.high.toFixed(2)}, ${formatP(s.p!)})` : '';
    parts.push(`delta_m ${signed(row.delta_m_pct)}%${interval}`);
  }
  if (row.delta_m_left_out.length > 0) parts.push(`left out of delta_m: ${row.delta_m_left_out.map((l) => l.reason).join('; ')}`);
  return parts.join('; ');
}

/** "seeds 1, 3", or for stl cells of which only some networks were flagged "seed 1 (its group network)". */
function describeUnstable(cells: CellRecord[]): string {
  const parts = cells.map((c) => {
    const tasks = unstableTasks(c);
    const partial = tasks.size < c.config.tasks.length ? ` (its ${[...tasks].join(' and ')} network${tasks.size > 1 ? 's' : ''})` : '';
    return `${c.config.seed}${partial}`;
  });
  return `seed${cells.length > 1 ? 's' : ''} ${parts.join(', ')}`;
}

/** One row per regime and setting: Δm% against stl, negative transfer and a verdict in words. */
export function buildSummary(
  layout: BenchmarkLayout,
  cells: CellRecord[],
  leaderboard: LeaderboardRow[],
  values: SeedValues,
): SummaryRow[] {
  const summary: SummaryRow[] = [];
  for (const regime of layout.regimes) {
    for (const setting of layout.settings) {
      const group = cells.filter((c) => c.config.regime.name === regime && c.config.setting === setting);
      const groupDone = group.filter((c) => c.metrics && !isWhollyUnstable(c));
      if (group.length === 0) continue;
      const failedCells = group.filter((c) => c.error).length;
      const unstable = group.filter(isUnstable);
      const trainSeconds = groupDone.length > 0 ? tidy(mean(groupDone.map((c) => c.metrics!.trainSeconds))) : undefined;
      const primaryRows = layout.tasks.map((t) =>
        leaderboard.find((r) => r.regime === regime && r.setting === setting && r.task === t.name && r.metric === t.primary),
      );
      const row: SummaryRow = {
        benchmark: layout.name,
        regime,
        setting,
        train_seconds: trainSeconds,
        n: groupDone.length,
        delta_m_left_out: [],
        worse_tasks: [],
        failed_cells: failedCells,
        unstable_cells: unstable.length,
        tasks: primaryRows.filter((r) => r !== undefined).map(outcomeOf),
        finding: 'incomplete',
        verdict: '',
      };
      if (setting === 'stl') {
        row.finding = groupDone.length > 0 ? 'baseline' : 'incomplete';
        row.verdict = groupDone.length > 0 ? 'single-task baseline' : 'baseline failed';
      } else if (groupDone.length === 0) {
        row.verdict = 'no result (every cell failed)';
      } else if (primaryRows.some((r) => r === undefined)) {
        row.verdict = 'a task has no result';
      } else if (primaryRows.some((r) => r!.stl_mean === undefined)) {
        row.finding = 'no-baseline';
        row.verdict = 'no stl baseline in this regime: delta_m and negative transfer cannot be computed';
      } else {
        const rowsOk = primaryRows as LeaderboardRow[];
        row.worse_tasks = rowsOk.filter((r) => r.mean < r.stl_mean!).map((r) => r.task);
        row.tasks_worse_than_stl = row.worse_tasks.length;
        row.negative_transfer = row.worse_tasks.length > 0;
        const kept: TaskInfo[] = [];
        for (const task of layout.tasks) {
          const reason = floorReason(task, values.get(regime, 'stl', task.name, task.primary)!);
          if (reason) row.delta_m_left_out.push({ task: task.name, reason });
          else kept.push(task);
        }
        const keptRows = rowsOk.filter((r) => kept.some((t) => t.name === r.task));
        const dm = deltaM(
          keptRows.map((r) => r.mean),
          keptRows.map((r) => r.stl_mean!),
        );
        row.delta_m_pct = dm === undefined ? undefined : tidy(dm);
        if (kept.length > 0) {
          const perSeed = deltaMPerSeed(values, regime, setting, kept);
          row.paired_seeds = perSeed.length;
          if (perSeed.length > 0) {
            const test = pairedTest(perSeed);
            row.delta_m_seeds = {
              mean: tidy(test.mean),
              n: test.n,
              ...(test.std === undefined ? {} : { std: tidy(test.std) }),
              ...(test.ci ? { ci: { low: tidy(test.ci.low), high: tidy(test.ci.high) } } : {}),
              ...(test.p === undefined ? {} : { p: tidy(test.p) }),
            };
          }
        }
        const tested = row.tasks.filter((o) => o.paired?.p !== undefined);
        if (tested.length > 0) {
          row.tasks_significantly_worse = row.tasks.filter((o) => o.finding === 'significant-drop').length;
          row.significant_negative_transfer = row.tasks_significantly_worse > 0;
        }
        row.finding = overallFinding(row.tasks);
        row.verdict = describe(row, row.tasks);
      }
      if (failedCells > 0) row.verdict += `; ${failedCells} cell${failedCells > 1 ? 's' : ''} failed`;
      if (unstable.length > 0) row.verdict += `; left out as unstable: ${describeUnstable(unstable)}`;
      summary.push(row);
    }
  }
  rankByDeltaM(summary);
  return summary;
}

function rankByDeltaM(rows: SummaryRow[]): void {
  for (const row of rows) {
    if (row.delta_m_pct === undefined) continue;
    const rivals = rows.filter((other) => other.regime === row.regime && other.delta_m_pct !== undefined);
    row.rank_delta_m = 1 + rivals.filter((other) => other.delta_m_pct! > row.delta_m_pct!).length;
  }
}

/**
 * Δm% divides by the stl value: against a small baseline (above the floor that leaves a task
 * out) a change of a point still reads as tens of percent, so the reader is told which task drives it.
 */
export function smallBaselineWarnings(layout: BenchmarkLayout, leaderboard: LeaderboardRow[], summary: SummaryRow[]): string[] {
  const warnings: string[] = [];
  for (const regime of layout.regimes) {
    for (const task of layout.tasks) {
      const stl = leaderboard.find((r) => r.regime === regime && r.setting === 'stl' && r.task === task.name && r.metric === task.primary);
      const usedInDeltaM = summary.some(
        (r) => r.regime === regime && r.delta_m_pct !== undefined && !r.delta_m_left_out.some((l) => l.task === task.name),
      );
      if (stl && stl.mean < SMALL_BASELINE && usedInDeltaM) {
        warnings.push(
          `benchmark "${layout.name}", regime ${regime}: stl's ${task.name} ${task.primary} is only ${stl.mean.toFixed(2)}%, ` +
            'so relative changes of that task dominate Δm%; read its rows in the leaderboard',
        );
      }
    }
  }
  return warnings;
}

/**
 * The summary paragraph: how many multi-task rows show negative transfer as the paper defines it,
 * and how many of those drops are significant; undefined without multi-task rows.
 */
export function transferSentence(rows: SummaryRow[]): string | undefined {
  const compared = rows.filter((r) => r.negative_transfer !== undefined);
  if (compared.length === 0) return undefined;
  const lower = compared.filter((r) => r.negative_transfer);
  const tested = compared.filter((r) => r.significant_negative_transfer !== undefined);
  const significant = tested.filter((r) => r.significant_negative_transfer);
  const name = (r: SummaryRow) => `${r.setting} in ${r.regime}`;
  let text =
    'Negative transfer as the paper defines it (a lower mean than stl on at least one task): ' +
    `${lower.length} of ${compared.length} multi-task rows`;
  if (lower.length > 0) text += ` (${lower.map((r) => `${name(r)}: ${r.worse_tasks.join(', ')}`).join('; ')})`;
  if (tested.length === 0) {
    text += '. None of it can be called significant: every row has a single seed.';
  } else {
    text +=
      '. Significant drops (paired t-test over seeds, p < 0.05): ' +
      `${significant.length} of ${tested.length} rows with two or more seeds`;
    text += significant.length > 0 ? ` (${significant.map(name).join('; ')}).` : '.';
  }
  return text;
}

/** One note per regime and task left out of Δm% (the reason depends on stl alone, so it is the same for every setting). */
export function leftOutNotes(rows: SummaryRow[]): string[] {
  const notes = new Set<string>();
  for (const r of rows) for (const l of r.delta_m_left_out) notes.add(`Δm% in ${r.regime} leaves out ${l.reason}.`);
  return [...notes];
}
