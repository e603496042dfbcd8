import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { cleanupOnExit } from '../util/cleanup.js';
import { describeOwner, tryLock, withLock, type LockAttempt } from '../util/lock.js';
import { processAlive } from '../util/process_alive.js';

/**
 * How several processes share one benchmark folder (two `run`s on the same --out, or shards of
 * one study on one machine) without mixing results:
 *
 * - Each run claims the cells it will run, with their config hashes, in `.claims/`. A run whose
 *   config of a cell differs from the one a live run has claimed is refused that cell: two
 *   configurations are never mixed in one folder at the same time. Claims are registered one at
 *   a time, so of two runs started together the later one is refused. Runs of the same config
 *   (shards, or the same command twice) share the folder.
 * - A cell is trained under a lock (`.locks/<cell>.lock`): another process skips a cell that a
 *   live process is training, and takes over the lock of a dead one.
 *
 * Neither lasts beyond its process: a later run with a changed config (issue 12's "legitimately
 * changed config") finds no live claim and reruns the cells whose config changed.
 */

const CLAIMS_DIR = '.claims';
const LOCKS_DIR = '.locks';
const HEARTBEAT_MS = 30_000;
/** A claim of another machine not refreshed for this long belongs to a run that is gone. */
const CLAIM_SILENT_MS = 15 * 60_000;

export interface RunClaim {
  pid: number;
  host: string;
  since: string;
  token: string;
  /** cell id → config hash. */
  cells: Record<string, string>;
}

export interface ClaimConflict {
  cell: string;
  /** The other run's config hash of the cell, and this run's. */
  theirs: string;
  ours: string;
  owner: RunClaim;
}

export interface HeldClaim {
  /** Cells another live run holds with a different config: this run must leave them alone. */
  conflicts: ClaimConflict[];
  release(): Promise<void>;
}

function readClaim(file: string): RunClaim | undefined {
  try {
    const claim = JSON.parse(fs.readFileSync(file, 'utf8')) as RunClaim;
    if (Number.isInteger(claim.pid) && typeof claim.host === 'string' && claim.cells && typeof claim.cells === 'object') return claim;
  } catch {
    // Unreadable: treated as gone below.
  }
  return undefined;
}

/** Whether the run that wrote a claim may still be running. */
function claimLive(claim: RunClaim, file: string): boolean {
  if (claim.host === os.hostname()) return processAlive(claim.pid);
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  return stat !== undefined && Date.now() - stat.mtimeMs < CLAIM_SILENT_MS;
}

/**
 * Registers this run's cells in `benchmarkDir` and returns the cells it must not touch because a
 * live run claimed them with another config. Claims of runs that are gone are removed (with a
 * notice). Release the claim when the run ends; it is also removed at exit.
 */
export async function claimCells(
  benchmarkDir: string,
  cells: readonly { id: string; hash: string }[],
  onNotice: (line: string) => void,
): Promise<HeldClaim> {
  const dir = path.join(benchmarkDir, CLAIMS_DIR);
  await fs.promises.mkdir(dir, { recursive: true });
  const mine: RunClaim = {
    pid: process.pid,
    host: os.hostname(),
    since: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
    cells: {},
  };
  const file = path.join(dir, `${mine.host}.${mine.pid}.${mine.token}.json`);
  const conflicts: ClaimConflict[] = [];
  await withLock(
    path.join(dir, 'register.lock'),
    async () => {
      const others: RunClaim[] = [];
      for (const name of await fs.promises.readdir(dir)) {
        if (!name.endsWith('.json')) continue;
        const other = path.join(dir, name);
        const claim = readClaim(other);
        if (claim && claimLive(claim, other)) {
          others.push(claim);
          continue;
        }
        await fs.promises.rm(other, { force: true });
        onNotice(
          claim
            ? `removed the claim of ${describeOwner(claim)} on ${path.basename(benchmarkDir)}: that run is gone`
            : `removed the unreadable claim ${other}`,
        );
      }
      for (const cell of cells) {
        const owner = others.find((o) => o.cells[cell.id] !== undefined && o.cells[cell.id] !== cell.hash);
        if (owner) conflicts.push({ cell: cell.id, theirs: owner.cells[cell.id]!, ours: cell.hash, owner });
        else mine.cells[cell.id] = cell.hash;
      }
      await writeFileAtomic(file, `${JSON.stringify(mine)}\n`);
    },
    { purpose: 'registering a run', onNotice, maxWaitMs: 120_000 },
  );
  const heartbeat = setInterval(() => {
    const now = new Date();
    fs.promises.utimes(file, now, now).catch(() => {});
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const unregister = cleanupOnExit(() => fs.rmSync(file, { force: true }));
  return {
    conflicts,
    async release() {
      clearInterval(heartbeat);
      unregister();
      await fs.promises.rm(file, { force: true });
    },
  };
}

/** One line naming the other run and both config hashes, for the cells it holds. */
export function describeConflicts(benchmark: string, conflicts: readonly ClaimConflict[]): string {
  const first = conflicts[0]!;
  const short = (hash: string) => hash.slice(0, 12);
  const more = conflicts.length > 1 ? ` and ${conflicts.length - 1} more` : '';
  return (
    `${benchmark}: ${conflicts.length} cell${conflicts.length > 1 ? 's' : ''} refused: ` +
    `another run (${describeOwner(first.owner)}, started ${first.owner.since}) ` +
    'is using them with a different configuration ' +
    `(${first.cell}${more}: config ${short(first.theirs)} there, ${short(first.ours)} here); ` +
    'nothing was overwritten; wait for that run to finish, or use another --out'
  );
}

/** Takes the training lock of a cell, or says which live process holds it. */
export function lockCell(benchmarkDir: string, cellId: string, onNotice: (line: string) => void): Promise<LockAttempt> {
  return tryLock(path.join(benchmarkDir, LOCKS_DIR, `${cellId}.lock`), { purpose: `training ${cellId}`, onNotice });
}
