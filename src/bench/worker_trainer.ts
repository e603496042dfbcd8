import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CellResult } from '../train/types.js';
import { UserError } from '../util/errors.js';
import type { CellTrainer, WorkerSetup } from './cell_trainer.js';
import { workerEnvironment } from './jobs.js';
import { replayProgress, type FromWorker, type ToWorker, type WorkerError } from './worker_protocol.js';

const WORKER_SCRIPT = fileURLToPath(new URL('./cell_worker.js', import.meta.url));

function rebuild(error: WorkerError): Error {
  const err = error.user ? new UserError(error.message, { exitCode: error.exitCode }) : new Error(error.message);
  if (!error.user) err.name = error.name;
  if (error.stack) err.stack = error.stack;
  return err;
}

/** Hands each complete line of a child's output to `log`. */
function forwardLines(stream: NodeJS.ReadableStream | null, log: (line: string) => void): void {
  if (!stream) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') log(line);
  });
  stream.on('end', () => {
    if (pending.trim() !== '') log(pending);
  });
}

/**
 * A CellTrainer in a worker process of its own (cell_worker.ts) with its share of the cores. A
 * worker that dies takes only its cell with it: that cell fails, and the next cell starts a new
 * worker.
 */
export function workerTrainer(setup: WorkerSetup, manifestFiles: string[] = []): CellTrainer {
  let child: ChildProcess | undefined;
  let ready: Promise<Record<string, number>> | undefined;
  // The handlers of whatever the runner is waiting for; a worker's death rejects it.
  let waiting: { onMessage(message: FromWorker): void; onExit(why: string): void } | undefined;

  const start = (): ChildProcess => {
    const proc = fork(WORKER_SCRIPT, [], {
      env: workerEnvironment(setup.plan, setup.slot, process.env),
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    forwardLines(proc.stdout, (line) => setup.log(line));
    forwardLines(proc.stderr, (line) => setup.log(line));
    proc.on('message', (message: FromWorker) => waiting?.onMessage(message));
    proc.on('exit', (code, signal) => {
      if (child === proc) {
        child = undefined;
        ready = undefined;
      }
      waiting?.onExit(signal ? `signal ${signal}` : `exit code ${code}`);
    });
    proc.on('error', (err) => waiting?.onExit(err.message));
    return proc;
  };

  const post = (message: ToWorker) => {
    try {
      child?.send(message);
    } catch {
      // The channel closed under us: the worker's 'exit' follows and fails what waits on it.
    }
  };

  return {
    prepare() {
      if (ready) return ready;
      child = start();
      ready = new Promise<Record<string, number>>((resolve, reject) => {
        waiting = {
          onMessage(message) {
            if (message.type === 'ready') resolve(message.classes);
            else if (message.type === 'init-failed') reject(rebuild(message.error));
          },
          onExit: (why) => reject(new Error(`the worker process stopped while loading the data (${why})`)),
        };
      }).finally(() => {
        waiting = undefined;
      });
      post({ type: 'init', resolved: setup.resolved, pending: setup.pending, backend: setup.backend, manifestFiles });
      return ready;
    },

    train(cell, run) {
      if (!child) return Promise.reject(new Error('workerTrainer: train() before prepare()'));
      const reporter = setup.reporterFor(run.label);
      const onAbort = () => post({ type: 'abort', reason: String((run.signal?.reason as Error | undefined)?.message ?? 'aborted') });
      return new Promise<CellResult>((resolve, reject) => {
        waiting = {
          onMessage(message) {
            if (message.type === 'progress') replayProgress(reporter, message.call);
            else if (message.type === 'result') resolve(message.result);
            else if (message.type === 'failed') reject(rebuild(message.error));
          },
          onExit: (why) => reject(new Error(`the worker process training ${cell.id} stopped (${why})`)),
        };
        if (run.signal?.aborted) onAbort();
        else run.signal?.addEventListener('abort', onAbort, { once: true });
        post({ type: 'train', config: cell.config, outDir: run.outDir, label: run.label });
      }).finally(() => {
        waiting = undefined;
        run.signal?.removeEventListener('abort', onAbort);
      });
    },

    async close() {
      const proc = child;
      if (!proc) return;
      await new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        // Closing the channel ends the worker (it exits on 'disconnect').
        if (proc.connected) proc.disconnect();
        else proc.kill();
      });
    },
  };
}
