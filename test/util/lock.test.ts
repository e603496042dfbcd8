import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { acquireLock, tryLock } from '../../src/util/lock.js';
import { UserError } from '../../src/util/errors.js';
import { packageRoot } from '../../src/util/paths.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mtl-bench-lock-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const lockModule = pathToFileURL(path.join(packageRoot, 'dist', 'src', 'util', 'lock.js')).href;

/** A pid that certainly belongs to no running process: one of a child that has ended. */
function deadPid(): number {
  return Number(
    spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8', timeout: 10_000 }).stdout,
  );
}

/** Makes a file look as if it had been written `seconds` ago. */
function age(file: string, seconds: number): void {
  const then = new Date(Date.now() - seconds * 1000);
  fs.utimesSync(file, then, then);
}

/** Another process that takes the lock, says so on stdout, and holds it until it is killed (or its timeout). */
async function holder(file: string): Promise<ChildProcess> {
  const script = `import { acquireLock } from ${JSON.stringify(lockModule)};
await acquireLock(${JSON.stringify(file)}, { purpose: 'holding it for a test' });
process.stdout.write('held\\n');
setTimeout(() => {}, 60_000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 60_000 });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
    child.on('exit', (code) => reject(new Error(`the holder exited early (${code})`)));
  });
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.on('exit', () => resolve())));
}

test('a lock file left empty (a full disk, an old version) is taken over with a one-line notice', async () => {
  const file = path.join(dir, 'empty.lock');
  fs.writeFileSync(file, '');
  age(file, 10);
  const notices: string[] = [];
  const lock = await acquireLock(file, { purpose: 'test', onNotice: (line) => notices.push(line), maxWaitMs: 5_000 });
  assert.deepEqual(notices, [`taking over the lock ${file}: its owner file is empty`]);
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).pid, process.pid);
  await lock.release();
  assert.equal(fs.existsSync(file), false);

  // The layout of earlier versions: a folder whose pid file is empty, as issue 12 found it.
  const legacy = path.join(dir, 'train.lock');
  fs.mkdirSync(legacy);
  fs.writeFileSync(path.join(legacy, 'pid'), '');
  age(path.join(legacy, 'pid'), 10);
  age(legacy, 10);
  const notes: string[] = [];
  await (await acquireLock(legacy, { purpose: 'test', onNotice: (line) => notes.push(line), maxWaitMs: 5_000 })).release();
  assert.match(notes.join('\n'), /taking over the lock .*train\.lock: its owner file is empty/);
});

test('a lock whose owner is dead is taken over, naming the dead process', async () => {
  const file = path.join(dir, 'dead.lock');
  const pid = deadPid();
  fs.writeFileSync(file, JSON.stringify({ pid, host: os.hostname(), since: new Date().toISOString(), purpose: 'training', token: 'x' }));
  const notices: string[] = [];
  const attempt = await tryLock(file, { purpose: 'test', onNotice: (line) => notices.push(line) });
  assert.ok('held' in attempt);
  assert.deepEqual(notices, [`taking over the lock ${file}: process ${pid}, which held it, is gone`]);
  await attempt.held.release();

  // Also in the old layout (a folder holding "pid").
  const legacy = path.join(dir, 'dead-legacy.lock');
  fs.mkdirSync(legacy);
  fs.writeFileSync(path.join(legacy, 'pid'), String(pid));
  const again = await tryLock(legacy, { purpose: 'test' });
  assert.ok('held' in again);
  await again.held.release();
});

test('a waiter says whom it waits for within a second and gets the lock when the owner ends', async () => {
  const file = path.join(dir, 'live.lock');
  const child = await holder(file);
  const busy = await tryLock(file, { purpose: 'test' });
  assert.ok('busy' in busy && busy.busy.pid === child.pid && busy.busy.purpose === 'holding it for a test');
  const started = Date.now();
  let toldAfter = -1;
  setTimeout(() => child.kill('SIGKILL'), 1_500);
  const lock = await acquireLock(file, {
    purpose: 'test',
    pollMs: 100,
    maxWaitMs: 20_000,
    onWait: (owner) => (toldAfter = owner.pid === child.pid ? Date.now() - started : -2),
  });
  assert.ok(toldAfter >= 0 && toldAfter < 1_000, `told after ${toldAfter} ms`);
  assert.ok(Date.now() - started >= 1_400, 'waited for the owner');
  await lock.release();
  await exited(child);
});

test('a waiter gives up with one clear line on an owner that stopped refreshing the lock, or after its time limit', async () => {
  const file = path.join(dir, 'frozen.lock');
  const child = await holder(file);
  try {
    // A stopped process is alive but silent, as a process of another machine that crashed would be.
    child.kill('SIGSTOP');
    await assert.rejects(
      acquireLock(file, { purpose: 'test', pollMs: 100, silentAfterMs: 1_000 }),
      (err: unknown) =>
        err instanceof UserError &&
        new RegExp(
          `frozen\\.lock is held by process ${child.pid} \\(holding it for a test\\), which has not refreshed it for \\d+ s; ` +
            'if that process is gone, delete .*frozen\\.lock',
        ).test(err.message),
    );
    child.kill('SIGCONT');
    await assert.rejects(
      acquireLock(file, { purpose: 'test', pollMs: 100, maxWaitMs: 500 }),
      (err: unknown) =>
        err instanceof UserError &&
        new RegExp(`gave up after \\d+ s waiting for process ${child.pid} \\(holding it for a test\\), which holds .*frozen\\.lock`).test(
          err.message,
        ),
    );
  } finally {
    child.kill('SIGKILL');
    await exited(child);
  }
});

test('a lock is removed when its process exits, and a release never removes another holder’s lock', async () => {
  const file = path.join(dir, 'exit.lock');
  const script = `import { acquireLock } from ${JSON.stringify(lockModule)};
await acquireLock(${JSON.stringify(file)}, { purpose: 'test' });
process.exit(3);`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(result.status, 3, result.stderr);
  assert.equal(fs.existsSync(file), false);

  const mine = await tryLock(file, { purpose: 'test' });
  assert.ok('held' in mine);
  // Someone judged it stale and replaced it (it cannot happen to a live lock; the release must still be safe).
  fs.writeFileSync(file, JSON.stringify({ pid: process.pid, host: os.hostname(), since: '', purpose: 'other', token: 'other' }));
  await mine.held.release();
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).token, 'other');
  fs.rmSync(file);
});
