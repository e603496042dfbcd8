import path from 'node:path';
import { MASKED, NO_CLASS, type DatasetView, type LabelColumn } from '../datasets/types.js';
import type { CellConfig } from '../config/cell.js';
import type { CellResult } from '../train/types.js';
import { UserError, errorMessage } from '../util/errors.js';
import type { LoadDatasetFn } from './catalog.js';
import { expandMatrix, selectShard, type Cell, type Shard } from './matrix.js';
import type { ResolvedBenchmark } from './resolve.js';
import { combineSources } from './sources.js';
import { claimCells, describeConflicts, lockCell } from '../runs/sharing.js';
import {
  beginCell,
  finishCell,
  hasResult,
  prepareBenchmarkFolder,
  readBenchmarkInfo,
  recordFailure,
  writeBenchmarkInfo,
  type BenchmarkInfo,
  type ErrorFile,
  type MetricsFile,
  type Provenance,
} from '../runs/store.js';
import { describeOwner } from '../util/lock.js';

export type ProgressMode = 'bar' | 'lines' | 'quiet' | 'jsonl';

export type TrainCellFn = (
  config: CellConfig,
  data: DatasetView,
  options: { outDir?: string; progress?: ProgressMode; progressLabel?: string; signal?: AbortSignal },
) => Promise<CellResult>;

/** The trainer and the data loader are injected so the runner can be tested with doubles. */
export interface RunnerDeps {
  trainCell: TrainCellFn;
  loadDataset: LoadDatasetFn;
  provenance: () => Provenance;
  /** Lays out a named manifest prior (only needed when a benchmark names one). */
  priorMatrix?: (prior: string, rows: string[], columns: string[]) => number[][];
}

/**
 * done: trained now; skipped: already done (by an earlier run, or by another process meanwhile);
 * busy: another live process is training it; refused: another live run uses it with a different
 * config; failed; interrupted.
 */
export type CellStatus = 'done' | 'skipped' | 'busy' | 'refused' | 'failed' | 'interrupted';

export interface CellOutcome {
  cell: Cell;
  dir: string;
  status: CellStatus;
  metrics?: MetricsFile;
  error?: ErrorFile;
  wallSeconds?: number;
  /** For busy, refused and interrupted cells: what happened, in one line. */
  note?: string;
}

/** What the runner tells the user as it goes (text lines or JSON events). */
export interface RunReporter {
  benchmarkStart(info: {
    benchmark: string;
    dir: string;
    cells: number;
    toRun: number;
    skipped: number;
    refused: number;
    shard?: Shard;
  }): void;
  cellStart(info: { benchmark: string; cell: Cell; position: number; toRun: number; etaSeconds?: number }): void;
  cellEnd(outcome: CellOutcome & { benchmark: string; position: number; toRun: number }): void;
  benchmarkEnd(info: { benchmark: string; dir: string; outcomes: CellOutcome[] }): void;
  /** Something the user should know that is not a cell's outcome (a stale lock taken over, a refused set of cells). */
  notice(info: { benchmark: string; message: string }): void;
}

export interface RunOptions {
  /** Parent of the benchmark folder: cells go to <outRoot>/<benchmark>/<cell>/. */
  outRoot: string;
  shard?: Shard;
  progress: ProgressMode;
  signal?: AbortSignal;
  reporter: RunReporter;
}

