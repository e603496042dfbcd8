import type { CellConfig } from '../config/cell.js';
import { SETTINGS } from '../config/settings.js';
import type { Collected } from '../runs/collect.js';
import { cellId } from '../runs/identity.js';
import type { BenchmarkInfo, CellRecord } from '../runs/store.js';
import { stableStringify } from '../util/stable_json.js';

/**
 * Turns cell results into the leaderboard and the per-setting summary. Metric values are shown in
 * percent (the trainer's fractions × 100) so they sit beside the paper's numbers unchanged.
 */

export const LEADERBOARD_COLUMNS = ['benchmark', 'regime', 'setting', 'task', 'metric', 'mean', 'std', 'n', 'stl_mean', 'delta_vs_stl', 'paper', 'gap_to_paper', 'rank'] as const;
export const LEADERBOARD_EXTRA_COLUMNS = ['primary', 'seeds'] as const;
export const SUMMARY_COLUMNS = ['benchmark', 'regime', 'setting', 'delta_m_pct', 'tasks_worse_than_stl', 'negative_transfer', 'train_seconds'] as const;
export const SUMMARY_EXTRA_COLUMNS = ['n', 'worse_tasks', 'failed_cells', 'verdict'] as const;

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

export interface CurvePoint {
  epoch: number;
  valPrimaryMean: number;
  loss: number;
}

export interface Curve {
  benchmark: string;
  regime: string;
  setting: string;
  /** Mean over the seeds that reached each epoch; metric in percent. */
  points: CurvePoint[];
}

export interface TaskInfo {
  name: string;
  primary: string;
}

export interface BenchmarkReport {
  name: string;
  description: string;
  dataset: string;
  tasks: TaskInfo[];
  regimes: string[];
  settings: string[];
  reference: Record<string, Record<string, number>>;
  leaderboard: LeaderboardRow[];
  summary: SummaryRow[];
  curves: Curve[];
  failures: { cell: string; message: string }[];
  /** Backends, versions and machines the results came from. */
  provenance: string[];
}

export interface Report {
  benchmarks: BenchmarkReport[];
  warnings: string[];
}

