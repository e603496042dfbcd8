import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LabelColumn, RelatednessTable, TaskSpec } from '../../src/datasets/types.js';
import { MASKED, NO_CLASS } from '../../src/datasets/types.js';
import { RELATEDNESS_EPSILON, clipRelatedness, countRelatedness, resolveRelatedness } from '../../src/method/relatedness.js';
import type { RelatednessSpec } from '../../src/config/cell.js';
import { UserError } from '../../src/util/errors.js';

const TASKS: TaskSpec[] = [
  { name: 'expr', kind: 'categorical', labels: ['happy', 'sad'] },
  { name: 'au', kind: 'multilabel', labels: ['au6', 'au12', 'au15'] },
  { name: 'valence', kind: 'categorical', labels: ['neg', 'neu', 'pos'] },
];

// 6 samples: expr happy, happy, sad, sad, none, happy; au rows with masks; valence classes.
const LABELS: Record<string, LabelColumn> = {
  expr: { kind: 'categorical', values: Int32Array.from([0, 0, 1, 1, NO_CLASS, 0]) },
  au: {
    kind: 'multilabel',
    width: 3,
    values: Uint8Array.from([1, 1, 0, 1, MASKED, 0, 0, 0, 1, MASKED, MASKED, MASKED, 1, 1, 1, 0, 1, 0]),
  },
  valence: { kind: 'categorical', values: Int32Array.from([2, 2, 0, 1, 2, NO_CLASS]) },
};

/** Same shape as `expected` (so an empty or ragged matrix fails) and every entry within 1e-12. */
function assertMatrixClose(actual: readonly (readonly number[])[], expected: readonly (readonly number[])[]): void {
  assert.deepEqual(
    actual.map((row) => row.length),
    expected.map((row) => row.length),
    'matrix shape (one length per row)',
  );
  expected.forEach((row, k) =>
    row.forEach((v, i) => assert.ok(Math.abs(actual[k]![i]! - v) < 1e-12, `R[${k},${i}] = ${actual[k]![i]}, expected ${v}`)),
  );
}

const spec = (over: Partial<RelatednessSpec> = {}): RelatednessSpec => ({
  from: 'expr',
  to: 'au',
  source: 'data',
  alpha: 1,
  minCoannotated: 1,
  ...over,
});

describe('relatedness', () => {
  it('counts smoothed co-occurrences over co-annotated samples, skipping masked entries', () => {
    const { matrix, coannotated } = countRelatedness({ task: TASKS[0]!, column: LABELS.expr! }, { task: TASKS[1]!, column: LABELS.au! }, 1);
    // Co-annotated: samples 0, 1, 2, 5 (sample 3 has a fully masked row, sample 4 no class).
    assert.equal(coannotated, 4);
    // happy = samples 0, 1, 5: au6 (1, 1, 0) → (2+1)/(3+2); au12 (1, masked, 1) → (2+1)/(2+2); au15 (0, 0, 0) → 1/5.
    // sad = sample 2 only: au6 0 → 1/3; au12 0 → 1/3; au15 1 → 2/3.
    const expected = [
      [3 / 5, 3 / 4, 1 / 5],
      [1 / 3, 1 / 3, 2 / 3],
    ];
    assertMatrixClose(matrix, expected);
  });

  it('categorical → categorical rows are smoothed distributions', () => {
    const { matrix, coannotated } = countRelatedness(
      { task: TASKS[0]!, column: LABELS.expr! },
      { task: TASKS[2]!, column: LABELS.valence! },
      1,
    );
    assert.equal(coannotated, 4); // samples 0-3
    // happy: valence pos twice → (0+1, 0+1, 2+1)/(2+3); sad: neg once, neu once → (2, 2, 1)/5.
    assert.deepEqual(matrix, [
      [1 / 5, 1 / 5, 3 / 5],
      [2 / 5, 2 / 5, 1 / 5],
    ]);
  });

  it('resolves data tables, clipped to [ε, 1−ε], and only over the given training samples', () => {
    const r = resolveRelatedness(spec({ alpha: 0 }), TASKS, LABELS, [], [0, 1, 2]);
    // alpha 0 over samples 0-2: happy au15 = 0/2 → ε, happy au6 = 2/2 → 1−ε.
    assert.equal(r.matrix[0]![2], RELATEDNESS_EPSILON);
    assert.equal(r.matrix[0]![0], 1 - RELATEDNESS_EPSILON);
    assert.equal(r.coannotated, 3);
    assert.equal(r.kind, 'categorical->multilabel');
  });

  it('too few co-annotated samples is an error, never a silent uniform matrix', () => {
    assert.throws(
      () => resolveRelatedness(spec({ minCoannotated: 5 }), TASKS, LABELS, []),
      (err: unknown) => err instanceof UserError && /at least 5 .* leaves 4/.test(err.message),
    );
  });

  it('takes prior and file tables from the dataset and checks them', () => {
    const prior: RelatednessTable = {
      from: 'expr',
      to: 'au',
      source: 'prior',
      matrix: [
        [1, 1, 0],
        [0, 0, 0],
      ],
    };
    const r = resolveRelatedness(spec({ source: 'prior' }), TASKS, LABELS, [prior]);
    assert.deepEqual(r.matrix, clipRelatedness(prior.matrix));
    assert.deepEqual(r.matrix[1], [RELATEDNESS_EPSILON, RELATEDNESS_EPSILON, RELATEDNESS_EPSILON], 'a zero row (Neutral) becomes ε');
    assert.throws(() => resolveRelatedness(spec({ source: 'file' }), TASKS, LABELS, [prior]), /ships no "file" table/);
    const bad: RelatednessTable = {
      ...prior,
      matrix: [
        [1, 1],
        [0, 0],
      ],
    };
    assert.throws(() => resolveRelatedness(spec({ source: 'prior' }), TASKS, LABELS, [bad]), /is 2×2, expected 2×3/);
    const outOfRange: RelatednessTable = {
      ...prior,
      matrix: [
        [1, 1.5, 0],
        [0, 0, 0],
      ],
    };
    assert.throws(() => resolveRelatedness(spec({ source: 'prior' }), TASKS, LABELS, [outOfRange]), /1\.5 at row 1, column 2/);
  });

  it('normalises categorical → categorical tables and rejects wrong directions', () => {
    const table: RelatednessTable = {
      from: 'expr',
      to: 'valence',
      source: 'prior',
      matrix: [
        [0, 0.2, 0.6],
        [0.4, 0.4, 0],
      ],
    };
    const r = resolveRelatedness(spec({ to: 'valence', source: 'prior' }), TASKS, LABELS, [table]);
    assertMatrixClose(r.matrix, [
      [0, 0.25, 0.75],
      [0.5, 0.5, 0],
    ]);
    assert.throws(() => resolveRelatedness(spec({ from: 'au', to: 'expr' }), TASKS, LABELS, []), /write it as expr->au/);
    assert.throws(() => resolveRelatedness(spec({ to: 'nope' }), TASKS, LABELS, []), /unknown task "nope"/);
  });
});
