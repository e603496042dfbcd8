import type { CellRecord } from '../runs/store.js';
import type { BenchmarkLayout } from './layout.js';
import { mean, tidy } from './stats.js';

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

/** Per regime and setting, the validation score and training loss of each epoch, averaged over seeds. */
export function buildCurves(layout: BenchmarkLayout, done: CellRecord[]): Curve[] {
  const curves: Curve[] = [];
  for (const regime of layout.regimes) {
    for (const setting of layout.settings) {
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
      curves.push({ benchmark: layout.name, regime, setting, points });
    }
  }
  return curves;
}