const METRIC_ORDER = ['accuracy', 'label_accuracy', 'macro_f1'];
/** A baseline below this many percent makes Δm% (a relative change) swing wildly. */
const SMALL_BASELINE = 5;

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
function tidy(value: number): number {
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

function orderBy<T>(values: T[], preferred: readonly T[]): T[] {
  const known = preferred.filter((v) => values.includes(v));
  const rest = values.filter((v) => !preferred.includes(v)).sort();
  return [...known, ...rest];
}

function describeProvenance(cells: CellRecord[]): string[] {
  const lines = new Set<string>();
  for (const cell of cells) {
    const p = cell.provenance;
    if (!p || !cell.metrics) continue;
    const commit = p.gitCommit ? `, git ${p.gitCommit.slice(0, 10)}${p.gitDirty ? ' (modified)' : ''}` : '';
    lines.add(`${p.package.name} ${p.package.version}${commit}; backend ${p.backend}, tfjs ${p.tfjs}, Node ${p.node}; ${p.cpu.count} × ${p.cpu.model}${p.gpu ? `; GPU ${p.gpu}` : ''}`);
  }
  return [...lines].sort();
}

/** The parts of a config that must agree across a benchmark's cells for a comparison to be fair. */
function sharedFingerprint(config: CellConfig): string {
  return stableStringify({ dataset: config.dataset, tasks: config.tasks, inputSize: config.inputSize, backbone: config.backbone, pretrained: config.pretrained, train: config.train });
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list) list.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

function buildBenchmark(name: string, cells: CellRecord[], info: BenchmarkInfo | undefined, warnings: string[]): BenchmarkReport {
  const done = cells.filter((c) => c.metrics).sort((a, b) => a.config.seed - b.config.seed);
  const failed = cells.filter((c) => c.error);
  const fingerprints = new Set(cells.map((c) => sharedFingerprint(c.config)));
  if (fingerprints.size > 1) {
    warnings.push(`benchmark "${name}": its cells were trained with ${fingerprints.size} different data/backbone/training configurations (e.g. a changed --epochs); compare its rows with care`);
  }
  const taskList: TaskInfo[] = info?.tasks.map((t) => ({ name: t.name, primary: t.primary })) ?? cells[0]!.config.tasks.map((t) => ({ name: t.name, primary: t.primary }));
  const regimes = orderBy([...new Set(cells.map((c) => c.config.regime.name))], info?.regimes ?? []);
  const settings = orderBy([...new Set(cells.map((c) => c.config.setting as string))], SETTINGS);
  const reference = info?.reference ?? {};

  // regime|setting|task|metric → values in seed order
  const values = new Map<string, { values: number[]; seeds: number[] }>();
  const metricsOf = new Map<string, Set<string>>();
  for (const cell of done) {
    for (const [task, metrics] of Object.entries(cell.metrics!.test)) {
      for (const [metric, value] of Object.entries(metrics)) {
        if (typeof value !== 'number' || !Number.isFinite(value)) continue;
        const key = `${cell.config.regime.name}|${cell.config.setting}|${task}|${metric}`;
        const entry = values.get(key) ?? { values: [], seeds: [] };
        entry.values.push(value * 100);
        entry.seeds.push(cell.config.seed);
        values.set(key, entry);
        if (!metricsOf.has(task)) metricsOf.set(task, new Set());
        metricsOf.get(task)!.add(metric);
      }
    }
  }

  const leaderboard: LeaderboardRow[] = [];
  for (const regime of regimes) {
    for (const task of taskList) {
      const metrics = [...(metricsOf.get(task.name) ?? [])];
      const ordered = [task.primary, ...orderBy(metrics.filter((m) => m !== task.primary), METRIC_ORDER)].filter((m) => metrics.includes(m));
      for (const metric of ordered) {
        const stl = values.get(`${regime}|stl|${task.name}|${metric}`);
        const stlMean = stl ? tidy(mean(stl.values)) : undefined;
        const paper = reference[task.name]?.[metric];
        const rows: LeaderboardRow[] = [];
        for (const setting of settings) {
          const entry = values.get(`${regime}|${setting}|${task.name}|${metric}`);
          if (!entry) continue;
          const m = tidy(mean(entry.values));
          const std = sampleStd(entry.values);
          rows.push({
            benchmark: name,
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

  const summary: SummaryRow[] = [];
  for (const regime of regimes) {
    for (const setting of settings) {
      const group = cells.filter((c) => c.config.regime.name === regime && c.config.setting === setting);
      const groupDone = group.filter((c) => c.metrics);
      if (group.length === 0) continue;
      const failedCells = group.filter((c) => c.error).length;
      const trainSeconds = groupDone.length > 0 ? tidy(mean(groupDone.map((c) => c.metrics!.trainSeconds))) : undefined;
      const primaryRows = taskList.map((t) => leaderboard.find((r) => r.regime === regime && r.setting === setting && r.task === t.name && r.metric === t.primary));
      const row: SummaryRow = {
        benchmark: name,
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

  // Δm% divides by the stl value: against a near-zero baseline a change of a point reads as tens
  // of percent, so the reader is told which task drives it.
  for (const regime of regimes) {
    for (const task of taskList) {
      const stl = leaderboard.find((r) => r.regime === regime && r.setting === 'stl' && r.task === task.name && r.metric === task.primary);
      if (stl && stl.mean < SMALL_BASELINE && summary.some((r) => r.regime === regime && r.delta_m_pct !== undefined)) {
        warnings.push(
          `benchmark "${name}", regime ${regime}: stl's ${task.name} ${task.primary} is only ${stl.mean.toFixed(2)}%, so relative changes of that task dominate Δm%; read its rows in the leaderboard`,
        );
      }
    }
  }

  const curves: Curve[] = [];
  for (const regime of regimes) {
    for (const setting of settings) {
      const histories = done.filter((c) => c.config.regime.name === regime && c.config.setting === setting && c.history && c.history.length > 0).map((c) => c.history!);
      if (histories.length === 0) continue;
      const epochs = [...new Set(histories.flatMap((h) => h.map((e) => e.epoch)))].sort((a, b) => a - b);
      const points: CurvePoint[] = [];
      for (const epoch of epochs) {
        const records = histories.map((h) => h.find((e) => e.epoch === epoch)).filter((e) => e !== undefined);
        const vals = records.map((e) => e.valPrimaryMean * 100).filter(Number.isFinite);
        const losses = records.map((e) => e.loss).filter(Number.isFinite);
        if (vals.length === 0 && losses.length === 0) continue;
        points.push({ epoch, valPrimaryMean: vals.length ? tidy(mean(vals)) : Number.NaN, loss: losses.length ? tidy(mean(losses)) : Number.NaN });
      }
      curves.push({ benchmark: name, regime, setting, points });
    }
  }

  return {
    name,
    description: info?.description ?? '',
    dataset: info?.dataset ?? cells[0]!.config.dataset,
    tasks: taskList,
    regimes,
    settings,
    reference,
    leaderboard,
    summary,
    curves,
    failures: failed.map((c) => ({ cell: cellId(c.config), message: c.error!.message.split('\n')[0]! })),
    provenance: describeProvenance(done),
  };
}

export function buildReport(collected: Collected): Report {
  const warnings = [...collected.warnings];
  const byBenchmark = groupBy(collected.cells, (c) => c.config.benchmark);
  const names = [...byBenchmark.keys()].sort();
  return {
    benchmarks: names.map((name) => buildBenchmark(name, byBenchmark.get(name)!, collected.benchmarks.get(name), warnings)),
    warnings,
  };
}
