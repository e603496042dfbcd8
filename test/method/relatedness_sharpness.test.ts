import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RelatednessSpec } from '../../src/config/cell.js';
import type { RelatednessTable, TaskSpec } from '../../src/datasets/types.js';
import { RELATEDNESS_EPSILON, blendRelatedness, resolveRelatedness, uninformativeRelatedness } from '../../src/method/relatedness.js';
import { diagnoseRelatedness, relatednessSharpness } from '../../src/method/relatedness_diagnostic.js';

const TASKS: TaskSpec[] = [
  { name: 'expr', kind: 'categorical', labels: ['happy', 'sad'] },
  { name: 'au', kind: 'multilabel', labels: ['au6', 'au12'] },
  { name: 'valence', kind: 'categorical', labels: ['neg', 'neu', 'pos'] },
];
const TABLES: RelatednessTable[] = [
  {
    from: 'expr',
    to: 'au',
    source: 'file',
    matrix: [
      [0.9, 0.1],
      [0.3, 0.5],
    ],
  },
  {
    from: 'expr',
    to: 'valence',
    source: 'file',
    matrix: [
      [0, 0, 1],
      [0.5, 0.5, 0],
    ],
    description: 'hand-made',
  },
];
const spec = (over: Partial<RelatednessSpec>): RelatednessSpec => ({
  from: 'expr',
  to: 'au',
  source: 'file',
  alpha: 1,
  minCoannotated: 20,
  ...over,
});

function assertClose(actual: number[][], expected: number[][]): void {
  actual.forEach((row, k) =>
    row.forEach((v, j) => assert.ok(Math.abs(v - expected[k]![j]!) < 1e-12, `[${k},${j}] = ${v}, expected ${expected[k]![j]}`)),
  );
}

describe('sharpness blend', () => {
  it('R̄ repeats the mean row: column means over the classes of `from`', () => {
    assertClose(
      uninformativeRelatedness([
        [0.9, 0.1],
        [0.3, 0.5],
      ]),
      [
        [0.6, 0.3],
        [0.6, 0.3],
      ],
    );
    // categorical→categorical: the marginal of `to` under a uniform `from`, itself a distribution.
    assertClose(
      uninformativeRelatedness([
        [0, 0, 1],
        [0.5, 0.5, 0],
      ]),
      [
        [0.25, 0.25, 0.5],
        [0.25, 0.25, 0.5],
      ],
    );
  });

  it('β = 0 leaves the table exactly as it was; β = 1 gives R̄; β = ½ lies halfway (categorical→multi-label)', () => {
    const plain = resolveRelatedness(spec({}), TASKS, {}, TABLES);
    const zero = resolveRelatedness(spec({ sharpnessBlend: 0 }), TASKS, {}, TABLES);
    assert.deepEqual(zero.matrix, [
      [0.9, 0.1],
      [0.3, 0.5],
    ]);
    assert.deepEqual(zero, plain, 'an explicit 0 is the same as leaving the option out');
    assert.equal('blend' in zero, false);
    const one = resolveRelatedness(spec({ sharpnessBlend: 1 }), TASKS, {}, TABLES);
    assertClose(one.matrix, [
      [0.6, 0.3],
      [0.6, 0.3],
    ]);
    assert.equal(one.blend, 1);
    assertClose(resolveRelatedness(spec({ sharpnessBlend: 0.5 }), TASKS, {}, TABLES).matrix, [
      [0.75, 0.2],
      [0.45, 0.4],
    ]);
  });

  it('categorical→categorical: rows stay distributions at every β', () => {
    const one = resolveRelatedness(spec({ to: 'valence', sharpnessBlend: 1 }), TASKS, {}, TABLES);
    assertClose(one.matrix, [
      [0.25, 0.25, 0.5],
      [0.25, 0.25, 0.5],
    ]);
    const quarter = resolveRelatedness(spec({ to: 'valence', sharpnessBlend: 0.25 }), TASKS, {}, TABLES);
    assertClose(quarter.matrix, [
      [0.0625, 0.0625, 0.875],
      [0.4375, 0.4375, 0.125],
    ]);
    for (const row of quarter.matrix) assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  });

  it('the blend is clipped like any categorical→multi-label table', () => {
    const crisp: RelatednessTable[] = [
      {
        from: 'expr',
        to: 'au',
        source: 'file',
        matrix: [
          [1, 0],
          [1, 0],
        ],
      },
    ];
    const r = resolveRelatedness(spec({ sharpnessBlend: 0.5 }), TASKS, {}, crisp);
    assert.deepEqual(r.matrix, [
      [1 - RELATEDNESS_EPSILON, RELATEDNESS_EPSILON],
      [1 - RELATEDNESS_EPSILON, RELATEDNESS_EPSILON],
    ]);
  });

  it('refuses β outside [0, 1]', () => {
    assert.throws(() => blendRelatedness([[0.5]], 1.5), /\[0, 1\]/);
  });
});

describe('relatedness diagnostic', () => {
  it('sharpness is 1 for a crisp matrix and 0 for a uniform one, for both kinds of pair', () => {
    assert.equal(
      relatednessSharpness(
        [
          [1, 0, 0],
          [0, 0, 1],
        ],
        'categorical->categorical',
      ),
      1,
    );
    assert.ok(
      Math.abs(
        relatednessSharpness(
          [
            [1 / 3, 1 / 3, 1 / 3],
            [1 / 3, 1 / 3, 1 / 3],
          ],
          'categorical->categorical',
        ),
      ) < 1e-12,
    );
    assert.equal(
      relatednessSharpness(
        [
          [1, 0],
          [0, 1],
        ],
        'categorical->multilabel',
      ),
      1,
    );
    assert.equal(
      relatednessSharpness(
        [
          [0.5, 0.5],
          [0.5, 0.5],
        ],
        'categorical->multilabel',
      ),
      0,
    );
  });

  it('sharpness in between, by hand: one crisp row and one uniform row give ½', () => {
    assert.ok(
      Math.abs(
        relatednessSharpness(
          [
            [0, 1],
            [0.5, 0.5],
          ],
          'categorical->categorical',
        ) - 0.5,
      ) < 1e-12,
    );
    // Entries 0.9 and 0.1 have binary entropy H(0.9)/log 2 = 0.4690 each.
    const h = -(0.9 * Math.log(0.9) + 0.1 * Math.log(0.1)) / Math.log(2);
    assert.ok(Math.abs(relatednessSharpness([[0.9, 0.1]], 'categorical->multilabel') - (1 - h)) < 1e-12);
  });

  it('diagnoses a resolved pair: sharpness, its uninformed level, entries above ½ and where R came from', () => {
    const d = diagnoseRelatedness(resolveRelatedness(spec({ to: 'valence' }), TASKS, {}, TABLES));
    assert.equal(d.source, 'file');
    assert.equal(d.description, 'hand-made');
    assert.equal(d.entries, 6);
    assert.equal(d.entriesAboveHalf, 1, '0.5 itself is not above ½');
    assert.ok(Math.abs(d.sharpness - (1 - (0 + 1 / Math.log2(3)) / 2)) < 1e-12);
    assert.ok(d.uninformedSharpness < d.sharpness);
    assert.equal('blend' in d, false);
  });
});
