import type { DatasetView } from '../datasets/types.js';
import type { ProgressMode, ProgressReporter } from '../train/progress.js';
import type { CellResult } from '../train/types.js';
import { checkCoannotation, classCounts, loadBenchmarkData } from './benchmark_data.js';
import type { Cell } from './matrix.js';
import type { ResolvedBenchmark } from './resolve.js';
import type { JobPlan } from './jobs.js';
import type { RunnerDeps } from './runner.js';

/** Where and how one cell trains: its folder, the label of its progress lines, and the run's stop signal. */
export interface CellRun {
  outDir: string;
  label: string;
  signal?: AbortSignal;
}

/**
 * One place cells train, one at a time: this process, or a worker process of `run --jobs`. The
 * runner holds the cell's lock and writes its results; a CellTrainer only trains.
 */
export interface CellTrainer {
  /** Loads and checks the data (once; again after a crash); resolves to each task's class count. */
  prepare(): Promise<Record<string, number>>;
  train(cell: Cell, run: CellRun): Promise<CellResult>;
  /** Ends the trainer's process, if it has one. */
  close(): Promise<void>;
}

/** What a worker process needs to train the benchmark's cells like the runner would. */
export interface WorkerSetup {
  resolved: ResolvedBenchmark;
  /** The cells this run will train (the data check for relatedness from data looks at their regimes). */
  pending: Cell[];
  /** The backend the run started, which the worker starts too. */
  backend: string;
  plan: JobPlan;
  /** The worker's place in the pool, from 0 (with known devices it picks the worker's GPU). */
  slot: number;
  /** Where the progress of the cell `label` goes in the run's display. */
  reporterFor(label: string): ProgressReporter;
  /** A line the worker printed by itself (a warning, a crash's last words). */
  log(line: string): void;
}

/** Trains in this process, on data it loads on first use: `run` without parallel jobs. */
export function inProcessTrainer(resolved: ResolvedBenchmark, pending: Cell[], deps: RunnerDeps, progress: ProgressMode): CellTrainer {
  let data: DatasetView | undefined;
  return {
    async prepare() {
      if (!data) {
        const view = await loadBenchmarkData(resolved, deps);
        checkCoannotation(resolved, view, pending);
        data = view;
      }
      return classCounts(data);
    },
    async train(cell, run) {
      if (!data) throw new Error('inProcessTrainer: train() before prepare()');
      return deps.trainCell(cell.config, data, { outDir: run.outDir, progress, progressLabel: run.label, signal: run.signal });
    },
    async close() {},
  };
}
