import { cellId } from '../runs/identity.js';
import type { CellRecord } from '../runs/store.js';

/**
 * A cell its trainer flagged unstable (a rising loss, a swinging validation metric, or a
 * multi-label head predicting nearly everything present: src/train/stability.ts). Such a cell is
 * left out of every mean, interval and test of the report, as a failed cell is, and listed with its
 * reasons, so a collapsed seed is never averaged with healthy ones.
 */
export function isUnstable(cell: CellRecord): boolean {
  return cell.metrics?.stability?.unstable === true;
}

export interface UnstableCell {
  cell: string;
  reasons: string[];
}

export function unstableCells(cells: CellRecord[]): UnstableCell[] {
  return cells
    .filter(isUnstable)
    .map((c) => ({ cell: cellId(c.config), reasons: c.metrics!.stability!.reasons }))
    .sort((a, b) => (a.cell < b.cell ? -1 : a.cell > b.cell ? 1 : 0));
}
