import { cellId } from '../runs/identity.js';
import type { CellRecord } from '../runs/store.js';
import { flaggedNetworks } from '../train/stability.js';

/**
 * A cell its trainer flagged unstable (a rising loss, a swinging validation metric, or a
 * multi-label head predicting nearly everything present: src/train/stability.ts). Its flagged
 * networks' results are left out of every mean, interval and test of the report, as a failed
 * cell's are, and it is listed with its reasons, so a collapsed seed is never averaged with
 * healthy ones.
 */
export function isUnstable(cell: CellRecord): boolean {
  return cell.metrics?.stability?.unstable === true;
}

/**
 * The tasks whose results an unstable cell spoils: every task of a multi-task network, but only
 * the flagged networks' tasks in an stl cell, whose networks train apart (so a collapsed group
 * network does not take a healthy subgroup network's seed out of the subgroup baseline).
 */
export function unstableTasks(cell: CellRecord): ReadonlySet<string> {
  const verdict = cell.metrics?.stability;
  if (!verdict?.unstable) return new Set();
  const tasks = cell.config.tasks.map((t) => t.name);
  const networks = flaggedNetworks(verdict);
  if (cell.config.setting === 'stl' && networks.every((n) => tasks.includes(n))) return new Set(networks);
  return new Set(tasks);
}

/** Whether no task of the cell is left: a multi-task cell flagged unstable, or an stl cell whose every network is. */
export function isWhollyUnstable(cell: CellRecord): boolean {
  return isUnstable(cell) && unstableTasks(cell).size === cell.config.tasks.length;
}

export interface UnstableCell {
  cell: string;
  reasons: string[];
  /** The tasks whose results are kept: those of an stl cell's healthy networks (usually none). */
  kept: string[];
}

export function unstableCells(cells: CellRecord[]): UnstableCell[] {
  return cells
    .filter(isUnstable)
    .map((c) => {
      const spoilt = unstableTasks(c);
      return {
        cell: cellId(c.config),
        reasons: c.metrics!.stability!.reasons,
        kept: c.config.tasks.map((t) => t.name).filter((t) => !spoilt.has(t)),
      };
    })
    .sort((a, b) => (a.cell < b.cell ? -1 : a.cell > b.cell ? 1 : 0));
}

/** What follows an unstable cell's name in the reports: what of it is kept, if anything. */
export function keptNote(u: UnstableCell): string {
  if (u.kept.length === 0) return '';
  return u.kept.length === 1 ? ` (its ${u.kept[0]} network is kept)` : ` (its ${u.kept.join(' and ')} networks are kept)`;
}
