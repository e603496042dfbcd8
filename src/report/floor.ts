/**
 * Where Δm% stops meaning anything. Δm% divides each task's change by stl's value, so a baseline
 * near zero turns a change of a point into hundreds or thousands of percent, and a baseline at
 * chance measures nothing to be relative to. A task whose stl primary metric, on any seed, is at
 * or below chance or under MIN_BASELINE points is left out of Δm%, and the report says so.
 */

/** Percentage points. */
export const MIN_BASELINE = 1;

export interface FloorTask {
  name: string;
  primary: string;
  /** categorical or multilabel; unknown for run folders without benchmark.json. */
  kind?: string;
  /** Classes (categorical) or labels (multi-label); unknown for folders written before it was recorded. */
  classes?: number;
}

interface ChanceLevel {
  /** Percent. */
  value: number;
  /** How it is reached, for the reader. */
  how: string;
}

/**
 * What guessing scores, from the task's kind and class count alone: 1/K for accuracy and
 * macro-F1 of a K-way task (a uniform guess; on balanced classes its macro-F1 is 1/K too), 1/2
 * for the label accuracy of a multi-label task (a coin per label). A multi-label macro-F1 has no
 * such level: it depends on how often each label is positive, which the report does not know.
 */
function chanceLevel(task: FloorTask): ChanceLevel | undefined {
  if (
    task.kind === 'categorical' &&
    task.classes !== undefined &&
    task.classes >= 2 &&
    (task.primary === 'accuracy' || task.primary === 'macro_f1')
  ) {
    return { value: 100 / task.classes, how: `1 of ${task.classes} classes` };
  }
  if (task.kind === 'multilabel' && task.primary === 'label_accuracy') return { value: 50, how: 'a coin per label' };
  return undefined;
}

/** Why the task is left out of Δm% (plain ASCII, for the CSV too), or undefined when its stl baseline is usable. */
export function floorReason(task: FloorTask, stl: { values: number[]; seeds: number[] }): string | undefined {
  const lowest = Math.min(...stl.values);
  const seed = stl.seeds[stl.values.indexOf(lowest)];
  const where = stl.values.length > 1 ? ` on seed ${seed}` : '';
  const chance = chanceLevel(task);
  if (chance && lowest <= chance.value) {
    return (
      `${task.name}: stl ${task.primary} ${lowest.toFixed(2)}%${where} is at or below chance ` +
      `(${chance.value.toFixed(2)}%, ${chance.how})`
    );
  }
  if (lowest < MIN_BASELINE) return `${task.name}: stl ${task.primary} ${lowest.toFixed(2)}%${where} is under ${MIN_BASELINE} point`;
  return undefined;
}
