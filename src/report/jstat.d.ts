/** The part of jstat (a CommonJS package without types) that the report's statistics use. */
declare module 'jstat' {
  interface StudentT {
    /** P(T ≤ x) for Student's t with `dof` degrees of freedom. */
    cdf(x: number, dof: number): number;
    /** The quantile: x with P(T ≤ x) = p. */
    inv(p: number, dof: number): number;
  }
  const jStat: { studentt: StudentT };
  export = jStat;
}
