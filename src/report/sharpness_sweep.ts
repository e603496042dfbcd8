import { isCoupled, isSetting } from '../config/settings.js';
import type { CellRecord } from '../runs/store.js';
import type { Interval } from './stats.js';
import type { SummaryRow } from './summary.js';

/**
 * Δm% against the sharpness blend β of the relatedness, across benchmarks: a sweep is a set of
 * benchmarks (one per β, since a benchmark holds one relatedness list) over the same dataset,
 * tasks and relatedness pairs. Each point is a summary row's Δm% with the 95% interval of Δm%
 * computed per seed, so a reader sees how crisp the relatedness must be for a setting to pay.
 */
export interface SweepPoint {
  beta: number;
  benchmark: string;
  deltaM?: number;
  ci?: Interval;
  /** Seeds of the setting that finished (healthy ones: unstable cells are left out upstream). */
  n: number;
}

export interface SharpnessSweep {
  /** What the benchmarks share: dataset, tasks and pairs. */
  family: string;
  regime: string;
  series: { setting: string; points: SweepPoint[] }[];
}

export interface SweepInput {
  name: string;
  summary: SummaryRow[];
  /** The benchmark's finished cells (their configs give β and the family). */
  done: CellRecord[];
}

/** The one β all coupled cells of a benchmark use on every pair, or undefined (no coupled cell, or several βs). */
function betaOf(done: CellRecord[]): number | undefined {
  const betas = new Set(done.filter((c) => isCoupled(c.config.setting)).flatMap((c) => c.config.relatedness.map((r) => r.sharpnessBlend ?? 0)));
  return betas.size === 1 ? [...betas][0] : undefined;
}

function familyOf(done: CellRecord[]): string | undefined {
  const coupled = done.find((c) => isCoupled(c.config.setting));
  if (!coupled) return undefined;
  const { config } = coupled;
  const tasks = config.tasks.map((t) => t.name).join(' + ');
  const pairs = config.relatedness.map((r) => `${r.from}->${r.to} (${r.source})`).join(', ');
  return `${config.dataset}: ${tasks}, relatedness ${pairs}`;
}

/** Every family with at least two distinct β, one sweep per regime, settings and points in order. */
export function buildSharpnessSweeps(benchmarks: SweepInput[]): SharpnessSweep[] {
  const families = new Map<string, { beta: number; input: SweepInput }[]>();
  for (const input of benchmarks) {
    const beta = betaOf(input.done);
    const family = familyOf(input.done);
    if (beta === undefined || family === undefined) continue;
    families.set(family, [...(families.get(family) ?? []), { beta, input }]);
  }
  const sweeps: SharpnessSweep[] = [];
  for (const [family, members] of [...families.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (new Set(members.map((m) => m.beta)).size < 2) continue;
    members.sort((a, b) => a.beta - b.beta);
    const regimes = [...new Set(members.flatMap((m) => m.input.summary.map((r) => r.regime)))];
    for (const regime of regimes) {
      const settings = [...new Set(members.flatMap((m) => m.input.summary.filter((r) => r.regime === regime && isSetting(r.setting) && isCoupled(r.setting)).map((r) => r.setting)))];
      const series = settings.map((setting) => ({
        setting,
        points: members.flatMap(({ beta, input }) => {
          const row = input.summary.find((r) => r.regime === regime && r.setting === setting);
          if (!row) return [];
          return [{ beta, benchmark: input.name, ...(row.delta_m_pct === undefined ? {} : { deltaM: row.delta_m_pct }), ...(row.delta_m_seeds?.ci ? { ci: row.delta_m_seeds.ci } : {}), n: row.n }];
        }),
      }));
      if (series.some((s) => s.points.length > 1)) sweeps.push({ family, regime, series });
    }
  }
  return sweeps;
}
