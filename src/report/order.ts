/** `values` with the `preferred` ones first, in that order, then the rest sorted. */
export function orderBy<T>(values: T[], preferred: readonly T[]): T[] {
  const known = preferred.filter((v) => values.includes(v));
  const rest = values.filter((v) => !preferred.includes(v)).sort();
  return [...known, ...rest];
}
