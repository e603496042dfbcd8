import { systemError } from '../util/fs_errors.js';

/** A system error while writing under MTL_BENCH_HOME (full disk, read-only, permission), as one line. */
export function homeWriteError(err: unknown, where: string): unknown {
  return systemError(err, where, 'set MTL_BENCH_HOME to a folder on another disk');
}
