import type { CellRecord } from '../runs/store.js';
import type { EpochRecord } from '../train/types.js';
import type { BenchmarkLayout } from './layout.js';
import { mean, tidy } from './stats.js';

/** One epoch of one setting: the mean over the seeds that reached it, and the lowest and highest seed. */
export interface BandPoint {
  epoch: number;
  mean: number;
  low: number;
  high: number;
  seeds: number;
}

export interface CurveSeries {
  setting: string;
  points: BandPoint[];
}

/**
 * One chart's worth of curves: a loss term (the supervised loss of a task, or one direction of
 * SCA or DM, each as history.json records it) or a task's primary validation metric, in percent.
 */
export interface CurveChart {
  regime: string;
  kind: 'validation' | 'loss';
  /** The task (validation) or the term's name (loss), e.g. "sup:group", "dm:tags->group". */
  name: string;
  series: CurveSeries[];
}

export type Reading = (record: EpochRecord) => number | undefined;

/** Per epoch, the mean, lowest and highest of `read` over the histories that reached it. */
export function band(histories: EpochRecord[][], read: Reading): BandPoint[] {
  const epochs = [...new Set(histories.flatMap((h) => h.map((e) => e.epoch)))].sort((a, b) => a - b);
  const points: BandPoint[] = [];
  for (const epoch of epochs) {
    const values = histories
      .map((h) => h.find((e) => e.epoch === epoch))
      .map((e) => (e ? read(e) : undefined))
      .filter((v): v is number => v !== undefined && Number.isFinite(v));
    if (values.length === 0) continue;
    points.push({ epoch, mean: tidy(mean(values)), low: tidy(Math.min(...values)), high: tidy(Math.max(...values)), seeds: values.length });
  }
  return points;
}

/** sup:<task> in task order, then each SCA direction, then each DM direction; the per-group sums are left out. */
function termOrder(names: Set<string>, tasks: string[]): string[] {
  const sup = tasks.map((t) => `sup:${t}`).filter((n) => names.has(n));
  const rest = [...names].filter((n) => n.includes(':') && !sup.includes(n));
  const rank = (n: string) => (n.startsWith('sup:') ? 0 : n.startsWith('sca:') ? 1 : n.startsWith('dm:') ? 2 : 3);
  return [...sup, ...rest.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1))];
}

/** Per regime: one chart per task's validation metric and one per loss term, a series per setting. */
export function buildCurves(layout: BenchmarkLayout, done: CellRecord[]): CurveChart[] {
  const charts: CurveChart[] = [];
  for (const regime of layout.regimes) {
    const historiesOf = new Map<string, EpochRecord[][]>();
    for (const setting of layout.settings) {
      const histories = done
        .filter((c) => c.config.regime.name === regime && c.config.setting === setting && c.history && c.history.length > 0)
        .map((c) => c.history!);
      if (histories.length > 0) historiesOf.set(setting, histories);
    }
    const chart = (kind: CurveChart['kind'], name: string, read: Reading) => {
      const series = [...historiesOf.entries()]
        .map(([setting, histories]) => ({ setting, points: band(histories, read) }))
        .filter((s) => s.points.length > 0);
      if (series.length > 0) charts.push({ regime, kind, name, series });
    };
    for (const task of layout.tasks) chart('validation', task.name, (e) => (e.val[task.name]?.[task.primary] ?? Number.NaN) * 100);
    const terms = new Set([...historiesOf.values()].flat(2).flatMap((e) => Object.keys(e.terms ?? {})));
    for (const term of termOrder(
      terms,
      layout.tasks.map((t) => t.name),
    ))
      chart('loss', term, (e) => e.terms?.[term]);
  }
  return charts;
}
