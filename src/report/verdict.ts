import { SIGNIFICANCE, type PairedTest } from './stats.js';

/**
 * What a comparison with stl shows, from the paired test over seeds. Only the `significant-*`
 * findings are evidence; a drop within noise is reported as such, and one seed is no finding.
 */
export type Finding =
  'baseline' | 'no-baseline' | 'no-pair' | 'one-seed' | 'significant-drop' | 'drop-within-noise' | 'no-difference' | 'significant-gain';

/** A summary row's finding: `incomplete` where a task or the baseline has no result. */
export type RowFinding = Finding | 'incomplete';

/** A few words per finding, for table columns (the verdict text says the rest). */
export const FINDING_LABELS: Record<RowFinding, string> = {
  'significant-drop': 'significant drop',
  'drop-within-noise': 'drop within noise',
  'significant-gain': 'significant gain',
  'no-difference': 'no detectable difference',
  'one-seed': '1 seed: no estimate',
  'no-pair': 'no seed in common',
  'no-baseline': 'no stl baseline',
  baseline: 'baseline',
  incomplete: 'incomplete',
};

export function findingOf(test: PairedTest | undefined): Finding {
  if (!test || test.n === 0) return 'no-pair';
  if (test.p === undefined) return 'one-seed';
  if (test.p < SIGNIFICANCE) return test.mean < 0 ? 'significant-drop' : test.mean > 0 ? 'significant-gain' : 'no-difference';
  return test.mean < 0 ? 'drop-within-noise' : 'no-difference';
}

/** "p = 0.012", "p < 0.001": two significant digits are all a p-value from a few seeds can carry. */
export function formatP(p: number): string {
  return p < 0.001 ? 'p < 0.001' : `p = ${Number(p.toPrecision(2))}`;
}

/** The words for one comparison; plain ASCII, since they go into the CSV files too. */
export function findingWords(finding: Finding, p: number | undefined): string {
  const pText = p === undefined ? '' : formatP(p);
  switch (finding) {
    case 'baseline':
      return 'baseline';
    case 'no-baseline':
      return 'no stl baseline';
    case 'no-pair':
      return 'no seed in common with stl';
    case 'one-seed':
      return '1 seed: no uncertainty estimate';
    case 'significant-drop':
      return `worse than stl (significant, ${pText})`;
    case 'drop-within-noise':
      return `worse, within noise (${pText})`;
    case 'no-difference':
      return `no detectable difference (${pText})`;
    case 'significant-gain':
      return `better than stl (significant, ${pText})`;
  }
}
