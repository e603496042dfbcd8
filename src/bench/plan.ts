import { stableStringify } from '../util/stable_json.js';
import type { Cell } from './matrix.js';
import type { ResolvedBenchmark } from './resolve.js';

/**
 * What `run --dry-run` shows of one benchmark before anything trains: where its data and backbone
 * stand on this machine, the resolved configuration (defaults filled in), and the matrix of cells
 * with the ones already done here.
 */
export interface BenchmarkPlan {
  resolved: ResolvedBenchmark;
  /** The cells of this shard (all of them without --shard), in matrix order. */
  cells: Cell[];
  /** Ids of the cells that already hold a result for their config here. */
  done: ReadonlySet<string>;
  /** Cell id → the cell ("benchmark/cell") whose result it will take instead of training (runs/reuse.ts). */
  reusable: ReadonlyMap<string, string>;
  datasets: { id: string; ready: boolean; hint?: string }[];
  backbone: { name: string; pretrained?: string; library?: { label: string; ready: boolean; hint: string } };
  shard?: string;
}

function backboneLine(plan: BenchmarkPlan): string {
  const { name, pretrained, library } = plan.backbone;
  if (pretrained) return `${name} architecture, pretrained weights from ${pretrained}`;
  if (library) {
    const fetched = library.ready ? 'fetched here' : `not fetched here: ${library.hint}`;
    return `${name}: pretrained, ${library.label} (backbones.yaml); ${fetched}`;
  }
  return `${name}, trained from scratch (no pretrained weights)`;
}

export function formatPlan(plan: BenchmarkPlan): string[] {
  const { resolved, cells } = plan;
  const { doc } = resolved;
  const toRun = cells.filter((c) => !plan.done.has(c.id) && !plan.reusable.has(c.id)).length;
  const reused = plan.reusable.size > 0 ? `, ${plan.reusable.size} reused from other benchmarks` : '';
  const state = (id: string) => (plan.done.has(id) ? '  done' : plan.reusable.has(id) ? `  reuses ${plan.reusable.get(id)}` : '');
  const lines = [
    `${resolved.name} (${resolved.file})${doc.description ? `: ${doc.description}` : ''}`,
    ...plan.datasets.map(
      (d) => `  dataset      ${d.id}: ${d.ready ? 'here' : `not here: ${d.hint ?? `run: mtl-bench datasets fetch ${d.id}`}`}`,
    ),
    `  tasks        ${resolved.tasks.map((t) => `${t.name} (${t.kind}, ${t.primary})`).join(', ')}`,
    `  input        ${doc.input.size}×${doc.input.size}`,
    `  backbone     ${backboneLine(plan)}`,
    `  train        ${stableStringify(doc.train)}`,
    `  method       ${stableStringify(doc.method)} (each setting reads only its own options)`,
    '  relatedness  ' +
      (doc.relatedness.length > 0 ? doc.relatedness.map((r) => `${r.from}->${r.to} ${stableStringify(r)}`).join('; ') : 'none'),
    `  regimes      ${resolved.regimes.map((r) => `${r.name} ${stableStringify(r.spec)}`).join('; ')}`,
    `  settings     ${resolved.settings.join(', ')}`,
    `  seeds        ${resolved.seeds.join(', ')}`,
    `  cells        ${cells.length}${plan.shard ? ` in shard ${plan.shard}` : ''}: ${plan.done.size} done here${reused}, ${toRun} to run`,
    ...cells.map((c) => `    ${c.id.padEnd(Math.max(...cells.map((x) => x.id.length)))}  ${c.hash.slice(0, 12)}${state(c.id)}`),
  ];
  return lines;
}

/** The same as one JSON object, for --json. */
export function planJson(plan: BenchmarkPlan): Record<string, unknown> {
  const { resolved } = plan;
  const { doc } = resolved;
  return {
    event: 'plan',
    benchmark: resolved.name,
    file: resolved.file,
    datasets: plan.datasets,
    backbone: plan.backbone,
    config: {
      tasks: resolved.tasks,
      input: doc.input,
      train: doc.train,
      method: doc.method,
      relatedness: doc.relatedness,
      regimes: resolved.regimes,
      settings: resolved.settings,
      seeds: resolved.seeds,
    },
    shard: plan.shard ?? null,
    cells: plan.cells.map((c) => ({ id: c.id, hash: c.hash, done: plan.done.has(c.id), reuses: plan.reusable.get(c.id) ?? null })),
  };
}
