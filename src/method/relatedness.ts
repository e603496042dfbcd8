import type { LabelColumn, RelatednessTable, TaskSpec } from '../datasets/types.js';
import { MASKED, NO_CLASS } from '../datasets/types.js';
import type { RelatednessSpec } from '../config/cell.js';
import { RELATEDNESS_OPTIONS, optionValue } from '../config/options.js';
import { UserError } from '../util/errors.js';

/** Relatedness is clipped to [ε, 1−ε] before any logarithm (method.md). */
export const RELATEDNESS_EPSILON = 1e-4;

export type PairKind = 'categorical->multilabel' | 'categorical->categorical';

/** A relatedness matrix ready for the losses: rows = classes of `from`, columns = labels/classes of `to`. */
export interface RelatednessMatrix {
  from: string;
  to: string;
  kind: PairKind;
  source: RelatednessSpec['source'];
  /**
   * The matrix the losses use. For categorical→multi-label it is already clipped to [ε, 1−ε]
   * (every use of it, targets included, sees the same numbers); for categorical→categorical the
   * rows are conditional distributions that sum to 1 and are never put through a logarithm.
   */
  matrix: number[][];
  /** For `data`: training samples that carried both labels. */
  coannotated?: number;
  /** β of `sharpness_blend` when it is not 0: `matrix` is the blend, not the table or the counts. */
  blend?: number;
  /** What the dataset says its table is (prior and file). */
  description?: string;
}

export function pairKey(from: string, to: string): string {
  return `${from}->${to}`;
}

export function clipRelatedness(matrix: number[][], epsilon = RELATEDNESS_EPSILON): number[][] {
  return matrix.map((row) => row.map((v) => Math.min(1 - epsilon, Math.max(epsilon, v))));
}

/**
 * Smoothed conditional frequencies over the training samples that carry both labels.
 * categorical→multi-label: R[k,i] = (Σ_{n: c_n=k, a_{n,i} unmasked} a_{n,i} + α) / (N_{k,i} + 2α),
 * where N_{k,i} counts the samples of class k whose entry i is annotated (masked entries skipped).
 * categorical→categorical: R[k,j] = (#{c1=k, c2=j} + α) / (N_k + K₂α), the same additive smoothing
 * spread over K₂ outcomes so that rows stay distributions.
 * A class with no co-annotated sample gets the smoothing prior (½, or 1/K₂): that is what additive
 * smoothing means, and the minimum-count check below keeps a matrix from being made of nothing else.
 */
export function countRelatedness(
  from: { task: TaskSpec; column: LabelColumn },
  to: { task: TaskSpec; column: LabelColumn },
  alpha: number,
  indices?: ArrayLike<number>,
): { matrix: number[][]; coannotated: number } {
  if (from.column.kind !== 'categorical') throw new Error(`relatedness counts need a categorical "from" task, got ${from.task.name}`);
  const classes = from.task.labels.length;
  const fromValues = from.column.values;
  const count = fromValues.length;
  const sampleAt = (n: number) => (indices ? indices[n]! : n);
  const total = indices ? indices.length : count;
  let coannotated = 0;
  if (to.column.kind === 'multilabel') {
    const width = to.column.width;
    const values = to.column.values;
    const positives = new Float64Array(classes * width);
    const annotated = new Float64Array(classes * width);
    for (let n = 0; n < total; n++) {
      const sample = sampleAt(n);
      const k = fromValues[sample]!;
      if (k === NO_CLASS) continue;
      let any = false;
      for (let i = 0; i < width; i++) {
        const v = values[sample * width + i]!;
        if (v === MASKED) continue;
        any = true;
        annotated[k * width + i]! += 1;
        if (v === 1) positives[k * width + i]! += 1;
      }
      if (any) coannotated++;
    }
    const matrix: number[][] = [];
    for (let k = 0; k < classes; k++) {
      const row: number[] = [];
      for (let i = 0; i < width; i++) row.push((positives[k * width + i]! + alpha) / (annotated[k * width + i]! + 2 * alpha));
      matrix.push(row);
    }
    return { matrix, coannotated };
  }
  const toValues = to.column.values;
  const outcomes = to.task.labels.length;
  const joint = new Float64Array(classes * outcomes);
  const rowTotals = new Float64Array(classes);
  for (let n = 0; n < total; n++) {
    const sample = sampleAt(n);
    const k = fromValues[sample]!;
    const j = toValues[sample]!;
    if (k === NO_CLASS || j === NO_CLASS) continue;
    coannotated++;
    joint[k * outcomes + j]! += 1;
    rowTotals[k]! += 1;
  }
  const matrix: number[][] = [];
  for (let k = 0; k < classes; k++) {
    const row: number[] = [];
    for (let j = 0; j < outcomes; j++) row.push((joint[k * outcomes + j]! + alpha) / (rowTotals[k]! + outcomes * alpha));
    matrix.push(row);
  }
  return { matrix, coannotated };
}

/**
 * R̄, the uninformative version of R: every row is the mean of R's rows, R̄[k,j] = (1/K) Σ_k' R[k',j].
 * For categorical→multi-label that is each label's mean over the classes of `from`; for
 * categorical→categorical it is the marginal of `to` when every class of `from` is equally
 * likely, a distribution since every row of R is one. It depends on R alone, not on the regime's
 * labels, so a sweep over β changes how much R tells the classes apart and nothing else.
 */
export function uninformativeRelatedness(matrix: readonly (readonly number[])[]): number[][] {
  const rows = matrix.length;
  const cols = matrix[0]?.length ?? 0;
  const mean = Array.from({ length: cols }, (_, j) => matrix.reduce((sum, row) => sum + row[j]!, 0) / rows);
  return matrix.map(() => [...mean]);
}

