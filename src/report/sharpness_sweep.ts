import { isCoupled, isSetting } from '../config/settings.js';
import type { CellRecord } from '../runs/store.js';
import { stableStringify } from '../util/stable_json.js';
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
  const betas = new Set(
    done.filter((c) => isCoupled(c.config.setting)).flatMap((c) => c.config.relatedness.map((r) => r.sharpnessBlend ?? 0)),
  );
  return betas.size === 1 ? [...betas][0] : undefined;
}

/** What a benchmark must share with the others of its sweep, and how the sweep is titled. */
function familyOf(done: CellRecord[]): { key: string; title: string } | undefined {
  const coupled = done.find((c) => isCoupled(c.config.setting));
  if (!coupled) return undefined;
  const { config } = coupled;
  const tasks = config.tasks.map((t) => t.name).join(' + ');
  const pairs = config.relatedness.map((r) => `${r.from}->${r.to} (${r.source})`).join(', ');
  const title = `${config.dataset}: ${tasks}, relatedness ${pairs}`;
  // Same data, pairs, network and training; β, the settings, regimes and seeds may differ.
  const pairsWithoutBeta = config.relatedness.map(({ sharpnessBlend: _beta, ...rest }) => rest);
  return {
    key: stableStringify({ title, pairsWithoutBeta, backbone: config.backbone, inputSize: config.inputSize, train: config.train }),
    title,
  };
}

/**
 * Of several benchmarks' rows at one β (e.g. a study and the sweep's β = 0 file), the one with the
 * most seeds, then the first by name.
 */
function preferred(a: { row: SummaryRow; name: string }, b: { row: SummaryRow; name: string }): number {
  return b.row.n - a.row.n || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** Every family with at least two distinct β, one sweep per regime, settings and points in order. */
export function buildSharpnessSweeps(benchmarks: SweepInput[]): SharpnessSweep[] {
  const families = new Map<string, { title: string; members: { beta: number; input: SweepInput }[] }>();
  for (const input of benchmarks) {
    const beta = betaOf(input.done);
    const family = familyOf(input.done);
    if (beta === undefined || family === undefined) continue;
    const entry = families.get(family.key) ?? { title: family.title, members: [] };
    entry.members.push({ beta, input });
    families.set(family.key, entry);
  }
  const sweeps: SharpnessSweep[] = [];
  for (const { title, members } of [...families.values()].sort((a, b) => (a.title < b.title ? -1 : a.title > b.title ? 1 : 0))) {
    const betas = [...new Set(members.map((m) => m.beta))].sort((a, b) => a - b);
    if (betas.length < 2) continue;
    const regimes = [...new Set(members.flatMap((m) => m.input.summary.map((r) => r.regime)))];
    for (const regime of regimes) {
      const settings = [
        ...new Set(
          members.flatMap((m) =>
            m.input.summary.filter((r) => r.regime === regime && isSetting(r.setting) && isCoupled(r.setting)).map((r) => r.setting),
          ),
        ),
      ];
      const series = settings
        .map((setting) => ({
          setting,
          points: betas.flatMap((beta) => {
            const candidates = members
              .filter((m) => m.beta === beta)
              .flatMap((m) =>
                m.input.summary
                  .filter((r) => r.regime === regime && r.setting === setting && r.n > 0)
                  .map((row) => ({ row, name: m.input.name })),
              )
              .sort(preferred);
            const chosen = candidates[0];
            if (!chosen) return [];
            const { row, name } = chosen;
            return [
              {
                beta,
                benchmark: name,
                ...(row.delta_m_pct === undefined ? {} : { deltaM: row.delta_m_pct }),
                ...(row.delta_m_seeds?.ci ? { ci: row.delta_m_seeds.ci } : {}),
                n: row.n,
              },
            ];
          }),
        }))
        .filter((s) => s.points.length > 1);
      if (series.length > 0) sweeps.push({ family: title, regime, series });
    }
  }
  return sweeps;
}
