import { MASKED, NO_CLASS, type DatasetView, type LabelColumn } from '../datasets/types.js';
import { UserError } from '../util/errors.js';
import type { LoadDatasetFn } from './catalog.js';
import type { Cell } from './matrix.js';
import type { ResolvedBenchmark } from './resolve.js';
import { combineSources } from './sources.js';

/**
 * A benchmark's data as its cells train on it: loaded (joined from several sources where the
 * benchmark says so), with named priors laid out, and checked for what data relatedness needs.
 * Shared by the runner and its worker processes, so that both train on the same view.
 */

/** What loading a benchmark's data needs: the data loader and, for named priors, the manifest's tables. */
export interface DataDeps {
  loadDataset: LoadDatasetFn;
  /** Lays out a named manifest prior (only needed when a benchmark names one). */
  priorMatrix?: (prior: string, rows: string[], columns: string[]) => number[][];
}

function carriesLabel(column: LabelColumn, sample: number): boolean {
  if (column.kind === 'categorical') return column.values[sample] !== NO_CLASS;
  for (let j = 0; j < column.width; j++) if (column.values[sample * column.width + j] !== MASKED) return true;
  return false;
}

/**
 * Relatedness from `data` needs samples that carry both labels after the regime thinned them.
 * The trainer has the final word (it counts exactly); this estimate catches the hopeless cases
 * before hours of other cells have run.
 */
export function checkCoannotation(resolved: ResolvedBenchmark, data: DatasetView, cells: Cell[]): void {
  const coupledRegimes = new Set(cells.filter((c) => c.config.relatedness.length > 0).map((c) => c.config.regime.name));
  const train = data.splits.train;
  for (const pair of resolved.doc.relatedness) {
    if (pair.source !== 'data') continue;
    const a = train.labels[pair.from];
    const b = train.labels[pair.to];
    if (!a || !b)
      throw new UserError(
        `${resolved.file}: relatedness ${pair.from}->${pair.to}: the training split has no labels for ${!a ? pair.from : pair.to}`,
      );
    let both = 0;
    for (let i = 0; i < train.count; i++) if (carriesLabel(a, i) && carriesLabel(b, i)) both++;
    for (const regime of resolved.regimes) {
      if (!coupledRegimes.has(regime.name)) continue;
      const spec = regime.spec;
      const kept =
        spec.kind === 'disjoint'
          ? both * spec.overlap
          : spec.kind === 'scarce'
            ? both * spec.fraction
            : spec.kind === 'multi-source'
              ? 0
              : both;
      if (Math.floor(kept) < pair.minCoannotated) {
        throw new UserError(
          `${resolved.file}: relatedness ${pair.from}->${pair.to} (data): ` +
            `regime "${regime.name}" leaves about ${Math.floor(kept)} co-annotated training samples ` +
            `(of ${both}), fewer than min_coannotated ${pair.minCoannotated}; widen the regime, lower min_coannotated, or use a prior`,
        );
      }
    }
  }
}

export async function loadBenchmarkData(resolved: ResolvedBenchmark, deps: DataDeps): Promise<DatasetView> {
  const inputSize = resolved.doc.input.size;
  let view: DatasetView;
  if (resolved.doc.dataset) {
    view = await deps.loadDataset(resolved.doc.dataset, { inputSize });
  } else {
    const views = new Map<string, DatasetView>();
    for (const id of resolved.datasetIds) views.set(id, await deps.loadDataset(id, { inputSize }));
    const bindings = resolved.tasks.map((t) => ({
      task: t.name,
      dataset: resolved.doc.sources![t.name]!.dataset,
      sourceTask: resolved.doc.sources![t.name]!.task,
    }));
    view = combineSources(views, bindings);
  }
  return withNamedPriors(resolved, view, deps);
}

/**
 * A relatedness pair that names a manifest prior gets that prior as its table, laid out for the
 * view's class and label names; it replaces any table the dataset ships for the same pair.
 */
function withNamedPriors(resolved: ResolvedBenchmark, view: DatasetView, deps: DataDeps): DatasetView {
  const named = resolved.doc.relatedness.filter((r) => r.prior !== undefined);
  if (named.length === 0) return view;
  if (!deps.priorMatrix) throw new Error('a named relatedness prior needs the dataset catalog');
  const tables = [...view.relatedness];
  for (const r of named) {
    const fromSpec = view.tasks.find((t) => t.name === r.from);
    const toSpec = view.tasks.find((t) => t.name === r.to);
    if (!fromSpec || !toSpec)
      throw new UserError(`${resolved.file}: relatedness ${r.from}->${r.to}: the dataset view lacks one of the tasks`);
    // Validation made `from` the categorical task: its classes are the prior's rows.
    const matrix = deps.priorMatrix(r.prior!, fromSpec.labels, toSpec.labels);
    for (let i = tables.length - 1; i >= 0; i--) {
      const t = tables[i]!;
      if (t.source === 'prior' && t.from === r.from && t.to === r.to) tables.splice(i, 1);
    }
    tables.push({ from: r.from, to: r.to, source: 'prior', matrix, description: `prior "${r.prior}" of the dataset manifest` });
  }
  return { ...view, relatedness: tables };
}

/** Each task's number of classes or labels in the view, as benchmark.json records it. */
export function classCounts(view: DatasetView): Record<string, number> {
  return Object.fromEntries(view.tasks.map((t) => [t.name, t.labels.length]));
}