export interface BenchmarkRun {
  benchmark: string;
  dir: string;
  outcomes: CellOutcome[];
  interrupted: boolean;
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
function checkCoannotation(resolved: ResolvedBenchmark, data: DatasetView, cells: Cell[]): void {
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

async function loadBenchmarkData(resolved: ResolvedBenchmark, deps: RunnerDeps): Promise<DatasetView> {
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
function withNamedPriors(resolved: ResolvedBenchmark, view: DatasetView, deps: RunnerDeps): DatasetView {
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

/** A result without the primary metric of every task is a trainer bug, not a result. */
function checkResult(config: CellConfig, result: CellResult): void {
  for (const task of config.tasks) {
    const value = result.test?.[task.name]?.[task.primary];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new Error(`the trainer returned no finite test ${task.primary} for task "${task.name}"`);
    }
  }
  if (!Array.isArray(result.history)) throw new Error('the trainer returned no per-epoch history');
}

export function benchmarkInfo(original: ResolvedBenchmark): BenchmarkInfo {
  const { doc } = original;
  return {
    name: original.name,
    description: doc.description,
    file: original.file,
    dataset: original.datasetLabel,
    tasks: original.tasks.map((t) => ({ name: t.name, kind: t.kind, primary: t.primary })),
    regimes: original.regimes.map((r) => r.name),
    settings: [...original.settings],
    seeds: [...original.seeds],
    reference: doc.reference,
    check: doc.check.map((c) => ({ ...c })),
  };
}

/** The benchmark's description with each task's number of classes or labels, where known. */
function withClasses(info: BenchmarkInfo, classesOf: (task: BenchmarkInfo['tasks'][number]) => number | undefined): BenchmarkInfo {
  return {
    ...info,
    tasks: info.tasks.map((task) => {
      const classes = classesOf(task);
      return classes === undefined ? task : { ...task, classes };
    }),
  };
}

/**
 * Runs the cells of one benchmark (or of one shard of it) that have no result for their current
 * config. A cell that throws is recorded in its folder and the others go on; an abort stops
 * after the running cell has handed back control. Other processes may use the same folder at the
 * same time (see runs/sharing.ts): cells a live run holds with another config are refused, cells
 * another process is training are left to it.
 */
export async function runBenchmark(
  resolved: ResolvedBenchmark,
  info: BenchmarkInfo,
  options: RunOptions,
  deps: RunnerDeps,
): Promise<BenchmarkRun> {
  const dir = path.join(options.outRoot, resolved.name);
  await prepareBenchmarkFolder(dir);
  // Class counts come from the data, which a run with nothing left to train never loads: keep
  // those an earlier run recorded for the same tasks.
  const earlier = readBenchmarkInfo(dir);
  await writeBenchmarkInfo(
    dir,
    withClasses(info, (task) => earlier?.tasks.find((t) => t.name === task.name && t.kind === task.kind)?.classes),
  );
  const notice = (message: string) => options.reporter.notice({ benchmark: resolved.name, message });
  const cells = selectShard(expandMatrix(resolved), options.shard);
  const claim = await claimCells(dir, cells, notice);
  try {
    const refused = new Set(claim.conflicts.map((c) => c.cell));
    if (refused.size > 0) notice(describeConflicts(resolved.name, claim.conflicts));
    const outcomes: CellOutcome[] = cells
      .filter((cell) => refused.has(cell.id))
      .map((cell) => ({
        cell,
        dir: path.join(dir, cell.id),
        status: 'refused' as const,
        note: 'another run uses this cell with a different configuration',
      }));
    const open = cells.filter((cell) => !refused.has(cell.id));
    const pending = open.filter((cell) => !hasResult(path.join(dir, cell.id), cell.hash));
    outcomes.push(
      ...open.filter((cell) => !pending.includes(cell)).map((cell) => ({ cell, dir: path.join(dir, cell.id), status: 'skipped' as const })),
    );
    options.reporter.benchmarkStart({
      benchmark: resolved.name,
      dir,
      cells: cells.length,
      toRun: pending.length,
      skipped: cells.length - pending.length - refused.size,
      refused: refused.size,
      shard: options.shard,
    });
    const interrupted = await runPending(resolved, info, dir, pending, outcomes, options, deps, notice);
    outcomes.sort((a, b) => a.cell.index - b.cell.index);
    options.reporter.benchmarkEnd({ benchmark: resolved.name, dir, outcomes });
    return { benchmark: resolved.name, dir, outcomes, interrupted };
  } finally {
    await claim.release();
  }
}

/** Trains the pending cells one after another, each under its lock; returns whether it was interrupted. */
async function runPending(
  resolved: ResolvedBenchmark,
  info: BenchmarkInfo,
  dir: string,
  pending: Cell[],
  outcomes: CellOutcome[],
  options: RunOptions,
  deps: RunnerDeps,
  notice: (message: string) => void,
): Promise<boolean> {
  let data: DatasetView | undefined;
  let provenance: Provenance | undefined;
  let trainedSeconds = 0;
  let trained = 0;
  for (const [i, cell] of pending.entries()) {
    if (options.signal?.aborted) return true;
    const cellDir = path.join(dir, cell.id);
    const position = { benchmark: resolved.name, position: i + 1, toRun: pending.length };
    const end = (outcome: CellOutcome) => {
      outcomes.push(outcome);
      options.reporter.cellEnd({ ...outcome, ...position });
    };
    const lock = await lockCell(dir, cell.id, notice);
    if ('busy' in lock) {
      end({ cell, dir: cellDir, status: 'busy', note: `${describeOwner(lock.busy)} is training it; left to that process` });
      continue;
    }
    try {
      // Another process may have finished it since this run looked.
      if (hasResult(cellDir, cell.hash)) {
        end({ cell, dir: cellDir, status: 'skipped', note: 'finished meanwhile by another process' });
        continue;
      }
      if (!data) {
        data = await loadBenchmarkData(resolved, deps);
        checkCoannotation(resolved, data, pending);
        const view = data;
        await writeBenchmarkInfo(
          dir,
          withClasses(info, (task) => view.tasks.find((t) => t.name === task.name)?.labels.length),
        );
      }
      provenance ??= deps.provenance();
      const etaSeconds = trained > 0 ? (trainedSeconds / trained) * (pending.length - i) : undefined;
      options.reporter.cellStart({ benchmark: resolved.name, cell, position: i + 1, toRun: pending.length, etaSeconds });
      const previous = await beginCell(cellDir, cell.config, cell.hash);
      if (previous === 'other-config')
        notice(`${cell.id}: its folder held the results of an earlier, different configuration; they are replaced`);
      if (previous === 'damaged-hash') notice(`${cell.id}: its config.sha256 was missing or damaged; the cell is run again`);
      const startedAt = new Date();
      const t0 = performance.now();
      try {
        const result = await deps.trainCell(cell.config, data, {
          outDir: cellDir,
          progress: options.progress,
          progressLabel: `[${cell.id}]`,
          signal: options.signal,
        });
        checkResult(cell.config, result);
        const wallSeconds = (performance.now() - t0) / 1000;
        const timings = {
          startedAt: startedAt.toISOString(),
          finishedAt: new Date().toISOString(),
          wallSeconds,
          trainSeconds: result.trainSeconds,
        };
        const metrics = await finishCell(cellDir, cell.hash, result, timings, provenance);
        end({ cell, dir: cellDir, status: 'done', metrics, wallSeconds });
        trainedSeconds += wallSeconds;
        trained++;
      } catch (err) {
        if (options.signal?.aborted) {
          // Stopped by the user, not broken: no error.json, so the next run simply resumes it.
          end({ cell, dir: cellDir, status: 'interrupted', note: errorMessage(err).split('\n')[0] });
          return true;
        }
        const error = await recordFailure(cellDir, cell.hash, err, provenance);
        end({ cell, dir: cellDir, status: 'failed', error, wallSeconds: (performance.now() - t0) / 1000 });
      }
    } finally {
      await lock.held.release();
    }
  }
  return false;
}
