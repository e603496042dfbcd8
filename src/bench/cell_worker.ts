/**
 * The entry point of a `run --jobs` worker process: started by worker_trainer.ts with an IPC
 * channel, it brings up the run's backend, loads the benchmark's data, then trains the cells it is
 * sent one at a time and sends back their results. The parent holds the locks and writes the
 * result files; this process writes only what the trainer itself writes (checkpoints).
 */
import type { DatasetView } from '../datasets/types.js';
import { UserError } from '../util/errors.js';
import { checkCoannotation, classCounts, loadBenchmarkData } from './benchmark_data.js';
import { defaultBenchDeps } from './deps.js';
import type { BenchDeps } from './command.js';
import { forwardingReporter, type FromWorker, type ToWorker, type WorkerError } from './worker_protocol.js';

function send(message: FromWorker): void {
  process.send?.(message);
}

function describe(err: unknown): WorkerError {
  if (err instanceof Error) {
    return {
      name: err.name,
      message: err.message,
      ...(err.stack ? { stack: err.stack } : {}),
      user: err instanceof UserError,
      ...(err instanceof UserError ? { exitCode: err.exitCode } : {}),
    };
  }
  return { name: 'Error', message: String(err), user: false };
}

let deps: BenchDeps | undefined;
let data: DatasetView | undefined;
let running: AbortController | undefined;
// Messages are handled in order: a cell is sent only after the previous one answered, but an
// abort may arrive while a cell trains and must reach it at once.
let queue: Promise<void> = Promise.resolve();

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'init': {
      try {
        deps = defaultBenchDeps({ manifestFiles: message.manifestFiles });
        await deps.initBackend(message.backend);
        const view = await loadBenchmarkData(message.resolved, deps);
        checkCoannotation(message.resolved, view, message.pending);
        data = view;
        send({ type: 'ready', classes: classCounts(view) });
      } catch (err) {
        send({ type: 'init-failed', error: describe(err) });
      }
      return;
    }
    case 'train': {
      const controller = running;
      if (!deps || !data || !controller) {
        send({ type: 'failed', error: describe(new Error('the worker was sent a cell before it was ready')) });
        return;
      }
      try {
        const result = await deps.trainCell(message.config, data, {
          outDir: message.outDir,
          progressLabel: message.label,
          signal: controller.signal,
          reporter: forwardingReporter((call) => send({ type: 'progress', call })),
        });
        send({ type: 'result', result });
      } catch (err) {
        send({ type: 'failed', error: describe(err) });
      } finally {
        running = undefined;
      }
      return;
    }
    case 'abort':
      return;
  }
}

process.on('message', (message: ToWorker) => {
  if (message.type === 'abort') {
    running?.abort(new Error(message.reason));
    return;
  }
  // The cell's stop signal exists from the moment its message arrives, so that an abort sent
  // right after it reaches it even before it starts.
  if (message.type === 'train') running = new AbortController();
  queue = queue.then(() => handle(message));
});

// Ctrl-C reaches every process of the terminal's group: the parent decides (it sends 'abort', and
// the cell checkpoints its partial epoch). Without a parent there is no one to report to.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.exit(130));
