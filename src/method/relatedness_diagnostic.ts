import type { PairKind, RelatednessMatrix } from './relatedness.js';
import { uninformativeRelatedness } from './relatedness.js';

/**
 * How crisp a relatedness matrix is, and where it came from: what a reader needs beside a result
 * to tell "DM fails" from "DM was given a diffuse R".
 *
 * Sharpness is one minus the mean normalised entropy:
 * - categorical→categorical: each row R[k,·] is a distribution over the K₂ classes of `to`;
 *   its entropy divided by log K₂ is 0 for a one-hot row and 1 for a uniform one;
 * - categorical→multi-label: each entry R[k,i] is a Bernoulli probability; its binary entropy
 *   divided by log 2 is 0 at 0 or 1 and 1 at ½.
 * So 1 is a table of certainties and 0 a table that says nothing. A matrix can be sharp and still
 * not tell the classes apart (every row the same, all near 0): `uninformedSharpness`, the same
 * figure for R̄ (every row the mean row), is the level a class-blind table would reach.
 */
export interface RelatednessDiagnostic {
  kind: PairKind;
  sharpness: number;
  /** The sharpness of R̄, the uninformative version of this matrix. */
  uninformedSharpness: number;
  /** Entries strictly above 0.5, of `entries`. */
  entriesAboveHalf: number;
  entries: number;
  source: RelatednessMatrix['source'];
  /** For `data`: the training samples that carried both labels. */
  coannotated?: number;
  /** For `prior` and `file`: what the dataset says the table is. */
  description?: string;
  /** The sharpness blend β when it is not 0. */
  blend?: number;
}

/** x·log x with 0·log 0 = 0. */
function xLogX(x: number): number {
  return x > 0 ? x * Math.log(x) : 0;
}

/** One minus the mean normalised entropy of the rows (categorical→categorical) or of the entries (categorical→multi-label). */
export function relatednessSharpness(matrix: readonly (readonly number[])[], kind: PairKind): number {
  if (matrix.length === 0) return Number.NaN;
  if (kind === 'categorical->categorical') {
    const width = matrix[0]!.length;
    if (width < 2) return 1;
    const entropies = matrix.map((row) => {
      const total = row.reduce((a, b) => a + b, 0);
      return -row.reduce((sum, v) => sum + xLogX(v / total), 0) / Math.log(width);
    });
    return 1 - entropies.reduce((a, b) => a + b, 0) / entropies.length;
  }
  let sum = 0;
  let count = 0;
  for (const row of matrix) {
    for (const p of row) {
      sum += -(xLogX(p) + xLogX(1 - p)) / Math.log(2);
      count++;
    }
  }
  return 1 - sum / count;
}

export function diagnoseRelatedness(relatedness: RelatednessMatrix): RelatednessDiagnostic {
  const { matrix, kind } = relatedness;
  return {
    kind,
    sharpness: relatednessSharpness(matrix, kind),
    uninformedSharpness: relatednessSharpness(uninformativeRelatedness(matrix), kind),
    entriesAboveHalf: matrix.reduce((n, row) => n + row.filter((v) => v > 0.5).length, 0),
    entries: matrix.reduce((n, row) => n + row.length, 0),
    source: relatedness.source,
    ...(relatedness.coannotated === undefined ? {} : { coannotated: relatedness.coannotated }),
    ...(relatedness.description === undefined ? {} : { description: relatedness.description }),
    ...(relatedness.blend === undefined ? {} : { blend: relatedness.blend }),
  };
}
