import { UserError } from '../util/errors.js';

/** A full disk becomes one line that says where, instead of a stack trace from deep inside a write. */
export function noSpaceError(err: unknown, where: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC') return new UserError(`no space left on the device while writing under ${where}; free some space or set MTL_BENCH_HOME to a larger disk`, { cause: err });
  if (code === 'EDQUOT') return new UserError(`disk quota exceeded while writing under ${where}; free some space or set MTL_BENCH_HOME elsewhere`, { cause: err });
  return err;
}
