import type { ChalkInstance } from 'chalk';

/** Where a command writes, and how it paints: the process's streams in the CLI, buffers in tests. */
export interface CommandIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  paint: ChalkInstance;
  paintErr: ChalkInstance;
  /** Trainer progress: bars for a person at a terminal, a plain line per epoch in logs. */
  interactive: boolean;
  /** The width of the terminal stderr writes to; undefined when it is not one. */
  columns?: number;
  signal?: AbortSignal;
}
