import { SETTINGS } from '../config/settings.js';
import type { Collected } from '../runs/collect.js';
import { cellId } from '../runs/identity.js';
import type { BenchmarkInfo, CellRecord } from '../runs/store.js';
import { describeConfiguration, disagreement, type RunConfiguration } from './configuration.js';
import { buildCurves, type CurveChart } from './curves.js';
import type { BenchmarkLayout, TaskInfo } from './layout.js';
import { buildLeaderboard, type LeaderboardRow } from './leaderboard.js';
import { orderBy } from './order.js';
import { SeedValues } from './seed_values.js';
import { buildRelatednessRows, type RelatednessRow } from './relatedness.js';
import { buildSharpnessSweeps, type SharpnessSweep } from './sharpness_sweep.js';
import { buildSummary, smallBaselineWarnings, type SummaryRow } from './summary.js';
import { buildTeacherCharts, teacherBelowStudent, type TeacherChart } from './teachers.js';
import { isUnstable, isWhollyUnstable, unstableCells, type UnstableCell } from './unstable.js';

/**
 * Turns cell results into each benchmark's report: the leaderboard, the per-setting summary, the
 * training curves and what a reader must be warned of. Metric values are shown in percent (the
 * trainer's fractions × 100) so they sit beside the paper's numbers unchanged.
 */

export interface BenchmarkReport {
  name: string;
  description: string;
  dataset: string;
  tasks: TaskInfo[];
  regimes: string[];
  settings: string[];
  reference: Record<string, Record<string, number>>;
  /** What the cells actually ran with (their config.json), and where they disagree. */
  configuration: RunConfiguration;
  leaderboard: LeaderboardRow[];
  summary: SummaryRow[];
  curves: CurveChart[];
  /** How crisp each relatedness pair was and where it came from (metrics.json `relatedness`). */
  relatedness: RelatednessRow[];
  /** Each SCA and DM direction's target scored beside the head it teaches, per epoch. */
  teachers: TeacherChart[];
  /** A sentence for each direction whose teacher ends below its student. */
  teacherFindings: string[];
  failures: { cell: string; message: string }[];
  /** Cells flagged unstable: left out of every number above, listed with the signs found. */
  unstable: UnstableCell[];
  /** Backends, versions and machines the results came from. */
  provenance: string[];
}

export interface Report {
  benchmarks: BenchmarkReport[];
  /** Δm% against the sharpness blend β, over benchmarks that differ only in β. */
  sweeps: SharpnessSweep[];
  warnings: string[];
}

function describeProvenance(cells: CellRecord[]): string[] {
  const lines = new Set<string>();
  for (const cell of cells) {
    const p = cell.provenance;
    if (!p || !cell.metrics) continue;
    const commit = p.gitCommit ? `, git ${p.gitCommit.slice(0, 10)}${p.gitDirty ? ' (modified)' : ''}` : '';
    lines.add(
      `${p.package.name} ${p.package.version}${commit}; backend ${p.backend}, tfjs ${p.tfjs}, Node ${p.node}; ` +
        `${p.cpu.count} × ${p.cpu.model}${p.gpu ? `; GPU ${p.gpu}` : ''}`,
    );
  }
  const reused = groupBy(
    cells.filter((c) => c.metrics?.reusedFrom),
    (c) => c.metrics!.reusedFrom!.benchmark,
  );
  const reuseLines = [...reused].map(
    ([source, list]) =>
      `${list.length} cell${list.length > 1 ? 's' : ''} (${list.map((c) => cellId(c.config)).join(', ')}) not trained here: ` +
      `results of ${source}, which trained the same networks`,
  );
  return [...[...lines].sort(), ...reuseLines.sort()];
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

/** Tasks, regimes and settings in the order benchmark.json gives them (else as the cells name them). */
function layoutOf(name: string, cells: CellRecord[], info: BenchmarkInfo | undefined): BenchmarkLayout {
  return {
    name,
    tasks:
      info?.tasks.map((t) => ({
        name: t.name,
        primary: t.primary,
        kind: t.kind,
        ...(t.classes === undefined ? {} : { classes: t.classes }),
      })) ?? cells[0]!.config.tasks.map((t) => ({ name: t.name, primary: t.primary })),
    regimes: orderBy([...new Set(cells.map((c) => c.config.regime.name))], info?.regimes ?? []),
    settings: orderBy([...new Set(cells.map((c) => c.config.setting as string))], SETTINGS),
    reference: info?.reference ?? {},
  };
}

function buildBenchmark(name: string, cells: CellRecord[], info: BenchmarkInfo | undefined, warnings: string[]): BenchmarkReport {
  const done = cells.filter((c) => c.metrics && !isUnstable(c)).sort((a, b) => a.config.seed - b.config.seed);
  const failed = cells.filter((c) => c.error);
  const layout = layoutOf(name, cells, info);
  const configuration = describeConfiguration(cells, layout.regimes, layout.settings);
  const differing = disagreement(configuration);
  if (differing)
    warnings.push(
      `benchmark "${name}": its cells ran with different configurations (e.g. a changed --epochs): ` +
        `${differing}; compare its rows with care`,
    );
  // Unlike `done`, stl cells with one collapsed network keep their healthy networks' values.
  const values = new SeedValues(cells.filter((c) => c.metrics && !isWhollyUnstable(c)).sort((a, b) => a.config.seed - b.config.seed));
  const leaderboard = buildLeaderboard(layout, values);
  const summary = buildSummary(layout, cells, leaderboard, values);
  warnings.push(...smallBaselineWarnings(layout, leaderboard, summary));
  const teachers = buildTeacherCharts(layout, done);
  return {
    name,
    description: info?.description ?? '',
    dataset: info?.dataset ?? cells[0]!.config.dataset,
    tasks: layout.tasks,
    regimes: layout.regimes,
    settings: layout.settings,
    reference: layout.reference,
    configuration,
    leaderboard,
    summary,
    curves: buildCurves(layout, done),
    relatedness: buildRelatednessRows(done, layout.regimes),
    teachers,
    teacherFindings: teacherBelowStudent(teachers),
    failures: failed.map((c) => ({ cell: cellId(c.config), message: c.error!.message.split('\n')[0]! })),
    unstable: unstableCells(cells),
    provenance: describeProvenance(done),
  };
}

export function buildReport(collected: Collected): Report {
  const warnings = [...collected.warnings];
  const byBenchmark = groupBy(collected.cells, (c) => c.config.benchmark);
  const names = [...byBenchmark.keys()].sort();
  const benchmarks = names.map((name) => buildBenchmark(name, byBenchmark.get(name)!, collected.benchmarks.get(name), warnings));
  const sweeps = buildSharpnessSweeps(
    benchmarks.map((b) => ({
      name: b.name,
      summary: b.summary,
      done: byBenchmark.get(b.name)!.filter((c) => c.metrics && !isUnstable(c)),
    })),
  );
  return { benchmarks, sweeps, warnings };
}
