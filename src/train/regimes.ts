import type { LabelColumn, SplitData, TaskSpec } from '../datasets/types.js';
import { MASKED, NO_CLASS } from '../datasets/types.js';
import { UserError } from '../util/errors.js';
import { hashString } from '../util/hash.js';
import { deriveSeed } from './random.js';
import type { RegimeSpec } from '../config/regimes.js';

export function hasLabel(column: LabelColumn, sample: number): boolean {
  if (column.kind === 'categorical') return column.values[sample] !== NO_CLASS;
  const row = sample * column.width;
  for (let i = 0; i < column.width; i++) if (column.values[row + i] !== MASKED) return true;
  return false;
}

export function countLabelled(column: LabelColumn, indices?: ArrayLike<number>): number {
  const total = indices ? indices.length : column.kind === 'categorical' ? column.values.length : column.values.length / column.width;
  let count = 0;
  for (let n = 0; n < total; n++) if (hasLabel(column, indices ? indices[n]! : n)) count++;
  return count;
}

function copyColumn(column: LabelColumn): LabelColumn {
  return column.kind === 'categorical'
    ? { kind: 'categorical', values: Int32Array.from(column.values) }
    : { kind: 'multilabel', width: column.width, values: Uint8Array.from(column.values) };
}

function dropLabel(column: LabelColumn, sample: number): void {
  if (column.kind === 'categorical') column.values[sample] = NO_CLASS;
  else column.values.fill(MASKED, sample * column.width, (sample + 1) * column.width);
}

/**
 * The training samples in a seeded order that depends only on the seed and each sample's id, not
 * on the order of the split: the same seed thins the same samples whatever the index looks like,
 * and a larger overlap or fraction keeps a superset of a smaller one.
 */
function seededOrder(ids: readonly string[], seed: number): Int32Array {
  const salt = deriveSeed(seed, 'regime');
  const keys = ids.map((id) => hashString(id, salt));
  const order = Int32Array.from(ids.keys());
  order.sort((a, b) => keys[a]! - keys[b]! || a - b);
  return order;
}

export interface RegimeResult {
  /** The training labels the cell may use: copies, thinned by the regime. */
  labels: Record<string, LabelColumn>;
  /** Training samples that kept a label, per task. */
  labelCounts: Record<string, number>;
}

/** Thins the training labels of `tasks` as the regime says (validation and test keep every label). */
export function applyRegime(train: SplitData, tasks: readonly TaskSpec[], regime: RegimeSpec, seed: number): RegimeResult {
  const labels: Record<string, LabelColumn> = {};
  for (const task of tasks) {
    const column = train.labels[task.name];
    if (!column) throw new UserError(`the training split has no labels for task "${task.name}"`);
    labels[task.name] = copyColumn(column);
  }
  const count = train.count;
  const names = tasks.map((t) => t.name);
  switch (regime.kind) {
    case 'full':
      break;
    case 'disjoint': {
      if (!(regime.overlap >= 0 && regime.overlap <= 1))
        throw new UserError(`regime disjoint: overlap must lie in [0, 1], got ${regime.overlap}`);
      const order = seededOrder(train.ids, seed);
      const shared = Math.round(regime.overlap * count);
      // After the shared slice, samples go to the tasks in turn, so each task gets an even share.
      for (let position = shared; position < count; position++) {
        const sample = order[position]!;
        const keeper = (position - shared) % names.length;
        names.forEach((name, t) => {
          if (t !== keeper) dropLabel(labels[name]!, sample);
        });
      }
      break;
    }
    case 'scarce': {
      if (!names.includes(regime.task))
        throw new UserError(`regime scarce: task "${regime.task}" is not one of this cell's tasks (${names.join(', ')})`);
      if (!(regime.fraction >= 0 && regime.fraction <= 1))
        throw new UserError(`regime scarce: fraction must lie in [0, 1], got ${regime.fraction}`);
      const column = labels[regime.task]!;
      const order = seededOrder(train.ids, seed).filter((sample) => hasLabel(column, sample));
      // A positive fraction keeps at least one label, so "scarce" never silently means "none".
      const keep = regime.fraction > 0 ? Math.max(1, Math.round(regime.fraction * order.length)) : 0;
      for (let position = keep; position < order.length; position++) dropLabel(column, order[position]!);
      break;
    }
    case 'multi-source': {
      for (let sample = 0; sample < count; sample++) {
        const carried = names.filter((name) => hasLabel(labels[name]!, sample));
        if (carried.length > 1) {
          throw new UserError(
            `regime multi-source: training sample "${train.ids[sample]}" carries labels for ${carried.join(' and ')}; ` +
              'a multi-source view must give each sample one task only',
          );
        }
      }
      break;
    }
    default:
      throw new UserError(`unknown annotation regime ${JSON.stringify(regime)}`);
  }
  const labelCounts: Record<string, number> = {};
  for (const name of names) labelCounts[name] = countLabelled(labels[name]!);
  return { labels, labelCounts };
}
