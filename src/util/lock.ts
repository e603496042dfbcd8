import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cleanupOnExit } from './cleanup.js';
import { UserError } from './errors.js';
import { processAlive } from './process_alive.js';

/**
 * Locks shared by processes through the file system: one file per lock, holding its owner (pid,
 * host, since when, for what). The file appears complete or not at all (written aside, then
 * hard-linked into place), so a full disk cannot leave an empty lock. A lock whose owner is gone
 * (same host, pid no longer running), or whose file is empty or unreadable, is taken over with a
 * one-line notice. The owner refreshes the file's time while it holds the lock, so a waiter can
 * tell a busy owner from a silent one (another machine's process, or a frozen one) and give up on
 * the latter with a clear error instead of hanging.
 */

export interface LockOwner {
  pid: number;
  host: string;
  /** When the owner took the lock (ISO time). */
  since: string;
  /** What the owner does while holding it, e.g. "training full.stl.seed1". */
  purpose: string;
  /** Tells this holding apart from any other, even of the same process. */
  token: string;
}

/** How often an owner refreshes its lock file's modification time. */
const HEARTBEAT_MS = 5_000;
/** A waiter gives up on an owner that has not refreshed its lock for this long. */
const SILENT_OWNER_MS = 60_000;
/** An unreadable lock file younger than this may be one still being written (see createLockFile). */
const UNREADABLE_GRACE_MS = 2_000;
/** A takeover guard older than this was left by a process killed in the middle of a takeover. */
const GUARD_STALE_MS = 10_000;

