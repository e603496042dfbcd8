import type { CellRecord } from '../runs/store.js';
import { unstableTasks } from './unstable.js';

/** One metric of one (regime, setting, task) over the seeds that finished, in seed order; in percent. */
export interface SeedSeries {
  values: number[];
  seeds: number[];
}

/** Every finite test metric of a benchmark's finished cells, looked up by regime, setting, task and metric. */
export class SeedValues {
  private readonly series = new Map<string, SeedSeries>();
  private readonly metrics = new Map<string, Set<string>>();

  /**
   * `done`, cells with metrics, must be sorted by seed: the series keep that order. The tasks of
   * networks flagged unstable are left out (report/unstable.ts).
   */
  constructor(done: CellRecord[]) {
    for (const cell of done) {
      const leftOut = unstableTasks(cell);
      for (const [task, metrics] of Object.entries(cell.metrics!.test)) {
        if (leftOut.has(task)) continue;
        for (const [metric, value] of Object.entries(metrics)) {
          if (typeof value !== 'number' || !Number.isFinite(value)) continue;
          const key = SeedValues.key(cell.config.regime.name, cell.config.setting, task, metric);
          const entry = this.series.get(key) ?? { values: [], seeds: [] };
          entry.values.push(value * 100);
          entry.seeds.push(cell.config.seed);
          this.series.set(key, entry);
          if (!this.metrics.has(task)) this.metrics.set(task, new Set());
          this.metrics.get(task)!.add(metric);
        }
      }
    }
  }

  private static key(regime: string, setting: string, task: string, metric: string): string {
    return `${regime}|${setting}|${task}|${metric}`;
  }

  get(regime: string, setting: string, task: string, metric: string): SeedSeries | undefined {
    return this.series.get(SeedValues.key(regime, setting, task, metric));
  }

  /** The metrics any cell reported for a task. */
  metricsOf(task: string): string[] {
    return [...(this.metrics.get(task) ?? [])];
  }
}

/** `setting − stl` on each seed both have, in seed order. */
export function pairedDifferences(setting: SeedSeries, stl: SeedSeries): { seeds: number[]; differences: number[] } {
  const seeds: number[] = [];
  const differences: number[] = [];
  setting.seeds.forEach((seed, i) => {
    const j = stl.seeds.indexOf(seed);
    if (j < 0) return;
    seeds.push(seed);
    differences.push(setting.values[i]! - stl.values[j]!);
  });
  return { seeds, differences };
}
