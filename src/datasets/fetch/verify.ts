import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { UserError } from '../../util/errors.js';

export interface Expected {
  size?: number;
  sha256?: string;
  md5?: string;
}

export interface Digests {
  size: number;
  sha256: string;
  md5: string;
}

export async function digestFile(file: string): Promise<Digests> {
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  let size = 0;
  for await (const chunk of fs.createReadStream(file)) {
    const bytes = chunk as Buffer;
    sha256.update(bytes);
    md5.update(bytes);
    size += bytes.length;
  }
  return { size, sha256: sha256.digest('hex'), md5: md5.digest('hex') };
}

/** The first way `actual` differs from `expected`, or undefined when it matches everything given. */
export function mismatch(expected: Expected, actual: Digests): string | undefined {
  if (expected.size !== undefined && expected.size !== actual.size) return `size ${actual.size} bytes, expected ${expected.size}`;
  if (expected.sha256 && expected.sha256.toLowerCase() !== actual.sha256)
    return `sha256 ${actual.sha256}, expected ${expected.sha256.toLowerCase()}`;
  if (expected.md5 && expected.md5.toLowerCase() !== actual.md5) return `md5 ${actual.md5}, expected ${expected.md5.toLowerCase()}`;
  return undefined;
}

/** Checks size and hashes before a file is used; a mismatch is one line naming the file. */
export async function verifyFile(file: string, expected: Expected, label = file): Promise<Digests> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch {
    throw new UserError(`${label}: file not found (${file})`);
  }
  // A size mismatch needs no hashing: report it at once.
  if (expected.size !== undefined && stat.size !== expected.size)
    throw new UserError(`${label}: size ${stat.size} bytes, expected ${expected.size}`);
  const digests = await digestFile(file);
  const problem = mismatch(expected, digests);
  if (problem) throw new UserError(`${label}: ${problem}`);
  return digests;
}
