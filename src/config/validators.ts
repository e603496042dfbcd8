import { z } from 'zod';

/**
 * The value checks every configuration option is built from, each failing with one message that
 * says what was expected (the schema prefixes the key path).
 */

const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]*$/i;

export const positiveInt = z
  .number({ error: 'expected a positive integer' })
  .int({ error: 'expected a positive integer' })
  .positive({ error: 'expected a positive integer' });
export const nonNegativeInt = z
  .number({ error: 'expected a whole number ≥ 0' })
  .int({ error: 'expected a whole number ≥ 0' })
  .min(0, { error: 'expected a whole number ≥ 0' });
export const positiveNumber = z.number({ error: 'expected a number > 0' }).positive({ error: 'expected a number > 0' });
export const nonNegativeNumber = z.number({ error: 'expected a number ≥ 0' }).min(0, { error: 'expected a number ≥ 0' });
export const boolean = z.boolean({ error: 'expected true or false' });
export const fraction = (what: string) =>
  z
    .number({ error: `expected ${what}` })
    .min(0, { error: `expected ${what}` })
    .max(1, { error: `expected ${what}` });
export const identifier = (what: string) =>
  z
    .string({ error: `expected ${what}` })
    .regex(NAME_PATTERN, { error: `expected ${what}: letters, digits, "_" and "-", starting with a letter or digit` });
export const percent = z
  .number({ error: 'expected a value in percent (0–100)' })
  .min(0, { error: 'expected a value in percent (0–100)' })
  .max(100, { error: 'expected a value in percent (0–100)' });
/** "a", "a or b", "a, b or c". */
export function alternatives(values: readonly string[]): string {
  return values.length <= 1 ? (values[0] ?? '') : `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;
}
export const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `expected ${alternatives(values)}` });