export function describeOwner(owner: Pick<LockOwner, 'pid' | 'host'>): string {
  return owner.host === os.hostname() ? `process ${owner.pid}` : `process ${owner.pid} on host ${owner.host}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (Number.isInteger(value.pid) && value.pid! > 0 && typeof value.host === 'string' && typeof value.token === 'string') {
      return {
        pid: value.pid!,
        host: value.host,
        since: String(value.since ?? ''),
        purpose: String(value.purpose ?? ''),
        token: value.token,
      };
    }
  } catch {
    // Reported by the caller as an unreadable lock.
  }
  return undefined;
}

type Inspection =
  | { kind: 'free' }
  | { kind: 'held'; owner: LockOwner; silentMs: number }
  /** `identity` lets a takeover check that the stale lock it removes is still the one it judged. */
  | { kind: 'stale'; why: string; identity: string }
  | { kind: 'settling' };

async function inspect(file: string): Promise<Inspection> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'free' };
    throw err;
  }
  const young = Date.now() - stat.mtimeMs < UNREADABLE_GRACE_MS;
  // Versions before 0.2 made a lock folder holding a "pid" file.
  const legacy = stat.isDirectory();
  const text = await fs.promises.readFile(legacy ? path.join(file, 'pid') : file, 'utf8').catch(() => '');
  const identity = `${stat.ino}:${text}`;
  const legacyPid = Number(text.trim());
  const owner: LockOwner | undefined = legacy
    ? Number.isInteger(legacyPid) && legacyPid > 0
      ? { pid: legacyPid, host: os.hostname(), since: stat.mtime.toISOString(), purpose: '', token: '' }
      : undefined
    : parseOwner(text);
  if (!owner) {
    if (young) return { kind: 'settling' };
    return { kind: 'stale', why: `its owner file is ${text.trim() === '' ? 'empty' : 'unreadable'}`, identity };
  }
  if (owner.host === os.hostname() && !processAlive(owner.pid))
    return { kind: 'stale', why: `process ${owner.pid}, which held it, is gone`, identity };
  return { kind: 'held', owner, silentMs: Math.max(0, Date.now() - stat.mtimeMs) };
}

/** Creates `file` holding `text`, atomically and only if it does not exist; false when it does. */
async function createLockFile(file: string, text: string): Promise<boolean> {
  const aside = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.promises.writeFile(aside, text, { flag: 'wx' });
    await fs.promises.link(aside, file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    // A file system without hard links: exclusive create, then write. The short window in which
    // the file is empty is why inspect() leaves young unreadable locks alone.
    try {
      await fs.promises.writeFile(file, text, { flag: 'wx' });
      return true;
    } catch (inner) {
      if ((inner as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw inner;
    }
  } finally {
    await fs.promises.rm(aside, { force: true });
  }
}

/**
 * Removes a stale lock, unless it changed since it was judged stale. A guard folder makes
 * takeovers one at a time, so that one process cannot remove the fresh lock another process has
 * just created after its own takeover.
 */
async function takeOver(file: string, identity: string, why: string, onNotice?: (line: string) => void): Promise<void> {
  const guard = `${file}.takeover`;
  try {
    await fs.promises.mkdir(guard);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const stat = await fs.promises.stat(guard).catch(() => undefined);
    if (stat && Date.now() - stat.mtimeMs > GUARD_STALE_MS) await fs.promises.rm(guard, { recursive: true, force: true });
    else await sleep(50);
    return;
  }
  try {
    const again = await inspect(file);
    if (again.kind === 'stale' && again.identity === identity) {
      await fs.promises.rm(file, { recursive: true, force: true });
      onNotice?.(`taking over the lock ${file}: ${why}`);
    }
  } finally {
    await fs.promises.rm(guard, { recursive: true, force: true });
  }
}

function removeIfOwnedSync(file: string, token: string): void {
  try {
    if (parseOwner(fs.readFileSync(file, 'utf8'))?.token === token) fs.rmSync(file, { force: true });
  } catch {
    // Already gone.
  }
}

/** A lock this process holds: refreshed in the background, released by release() or at exit. */
export class HeldLock {
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unregister: () => void;
  private released = false;

  constructor(
    readonly file: string,
    readonly owner: LockOwner,
  ) {
    this.heartbeat = setInterval(() => {
      const now = new Date();
      fs.promises.utimes(file, now, now).catch(() => {});
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    this.unregister = cleanupOnExit(() => removeIfOwnedSync(file, owner.token));
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.heartbeat);
    this.unregister();
    removeIfOwnedSync(this.file, this.owner.token);
  }
}

export interface LockOptions {
  /** What the holder does, shown to whoever finds the lock taken ("building the 64px cache of cub train"). */
  purpose: string;
  /** Receives one line for each stale lock taken over. */
  onNotice?: (line: string) => void;
}

export type LockAttempt = { held: HeldLock } | { busy: LockOwner; silentMs: number };

/** Takes the lock if it is free or stale; otherwise says who holds it, without waiting. */
export async function tryLock(file: string, options: LockOptions): Promise<LockAttempt> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const owner: LockOwner = {
    pid: process.pid,
    host: os.hostname(),
    since: new Date().toISOString(),
    purpose: options.purpose,
    token: randomBytes(8).toString('hex'),
  };
  const text = `${JSON.stringify(owner)}\n`;
  for (;;) {
    if (await createLockFile(file, text)) return { held: new HeldLock(file, owner) };
    const state = await inspect(file);
    if (state.kind === 'held') return { busy: state.owner, silentMs: state.silentMs };
    if (state.kind === 'stale') await takeOver(file, state.identity, state.why, options.onNotice);
    else if (state.kind === 'settling') await sleep(100);
  }
}

export interface WaitOptions extends LockOptions {
  /** Called once, as soon as the lock is found held by someone else (so within one poll). */
  onWait?: (owner: LockOwner) => void;
  pollMs?: number;
  /** Give up when the owner has not refreshed the lock for this long (default SILENT_OWNER_MS). */
  silentAfterMs?: number;
  /** Give up after waiting this long in any case (default: only the silence bound). */
  maxWaitMs?: number;
}

/** Waits for the lock while its owner is alive and refreshing it; gives up with one clear line otherwise. */
export async function acquireLock(file: string, options: WaitOptions): Promise<HeldLock> {
  const started = Date.now();
  const silentAfter = options.silentAfterMs ?? SILENT_OWNER_MS;
  let told = false;
  for (;;) {
    const attempt = await tryLock(file, options);
    if ('held' in attempt) return attempt.held;
    const holder = `${describeOwner(attempt.busy)}${attempt.busy.purpose ? ` (${attempt.busy.purpose})` : ''}`;
    if (!told) {
      options.onWait?.(attempt.busy);
      told = true;
    }
    if (attempt.silentMs > silentAfter) {
      throw new UserError(
        `${file} is held by ${holder}, which has not refreshed it for ${Math.round(attempt.silentMs / 1000)} s; ` +
          `if that process is gone, delete ${file}`,
      );
    }
    if (options.maxWaitMs !== undefined && Date.now() - started > options.maxWaitMs) {
      throw new UserError(`gave up after ${Math.round((Date.now() - started) / 1000)} s waiting for ${holder}, which holds ${file}`);
    }
    await sleep(options.pollMs ?? 200);
  }
}

/** Runs `work` while holding the lock `file`, waiting for it as acquireLock does. */
export async function withLock<T>(file: string, work: () => Promise<T>, options: WaitOptions): Promise<T> {
  const lock = await acquireLock(file, options);
  try {
    return await work();
  } finally {
    await lock.release();
  }
}