/** R_β = (1 − β)·R + β·R̄: β = 0 is R itself, β = 1 is R̄. Rows that are distributions stay distributions. */
export function blendRelatedness(matrix: readonly (readonly number[])[], beta: number): number[][] {
  if (!(beta >= 0 && beta <= 1)) throw new Error(`sharpness blend must lie in [0, 1], got ${beta}`);
  const flat = uninformativeRelatedness(matrix);
  return matrix.map((row, k) => row.map((v, j) => (1 - beta) * v + beta * flat[k]![j]!));
}

/**
 * Resolves one relatedness spec of a cell into the matrix its losses use.
 * `trainLabels` are the training labels after the annotation regime, so `data` counts only what
 * the regime left co-annotated.
 */
export function resolveRelatedness(
  spec: RelatednessSpec,
  tasks: readonly TaskSpec[],
  trainLabels: Record<string, LabelColumn>,
  tables: readonly RelatednessTable[],
  trainIndices?: ArrayLike<number>,
): RelatednessMatrix {
  const where = `relatedness ${pairKey(spec.from, spec.to)}`;
  const fromTask = tasks.find((t) => t.name === spec.from);
  const toTask = tasks.find((t) => t.name === spec.to);
  if (!fromTask) throw new UserError(`${where}: unknown task "${spec.from}"`);
  if (!toTask) throw new UserError(`${where}: unknown task "${spec.to}"`);
  if (spec.from === spec.to) throw new UserError(`${where}: a task cannot be related to itself`);
  if (fromTask.kind !== 'categorical') {
    throw new UserError(
      `${where}: relatedness runs from a categorical task to another task (R[k,·] is conditioned on a class); ` +
        `"${spec.from}" is multi-label${toTask.kind === 'categorical' ? `, write it as ${pairKey(spec.to, spec.from)}` : ''}`,
    );
  }
  const kind: PairKind = toTask.kind === 'multilabel' ? 'categorical->multilabel' : 'categorical->categorical';
  const rows = fromTask.labels.length;
  const cols = toTask.labels.length;

  let raw: number[][];
  let coannotated: number | undefined;
  let description: string | undefined;
  if (spec.source === 'data') {
    if (!(spec.alpha >= 0) || !Number.isFinite(spec.alpha))
      throw new UserError(`${where}: alpha must be a finite number >= 0, got ${spec.alpha}`);
    const fromColumn = trainLabels[spec.from];
    const toColumn = trainLabels[spec.to];
    if (!fromColumn || !toColumn)
      throw new UserError(`${where}: the training split has no labels for "${!fromColumn ? spec.from : spec.to}"`);
    const counted = countRelatedness({ task: fromTask, column: fromColumn }, { task: toTask, column: toColumn }, spec.alpha, trainIndices);
    if (counted.coannotated < spec.minCoannotated) {
      throw new UserError(
        `${where}: source "data" needs at least ${spec.minCoannotated} training samples labelled for both tasks, ` +
          `but this regime leaves ${counted.coannotated}; use a prior or file table, or a regime with more overlap`,
      );
    }
    if (spec.alpha === 0 && counted.matrix.some((row) => row.some((v) => !Number.isFinite(v)))) {
      throw new UserError(`${where}: with alpha 0 some classes have no co-annotated sample, so their rows are undefined; use alpha > 0`);
    }
    raw = counted.matrix;
    coannotated = counted.coannotated;
  } else {
    const table = tables.find((t) => t.from === spec.from && t.to === spec.to && t.source === spec.source);
    if (!table) {
      const available = tables.map((t) => `${pairKey(t.from, t.to)} (${t.source})`).join(', ') || 'none';
      throw new UserError(`${where}: the dataset ships no "${spec.source}" table for this pair; available: ${available}`);
    }
    if (table.matrix.length !== rows || table.matrix.some((row) => row.length !== cols)) {
      const shape = `${table.matrix.length}×${table.matrix[0]?.length ?? 0}`;
      throw new UserError(
        `${where}: the ${spec.source} table is ${shape}, expected ${rows}×${cols} ` +
          `(classes of ${spec.from} × ${kind === 'categorical->multilabel' ? 'labels' : 'classes'} of ${spec.to})`,
      );
    }
    table.matrix.forEach((row, k) =>
      row.forEach((v, j) => {
        if (!(v >= 0 && v <= 1))
          throw new UserError(`${where}: the ${spec.source} table has ${v} at row ${k + 1}, column ${j + 1}; values must lie in [0, 1]`);
      }),
    );
    raw = table.matrix.map((row) => [...row]);
    description = table.description;
    if (kind === 'categorical->categorical') {
      raw = raw.map((row, k) => {
        const sum = row.reduce((a, b) => a + b, 0);
        if (sum <= 0)
          throw new UserError(
            `${where}: row ${k + 1} (${fromTask.labels[k]}) of the ${spec.source} table is all zero; ` +
              'a categorical→categorical row must be a distribution',
          );
        return row.map((v) => v / sum);
      });
    }
  }
  // Blended before the clip, so the losses see the blend under the same [ε, 1−ε] guard as any table.
  const blend = optionValue(RELATEDNESS_OPTIONS.sharpnessBlend, spec.sharpnessBlend);
  if (blend !== 0) raw = blendRelatedness(raw, blend);
  const matrix = kind === 'categorical->multilabel' ? clipRelatedness(raw) : raw;
  return {
    from: spec.from,
    to: spec.to,
    kind,
    source: spec.source,
    matrix,
    ...(coannotated === undefined ? {} : { coannotated }),
    ...(blend === 0 ? {} : { blend }),
    ...(description === undefined ? {} : { description }),
  };
}
