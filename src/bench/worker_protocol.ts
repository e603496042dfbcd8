import type { CellConfig } from '../config/cell.js';
import type { ProgressReporter } from '../train/progress.js';
import type { CellResult } from '../train/types.js';
import type { Cell } from './matrix.js';
import type { ResolvedBenchmark } from './resolve.js';

/**
 * Messages between `run` and its worker processes (child_process IPC with the 'advanced'
 * serialization, so NaN metrics and typed arrays arrive as they left).
 */
export type ToWorker =
  | { type: 'init'; resolved: ResolvedBenchmark; pending: Cell[]; backend: string; manifestFiles: string[] }
  | { type: 'train'; config: CellConfig; outDir: string; label: string }
  | { type: 'abort'; reason: string };

/** A progress call of the trainer, replayed on the run's display. */
export type ProgressCall = { [K in keyof ProgressReporter]: { method: K; args: Parameters<ProgressReporter[K]> } }[keyof ProgressReporter];

export interface WorkerError {
  name: string;
  message: string;
  stack?: string;
  /** A UserError: bad input the user can fix, reported as one line. */
  user: boolean;
  exitCode?: number;
}

export type FromWorker =
  | { type: 'ready'; classes: Record<string, number> }
  | { type: 'init-failed'; error: WorkerError }
  | { type: 'progress'; call: ProgressCall }
  | { type: 'result'; result: CellResult }
  | { type: 'failed'; error: WorkerError };

export function replayProgress(target: ProgressReporter, call: ProgressCall): void {
  (target[call.method] as (...args: unknown[]) => void).apply(target, call.args);
}

/** A reporter that hands every call to `send` (the worker's side of replayProgress). */
export function forwardingReporter(send: (call: ProgressCall) => void): ProgressReporter {
  return {
    startEpoch: (...args) => send({ method: 'startEpoch', args }),
    step: (...args) => send({ method: 'step', args }),
    endEpoch: (...args) => send({ method: 'endEpoch', args }),
    checkpoint: (...args) => send({ method: 'checkpoint', args }),
    note: (...args) => send({ method: 'note', args }),
    finish: (...args) => send({ method: 'finish', args }),
  };
}
