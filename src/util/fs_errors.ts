import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';

/**
 * System errors a user can act on, turned into one line that names the place and the likely
 * cause, instead of a raw "EROFS: …, open '…/.config.json.123.tmp'" from deep inside a write.
 */

/** The deepest part of `file` that exists (the file system root at worst). */
function existingAncestor(file: string): string {
  let current = path.resolve(file);
  while (!fs.existsSync(current)) {
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  return current;
}

/**
 * Node's recursive mkdir reports ENOENT when the real cause is a read-only file system or a
 * missing permission on a folder that exists: ask the deepest existing folder what it is.
 */
function realCauseOfMissing(file: string): string | undefined {
  const folder = existingAncestor(file);
  try {
    fs.accessSync(folder, fs.constants.W_OK);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
}

/** The part of `file` that is a file where a folder is needed. */
function fileInTheWay(file: string): string | undefined {
  let current = path.resolve(file);
  for (;;) {
    const parent = path.dirname(current);
    if (parent === current) return undefined;
    try {
      if (!fs.statSync(parent).isDirectory()) return parent;
    } catch {
      // Not there (or not readable): look further up.
    }
    current = parent;
  }
}

/**
 * Returns `err` as a UserError naming `where` when it is a system error with a known cause
 * (read-only file system, permission, a file in place of a folder, full disk or quota), else
 * `err` unchanged. `elsewhere` says how to write somewhere else ("use another --out").
 */
export function systemError(err: unknown, where: string, elsewhere = 'choose another folder'): unknown {
  if (err instanceof UserError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  let code = e?.code;
  const target = typeof e?.path === 'string' ? e.path : where;
  if (code === 'ENOENT' && e?.syscall === 'mkdir') code = realCauseOfMissing(target) ?? code;
  const fail = (message: string) => new UserError(message, { cause: err });
  switch (code) {
    case 'ENOSPC':
      return fail(`no space left on the device while writing under ${where}; free some space or ${elsewhere}`);
    case 'EDQUOT':
      return fail(`disk quota exceeded while writing under ${where}; free some space or ${elsewhere}`);
    case 'EROFS':
      return fail(`cannot write under ${where}: it is on a read-only file system; ${elsewhere}`);
    case 'EACCES':
    case 'EPERM':
      return fail(
        `cannot write under ${where}: permission denied (${existingAncestor(target)} is not writable by this user); ` +
          `fix its permissions or ${elsewhere}`,
      );
    case 'ENOTDIR': {
      const file = fileInTheWay(target);
      const inTheWay = file ? `${file} is a file, not a folder` : 'a part of the path is a file, not a folder';
      return fail(`cannot write under ${where}: ${inTheWay}; ${elsewhere}`);
    }
    default:
      return err;
  }
}
