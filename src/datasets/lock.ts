import fs from 'node:fs';
import path from 'node:path';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface LockOptions {
  /** Called once when the lock is held by another live process and this one starts waiting. */
  onWait?: (ownerPid: number) => void;
  pollMs?: number;
}

/**
 * Runs `work` while holding a lock shared by all processes on this machine: a directory created
 * with mkdir (atomic), holding the owner's pid. Several training workers may load the same dataset
 * at once; only one builds its cache while the others wait and then reuse it. A lock left by a
 * killed process (its pid is gone) is taken over.
 */
export async function withLock<T>(target: string, work: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const lock = `${target}.lock`;
  const owner = path.join(lock, 'pid');
  await fs.promises.mkdir(path.dirname(lock), { recursive: true });
  let waited = false;
  for (;;) {
    try {
      await fs.promises.mkdir(lock);
      await fs.promises.writeFile(owner, String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(await fs.promises.readFile(owner, 'utf8').catch(() => ''));
      if (Number.isInteger(pid) && pid > 0 && !alive(pid)) {
        await fs.promises.rm(lock, { recursive: true, force: true });
        continue;
      }
      // The owner writes its pid just after creating the lock: until then, wait without naming it.
      if (!waited && pid > 0) {
        options.onWait?.(pid);
        waited = true;
      }
      await sleep(options.pollMs ?? 200);
    }
  }
  try {
    return await work();
  } finally {
    await fs.promises.rm(lock, { recursive: true, force: true });
  }
}
